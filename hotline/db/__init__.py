"""Persistence: typed models, engines and the packaged Alembic migrations."""

from __future__ import annotations

from hotline.db.models import ApiToken, Base, CallLog, Customer, CustomerPhone
from hotline.db.session import make_engine, session_factory, upgrade

__all__ = [
    "ApiToken",
    "Base",
    "CallLog",
    "Customer",
    "CustomerPhone",
    "make_engine",
    "session_factory",
    "upgrade",
]
