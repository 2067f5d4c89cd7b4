"""HTTP details of the Polycom emulator: plcm-error replies, Basic credentials, form dates, TLS material."""

from __future__ import annotations

import base64
import binascii
import io
import zipfile
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cdrfetch.providers.polycom.emulator import data
from cdrfetch.sandbox.server import Reply


def error_reply(status: int, message: str, **headers: str) -> Reply:
    """A plcm-error document (its field names are not published; these are the emulator's)."""
    body = data.status_json({"errorCode": status, "errorMessage": message})
    return Reply(status, body, {"Content-Type": "application/vnd.plcm.plcm-error+json", **headers})


def basic_user(header: str | None, users: dict[str, str]) -> str | None:
    """The user name when `header` is valid Basic auth for a configured user."""
    if not header or not header.startswith("Basic "):
        return None
    try:
        user, sep, password = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user if sep and users.get(user) == password else None


def form_window(target: str, now: datetime, tz: Any) -> tuple[datetime, datetime] | None:
    """from-date / to-date decoded with form semantics (`+` -> space); defaults: local midnight -> now."""
    query = parse_qs(urlsplit(target).query, keep_blank_values=True)
    try:
        start = _xs_datetime(query["from-date"][0]) if "from-date" in query else _midnight(now, tz)
        end = _xs_datetime(query["to-date"][0]) if "to-date" in query else now
    except ValueError:
        return None
    return (start, end) if start <= end else None


def _xs_datetime(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _midnight(now: datetime, tz: Any) -> datetime:
    return now.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0).astimezone(timezone.utc)


def prefers_xml(accept: str) -> bool:
    """True when the first media type of `Accept` is an XML one."""
    first = accept.split(",")[0].strip().lower()
    return first.endswith("+xml") or first.endswith("/xml")


def corrupt(body: bytes) -> bytes:
    """Flip one byte inside the first member's data, so its CRC no longer matches."""
    offset = 30 + len(zipfile.ZipFile(io.BytesIO(body)).infolist()[0].filename) + 5
    return body[:offset] + bytes([body[offset] ^ 0xFF]) + body[offset + 1 :]
