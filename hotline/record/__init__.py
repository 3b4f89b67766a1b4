"""Asterisk's own record of every call (CEL and ``queue_log``) and the reconciler.

AMI is a live feed: it never replays what a disconnected client missed. Asterisk also
writes what happened to durable stores of its own (CEL rows with ``LINKEDID_END``, the
``queue_log``), and those are what settle the call log after any gap: docs/reliability.md.
"""
