"""A OneRoster REST API (1.1 or 1.2 rostering) as a roster source: see docs/rest-source.md."""
