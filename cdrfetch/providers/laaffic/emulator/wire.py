"""Wire details of the Laaffic emulator: business-error answers and the checks on request values."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from cdrfetch.sandbox.server import Reply

JSON_TYPE = "application/json;charset=UTF-8"
REASONS = {
    "-1": "Abnormal account authentication",
    "-2": "IP access limited",
    "-15": "query too frequently",
    "-16": "timestamp expires",
    "-18": "System anomalies",
    "-22": "Parameter exception",
    "-25": "Out of time range",
    "-29": "WorkSpace disabled",
    "-30": "API Key disabled",
    "-31": "IP not in whitelist",
    "-32": "API Key does not have permission to access the current application",
}
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})")


def failure(status: str) -> Reply:
    """A business error: HTTP 200, `{"status","reason"}`, no `data`."""
    body = json.dumps({"status": status, "reason": REASONS.get(status, "unknown error")}).encode()
    return Reply(200, body, {"Content-Type": JSON_TYPE})


def parse_iso(value: Any) -> datetime:
    """ISO-8601 with an offset or Z (anything else is a -22)."""
    if not isinstance(value, str) or not _ISO.fullmatch(value):
        raise ValueError(value)
    padded = re.sub(r"\.(\d{1,6})", lambda m: "." + m.group(1).ljust(6, "0"), value.replace("Z", "+00:00"))
    return datetime.fromisoformat(padded)


def is_int(value: Any) -> bool:
    """A JSON integer (a bool is not one, though Python counts it as an int)."""
    return isinstance(value, int) and not isinstance(value, bool)
