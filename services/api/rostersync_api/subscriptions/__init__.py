"""Webhook subscriptions to a tenant's change feed: stored (store.py), delivered in order from
each one's cursor (deliver.py). The only owner of ``change_subscriptions``."""
