"""Contract tests with hostile data: archive bombs, broken zips and hostile JSON, end to end over loopback.

`ProviderContract` inherits these, so every provider (and plugin) whose emulator opts into the
`hostile_archive` / `hostile_json` faults (`Emulator.hostile_data`) runs them; the others skip.
Every failure must be a clean one: the documented exit code, one error line and no traceback,
nothing under the output path, no temp files left, in bounded time. The bombs run the pull in a
child process under an address-space limit, so a client that unpacks one in memory fails the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import ClassVar

import pytest
import yaml
from typer.testing import Result

from cdrfetch import providers
from cdrfetch.client import DAMAGED_DOWNLOADS
from cdrfetch.config import env_name
from cdrfetch.errors import ExitCode
from cdrfetch.sandbox.faults import HOSTILE_ARCHIVES, HOSTILE_JSON
from cdrfetch.sandbox.server import Emulator, Reply, Request, SandboxServer
from cdrfetch.testing.harness import read_rows

BOMBS = ("bzip2_bomb", "deflate_bomb", "shared_members")  # each expands to about 2 GiB if unpacked
# The interpreter with pyarrow maps about 1.5 GiB of address space before it reads a byte (thread
# arenas mostly, fewer with MALLOC_ARENA_MAX): 3 GiB leaves less room than any bomb expands to.
ADDRESS_SPACE = 3 << 30
CHILD_SECONDS = 120  # a generous bound: a refused bomb takes a few seconds even on a busy machine
QUICK_POLL = ("--set", "poll_timeout=5")  # a status that never turns ready fails in seconds, not minutes


class HostileDataContract:
    """Hostile files and answers; mixed into ProviderContract (whose fixtures and hooks they use)."""

    provider: ClassVar[str]
    download_route: ClassVar[str | None]
    # The exit code each hostile fault ends with; a provider overrides an entry where its protocol
    # reads the fault differently (and says why). 65: the provider sent data that cannot be used.
    hostile_exits: ClassVar[dict[str, int]] = {
        **dict.fromkeys(HOSTILE_ARCHIVES, ExitCode.DATA),
        **dict.fromkeys(HOSTILE_JSON, ExitCode.DATA),
    }

    window_start: ClassVar[str]
    window_end: ClassVar[str]

    def pull(self, profile: Path, *args: str) -> Result:
        """`cdrfetch <provider> pull` over the contract window (ProviderContract has it)."""
        raise NotImplementedError

    @pytest.mark.parametrize("kind", [kind for kind in HOSTILE_ARCHIVES if kind not in BOMBS])
    def test_a_broken_or_hostile_archive_fails_cleanly(
        self, emulator: Emulator, profile: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
    ) -> None:
        _needs(emulator, "hostile_archive")
        emulator.fault("hostile_archive", kind)
        scratch, out = _dirs(tmp_path)
        monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # the run's temp dir goes where it can be seen
        left = _watch_downloads(emulator, scratch)
        result = self.pull(profile, "-o", str(out / "calls.parquet"), *QUICK_POLL)
        _assert_clean(result.exit_code, result.stderr, self.hostile_exits[kind], out)
        if kind == "flipped_byte":  # damage: downloaded again within the budget, each attempt's files removed
            assert len(left) == DAMAGED_DOWNLOADS + 1, left
            assert left[1:] == [[]] * DAMAGED_DOWNLOADS, left
            assert "damaged" in result.stderr
        else:  # a refusal is never downloaded again
            assert len(left) == 1, left
        assert list(scratch.iterdir()) == []

    @pytest.mark.parametrize("kind", BOMBS)
    def test_an_archive_bomb_is_refused_in_bounded_memory_and_time(
        self, emulator: Emulator, server: SandboxServer, tmp_path: Path, kind: str
    ) -> None:
        _needs(emulator, "hostile_archive")
        emulator.fault("hostile_archive", kind)
        scratch, out = _dirs(tmp_path)
        config, env = self._child_setup(server, tmp_path)
        command = [sys.executable, "-m", "cdrfetch", self.provider, "pull", "--config", str(config)]
        command += ["--from", self.window_start, "--to", self.window_end, "-o", str(out / "calls.parquet")]
        try:
            done = subprocess.run(
                [*command, *QUICK_POLL], env={**env, "TMPDIR": str(scratch)}, capture_output=True, text=True,
                timeout=CHILD_SECONDS, preexec_fn=_limit_address_space, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            pytest.fail(f"{kind}: the pull was still running after {CHILD_SECONDS}s")
        _assert_clean(done.returncode, done.stderr, self.hostile_exits[kind], out)
        assert "MemoryError" not in done.stderr
        assert [p for p in scratch.iterdir() if p.name.startswith("cdrfetch-")] == []

    @pytest.mark.parametrize("kind", HOSTILE_JSON)
    def test_a_hostile_json_answer_fails_cleanly(
        self, emulator: Emulator, profile: Path, tmp_path: Path, kind: str
    ) -> None:
        _needs(emulator, "hostile_json")
        emulator.fault("hostile_json", kind)
        _, out = _dirs(tmp_path)
        result = self.pull(profile, "-o", str(out / "calls.jsonl"), *QUICK_POLL)
        expected = self.hostile_exits[kind]
        _assert_clean(result.exit_code, result.stderr, expected, out)
        if expected == ExitCode.OK:  # accepted: the text that had no character keeps a U+FFFD in its place
            rows = read_rows(out / "calls.jsonl", "jsonl")
            assert rows and any("\ufffd" in json.dumps(row, ensure_ascii=False) for row in rows)

    def _child_setup(self, server: SandboxServer, tmp_path: Path) -> tuple[Path, dict[str, str]]:
        """A config file with the emulator's plain settings, and an environment carrying its secrets."""
        settings = server.emulator.profile(server.url)
        secret = {s.name for s in providers.load(self.provider).all_settings() if s.secret}
        path = tmp_path / "child.yaml"
        plain = {key: value for key, value in settings.items() if key not in secret}
        path.write_text(yaml.safe_dump({"profiles": {"default": {self.provider: plain}}}), encoding="utf-8")
        path.chmod(0o600)
        env = {**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring", "MALLOC_ARENA_MAX": "2"}
        env.update({env_name(self.provider, key): str(settings[key]) for key in secret & set(settings)})
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parents[2]), env.get("PYTHONPATH")]))
        return path, env


def _needs(emulator: Emulator, fault: str) -> None:
    if fault not in emulator.supported_faults():
        pytest.skip(f"the {emulator.name} emulator serves no {fault}")


def _dirs(tmp_path: Path) -> tuple[Path, Path]:
    """(the run's temp dir, the output dir), both empty."""
    scratch, out = tmp_path / "scratch", tmp_path / "out"
    scratch.mkdir()
    out.mkdir()
    return scratch, out


def _watch_downloads(emulator: Emulator, scratch: Path) -> list[list[str]]:
    """The files in `scratch` whenever the emulator serves a zip: what earlier attempts left behind."""
    seen: list[list[str]] = []
    handle = emulator.handle

    def watched(request: Request) -> Reply:
        reply = handle(request)
        if reply.body.startswith(b"PK"):
            seen.append(sorted(str(p.relative_to(scratch)) for p in scratch.rglob("*") if p.is_file()))
        return reply

    emulator.handle = watched  # type: ignore[method-assign]
    return seen


def _assert_clean(code: int, stderr: str, expected: int, out: Path) -> None:
    """The expected exit code; on failure one error line, no traceback, nothing in the output dir."""
    assert code == expected, stderr
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    if expected != ExitCode.OK:
        errors = [line for line in stderr.splitlines() if line.startswith("cdrfetch: error:")]
        assert len(errors) == 1, stderr
        assert list(out.iterdir()) == [], "a failed pull leaves nothing under the output path"


def _limit_address_space() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
