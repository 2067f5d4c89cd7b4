"""Test isolation (cdrfetch.testing.fixtures: loopback-only network, private dirs, in-memory keyring)
and the reproducible property-test profile."""

from __future__ import annotations

import os

from hypothesis import settings

pytest_plugins = ["cdrfetch.testing.fixtures", "tests.sandbox_cli", "tests.s3_server", "tests.pg_server"]

# The suite's property tests run a fixed, reproducible set of examples, so a CI result never depends
# on the luck of the draw. `HYPOTHESIS_PROFILE=explore pytest` searches afresh with many more.
settings.register_profile("ci", derandomize=True, database=None, deadline=None)  # a slow machine is no failure
settings.register_profile("explore", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
