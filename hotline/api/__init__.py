"""The HTTP API: the app factory (``app``), its errors (``errors``), dependencies (``deps``),
tokens and roles (``auth``), the WebSocket pump both sockets share (``sockets``) and one
module of routes per resource (``routes/``)."""
