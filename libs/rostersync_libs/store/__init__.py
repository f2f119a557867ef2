"""The deployment's PostgreSQL tables, owned in one place: their migrations (``migrations/``,
applied by ``migrate.py`` by whichever process starts first), the list of them (``tables.py``) and
the typed reads the fetcher, validator, mapper and CLI make of them (``roster.py``, ``runs.py``,
``identity.py``).
The writer keeps its write side (services/writer)."""
