"""Notifications of runs that need a person: found (found.py), delivered (deliver.py), kept
going (loop.py). Read-only on the roster: the notifier only reads runs and writes its own table."""
