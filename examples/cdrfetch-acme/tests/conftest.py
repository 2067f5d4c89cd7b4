"""The same isolation the built-in providers' tests get: loopback only, private dirs, in-memory keyring."""

pytest_plugins = ["cdrfetch.testing.fixtures"]
