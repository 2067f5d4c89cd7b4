"""A small route-table HTTP(S) server on 127.0.0.1 for the provider emulators, with fault knobs.

An `Emulator` lists its routes and answers `Request`s with `Reply`s; `SandboxServer` runs it on
a free loopback port in a background thread. The knobs every emulator shares (injected 5xx,
HTTP 429 throttling, latency) live in `Faults` and are applied before routing; protocol-specific
knobs live on each emulator. Every request is recorded so tests can assert what was sent.
"""

from __future__ import annotations

import abc
import contextlib
import json
import re
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, NamedTuple
from urllib.parse import parse_qs, urlsplit

from cdrfetch.sandbox.faults import DATA_FAULTS, OPT_IN_FAULTS, Faults, checked_choice, knob_value
from cdrfetch.windows import Window


@dataclass
class Request:
    """What the emulator received: raw target and body, parsed path and query."""

    method: str
    target: str  # the request target exactly as sent (path + raw query)
    headers: dict[str, str]  # lower-cased names
    body: bytes
    client_ip: str

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        """The query, percent-decoded once the standard way."""
        return parse_qs(urlsplit(self.target).query, keep_blank_values=True)

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


@dataclass
class Reply:
    """An answer. `truncate` advertises the full Content-Length, sends half, then hangs up;
    `trickle` sends the body one byte every that many seconds; `endless` repeats the body for ever."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    truncate: bool = False
    trickle: float = 0.0
    endless: bool = False

    @classmethod
    def json(cls, payload: Any, status: int = 200, **headers: str) -> Reply:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        return cls(status, body, {"Content-Type": "application/json;charset=utf-8", **headers})

    @classmethod
    def text(cls, message: str, status: int = 200, **headers: str) -> Reply:
        return cls(status, message.encode("utf-8"), {"Content-Type": "text/plain; charset=utf-8", **headers})


class Route(NamedTuple):
    method: str
    pattern: re.Pattern[str]
    handler: Callable[[Request, re.Match[str]], Reply]


class ExpectedCall(NamedTuple):
    """The independent oracle the contract suite compares a pull against."""

    caller: str | None
    callee: str | None
    start_time: datetime  # UTC
    duration_s: int | None


class Emulator(abc.ABC):
    """Base of the provider emulators: routes, the shared fault knobs, the oracle.

    Transport faults (failures, throttling, latency, redirects, trickling and endless answers) are
    queued on `faults`; data faults (DATA_FAULTS: malformed, empty, truncate_downloads, clock_offset,
    hostile_archive, hostile_json) are set with `fault(name, value)`, the same names on every emulator.
    The base keeps clock_offset, hostile_archive and hostile_json as attributes; an emulator that builds
    its zips and JSON answers through cdrfetch.sandbox.hostile names those two in `hostile_data`.
    """

    name: ClassVar[str]
    malformed_where: ClassVar[str] = ""  # what the client's error names when `malformed` is on
    unsupported_faults: ClassVar[frozenset[str]] = frozenset()
    hostile_data: ClassVar[frozenset[str]] = frozenset()  # the OPT_IN_FAULTS this emulator honours

    def __init__(self, *, seed: int = 0, clock: Callable[[], datetime] | None = None) -> None:
        self.seed = seed
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.clock_offset = 0.0
        self.hostile_archive = self.hostile_json = ""  # '' serves honest files and answers
        self.faults = Faults()
        self.received: list[Request] = []
        self._lock = threading.Lock()  # handlers run on server threads

    def now(self) -> datetime:
        """The emulator's clock, `clock_offset` seconds ahead (what its signature checks compare with)."""
        return self.clock() + timedelta(seconds=self.clock_offset)

    @classmethod
    def knob_defaults(cls) -> dict[str, Any]:
        """The provider knobs (constructor keywords beyond the shared faults) and their defaults.

        The base lists the named keyword parameters of `__init__` (`clock` aside); an emulator that
        takes `**knobs` adds those."""
        import inspect

        parameters = inspect.signature(cls.__init__).parameters.values()
        return {p.name: p.default for p in parameters if p.kind is p.KEYWORD_ONLY and p.name != "clock"}

    @classmethod
    def supported_faults(cls) -> list[str]:
        """The shared data-fault knobs this emulator honours."""
        wanted = [name for name in DATA_FAULTS if name not in OPT_IN_FAULTS or name in cls.hostile_data]
        return [name for name in wanted if name not in cls.unsupported_faults]

    def fault(self, name: str, value: Any) -> None:
        """Turn one shared data fault on (or off); TypeError for a name this emulator does not know."""
        if name not in self.supported_faults():
            raise TypeError(
                f"{self.name} emulator has no fault knob {name!r} (known: {', '.join(self.supported_faults())})"
            )
        kind = DATA_FAULTS[name][0]
        converted = checked_choice(name, knob_value(name, kind, value))
        if name in ("clock_offset", "hostile_archive", "hostile_json"):
            setattr(self, name, converted)
        else:
            self._fault(name, converted)

    def _fault(self, name: str, value: Any) -> None:
        """Map a data fault onto this protocol (clock_offset is handled by the base)."""
        raise NotImplementedError(f"{self.name} emulator does not map fault {name!r}")

    @abc.abstractmethod
    def routes(self) -> list[Route]:
        """The route table, tried in order."""

    @abc.abstractmethod
    def profile(self, base_url: str) -> dict[str, Any]:
        """Settings that point a client at this emulator, sandbox credentials included."""

    @abc.abstractmethod
    def expected_calls(self, window: Window) -> list[ExpectedCall]:
        """The calls a correct client must return for `window` (computed independently)."""

    def server_tls(self) -> ssl.SSLContext | None:
        """TLS context to serve HTTPS with (None: plain HTTP)."""
        return None

    def handle(self, request: Request) -> Reply:
        """Record, apply shared faults, then dispatch to the first matching route."""
        self.faults.delay(request.path)
        with self._lock:
            self.received.append(request)
            injected = self.faults.intercept(request.path)
        if injected is not None:
            return injected
        for route in self.routes():
            match = route.pattern.fullmatch(request.path)
            if match and route.method == request.method:
                return self.faults.shape(request.path, route.handler(request, match))
        return Reply.text("not found", 404)


class _QuietServer(ThreadingHTTPServer):
    """A client hanging up mid-answer (timeouts, truncation tests) is normal here, not a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class SandboxServer:
    """Runs an emulator on 127.0.0.1:<free port> in a daemon thread (HTTPS if it asks for TLS)."""

    def __init__(self, emulator: Emulator, port: int = 0) -> None:
        self.emulator = emulator
        tls = emulator.server_tls()
        self._httpd = _QuietServer(("127.0.0.1", port), _handler_for(emulator))
        self._httpd.daemon_threads = True
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        # a short poll interval makes stop() (shutdown) return in ~50 ms instead of 0.5 s per server
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sandbox-{emulator.name}",
            daemon=True,
        )

    @property
    def url(self) -> str:
        """Root URL of the server, e.g. http://127.0.0.1:41234."""
        return f"{self.scheme}://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> SandboxServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler_for(emulator: Emulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            request = Request(self.command, self.path, headers, body, self.client_address[0])
            try:
                reply = emulator.handle(request)
            except Exception as exc:  # an emulator bug must show up as a 500, not a hang
                reply = Reply.text(f"emulator error: {type(exc).__name__}: {exc}", 500)
            self._write(reply)

        def _write(self, reply: Reply) -> None:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if not reply.endless:
                self.send_header("Content-Length", str(len(reply.body)))
            if reply.truncate or reply.endless:
                self.send_header("Connection", "close")
            self.end_headers()
            if reply.truncate:
                self.wfile.write(reply.body[: len(reply.body) // 2])
                self.wfile.flush()
                self.close_connection = True
            elif reply.endless:
                self.close_connection = True
                _write_endless(self.wfile, reply.body or b"0")
            elif reply.trickle and self.command != "HEAD":
                _write_trickle(self.wfile, reply.body, reply.trickle)
            elif self.command != "HEAD":
                self.wfile.write(reply.body)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:
            """Silent: the emulator records requests instead of printing them."""

    return Handler


ENDLESS_LIMIT = 1 << 31  # even an endless answer stops somewhere, should a client never hang up


def _write_endless(out: Any, piece: bytes) -> None:
    block = piece * max(1, (1 << 16) // len(piece))
    sent = 0
    with contextlib.suppress(OSError):  # the client hanging up is how this ends
        while sent < ENDLESS_LIMIT:
            out.write(block)
            sent += len(block)


def _write_trickle(out: Any, body: bytes, seconds: float) -> None:
    with contextlib.suppress(OSError):
        for index in range(len(body)):
            out.write(body[index : index + 1])
            out.flush()
            time.sleep(seconds)
