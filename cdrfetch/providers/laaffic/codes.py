"""Laaffic answers: the envelope of §4.1 (`status`, `reason`, `data`) and one page of `data`, checked.

Every page declares the whole query's `total` and `pages`, and the client plans its requests from
them. So a page that contradicts itself (a page count other than ceil(total / PAGE_SIZE), more
records than were asked for or than its own total leaves for it) or declares an absurd amount is
refused, naming the page, before anything is planned from it. Totals that move from one page to
the next stay allowed: records arrive while paging, and the provider reads the chunk again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from cdrfetch.errors import DataError, UnavailableError
from cdrfetch.providers.laaffic import parse
from cdrfetch.providers.laaffic import protocol as proto
from cdrfetch.untrusted import JSON_FAILURES, shown, too_deep

if TYPE_CHECKING:
    import pyarrow as pa
    import requests

# Pages one chunk may declare. 100,000 pages are 10 million calls in at most 31 days, each page one
# signed request: a larger declaration is damage, not traffic, and would have the client plan
# requests for days. An account with more calls than that pulls narrower chunks (`max_window_days`).
MAX_PAGES = 100_000
REPORT = "report this answer to Laaffic"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def answer_data(response: requests.Response, what: str, request: Callable[[], str]) -> dict[str, Any]:
    """The `data` object of a successful answer; the mapped error otherwise (`request` describes the call)."""
    try:
        payload = response.json(parse_float=Decimal)
    except RecursionError:  # no proxy page nests like that: bad data, not worth asking again
        raise too_deep() from None
    except JSON_FAILURES:
        payload = None
    if not isinstance(payload, dict) or "status" not in payload:
        raise UnavailableError(f"{what}: the answer has no Laaffic `status`", proto.BASE_URL_HINT, retryable=True)
    status, reason = _text(payload["status"]).strip(), _text(payload.get("reason") or "")
    if status != "0":
        raise proto.status_error(status, reason, what, request())
    data = payload.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("records", []), list):
        raise DataError(f"{what}: status 0 without a `data.records` list", REPORT)
    return data


def _text(value: Any) -> str:
    """A status or reason as text; an object or list (whose text could nest without end) is shown cut short."""
    return value[:200] if isinstance(value, str) else str(value) if isinstance(value, (int, Decimal)) else shown(value)


def declared(data: dict[str, Any], where: str, number: int) -> tuple[int, int, list[Any]]:
    """(total, pages, records) of page `number`; DataError naming the page when it contradicts itself."""
    records = data.get("records") or []
    if not isinstance(records, list):
        raise DataError(f"{where}: `records` is not a list", REPORT)
    try:
        total = parse.parse_int(data.get("total")) or 0
        pages = parse.parse_int(data.get("pages"))
    except parse.FieldError as error:
        raise DataError(f"{where}: bad page counts: {error}", REPORT) from None
    if total < 0:
        raise DataError(f"{where}: declares a total of {total} records", REPORT)
    needed = -(-total // proto.PAGE_SIZE)  # ceil(total / PAGE_SIZE), exact for any size
    if pages is not None and pages != needed:
        raise DataError(
            f"{where}: declares {pages} pages for a total of {total} records ({needed} pages of {proto.PAGE_SIZE})",
            REPORT,
        )
    if needed > MAX_PAGES:
        raise DataError(
            f"{where}: declares {total} records, {needed} pages where one chunk may have {MAX_PAGES}",
            f"if the account really has that many calls, lower `max_window_days`; else {REPORT}",
        )
    if len(records) > proto.PAGE_SIZE:
        raise DataError(f"{where}: holds {len(records)} records, more than the {proto.PAGE_SIZE} asked for", REPORT)
    room = min(proto.PAGE_SIZE, max(0, total - (number - 1) * proto.PAGE_SIZE))
    if len(records) > room:
        raise DataError(f"{where}: holds {len(records)} records where its total of {total} leaves {room}", REPORT)
    return total, needed, records


def page_rows(parser: parse.RecordParser, where: str, records: list[Any]) -> tuple[list[str], pa.RecordBatch]:
    """The callids and the `calls` batch of a page's records; a bad record is a DataError naming its index."""
    import pyarrow as pa

    from cdrfetch.records import CALLS

    rows = [_row(parser, where, index, record) for index, record in enumerate(records)]
    try:
        batch = pa.RecordBatch.from_pylist(rows, schema=CALLS)
    except UnicodeEncodeError:
        # A JSON "\ud800" escape decodes to a lone surrogate, which has no UTF-8 (a text cut inside a
        # surrogate pair does that): U+FFFD stands in, as for the undecodable bytes of an answer.
        rows = [{key: _whole(value) for key, value in row.items()} for row in rows]
        batch = pa.RecordBatch.from_pylist(rows, schema=CALLS)
    return [row["record_id"] for row in rows], batch


def _whole(value: Any) -> Any:
    return _LONE_SURROGATE.sub("\ufffd", value) if isinstance(value, str) else value


def _row(parser: parse.RecordParser, where: str, index: int, record: Any) -> dict[str, Any]:
    try:
        return parser.row(record)
    except parse.FieldError as error:
        callid = record.get("callid") if isinstance(record, dict) else None
        named = f" (callid {callid})" if isinstance(callid, (str, int)) and 0 < len(str(callid)) <= 64 else ""
        raise DataError(
            f"{where} records[{index}]{named}: {error}", "Laaffic sent a record cdrfetch cannot read; report it"
        ) from None
