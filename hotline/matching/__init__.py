"""Caller matching against the national customer record: keys, places, addresses, search.

The record, the importer, the customers API and the pop all read it; it reads only the
database models, routing's region table and :mod:`hotline.phones` (docs/architecture.md).
"""
