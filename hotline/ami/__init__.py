"""Asterisk's manager interface: the only package that talks AMI.

Bytes become frames in ``framing``, frames become events in ``events``; ``protocol`` and
``manager`` fix panoramisk 1.4 where it loses data or hangs; ``bridge`` owns the socket.
"""
