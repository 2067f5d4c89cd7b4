"""The services a provider gets: requests, retries, polling, downloads, progress, the clock.

Retries, backoff, polling, timeouts, temp files and progress live here once; providers describe
their protocol and call these.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import requests
import urllib3

from cdrfetch import http
from cdrfetch.errors import CdrfetchError, ConfigError, TemporaryError, UnavailableError
from cdrfetch.files import Verified, remove_orphans, write_block
from cdrfetch.progress import Progress
from cdrfetch.summary import RunSummary

T = TypeVar("T")
D = TypeVar("D")
DAMAGED_DOWNLOADS = 2  # a file that arrives damaged is downloaded again at most this many times
MAX_DELAY = 300.0  # never sleep longer than this between attempts, whatever Retry-After says
CHUNK_BYTES = 1 << 16


def utc_now() -> datetime:
    """The real clock (aware, UTC)."""
    return datetime.now(timezone.utc)


class Client:
    """Core services for one provider run. Use as a context manager (owns a temp directory)."""

    def __init__(
        self,
        settings: Mapping[str, Any],
        *,
        log: logging.Logger,
        summary: RunSummary,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        progress: Callable[[str, float | None], Progress] = lambda what, total: Progress(),
    ) -> None:
        self.log = log
        self.summary = summary
        # Wall time signs requests; monotonic time measures every wait. Tests inject all three
        # together (cdrfetch.testing.FakeTime) and fast-forward instead of sleeping.
        self.clock = clock
        self.monotonic = monotonic
        self.sleep = sleep
        self.progress = progress
        self.timeout = float(settings["timeout"])
        self.retries = int(settings["retries"])
        self.backoff = float(settings["backoff"])
        self.poll_interval = float(settings["poll_interval"])
        self.poll_timeout = float(settings["poll_timeout"])
        self.session = http.make_session(ca_bundle=settings["ca_bundle"], insecure=bool(settings["insecure"]))
        megabyte = 1 << 20
        self.answer_limits = http.Limits(float(settings["deadline"]), int(float(settings["max_answer_mb"]) * megabyte))
        self.download_limits = http.Limits(
            float(settings["download_deadline"]), int(float(settings["max_download_mb"]) * megabyte),
            "max_download_mb", "download_deadline",
        )  # fmt: skip
        # the origin credentials belong to; None for a provider without `base_url`
        self.origin = http.origin(str(settings["base_url"])) if settings.get("base_url") else None
        if self.origin and http.in_the_clear(str(settings["base_url"])):
            log.warning(
                "base_url is plain http (allow_http: true): credentials and records cross the network in the clear"
            )
        self._count_lock = threading.Lock()
        remove_orphans(Path(tempfile.gettempdir()), "cdrfetch-")  # what a killed run left behind
        self._tmp = tempfile.TemporaryDirectory(prefix=f"cdrfetch-{os.getpid()}-")
        self.workdir = Path(self._tmp.name)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.session.close()
        self._tmp.cleanup()

    def warn(self, message: str) -> None:
        """Log a warning and keep it in the run summary."""
        self.log.warning("%s", message)
        self.summary.warn(message)

    def note(self, name: str, value: Any, *, chunk: str | None = None) -> None:
        """Keep a fact in the run summary's notes (per chunk label when `chunk` is given)."""
        if chunk is None:
            self.summary.notes[name] = value
        else:
            self.summary.notes.setdefault(name, {})[chunk] = value

    def partial(self, reason: str) -> None:
        """The provider itself says the data is incomplete: a warning, and exit 3 unless `allow_partial`."""
        self.warn(reason)
        self.summary.partial(reason)

    def scratch(self) -> Path:
        """A fresh directory under the run's temp dir (removed with it at the latest)."""
        return Path(tempfile.mkdtemp(dir=self.workdir))

    def send(self, method: str, url: str, *, what: str, **kwargs: Any) -> requests.Response:
        """One HTTP attempt (see http.send); use inside `retry` with your own checks.

        A `timeout` keyword overrides the `timeout` setting for this request (e.g. a slow export).
        A request carrying `auth` goes only to `base_url`'s origin. The body is read within the
        answer limits, unless `stream=True` (then `save` or `body` reads it).
        """
        timeout = kwargs.pop("timeout", self.timeout)
        http.check_url(url, what)  # before its origin is compared: a malformed URL is bad data, not a crash
        if kwargs.get("auth") is not None and self.origin is not None and http.origin(url) != self.origin:
            raise ConfigError(
                f"{what}: refusing to send credentials to {http.origin(url)[1]}, outside `base_url`",
                "the provider handed out a URL on another origin; report it",
            )
        return http.send(
            self.session, method, url, what=what, timeout=timeout, limits=self.answer_limits,
            monotonic=self.monotonic, **kwargs,
        )  # fmt: skip

    def body(self, response: requests.Response, *, what: str) -> bytes:
        """The body of a `stream=True` answer that is a short one after all (JSON), within the answer limits."""
        http.read_body(
            response, what, self.answer_limits, self.monotonic() + self.answer_limits.deadline, self.monotonic
        )
        return response.content

    def retry(self, attempt: Callable[[], T], *, what: str) -> T:
        """Call `attempt` until it succeeds or raises a non-retryable error or the budget is spent.

        `attempt` raises a CdrfetchError with `retryable=True` to ask for another try; the delay
        is exponential with jitter, or the server's `retry_after` when it gave one. The error that
        spends the budget leaves with `retryable=False`, so no caller retries it again.
        """
        for number in range(self.retries + 1):
            try:
                return attempt()
            except CdrfetchError as error:
                if not error.retryable or number == self.retries:
                    if error.retryable:
                        attempts = f"{number + 1} attempt{'s' if number else ''}"
                        error.message += f" (gave up after {attempts})"
                        error.retryable = False
                    raise
                delay = self._delay(number, error.retry_after)
                with self._count_lock:  # providers may retry from several threads at once
                    self.summary.retries += 1
                self.log.warning(
                    "%s; retrying in %.1fs (attempt %d of %d)", error.message, delay, number + 2, self.retries + 1
                )
                self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, attempt: int, requested: float | None) -> float:
        if requested is not None:
            return min(requested, MAX_DELAY)
        return min(self.backoff * float(2**attempt) * random.uniform(0.5, 1.5), MAX_DELAY)

    def poll(self, check: Callable[[], T | None], *, what: str, timeout_hint: str) -> T:
        """Call `check` until it returns a value; back off from `poll_interval` up to 30 s.

        Gives up with TemporaryError (exit 75) after `poll_timeout` seconds; `timeout_hint` tells
        the user how to resume (e.g. the provider's job id).
        """
        deadline = self.monotonic() + self.poll_timeout
        interval = self.poll_interval
        while True:
            result = check()
            if result is not None:
                return result
            if self.monotonic() + interval > deadline:
                raise TemporaryError(f"{what}: not ready after {self.poll_timeout:g}s", timeout_hint)
            self.sleep(interval)
            interval = min(interval * 1.5, 30.0)

    def verified_download(
        self, download: Callable[[Path], D], verify: Callable[[D, Path], T], *, what: str
    ) -> Verified[T]:
        """`download(directory)` into a fresh scratch directory, then `verify(downloaded, directory)`.

        `verify` unpacks and checks the file; when it finds damage (a retryable CdrfetchError) the
        attempt's files are deleted at once and the file is downloaded again, at most DAMAGED_DOWNLOADS
        times. Transport failures are retried inside `download` (see `download` and `retry`); a
        refusal that is not damage (a bomb, an escaping member name) is never downloaded again.
        """
        for attempt in range(DAMAGED_DOWNLOADS + 1):
            directory = self.scratch()
            try:
                return Verified(verify(download(directory), directory), directory)
            except CdrfetchError as error:
                shutil.rmtree(directory, ignore_errors=True)
                if not error.retryable or attempt == DAMAGED_DOWNLOADS:
                    error.retryable = False  # the budget for this file is spent: callers must not loop again
                    raise
                self.log.warning("%s; downloading %s again", error.message, what)
        raise AssertionError("unreachable")  # pragma: no cover

    def download(
        self,
        url: str,
        *,
        what: str,
        suffix: str = "",
        hints: Mapping[int, str] | None = None,
        into: Path | None = None,
        **kwargs: Any,
    ) -> Path:
        """Stream `url` into a temp file (in `into`, else the run's temp dir), bytes exactly as sent.

        Retried on transport failures; truncation is one. Non-2xx answers raise via
        http.fail_on_status with `hints` (error.http_status is set).
        """
        return self.retry(lambda: self._download_once(url, what, suffix, hints, into, kwargs), what=what)

    def _download_once(
        self,
        url: str,
        what: str,
        suffix: str,
        hints: Mapping[int, str] | None,
        into: Path | None,
        kwargs: dict[str, Any],
    ) -> Path:
        response = self.send("GET", url, what=what, stream=True, **kwargs)
        with response:
            http.fail_on_status(response, what, hints)
            return self.save(response, what=what, suffix=suffix, into=into)

    def save(self, response: requests.Response, *, what: str, suffix: str = "", into: Path | None = None) -> Path:
        """Stream a (stream=True) response body into a temp file, bytes exactly as sent.

        A dropped connection or fewer bytes than Content-Length raise a retryable error, so the
        caller's `retry` downloads again; for downloads that are not a plain GET (e.g. a POST).
        """
        handle, name = tempfile.mkstemp(dir=into or self.workdir, suffix=suffix)
        target = Path(name)
        limits = self.download_limits
        deadline = self.monotonic() + limits.deadline
        received = 0
        with open(handle, "wb") as out:
            while True:
                try:
                    # raw bytes, one socket read at a time: no Content-Encoding decoding (Content-Length
                    # and digests match), and the deadline is checked however slowly the bytes come
                    block = response.raw.read1(CHUNK_BYTES, decode_content=False)
                    received += len(block)
                    http.check_limits(what, limits, received, deadline, self.monotonic)
                except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError):
                    target.unlink(missing_ok=True)
                    raise UnavailableError(
                        f"{what}: connection dropped after {received} bytes", "run again later", retryable=True
                    ) from None
                except CdrfetchError:
                    target.unlink(missing_ok=True)
                    raise
                if not block:
                    break
                write_block(out, block, target)
        expected = response.headers.get("Content-Length", "")
        if expected.isdigit() and int(expected) != received:
            target.unlink(missing_ok=True)
            raise UnavailableError(f"{what}: got {received} of {expected} bytes", "run again later", retryable=True)
        self.log.debug("%s: %d bytes", what, received)
        return target
