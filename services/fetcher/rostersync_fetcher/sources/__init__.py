"""Roster source kinds: one driver per ``kind`` of a tenant's source (driver.py, registry.py).

A driver module here (``csv.py``, ``inbox.py``, ``oneroster_api.py``) registers itself with
``@registry.driver("<kind>")``; every module of this package is imported when the fetcher builds
its drivers, so a new kind is a new module, its config model (``rostersync_libs.tenants``) and
its tests.
"""
