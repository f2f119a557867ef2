"""``rostersync``: the one command an operator runs by hand (stack, demo, sync, runs)."""
