"""The fetcher: reads a tenant's OneRoster source and publishes one event per record."""
