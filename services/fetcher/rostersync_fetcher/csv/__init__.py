"""Reading a OneRoster CSV bundle and publishing it as one run (csv and inbox sources)."""
