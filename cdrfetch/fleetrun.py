"""`cdrfetch pull --all`, `plan` and `run-unit`: many accounts from the command line.

`pull --all` runs every (profile, provider, account) of the config as its own `cdrfetch <provider>
pull` process, at most `jobs` at a time: each takes its own account lock, records its own ledger
line, and a failure (even a crash) never stops the others. One line per account as it ends, then a
combined summary and one exit code: 0 all ok, 3 some failed, the worst code when all failed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdrfetch.errors import CantCreateError, ExitCode, UsageError
from cdrfetch.fleet import Target, Unit, plan, shard, targets
from cdrfetch.logs import LogOptions


@dataclass(frozen=True)
class Outcome:
    """How one account's pull ended."""

    target: Target
    exit_code: int
    summary: dict[str, Any] | None
    error: str
    seconds: float

    def line(self) -> str:
        who = f"{self.target.provider} {self.target.profile}/{self.target.account or '-'}"
        if self.exit_code == 0:
            records = sum((self.summary or {}).get("records", {}).values())
            return f"ok    {who:40}  {records} records  {self.seconds:.1f}s"
        return f"FAIL  {who:40}  exit {self.exit_code}: {self.error}"


def combined_exit_code(codes: Sequence[int]) -> int:
    """0 when every account succeeded, 3 when some failed, the worst code when all of them failed."""
    failed = [code for code in codes if code != 0]
    if not failed:
        return int(ExitCode.OK)
    return max(failed) if len(failed) == len(codes) else int(ExitCode.PARTIAL)


def pull_all(
    window_args: Sequence[str],
    *,
    output: str | None,
    fmt: str | None,
    config_file: str | None,
    profiles: Sequence[str],
    only: Sequence[str],
    jobs: int,
    summary_json: str | None,
) -> int:
    """Pull every configured account (bounded by `jobs`); returns the combined exit code."""
    from cdrfetch import destinations
    from cdrfetch.fleet import refuse_one_file

    refuse_one_file(destinations.choose(output, fmt, config_file=config_file))
    everyone = targets(config_file, profiles, only)
    if not everyone:
        raise UsageError("no accounts in the config", "add provider sections under `profiles:`")
    shared = [*window_args, *(["-o", output] if output else []), *(["--format", fmt] if fmt else [])]
    shared += ["--config", config_file] if config_file else []
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="cdrfetch-all-") as scratch, ThreadPoolExecutor(jobs) as pool:
        futures = [pool.submit(_pull_one, t, shared, Path(scratch) / f"{n}.json") for n, t in enumerate(everyone)]
        try:
            for future in as_completed(futures):
                outcome = future.result()
                print(outcome.line(), flush=True)
                outcomes.append(outcome)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: start no further account (the running ones get it too)
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    code = combined_exit_code([o.exit_code for o in outcomes])
    if summary_json:
        document = {"exit_code": code, "accounts": [_entry(o) for o in outcomes]}
        text = json.dumps(document, indent=2) + "\n"
        if summary_json == "-":
            sys.stdout.write(text)
        else:
            from cdrfetch.files import write_atomically

            try:
                write_atomically(Path(summary_json), text.encode())
            except OSError as exc:
                raise CantCreateError(
                    f"cannot write {summary_json}: {exc.strerror}", "--summary-json must name a writable file"
                ) from None
    return code


def _pull_one(target: Target, shared: Sequence[str], summary_path: Path) -> Outcome:
    command = [sys.executable, "-m", "cdrfetch", target.provider, "pull", "--profile", target.profile, "-q"]
    command += ["--account", target.account] if target.account else []
    command += [*shared, "--summary-json", str(summary_path)]
    began = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True)
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.exists() else None
    errors = [line for line in done.stderr.splitlines() if "error:" in line] or done.stderr.splitlines()[-1:]
    error = errors[-1].split("error:", 1)[-1].strip() if errors else ""
    code = done.returncode if done.returncode >= 0 else 128 - done.returncode  # killed by a signal
    return Outcome(target, code, summary, error, time.monotonic() - began)


def _entry(outcome: Outcome) -> dict[str, Any]:
    target = outcome.target
    return {
        "provider": target.provider, "profile": target.profile, "account": target.account,
        "exit_code": outcome.exit_code, "error": outcome.error or None, "summary": outcome.summary,
    }  # fmt: skip


def print_plan(units: Sequence[Unit], style: str) -> None:
    """The units as a JSON array (`json`), one JSON object a line (`jsonl`), or a table (`text`)."""
    if style == "json":
        print(json.dumps([unit.to_dict() for unit in units], indent=2))
        return
    if style == "jsonl":
        for unit in units:
            print(json.dumps(unit.to_dict(), separators=(",", ":")))
        return
    for unit in units:
        who = f"{unit.provider} {unit.profile}/{unit.account or '-'}"
        print(f"{unit.id}  {who:40}  {unit.start.isoformat()} .. {unit.end.isoformat()}")


def run_plan(options: dict[str, Any], style: str, shard_of: str | None) -> int:
    units = plan(**options)
    if shard_of:
        index, _, count = shard_of.partition("/")
        if not (index.isdigit() and count.isdigit() and int(count) > 0):
            raise UsageError(f"--shard {shard_of!r}", "write INDEX/COUNT, e.g. 0/4")
        units = shard(units, int(index), int(count))
    print_plan(units, style)
    return 0


def run_units(text: str, config_file: str | None, summary_json: str | None, log: LogOptions) -> int:
    """`run-unit`: one unit from its JSON (an argument or @FILE), or every unit of `-` (stdin: a JSON
    array or one unit a line, as `plan --json` / `--jsonl` print them) in this one process.

    One unit's failure never stops the others; the exit code combines them like `pull --all`.
    """
    from cdrfetch import api, logs
    from cdrfetch.errors import CdrfetchError

    if text == "-":
        units = _parse_units(sys.stdin.read())
    else:
        units = [Unit.from_json(_read_unit_file(text[1:]) if text.startswith("@") else text)]
    if summary_json and len(units) > 1:
        raise UsageError("--summary-json describes one run, but several units were given", "run them one by one")
    codes = []
    for unit in units:
        try:
            codes.append(api.run(unit, config=config_file, summary_json=summary_json, log=log)["exit_code"])
        except CdrfetchError as error:
            if len(units) == 1:
                raise
            logs.final(f"unit {unit.id}: {error.message}", error.hint, exit_code=int(error.exit_code))
            codes.append(int(error.exit_code))
    return combined_exit_code(codes)


def _read_unit_file(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(
            f"cannot read the work unit in {path}: {exc.strerror}", "pass @FILE of a unit plan printed"
        ) from None


def _parse_units(text: str) -> list[Unit]:
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            return [Unit.from_dict(item) for item in json.loads(stripped)]
        except json.JSONDecodeError:
            raise UsageError("the work units are not valid JSON", "pipe `cdrfetch plan --json` in") from None
    return [Unit.from_json(line) for line in stripped.splitlines() if line.strip()]
