"""A real PostgreSQL server for the PostgreSQL destination tests (filled in with the destination)."""
