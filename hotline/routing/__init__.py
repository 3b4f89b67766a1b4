"""Dialect routing: which queue a caller joins, at what priority, and why.

Sans-I/O throughout: :mod:`.regions` (number → region → dialect, from a cited data file),
:mod:`.decision` (the routing decision with its reasons), :mod:`.skills` (agents' dialect
skills → queue membership and the AMI actions to reach it) and :mod:`.explain` (the shared
body of ``GET /api/routing/explain`` and ``hotline route explain``).
"""
