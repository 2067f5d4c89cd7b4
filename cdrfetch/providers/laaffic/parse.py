"""Laaffic record parsing: one JSON record of `queryPage` -> one normalized `calls` row.

Field names are matched case-insensitively (the docs spell `QuoteExchange`, `SeptleRate`,
`SettlePay`; other spellings and camelCase variants occur); `extra` keeps names as received.
Times arrive as naive `yyyy-MM-dd HH:mm:ss` (in `tz`), ISO-8601 with an offset, or epoch
seconds / milliseconds; all become UTC truncated to milliseconds.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from cdrfetch.untrusted import extra_json, shown

UTC = timezone.utc
CENTS = Decimal("0.000001")
MAX_COST = Decimal(10) ** 12  # decimal128(18, 6) holds 12 integer digits
EPOCH_MS_FROM = 10**11  # digits at or above this are epoch milliseconds (year 5138 in seconds)
INT64 = 2**63  # integers go to int64 columns: -INT64 <= n < INT64
DIRECTIONS = {2: "inbound", 3: "outbound"}
# provider fields mapped to a column (lower-cased -> documented spelling); the rest go to `extra`
_COLUMNS = "callid startTime endTime callDuration chargedDuration caller called callSource sipCode pay currency"
MAPPED = {name.lower(): name for name in f"{_COLUMNS} country recordingFileUrl".split()}
_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?\s*(Z|z|[+-]\d{2}:?\d{2})?",
)
_NAIVE = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d")  # the common shape, read fast
_INTEGER = re.compile(r"[+-]?\d+(?:\.0*)?")


class FieldError(ValueError):
    """A field value that cannot be read; the caller adds where it was."""


def parse_time(value: Any, tz: tzinfo) -> datetime | None:
    """A record time in any accepted format -> aware UTC datetime (ms precision); '' / null -> None."""
    try:
        return _any_time(value, tz)
    except OverflowError:  # a time of the years 1-9999 that UTC takes beyond them
        raise FieldError(f"{shown(value)} is out of range") from None


def _any_time(value: Any, tz: tzinfo) -> datetime | None:
    if value is None or value == "":
        return None
    if type(value) is str and _NAIVE.fullmatch(value):
        try:
            return datetime.fromisoformat(value).replace(tzinfo=tz).astimezone(UTC)
        except ValueError:
            raise FieldError(f"{shown(value)} is not a valid date and time") from None
    if isinstance(value, bool):
        raise FieldError(f"{shown(value)} is not a time")
    if isinstance(value, (int, Decimal)) or (isinstance(value, str) and value.strip().isdigit()):
        return _epoch(value)
    if not isinstance(value, str):
        raise FieldError(f"{shown(value)} is not a time")
    match = _TIME.fullmatch(value.strip())
    if not match:
        raise FieldError(f"{shown(value)} is not a time")
    return _from_match(match, tz)


class TimeReader:
    """`parse_time` for one zone, remembering the UTC offset of each local minute seen.

    Zone offsets change only on minute boundaries, so every naive time in one local minute has
    the offset of that minute's start (fold 0, as `parse_time` reads it); pages hold many calls
    per minute, and the zone lookup is the costly part of reading a time.
    """

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        self._offsets: dict[str, timedelta] = {}

    def __call__(self, value: Any) -> datetime | None:
        if type(value) is not str or not _NAIVE.fullmatch(value):
            return parse_time(value, self.tz)
        try:
            naive = datetime.fromisoformat(value)
        except ValueError:
            raise FieldError(f"{shown(value)} is not a valid date and time") from None
        offset = self._offsets.get(value[:16])
        if offset is None:
            if len(self._offsets) > 50_000:
                self._offsets.clear()
            offset = self._offsets[value[:16]] = naive.replace(second=0, tzinfo=self.tz).utcoffset() or timedelta(0)
        try:
            return (naive - offset).replace(tzinfo=UTC)
        except OverflowError:  # as parse_time says
            raise FieldError(f"{shown(value)} is out of range") from None


def _epoch(value: int | Decimal | str) -> datetime:
    try:
        number = Decimal(value) if isinstance(value, int) else Decimal(str(value).strip())
    except InvalidOperation:
        raise FieldError(f"{shown(value)} is not a time") from None
    if not number.is_finite() or number < 0 or number != number.to_integral_value():
        raise FieldError(f"{shown(value)} is not an epoch time")
    if number.adjusted() > 17:  # past any representable instant (and int() of 1e999999999 would not end)
        raise FieldError(f"{shown(value)} is out of range")
    millis = int(number) if number >= EPOCH_MS_FROM else int(number) * 1000
    try:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)
    except OverflowError:
        raise FieldError(f"{shown(value)} is out of range") from None


def _from_match(match: re.Match[str], tz: tzinfo) -> datetime:
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    micros = int((match.group(7) or "0")[:6].ljust(6, "0")) // 1000 * 1000
    offset = match.group(8)
    zone = tz if offset is None else _offset(offset)
    try:
        local = datetime(year, month, day, hour, minute, second, micros, tzinfo=zone)
    except ValueError:
        raise FieldError(f"{shown(match.group(0))} is not a valid date and time") from None
    return local.astimezone(UTC)


def _offset(text: str) -> tzinfo:
    if text in ("Z", "z"):
        return UTC
    digits = text[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    if delta >= timedelta(hours=24):
        raise FieldError(f"offset {shown(text)} is out of range")
    return timezone(-delta if text[0] == "-" else delta)


def parse_int(value: Any) -> int | None:
    """An int64 sent as a JSON number or numeric text; '' / null -> None; 10.5, 'abc' or 2**63 -> error."""
    if type(value) is int:
        return _int64(value)
    if value is None or value == "":
        return None
    if isinstance(value, (str, Decimal)) and _INTEGER.fullmatch(text := str(value).strip()):
        if len(text) > 40 and len(text.lstrip("+-0").split(".")[0]) > 19:  # too long for int64: no int() of it
            raise FieldError(f"{shown(value)} is out of range")
        return _int64(int(Decimal(text)))
    raise FieldError(f"{shown(value)} is not an integer")


def _int64(number: int) -> int:
    if -INT64 <= number < INT64:
        return number
    raise FieldError(f"{shown(number)} is out of range")


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
    raise FieldError(f"{shown(value)} is not an amount")


def text(value: Any) -> str | None:
    """A verbatim text field; '' / null -> None, numbers -> their text."""
    if type(value) is str:
        return value or None
    if value is None or value == "":
        return None
    if isinstance(value, (dict, list)):
        raise FieldError(f"{shown(value)} is not text")
    try:
        return str(value)
    except ValueError:  # an int past the 4300 digits int() writes
        raise FieldError(f"{shown(value)} is too long") from None


def split_fields(record: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(mapped fields by lower-case name, every other field under its own name, sorted by name)."""
    mapped_keys, extra_keys = _plan(tuple(record))
    mapped = {key: record[name] for key, name in mapped_keys}
    extra = {name: _plain(record[name]) for name in extra_keys}
    return mapped, extra


@functools.lru_cache(maxsize=64)
def _plan(keys: tuple[str, ...]) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """How to split records with these keys (they repeat record after record, so this is cached)."""
    mapped: dict[str, str] = {}
    extra = []
    for name in keys:
        key = name.lower()
        if key in MAPPED and key not in mapped:
            mapped[key] = name
        else:
            extra.append(name)
    return tuple(mapped.items()), tuple(sorted(extra))


def _plain(value: Any) -> Any:
    """JSON numbers were read as Decimal (exact `pay`); give `extra` plain JSON numbers back."""
    if type(value) is str:
        return value
    if isinstance(value, Decimal):
        if value.is_finite() and value.adjusted() < 18 and value == value.to_integral_value() and "." not in str(value):
            return int(value)  # 1e5 -> 100000; 1e999999999 would not end, so larger ones are floats
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(value)  # NaN and Infinity are not JSON numbers: `extra` keeps their text
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


class RecordParser:
    """Turns Laaffic records into `calls` rows for one account and zone."""

    def __init__(self, account: str, tz: tzinfo) -> None:
        self.account = account
        when = TimeReader(tz)
        # (column, lower-case field, reader); read in this order so errors name the first bad field
        self.columns: tuple[tuple[str, str, Callable[[Any], Any]], ...] = (
            ("record_id", "callid", text),
            ("start_time", "starttime", when),
            ("end_time", "endtime", when),
            ("duration_s", "callduration", parse_int),
            ("billed_duration_s", "chargedduration", parse_int),
            ("caller", "caller", text),
            ("callee", "called", text),
            ("call_type", "callsource", parse_int),
            ("status", "sipcode", text),
            ("cost", "pay", parse_pay),
            ("currency", "currency", text),
            ("country", "country", text),
            ("recording_url", "recordingfileurl", text),
        )

    def row(self, record: Any) -> dict[str, Any]:
        """One record -> one row. Raises FieldError naming the field."""
        if not isinstance(record, dict):
            raise FieldError(f"expected a JSON object, got {type(record).__name__}")
        try:
            fields, extra = split_fields(record)
            row: dict[str, Any] = {"provider": "laaffic", "account": self.account, "extra": extra_json(extra)}
        except FieldError:
            raise
        except RecursionError:  # a value nested about as deep as the JSON reader follows
            raise FieldError("a field is nested too deeply") from None
        except ValueError:  # an int past the 4300 digits int() writes
            raise FieldError("a number is too long to write") from None
        try:
            for column, key, read in self.columns:
                row[column] = read(fields.get(key))
        except FieldError as error:
            raise FieldError(f"`{MAPPED[key]}`: {error}") from None
        if row["record_id"] is None or row["start_time"] is None:
            raise FieldError(f"`{'callid' if row['record_id'] is None else 'startTime'}` is missing")
        source = row["call_type"]
        row["call_id"] = row["record_id"]
        row["direction"] = DIRECTIONS.get(source, "unknown")
        row["call_type"] = None if source is None else str(source)
        row["currency"] = _currency(row["currency"], row["cost"])
        row["country"] = row["country"] or text(_lookup(extra, "ccode"))
        return row


def to_row(record: Any, *, account: str, tz: tzinfo) -> dict[str, Any]:
    """One Laaffic record -> one `calls` row (see RecordParser)."""
    return RecordParser(account, tz).row(record)


def _lookup(fields: Mapping[str, Any], key: str) -> Any:
    """A field of `extra` by case-insensitive name."""
    return next((value for name, value in fields.items() if name.lower() == key), None)


def _currency(code: str | None, cost: Decimal | None) -> str | None:
    """Laaffic fills `currency` only for non-USD quotes: empty means USD when there is an amount."""
    code = code.strip().upper() if code else None
    if code:
        return code
    return "USD" if cost is not None else None
