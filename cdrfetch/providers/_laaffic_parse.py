"""Laaffic record parsing: one JSON record of `queryPage` -> one normalized `calls` row.

Field names are matched case-insensitively (the docs spell `QuoteExchange`, `SeptleRate`,
`SettlePay`; other spellings and camelCase variants occur); `extra` keeps names as received.
Times arrive as naive `yyyy-MM-dd HH:mm:ss` (in `tz`), ISO-8601 with an offset, or epoch
seconds / milliseconds; all become UTC truncated to milliseconds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

UTC = timezone.utc
CENTS = Decimal("0.000001")
MAX_COST = Decimal(10) ** 12  # decimal128(18, 6) holds 12 integer digits
EPOCH_MS_FROM = 10**11  # digits at or above this are epoch milliseconds (year 5138 in seconds)
DIRECTIONS = {2: "inbound", 3: "outbound"}
# provider fields mapped to a column (lower-cased -> documented spelling); the rest go to `extra`
MAPPED = {
    name.lower(): name
    for name in (
        "callid",
        "startTime",
        "endTime",
        "callDuration",
        "chargedDuration",
        "caller",
        "called",
        "callSource",
        "sipCode",
        "pay",
        "currency",
        "country",
        "recordingFileUrl",
    )
}
_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?\s*(Z|z|[+-]\d{2}:?\d{2})?",
)
_INTEGER = re.compile(r"[+-]?\d+(?:\.0*)?")


class FieldError(ValueError):
    """A field value that cannot be read; the caller adds where it was."""


def parse_time(value: Any, tz: tzinfo) -> datetime | None:
    """A record time in any accepted format -> aware UTC datetime (ms precision); '' / null -> None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise FieldError(f"{value!r} is not a time")
    if isinstance(value, (int, Decimal)) or (isinstance(value, str) and value.strip().isdigit()):
        return _epoch(value)
    if not isinstance(value, str):
        raise FieldError(f"{value!r} is not a time")
    match = _TIME.fullmatch(value.strip())
    if not match:
        raise FieldError(f"{value!r} is not a time")
    return _from_match(match, tz)


def _epoch(value: int | Decimal | str) -> datetime:
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise FieldError(f"{value!r} is not a time") from None
    if not number.is_finite() or number < 0 or number != number.to_integral_value():
        raise FieldError(f"{value!r} is not an epoch time")
    millis = int(number) if number >= EPOCH_MS_FROM else int(number) * 1000
    try:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)
    except OverflowError:
        raise FieldError(f"{value!r} is out of range") from None


def _from_match(match: re.Match[str], tz: tzinfo) -> datetime:
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    micros = int((match.group(7) or "0")[:6].ljust(6, "0")) // 1000 * 1000
    offset = match.group(8)
    zone = tz if offset is None else _offset(offset)
    try:
        local = datetime(year, month, day, hour, minute, second, micros, tzinfo=zone)
    except ValueError:
        raise FieldError(f"{match.group(0)!r} is not a valid date and time") from None
    return local.astimezone(UTC)


def _offset(text: str) -> tzinfo:
    if text in ("Z", "z"):
        return UTC
    digits = text[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    if delta >= timedelta(hours=24):
        raise FieldError(f"offset {text!r} is out of range")
    return timezone(-delta if text[0] == "-" else delta)


def parse_int(value: Any) -> int | None:
    """An integer sent as a JSON number or numeric text; '' / null -> None; 10.5 or 'abc' -> error."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise FieldError(f"{value!r} is not an integer")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if isinstance(value, (str, Decimal)) and _INTEGER.fullmatch(text):
        return int(Decimal(text))
    raise FieldError(f"{value!r} is not an integer")


def parse_pay(value: Any) -> Decimal | None:
    """`pay` as an exact decimal, 6 places, round-half-even (JSON numbers arrive as Decimal)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return _bad_pay(value)
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except (InvalidOperation, TypeError, ValueError):
        return _bad_pay(value)
    if not amount.is_finite() or abs(amount) >= MAX_COST:
        return _bad_pay(value)
    return amount.quantize(CENTS, rounding=ROUND_HALF_EVEN)


def _bad_pay(value: Any) -> Decimal:
    raise FieldError(f"{value!r} is not an amount")


def text(value: Any) -> str | None:
    """A verbatim text field; '' / null -> None, numbers -> their text."""
    if value is None or value == "":
        return None
    if isinstance(value, (dict, list)):
        raise FieldError(f"{value!r} is not text")
    return str(value)


def split_fields(record: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(mapped fields by lower-case name, every other field under its own name)."""
    mapped: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, value in record.items():
        key = name.lower()
        if key in MAPPED and key not in mapped:
            mapped[key] = value
        else:
            extra[name] = _plain(value)
    return mapped, extra


def _plain(value: Any) -> Any:
    """JSON numbers were read as Decimal (exact `pay`); give `extra` plain JSON numbers back."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and "." not in str(value) else float(value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def to_row(record: Any, *, account: str, tz: tzinfo) -> dict[str, Any]:
    """One Laaffic record -> one `calls` row. Raises FieldError naming the field."""
    from cdrfetch.records import extra_json  # pyarrow: not at import time (`--help` stays fast)

    if not isinstance(record, dict):
        raise FieldError(f"expected a JSON object, got {type(record).__name__}")
    fields, extra = split_fields(record)
    callid = _field(fields, "callid", text)
    start = _field(fields, "starttime", lambda value: parse_time(value, tz))
    if callid is None:
        raise FieldError("`callid` is missing")
    if start is None:
        raise FieldError("`startTime` is missing")
    source = _field(fields, "callsource", parse_int)
    cost = _field(fields, "pay", parse_pay)
    return {
        "provider": "laaffic",
        "account": account,
        "record_id": callid,
        "call_id": callid,
        "start_time": start,
        "end_time": _field(fields, "endtime", lambda value: parse_time(value, tz)),
        "duration_s": _field(fields, "callduration", parse_int),
        "billed_duration_s": _field(fields, "chargedduration", parse_int),
        "caller": _field(fields, "caller", text),
        "callee": _field(fields, "called", text),
        "direction": DIRECTIONS.get(source, "unknown") if source is not None else "unknown",
        "call_type": None if source is None else str(source),
        "status": _field(fields, "sipcode", text),
        "cost": cost,
        "currency": _currency(_field(fields, "currency", text), cost),
        "country": _field(fields, "country", text) or text(_lookup(extra, "ccode")),
        "recording_url": _field(fields, "recordingfileurl", text),
        "extra": extra_json(dict(sorted(extra.items()))),
    }


def _field(fields: Mapping[str, Any], key: str, read: Any) -> Any:
    try:
        return read(fields.get(key))
    except FieldError as error:
        raise FieldError(f"`{MAPPED[key]}`: {error}") from None


def _lookup(fields: Mapping[str, Any], key: str) -> Any:
    """A field of `extra` by case-insensitive name."""
    return next((value for name, value in fields.items() if name.lower() == key), None)


def _currency(code: str | None, cost: Decimal | None) -> str | None:
    """Laaffic fills `currency` only for non-USD quotes: empty means USD when there is an amount."""
    code = code.strip().upper() if code else None
    if code:
        return code
    return "USD" if cost is not None else None
