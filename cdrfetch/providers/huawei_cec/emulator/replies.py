"""CC-FS answers of the Huawei emulator: request envelopes, result codes and Spring Boot error bodies."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from cdrfetch.sandbox.server import Reply, Request

OCTET = "Application/Octet-stream;charset=UTF-8"
DESC = {
    "0300001": "The value of {} cannot be null.",
    "0300002": "The value of {} cannot be an empty string.",
    "0300003": "The length of {} is too long.",
    "0300004": "The format of {} is incorrect.",
    "0300006": "The value of version is error, current version is 2.0.",
    "0300007": "The params of requestBody is null.",
    "0300008": "Reached the download flow control threshold.",
    "0300009": "Reached the query flow control threshold.",
    "0300010": "The date in the value of fileName is in wrong format.",
    "0300011": "The file does not exist.",
    "0300012": "No data found.",
}


def envelope(request: Request) -> tuple[dict[str, Any], tuple[str, str] | None]:
    """The request's msgBody, or the result code (and its param) that refuses the envelope."""
    try:
        body = request.json()
    except (UnicodeDecodeError, ValueError):
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("request"), dict) or not isinstance(
        body.get("msgBody"), dict
    ):  # fmt: skip
        return {}, ("0300007", "")
    if body["request"].get("version") != "2.0":
        return {}, ("0300006", "")
    return body["msgBody"], None


def result(code: str, param: str, *, octet: bool) -> Reply:
    """A result-code answer; `octet` labels it with the download's Content-Type (knob error_as_octet)."""
    desc = DESC.get(code, "Injected result code.").format(param)
    payload = {"resultCode": code, "resultDesc": desc, "resultData": {},
               "response": {"version": "2.0", "resultCode": code, "resultMsg": desc}}  # fmt: skip
    reply = Reply.json(payload)
    if octet:
        reply.headers["Content-Type"] = OCTET
    return reply


def field(msg: dict[str, Any], key: str, longest: int) -> tuple[str, str] | None:
    """0300001 missing, 0300002 empty, 0300003 too long."""
    if key not in msg or msg[key] is None:
        return "0300001", key
    if not isinstance(msg[key], str) or msg[key] == "":
        return "0300002", key
    return ("0300003", key) if len(msg[key]) > longest else None


def spring(status: int, path: str, now: datetime, error: str | None = None) -> Reply:
    """Spring Boot's error body (what CC-FS sends for 401/403)."""
    error = error or {401: "Unauthorized", 403: "Forbidden"}[status]
    body = {"timestamp": int(now.timestamp() * 1000), "status": status, "error": error,
            "message": "No message available", "path": path}  # fmt: skip
    return Reply(status, json.dumps(body).encode(), {"Content-Type": "application/json;charset=UTF-8"})
