"""OneRoster definitions shared by the services."""
