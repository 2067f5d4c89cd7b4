"""Fault knobs every emulator has: failures, throttling, latency, and hostile answers.

`route` is a substring of the request path ('' = any). The hostile knobs (redirects elsewhere, a
trickling or endless body) let the same tests run against every provider over loopback.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cdrfetch.sandbox.server import Reply

# The data faults every emulator understands under the same names: name -> (type, what it does).
# Each emulator maps them onto its protocol (`Emulator._fault`); one without a use for a knob (no
# timestamps to expire, no file to download) lists it in `unsupported_faults`.
# Transport faults as knobs (`sandbox serve --knob`, `pull --sandbox --knob`): each applies to every
# answer of the emulator, for as long as it runs. name -> (type, what it does).
HOSTILE_KNOBS: dict[str, tuple[type, str]] = {
    "fail_status": (int, "every answer is this HTTP status (e.g. 503)"),
    "redirect_to": (str, "every answer redirects (302) to this URL: another origin, an http:// downgrade, file:..."),
    "trickle_seconds": (float, "every answer's body arrives one byte per this many seconds"),
    "endless": (bool, "every answer's body never ends"),
}
FOREVER = 1 << 62  # `remaining` of a fault queued for the emulator's whole life
# What the hostile-data faults can serve (built by cdrfetch.sandbox.hostile; '' leaves the answers honest).
HOSTILE_ARCHIVES = (
    "bzip2_bomb", "deflate_bomb", "shared_members", "duplicate_entries", "flipped_byte", "encrypted", "zip_slip",
)  # fmt: skip
HOSTILE_JSON = ("deep", "huge", "wrong_types", "lone_surrogate")

DATA_FAULTS: dict[str, tuple[type, str]] = {
    "malformed": (bool, "one served row carries an unparseable mandatory field"),
    "empty": (bool, "serve no records at all"),
    "truncate_downloads": (int, "the next N file downloads send half their bytes, then hang up"),
    "clock_offset": (float, "seconds the emulator's clock runs ahead: the client's timestamps look stale"),
    "hostile_archive": (
        str,
        "every download is a hostile zip: bzip2_bomb / deflate_bomb (gigabytes of zeros), shared_members (entries "
        "over one member), duplicate_entries, flipped_byte (damaged in transit), encrypted, zip_slip (a ../ name)",
    ),
    "hostile_json": (
        str,
        "the JSON answer the flow depends on is hostile: deep (nested 100,000 levels), huge (65 MiB), "
        "wrong_types (a list where a text belongs), lone_surrogate (a \\ud800 escape in a text)",
    ),
}
# The hostile-data faults an emulator opts into (Emulator.hostile_data): it has to build its files and
# answers through cdrfetch.sandbox.hostile to honour them, which an emulator written earlier does not.
OPT_IN_FAULTS = frozenset({"hostile_archive", "hostile_json"})


@dataclass
class Faults:
    """Queues of injected faults; each entry is [remaining, ..., route]."""

    fail: list[list[Any]] = field(default_factory=list)  # [remaining, status, route]
    throttle: list[list[Any]] = field(default_factory=list)  # [remaining, retry_after, route]
    redirect: list[list[Any]] = field(default_factory=list)  # [remaining, status, location, route]
    trickle: list[list[Any]] = field(default_factory=list)  # [remaining, seconds per byte, route]
    endless: list[list[Any]] = field(default_factory=list)  # [remaining, route]
    latency: float = 0.0
    latency_route: str = ""

    def fail_next(self, count: int, status: int = 503, route: str = "") -> None:
        """The next `count` matching requests get HTTP `status` with a text body."""
        self.fail.append([count, status, route])

    def throttle_next(self, count: int, retry_after: float = 1, route: str = "") -> None:
        """The next `count` matching requests get HTTP 429 with Retry-After."""
        self.throttle.append([count, retry_after, route])

    def redirect_next(self, count: int, location: str, status: int = 302, route: str = "") -> None:
        """The next `count` matching requests are redirected to `location` (another origin, a file: URL...)."""
        self.redirect.append([count, status, location, route])

    def trickle_next(self, count: int, seconds_per_byte: float = 0.5, route: str = "") -> None:
        """The next `count` matching answers send their body one byte at a time."""
        self.trickle.append([count, seconds_per_byte, route])

    def endless_next(self, count: int, route: str = "") -> None:
        """The next `count` matching answers never end (the body repeats, no Content-Length)."""
        self.endless.append([count, route])

    def hostile(self, name: str, value: Any) -> None:
        """Apply one HOSTILE_KNOBS knob to every answer from now on (a false value leaves it off)."""
        if not value:
            return
        if name == "fail_status":
            self.fail_next(FOREVER, int(value))
        elif name == "redirect_to":
            self.redirect_next(FOREVER, str(value))
        elif name == "trickle_seconds":
            self.trickle_next(FOREVER, float(value))
        elif name == "endless":
            self.endless_next(FOREVER)

    def delay(self, path: str) -> None:
        """Apply the latency knob (outside any lock, so concurrent requests overlap)."""
        if self.latency and self.latency_route in path:
            time.sleep(self.latency)

    def intercept(self, path: str) -> Reply | None:
        """Return an injected answer for this request instead of the route's, if one is due."""
        from cdrfetch.sandbox.server import Reply

        if (entry := _due(self.fail, path)) is not None:
            return Reply.text(f"injected failure {entry[1]}", entry[1])
        if (entry := _due(self.throttle, path)) is not None:
            return Reply.text("too many requests", 429, **{"Retry-After": f"{entry[1]:g}"})
        if (entry := _due(self.redirect, path)) is not None:
            return Reply(entry[1], b"", {"Location": entry[2]})
        return None

    def shape(self, path: str, reply: Reply) -> Reply:
        """The route's own answer, delivered as the hostile knobs say."""
        if (entry := _due(self.trickle, path)) is not None:
            reply.trickle = entry[1]
        if _due(self.endless, path) is not None:
            reply.endless = True
        return reply


def _due(queue: list[list[Any]], path: str) -> list[Any] | None:
    """The first entry of `queue` still counting down for `path` (counted down once)."""
    for entry in queue:
        if entry[0] > 0 and entry[-1] in path:
            entry[0] -= 1
            return entry
    return None


def knob_value(name: str, kind: type, value: Any) -> Any:
    """`value` as the knob's type; text the way settings read it (`no` is False); TypeError otherwise."""
    if isinstance(value, str) and kind is bool:
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return lowered in ("1", "true", "yes", "on")
    elif isinstance(value, kind) or (kind is float and isinstance(value, int) and not isinstance(value, bool)):
        return kind(value)
    elif isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            pass
    raise TypeError(f"knob {name!r} takes a {kind.__name__}, not {value!r}")


def checked_choice(name: str, value: Any) -> Any:
    """`value` of a knob with a fixed set of choices (hostile_archive, hostile_json); ValueError if unknown."""
    choices = {"hostile_archive": HOSTILE_ARCHIVES, "hostile_json": HOSTILE_JSON}.get(name, ())
    if choices and value and value not in choices:
        raise ValueError(f"{name} {value!r}: expected one of {', '.join(choices)}")
    return value
