"""The tests every provider passes against its emulator, over real loopback HTTP.

Subclass `ProviderContract` in tests/providers/test_<provider>.py, set the class attributes and
implement the hooks; pytest collects the subclass (its name starts with `Test`). The suite drives
the real CLI (`cdrfetch <provider> pull`) with a YAML profile pointing at the emulator and the
secrets in the (in-memory) keyring, exactly the way a user runs it.
"""

from __future__ import annotations

import collections
import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import Result

from cdrfetch import providers, records
from cdrfetch.errors import ExitCode
from cdrfetch.sandbox import emulator_class
from cdrfetch.sandbox.server import Emulator, ExpectedCall, Reply, Route, SandboxServer
from cdrfetch.testing.harness import MemoryKeyring, projection, read_rows, read_table, run_cli, write_profile
from cdrfetch.testing.hostile import HostileDataContract
from cdrfetch.windows import Window

FORMATS = ("parquet", "csv", "jsonl", "json")


class ProviderContract(HostileDataContract):
    """Shared provider tests (hostile data ones from HostileDataContract); subclasses set the attributes and hooks."""

    provider: ClassVar[str]
    main_route: ClassVar[str]  # path substring of the provider's first request (fault injection)
    download_route: ClassVar[str | None] = None  # path substring of the file download, if any
    answer_route: ClassVar[str | None] = None  # a route answering with a body (default: main_route)
    # A window in the past, as the CLI takes it (ISO-8601 with offsets keeps it unambiguous).
    window_start: ClassVar[str] = "2024-03-04T16:00:00+00:00"
    window_end: ClassVar[str] = "2024-03-05T16:00:00+00:00"

    # ---- hooks (the defaults use the emulator's shared fault knobs) ---------------------------
    def emulator_knobs(self) -> dict[str, Any]:
        """Constructor arguments of the emulator for the happy path."""
        return {}

    def make_rows_malformed(self, emulator: Emulator) -> str:
        """Make one served row carry an unparseable mandatory field; return text the error names."""
        emulator.fault("malformed", True)
        return emulator.malformed_where

    def make_window_empty(self, emulator: Emulator) -> None:
        """Make the emulator serve no records for the window."""
        emulator.fault("empty", True)

    def expire_signatures(self, emulator: Emulator) -> None:
        """Make the emulator see the client's timestamps as stale (skipped where there are none)."""
        if "clock_offset" not in emulator.supported_faults():
            pytest.skip(f"{self.provider} requests carry no timestamp")
        emulator.fault("clock_offset", 3600.0)

    def truncate_downloads(self, emulator: Emulator, count: int) -> None:
        """Make the next `count` downloads send half their bytes and hang up."""
        emulator.fault("truncate_downloads", count)

    # ---- fixtures ----------------------------------------------------------------------------
    @pytest.fixture
    def server(self) -> Iterator[SandboxServer]:
        emulator = emulator_class(self.provider)(**self.emulator_knobs())
        with SandboxServer(emulator) as server:
            yield server

    @pytest.fixture
    def emulator(self, server: SandboxServer) -> Emulator:
        return server.emulator

    @pytest.fixture
    def profile(self, server: SandboxServer, tmp_path: Path, memory_keyring: MemoryKeyring) -> Path:
        """A config file with the emulator's non-secret settings; secrets go to the keyring."""
        settings = server.emulator.profile(server.url)
        return write_profile(self.provider, settings, tmp_path / "config.yaml", memory_keyring)

    @property
    def window(self) -> Window:
        return Window(datetime.fromisoformat(self.window_start), datetime.fromisoformat(self.window_end))

    def pull(self, profile: Path, *args: str) -> Result:
        """`cdrfetch <provider> pull` over the contract window with `profile`."""
        return run_cli(
            self.provider, "pull", "--config", str(profile), "--from", self.window_start, "--to", self.window_end, *args
        )

    def secrets(self, server: SandboxServer) -> list[str]:
        cls = providers.load(self.provider)
        settings = server.emulator.profile(server.url)
        return [str(settings[s.name]) for s in cls.all_settings() if s.secret and settings.get(s.name)]

    # ---- the contract ------------------------------------------------------------------------
    def test_happy_path_equals_expected_calls(self, emulator: Emulator, profile: Path, tmp_path: Path) -> None:
        out = tmp_path / "calls.parquet"
        result = self.pull(profile, "-o", str(out))
        assert result.exit_code == 0, result.stderr
        table = read_table(out)
        assert table.schema.equals(records.CALLS)
        expected = emulator.expected_calls(self.window)
        assert expected, "the contract window must hold calls"
        assert projection(table.to_pylist()) == collections.Counter(expected)
        assert set(table.column("provider").to_pylist()) == {self.provider}
        assert table.column("record_id").unique().to_pylist() == table.column("record_id").to_pylist()
        assert all(isinstance(json.loads(extra), dict) for extra in table.column("extra").to_pylist())
        assert all(self.window.contains(start) for start in table.column("start_time").to_pylist())

    def test_record_ids_are_stable_across_pulls(self, profile: Path, tmp_path: Path) -> None:
        first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
        assert self.pull(profile, "-o", str(first)).exit_code == 0
        assert self.pull(profile, "-o", str(second)).exit_code == 0
        assert read_table(first).column("record_id").to_pylist() == read_table(second).column("record_id").to_pylist()

    def test_wrong_secret_exits_77_with_hint(
        self, profile: Path, tmp_path: Path, memory_keyring: MemoryKeyring
    ) -> None:
        for key in list(memory_keyring.store):
            memory_keyring.store[key] = "wrong-" + memory_keyring.store[key][::-1]
        out = tmp_path / "calls.parquet"
        result = self.pull(profile, "-o", str(out))
        assert result.exit_code == ExitCode.AUTH, result.stderr
        assert "hint:" in result.stderr
        assert not out.exists() and not list(tmp_path.glob("*.partial"))

    def test_expired_timestamp_exits_77(self, emulator: Emulator, profile: Path) -> None:
        self.expire_signatures(emulator)
        result = self.pull(profile, "-o", "-")
        assert result.exit_code == ExitCode.AUTH, result.stderr
        assert "hint:" in result.stderr

    def test_transient_5xx_is_retried(self, emulator: Emulator, profile: Path, tmp_path: Path) -> None:
        emulator.faults.fail_next(2, 503, self.main_route)
        out = tmp_path / "calls.parquet"
        result = self.pull(profile, "-o", str(out))
        assert result.exit_code == 0, result.stderr
        assert projection(read_table(out).to_pylist()) == collections.Counter(emulator.expected_calls(self.window))
        assert sum(self.main_route in r.path for r in emulator.received) >= 3

    def test_a_dry_run_sends_nothing_and_shows_no_secret(
        self, emulator: Emulator, server: SandboxServer, profile: Path, tmp_path: Path
    ) -> None:
        result = self.pull(profile, "-o", f"{tmp_path}/out/", "--dry-run")
        assert result.exit_code == 0, result.stderr
        assert emulator.received == [] and not (tmp_path / "out").exists()
        assert "dry run: nothing was requested or written" in result.stdout
        for secret in self.secrets(server):
            assert secret not in result.stdout + result.stderr

    def test_persistent_5xx_exits_69(self, emulator: Emulator, profile: Path, tmp_path: Path) -> None:
        emulator.faults.fail_next(1000, 500, self.main_route)
        out = tmp_path / "calls.parquet"
        result = self.pull(profile, "-o", str(out))
        assert result.exit_code == ExitCode.UNAVAILABLE, result.stderr
        assert "hint:" in result.stderr
        assert not out.exists() and not list(tmp_path.glob(".*.partial"))

    def test_truncated_download_is_retried(self, emulator: Emulator, profile: Path, tmp_path: Path) -> None:
        if self.download_route is None:
            pytest.skip(f"{self.provider} has no file download")
        self.truncate_downloads(emulator, 1)
        out = tmp_path / "calls.parquet"
        result = self.pull(profile, "-o", str(out))
        assert result.exit_code == 0, result.stderr
        assert projection(read_table(out).to_pylist()) == collections.Counter(emulator.expected_calls(self.window))
        assert sum(self.download_route in r.path for r in emulator.received) >= 2

    @pytest.mark.parametrize("fmt", FORMATS)
    def test_empty_window_writes_a_valid_empty_file(
        self, emulator: Emulator, profile: Path, tmp_path: Path, fmt: str
    ) -> None:
        self.make_window_empty(emulator)
        out = tmp_path / f"calls.{fmt}"
        result = self.pull(profile, "-o", str(out))
        assert result.exit_code == 0, result.stderr
        assert out.exists()
        assert read_rows(out, fmt) == []
        if fmt == "parquet":
            assert read_table(out).schema.equals(records.CALLS)
        if fmt == "csv":
            assert out.read_text(encoding="utf-8").splitlines()[0].replace('"', "").split(",") == records.CALLS.names

    def test_malformed_row_exits_65_naming_file_and_line(
        self, emulator: Emulator, profile: Path, tmp_path: Path
    ) -> None:
        where = self.make_rows_malformed(emulator)
        out = tmp_path / "calls.parquet"
        result = self.pull(profile, "-o", str(out))
        assert result.exit_code == ExitCode.DATA, result.stderr
        assert where in result.stderr
        assert not out.exists()

    @pytest.mark.parametrize("fmt", ("csv", "jsonl", "json"))
    def test_stdout_output_carries_every_call(self, emulator: Emulator, profile: Path, fmt: str) -> None:
        result = self.pull(profile, "-o", "-", "--format", fmt, "-q")
        assert result.exit_code == 0, result.stderr
        rows = _parse_text(result.stdout, fmt)
        assert len(rows) == len(emulator.expected_calls(self.window))

    def test_no_secret_in_any_log_line(
        self, emulator: Emulator, server: SandboxServer, profile: Path, tmp_path: Path
    ) -> None:
        emulator.faults.fail_next(1, 503, self.main_route)
        out = tmp_path / "calls.jsonl"
        result = self.pull(profile, "-o", str(out), "-vv", "--summary-json", str(tmp_path / "summary.json"))
        assert result.exit_code == 0, result.stderr
        assert "retrying" in result.stderr  # the retry path was logged too
        produced = result.stderr + result.stdout + out.read_text() + (tmp_path / "summary.json").read_text()
        for secret in self.secrets(server):
            assert secret not in produced

    # ---- hostile servers: every failure is a clean one ------------------------------------------
    def test_a_redirect_to_another_origin_is_refused_and_nothing_reaches_it(
        self, emulator: Emulator, profile: Path, tmp_path: Path
    ) -> None:
        with SandboxServer(_Elsewhere()) as elsewhere:
            emulator.faults.redirect_next(10, elsewhere.url + "/collect", status=307, route=self.main_route)
            result = self.pull(profile, "-o", str(tmp_path / "calls.parquet"))
        assert result.exit_code == ExitCode.CONFIG, result.stderr
        assert "redirect" in result.stderr and "Traceback" not in result.stderr
        assert elsewhere.emulator.received == []

    @pytest.mark.parametrize("location", ["file:///etc/passwd", "gopher://127.0.0.1:70/x", "http://[::1", "//"])
    def test_a_redirect_to_an_unfetchable_url_is_refused(
        self, emulator: Emulator, profile: Path, tmp_path: Path, location: str
    ) -> None:
        emulator.faults.redirect_next(10, location, route=self.main_route)
        result = self.pull(profile, "-o", str(tmp_path / "calls.parquet"))
        # refused (65, 78), or, for "//" (the same origin again), a redirect loop (69)
        assert result.exit_code in (ExitCode.DATA, ExitCode.CONFIG, ExitCode.UNAVAILABLE), result.stderr
        assert "Traceback" not in result.stderr and not (tmp_path / "calls.parquet").exists()

    def test_a_trickling_answer_fails_at_the_deadline(self, emulator: Emulator, profile: Path, tmp_path: Path) -> None:
        emulator.faults.trickle_next(100, 0.1, route=self.answer_route or self.main_route)
        result = self.pull(profile, "-o", str(tmp_path / "calls.parquet"), "--set", "deadline=1", "--set", "retries=0")
        assert result.exit_code == ExitCode.UNAVAILABLE, result.stderr
        assert "not complete within 1s" in result.stderr

    def test_an_endless_answer_is_cut_at_the_size_limit(
        self, emulator: Emulator, profile: Path, tmp_path: Path
    ) -> None:
        emulator.faults.endless_next(100, route=self.answer_route or self.main_route)
        result = self.pull(profile, "-o", str(tmp_path / "calls.parquet"), "--set", "max_answer_mb=1")
        assert result.exit_code == ExitCode.DATA, result.stderr
        assert "larger than 1048576 bytes" in result.stderr, result.stderr

    def test_an_endless_download_is_cut_at_the_size_limit(
        self, emulator: Emulator, profile: Path, tmp_path: Path
    ) -> None:
        if self.download_route is None:
            pytest.skip(f"{self.provider} has no file download")
        emulator.faults.endless_next(100, route=self.download_route)
        result = self.pull(profile, "-o", str(tmp_path / "calls.parquet"), "--set", "max_download_mb=1")
        assert result.exit_code == ExitCode.DATA, result.stderr
        assert "larger than" in result.stderr and "Traceback" not in result.stderr, result.stderr

    def test_sandbox_demo_runs(self, tmp_path: Path) -> None:
        out = tmp_path / "demo.parquet"
        result = run_cli(self.provider, "pull", "--sandbox", "--date", "day", "-o", str(out))
        assert result.exit_code == 0, result.stderr
        assert read_table(out).schema.equals(records.CALLS)


class _Elsewhere(Emulator):
    """Another origin on loopback: a client that follows a redirect here would leak its credentials."""

    name = "elsewhere"

    def routes(self) -> list[Route]:
        return [
            Route(method, re.compile(".*"), lambda request, match: Reply.text("collected"))
            for method in ("GET", "POST")
        ]

    def profile(self, base_url: str) -> dict[str, Any]:
        return {}

    def expected_calls(self, window: Window) -> list[ExpectedCall]:
        return []


def _parse_text(text: str, fmt: str) -> list[Any]:
    if fmt == "json":
        return list(json.loads(text))
    if fmt == "jsonl":
        return [json.loads(line) for line in text.splitlines() if line]
    return text.splitlines()[1:]
