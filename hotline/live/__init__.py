"""Live supervisor state: queues, waiting callers and agents, and today's figures.

``state`` is the sans-I/O aggregator the bridge's consumer feeds; ``queue_log`` recounts
the same figures from Asterisk's own log to cross-check them; ``metrics`` renders them
for Prometheus.
"""
