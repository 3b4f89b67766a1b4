"""Live supervisor state: queues, waiting callers and agents, and today's figures.

``state`` is the sans-I/O aggregator the bridge's consumer feeds (a facade over
``queues``, ``members``, ``sweep`` and ``views``, with its change values in ``changes``
and its records in ``model``); ``publisher`` puts its changes and snapshots on the bus;
``queue_log`` recounts the same figures from Asterisk's own log to cross-check them;
``metrics`` renders them for Prometheus.
"""
