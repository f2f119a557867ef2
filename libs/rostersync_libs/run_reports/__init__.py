"""What operators read about runs, for the CLI and the admin API alike: the honest status of a
run (status.py), the queries (queries.py, validation.py) and the JSON documents (documents.py)."""
