"""The server side of auth-v2 (spec §3), written from the spec apart from the client's signer.

Sharing the signer would let one misreading of the spec pass both sides; the known-answer vectors
of the spec hold each side to the same bytes on its own.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime, timezone

from cdrfetch.sandbox.server import Request

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def percent(text: str) -> str:
    """Every UTF-8 byte outside the unreserved set as %XX (upper-case hex)."""
    return "".join(chr(byte) if byte in _UNRESERVED else f"%{byte:02X}" for byte in text.encode("utf-8"))


def _mac(key: str, message: str) -> str:
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def expected(ak: str, sk: str, ts: str, request: Request, names: list[str], body: str) -> str:
    """The Authorization value a correct client sends for what this request carried."""
    head = f"auth-v2/{ak}/{ts}/{';'.join(names)}"
    query = {key: values[0] for key, values in request.query.items()}
    lines = [request.method, request.path]
    if query:
        lines.append("&".join(sorted(percent(k) + "=" + percent(v) for k, v in query.items())))
    lines.append(";".join(names))
    lines.append("\n".join(sorted(percent(n) + ":" + percent(request.header(n) or "") for n in names)))
    canonical = "\n".join(lines) + "\n" + (percent(body) if body else "")
    return head + "/" + _mac(_mac(sk, head), canonical)


def verify(request: Request, credentials: Mapping[str, str], now: datetime, max_skew: float) -> bool:
    """Whether the request is signed by a known AK, recently, over every header it names (host included)."""
    parts = (request.header("Authorization") or "").split("/")
    if len(parts) != 5 or parts[0] != "auth-v2" or parts[1] not in credentials or not TS.match(parts[2]):
        return False
    stamp = datetime.strptime(parts[2], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    names = parts[3].split(";")
    if abs((now - stamp).total_seconds()) > max_skew or "host" not in names:
        return False
    if any(request.header(name) is None for name in names):
        return False
    try:
        body = request.body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    wanted = expected(parts[1], credentials[parts[1]], parts[2], request, names, body)
    return hmac.compare_digest(wanted, "/".join(parts))
