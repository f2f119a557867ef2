"""rostersync admin API (issue 11): districts, sources, runs, holds and uploads over HTTP."""
