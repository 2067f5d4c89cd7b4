"""Acme Voice call records for cdrfetch (an example provider plugin)."""
