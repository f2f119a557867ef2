"""Run a real Kafka broker and PostgreSQL server locally, without Docker.

    from rostersync_localstack import up, down, status
    info = up()            # idempotent; returns StackInfo(kafka_bootstrap, database_url)
    ...
    down()                 # stops only what it started; data are kept

Command line: ``python -m rostersync_localstack up|down|status|reset``
(or ``deploy/local/stack ...`` from a checkout).
"""

from ._common import StackError
from .stack import StackInfo, default_state_dir, down, reset, status, up

__all__ = ["StackError", "StackInfo", "default_state_dir", "down", "reset", "status", "up"]
