"""Every provider's parser, fed random or mutated input, fails only with a CdrfetchError.

Valid files and answers (the emulators' own) are mutated cell by cell and byte by byte, and random
JSON is thrown at the answer readers. Whatever comes out must be a well-formed batch of the
provider's schema that Python can read back; whatever fails must be a CdrfetchError, and a
DataError from a file names it. `HYPOTHESIS_PROFILE=explore` searches far more inputs.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from unittest import mock

import pyarrow as pa
import pytest
import requests
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cdrfetch import archive, records
from cdrfetch.errors import CdrfetchError, DataError
from cdrfetch.providers.huawei_cec import codes as huawei_codes
from cdrfetch.providers.huawei_cec import columns as huawei_columns
from cdrfetch.providers.huawei_cec.parse import Context, parse_members
from cdrfetch.providers.laaffic import codes as laaffic_codes
from cdrfetch.providers.laaffic import parse as laaffic_parse
from cdrfetch.providers.polycom import blocks
from cdrfetch.providers.polycom import status as polycom_status
from cdrfetch.providers.polycom.emulator import records as dma_records
from cdrfetch.providers.polycom.emulator import render
from cdrfetch.providers.polycom.parse import ExportParser
from cdrfetch.providers.polycom.provider import Polycom
from cdrfetch.providers.youlianyun import codes as youlianyun_codes
from cdrfetch.providers.youlianyun import read as youlianyun_read
from cdrfetch.providers.youlianyun.emulator import APP_ID, SID, files
from cdrfetch.providers.youlianyun.parse import DayParser
from cdrfetch.windows import day_window, zone
from tests.fuzz_inputs import (
    ANY_TEXT,
    CELL,
    HOSTILE_JSON,
    JSON_VALUE,
    deep_json,
    deep_list,
    json_bytes,
    mutated_bytes,
    mutated_rows,
    text_bytes,
)

UTC = timezone.utc
WRONG = [[], {}, {"a": 1}, True, 1.5, None, 10**20, -1, "", "\ud800"]  # a wrong JSON type (or value) for any field
ZONES = ["UTC", "Asia/Shanghai", "America/New_York", "Pacific/Kiritimati", "Etc/GMT+12"]
BIG_FIELD = "x" * (129 << 10)  # over the csv module's 128 KiB field limit
LONG_LINE = ",".join(["y" * 1000] * 1100)  # a line over 1 MiB


def examples(count: int) -> int:
    """`count` under the suite's profile (100 examples by default), scaled up under `explore`."""
    return count * settings.default.max_examples // 100


def check(batch: pa.RecordBatch, schema: pa.Schema) -> None:
    """A batch of `schema`, internally valid, every value readable in Python, `extra` a JSON object."""
    assert batch.schema == schema
    batch.validate(full=True)
    for row in batch.to_pylist():
        assert isinstance(json.loads(row["extra"]), dict)


@contextmanager
def member_file(data: bytes, name: str = "member.bin") -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        yield path


def names_its_file(error: CdrfetchError, name: str) -> None:
    if isinstance(error, DataError):
        assert name in error.message, error.message


# ---- Youlianyun bill files ----------------------------------------------------------------------------------


@st.composite
def bills(draw: st.DrawFn) -> bytes:
    """A bill file the emulator would serve, then damaged."""
    fmt = files.FileFormat(
        delimiter=draw(st.sampled_from([",", "\t", "|", ";"])),
        header=draw(st.booleans()),
        header_names=draw(st.sampled_from(["youlianyun", "flypaas"])),
        encoding=draw(st.sampled_from(["utf-8", "gbk", "utf-8-sig"])),
        zero_pad=draw(st.booleans()),
        line_ending=draw(st.sampled_from(["\r\n", "\n", "\r"])),
    )
    rows = files.day_rows(draw(st.integers(0, 5)), SID, APP_ID, date(2024, 3, 1), rows_min=1, rows_max=6)
    cells = [line.removesuffix(fmt.line_ending).split(fmt.delimiter) for line in files.lines(rows, fmt)]
    cells = draw(mutated_rows(cells))
    text = fmt.line_ending.join(fmt.delimiter.join(row) for row in cells) + draw(st.sampled_from(["", "\n"]))
    return draw(mutated_bytes(text_bytes(text, fmt.encoding)))


HEAD = "ClientId,Callee,startTime,duration,type"


def _bill(*rows: str) -> bytes:
    return "\r\n".join([HEAD, *rows]).encode("utf-8", errors="surrogatepass")


@settings(max_examples=examples(300), deadline=None)
@given(data=bills(), tz=st.sampled_from(ZONES), windowed=st.booleans(), small=st.booleans())
@example(data=HEAD.encode(), tz="UTC", windowed=False, small=False)  # only a header, no line end
@example(data=_bill(f"1,2,2024-03-01 10:00:00,5,{BIG_FIELD}"), tz="UTC", windowed=False, small=False)
@example(data=_bill(*["1,2,2024-03-01 10:00:00,5,0"] * 30, LONG_LINE), tz="UTC", windowed=False, small=True)
@example(data=_bill("1,2,2024-03-01 10:00:00,100000000000000000000,0"), tz="UTC", windowed=False, small=False)
@example(data=_bill("1,2,2024-03-01 10:00:00,9223372036854775807,0"), tz="UTC", windowed=True, small=False)
@example(data=_bill("1,2,0001-01-01 00:00:00,5,0"), tz="Asia/Shanghai", windowed=False, small=False)
@example(data=_bill("1,2,0001-1-1 0:0:0,5,0"), tz="Asia/Shanghai", windowed=True, small=False)
@example(data=_bill("1,2,9999-12-31 23:59:59,5,0"), tz="America/New_York", windowed=False, small=False)
@example(data=_bill("1,2,9999-12-31 23:59:59,99999,0"), tz="UTC", windowed=False, small=False)
@example(data=_bill("1,2,2024-03-01 10:00:00,1e20,0"), tz="UTC", windowed=False, small=False)
@example(data=_bill("\ud800,2,2024-03-01 10:00:00,5,0"), tz="UTC", windowed=False, small=False)
def test_youlianyun_bill_files(data: bytes, tz: str, windowed: bool, small: bool) -> None:
    keep = day_window(date(2024, 3, 1), zone(tz)) if windowed else None
    parser = DayParser(SID, APP_ID, zone(tz), keep)
    blocks_of = 64 if small else youlianyun_read._ARROW_BLOCK  # small blocks: the fast path hands over midway
    with member_file(data) as path, mock.patch.object(youlianyun_read, "_ARROW_BLOCK", blocks_of):
        try:
            for batch in parser.parse(path, "bill.txt"):
                check(batch, records.CALLS)
        except CdrfetchError as error:
            names_its_file(error, "bill.txt")


JSONISH = st.one_of(
    st.binary(max_size=64),
    JSON_VALUE.map(json_bytes),
    st.sampled_from(HOSTILE_JSON).map(lambda text: text.encode("utf-8", errors="surrogatepass")),
    st.fixed_dictionaries(
        {"respCode": st.sampled_from(["000000", "200", 100007, "100500", None, []]) | JSON_VALUE},
        optional={"accountBill": JSON_VALUE, "resp": JSON_VALUE, "downUrl": JSON_VALUE, "token": JSON_VALUE},
    ).map(json_bytes),
    st.builds(
        lambda bill: json_bytes({"respCode": "000000", "accountBill": bill}),
        st.lists(st.dictionaries(st.sampled_from(["downUrl", "token"]), JSON_VALUE), max_size=3) | JSON_VALUE,
    ),
)


@settings(max_examples=examples(300), deadline=None)
@given(content=JSONISH)
@example(content=deep_json())
@example(content=b'{"resp":' * 10_000 + b"1" + b"}" * 10_000)
@example(content=b'{"respCode":"000000","accountBill":[{"downUrl":"\\ud800","token":"\\udfff"}]}')
@example(content=b'{"respCode":' + b"1" * 5000 + b"}")
@example(content=b"<respCode>" + b"9" * 100 + b"</respCode>")
def test_youlianyun_answers(content: bytes) -> None:
    read_youlianyun(content)


def read_youlianyun(content: bytes) -> None:
    for read in (youlianyun_codes.links, youlianyun_codes.envelope, youlianyun_codes.raise_for_body):
        with suppress(CdrfetchError):
            read(content, "youlianyun billList")


# ---- Laaffic records and pages ------------------------------------------------------------------------------

SAMPLE = {
    "callid": "23101311543100378", "number": "915027021995", "type": "MOBILE", "caller": "915027021995",
    "called": "915027021999", "ccode": "91", "country": "India", "callSource": 3, "callDuration": 10,
    "chargedDuration": 60, "startTime": "2024-01-01 09:00:00", "endTime": "2024-01-01 09:00:10",
    "pay": "0.012832", "sipCode": "20", "recordingFileUrl": "", "currency": "EUR",
}  # fmt: skip
FIELDS = [*SAMPLE, "startTime".upper(), "calLID", "PAY", "hangupReason", "QuoteExchange"]


def _time_texts(moment: datetime) -> st.SearchStrategy[str]:
    iso = moment.isoformat()
    return st.sampled_from([moment.strftime("%Y-%m-%d %H:%M:%S"), iso, iso + "+14:00", iso + "-23:59", iso + "Z"])


TIMES = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)).flatmap(_time_texts),
    st.integers(-(10**20), 10**20),
    st.integers(-(10**20), 10**20).map(str),
)
FIELD_VALUE = st.one_of(JSON_VALUE, TIMES, CELL)
RECORDS = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS) | ANY_TEXT, FIELD_VALUE, max_size=20).map(lambda r: {**SAMPLE, **r}),
    st.dictionaries(st.sampled_from(FIELDS) | ANY_TEXT, FIELD_VALUE, max_size=20),
    JSON_VALUE,
)
WRONG_TYPES = [{**SAMPLE, name: value} for name in SAMPLE for value in ([], {}, True, 1.5, None, 10**20, -1)]


LAAFFIC = laaffic_parse.RecordParser("bDqJFiq9", zone("Asia/Shanghai"))
WHERE = "laaffic 2024-03-01 page"


@settings(max_examples=examples(600), deadline=None)
@given(record=RECORDS, tz=st.sampled_from(ZONES))
@example(record={**SAMPLE, "startTime": "0001-01-01 00:00:00"}, tz="Asia/Shanghai")
@example(record={**SAMPLE, "startTime": "9999-12-31 23:59:59"}, tz="America/New_York")
@example(record={**SAMPLE, "endTime": "0001-01-01T00:00:00+14:00"}, tz="UTC")
@example(record={**SAMPLE, "startTime": 10**20}, tz="UTC")
@example(record={**SAMPLE, "startTime": 253402300800}, tz="UTC")  # 10000-01-01 in epoch seconds
@example(record={**SAMPLE, "callDuration": 10**20}, tz="UTC")
@example(record={**SAMPLE, "chargedDuration": "1" * 5000}, tz="UTC")
@example(record={**SAMPLE, "callSource": -(2**63) - 1}, tz="UTC")
@example(record={**SAMPLE, "caller": "\ud800"}, tz="UTC")
@example(record={**SAMPLE, "\udfff": "x"}, tz="UTC")
@example(record={**SAMPLE, "number": 10**5000}, tz="UTC")
@example(record={**SAMPLE, "pay": float("nan")}, tz="UTC")
def test_laaffic_records(record: Any, tz: str) -> None:
    _laaffic_row(record, tz)


@pytest.mark.parametrize("depth", [10, 500, 900, 10_000])
def test_laaffic_records_nested_deeply(depth: int) -> None:
    # plain tests: Hypothesis's reporter itself cannot print values nested this deep
    for record in (
        deep_list(depth),
        {**SAMPLE, "hangupReason": deep_list(depth)},
        {**SAMPLE, "caller": deep_list(depth)},
    ):
        _laaffic_row(record, "UTC")


@pytest.mark.parametrize("record", WRONG_TYPES)
def test_laaffic_records_with_a_wrong_json_type_in_any_field(record: dict[str, Any]) -> None:
    _laaffic_row(record, "Asia/Shanghai")


def _laaffic_row(record: Any, tz: str) -> None:
    parser = laaffic_parse.RecordParser("bDqJFiq9", zone(tz))
    try:
        parser.row(record)
    except (laaffic_parse.FieldError, CdrfetchError):
        return
    check(laaffic_codes.page_rows(parser, f"{WHERE} 1", [record])[1], records.CALLS)  # as the provider builds it


COUNT = st.one_of(st.integers(-5, 300), st.sampled_from([10**7, 10**20, "1" * 5000, "3", "-1", "", None, 1.5]))
PAGE_DATA = st.fixed_dictionaries(
    {"records": st.lists(RECORDS, max_size=4) | JSON_VALUE},
    optional={"total": COUNT | JSON_VALUE, "pages": COUNT | JSON_VALUE, "size": JSON_VALUE},
)


@settings(max_examples=examples(300), deadline=None)
@given(data=PAGE_DATA, number=st.integers(1, 5))
@example(data={"total": 10**9, "pages": 10**7, "records": []}, number=1)
@example(data={"total": "1" * 5000, "records": []}, number=1)
@example(data={"total": 0, "pages": 0, "records": [SAMPLE]}, number=1)
@example(data={"total": 1, "pages": 1, "records": [SAMPLE] * 101}, number=1)
@example(data={"total": 250, "pages": 3, "records": [SAMPLE]}, number=4)
def test_laaffic_pages(data: dict[str, Any], number: int) -> None:
    where = f"{WHERE} {number}"
    try:
        total, pages, page = laaffic_codes.declared(data, where, number)
        ids, batch = laaffic_codes.page_rows(LAAFFIC, where, page)
    except CdrfetchError as error:
        assert isinstance(error, DataError) and where in error.message
        return
    check(batch, records.CALLS)
    assert 0 <= pages <= laaffic_codes.MAX_PAGES and total >= 0 and len(ids) == batch.num_rows <= 100


ANSWERS = st.one_of(
    JSONISH,
    st.fixed_dictionaries(
        {"status": st.sampled_from(["0", 0, "-1", "-15", None, [], "\ud800"]) | JSON_VALUE},
        optional={"reason": JSON_VALUE, "data": PAGE_DATA | JSON_VALUE},
    ).map(json_bytes),
)


@settings(max_examples=examples(300), deadline=None)
@given(content=ANSWERS)
@example(content=deep_json(kind="dict"))
@example(content=b'{"status":"0","data":' + b"[" * 5000 + b"]" * 5000 + b"}")
@example(content=b'{"status":"0","data":{"total":1' + b"0" * 5000 + b',"records":[]}}')
@example(content=b'{"status":"0","data":{"total":1e999999999,"records":[]}}')
@example(content=b'{"status":"\\ud800","reason":"\\udfff"}')
def test_laaffic_answers(content: bytes) -> None:
    read_laaffic(content)


def read_laaffic(content: bytes) -> None:
    response = requests.Response()
    response._content, response.status_code = content, 200
    with suppress(CdrfetchError):
        data = laaffic_codes.answer_data(response, f"{WHERE} 1", lambda: "POST /number/record/queryPage {}")
        *_, page = laaffic_codes.declared(data, f"{WHERE} 1", 1)
        check(laaffic_codes.page_rows(LAAFFIC, f"{WHERE} 1", page)[1], records.CALLS)


# ---- Huawei CEC members and answers -------------------------------------------------------------------------


def _huawei_row(names: tuple[str, ...], **cells: str) -> list[str]:
    base = {"developer": "ak", "call_id": "c1", "call_id_num": "-1", "file_name": "f.wav"}
    base |= {"call_begin": "2024-03-04 08:00:00", "call_end": "2024-03-04 08:01:30.500"}
    return [(base | cells).get(name, "") for name in names]


def _csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


@st.composite
def huawei_members(draw: st.DrawFn) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["call", "record"]))
    names = huawei_columns.CALL_NAMES if kind == "call" else huawei_columns.RECORD_NAMES
    rows = [list(names)] if draw(st.booleans()) else []
    rows += [
        _huawei_row(names, call_id=f"c{i}", wait_begin="2024-03-04 07:59:00") for i in range(draw(st.integers(1, 5)))
    ]
    text = _csv(draw(mutated_rows(rows)))
    return f"20240304_x_{kind}.csv", draw(mutated_bytes(text_bytes(text, draw(st.sampled_from(["utf-8", "gbk"])))))


CALL_HEAD = ",".join(huawei_columns.CALL_NAMES)


def _call_member(*rows: list[str]) -> tuple[str, bytes]:
    return "x_call.csv", _csv([list(huawei_columns.CALL_NAMES), *rows]).encode("utf-8", errors="surrogatepass")


@settings(max_examples=examples(300), deadline=None)
@given(member=huawei_members(), tz=st.sampled_from(ZONES))
@example(member=("x_call.csv", CALL_HEAD.encode()), tz="UTC")  # only a header, no line end
@example(member=_call_member(_huawei_row(huawei_columns.CALL_NAMES, agent_id=BIG_FIELD)), tz="UTC")
@example(member=_call_member(*[_huawei_row(huawei_columns.CALL_NAMES)] * 3, [LONG_LINE]), tz="UTC")
@example(
    member=_call_member(_huawei_row(huawei_columns.CALL_NAMES, call_begin="0001-01-01 00:00:00")), tz="Asia/Shanghai"
)
@example(
    member=_call_member(_huawei_row(huawei_columns.CALL_NAMES, call_end="9999-12-31 23:59:59")), tz="America/New_York"
)
@example(member=_call_member(_huawei_row(huawei_columns.CALL_NAMES, call_end="0001-01-01 00:00:00")), tz="UTC")
@example(member=_call_member(_huawei_row(huawei_columns.CALL_NAMES, call_begin="1e20")), tz="UTC")
@example(member=_call_member(_huawei_row(huawei_columns.CALL_NAMES, caller_no="\ud800")), tz="UTC")
def test_huawei_members(member: tuple[str, bytes], tz: str) -> None:
    name, data = member
    with member_file(data) as path:
        try:
            for batch in parse_members([archive.Member(name, path)], Context("ak", zone(tz), lambda _: None)):
                check(batch.data, records.CALLS if batch.table == "calls" else huawei_columns.RECORDINGS)
        except CdrfetchError as error:
            names_its_file(error, name)


@settings(max_examples=examples(200), deadline=None)
@given(
    raw=JSONISH | st.dictionaries(st.sampled_from(["resultCode", "response", "resultDesc"]), JSON_VALUE).map(json_bytes)
)
@example(raw=deep_json())
@example(raw=b'{"response":' * 10_000 + b"{}" + b"}" * 10_000)
@example(raw=b'{"response":[1]}')
@example(raw=b'{"response":"0"}')
def test_huawei_answers(raw: bytes) -> None:
    read_huawei(raw)


def read_huawei(raw: bytes) -> None:
    with suppress(CdrfetchError):
        huawei_codes.result_code(huawei_codes.parse_json(raw, "queryBillData"))


# ---- Polycom export members and status documents ------------------------------------------------------------


@st.composite
def polycom_members(draw: st.DrawFn) -> bytes:
    hour = datetime(2024, 1, 1, draw(st.integers(0, 23)), tzinfo=UTC)
    calls, confs = dma_records.hour_records(draw(st.integers(0, 5)), "dma", hour, draw(st.integers(1, 4)))
    tz = zone(draw(st.sampled_from(ZONES)))
    kind = draw(st.sampled_from(["calls", "conferences", "mixed"]))
    rows = [render.call_row(call, tz) for call in calls] if kind != "conferences" else []
    rows += [render.conf_row(conf, tz) for conf in confs] if kind != "calls" else []
    if draw(st.booleans()):
        rows = [render.itp_row(row) for row in rows]
    header = {"calls": render.CALL_HEADER, "conferences": render.CONF_HEADER, "mixed": None}[kind]
    if header is not None and draw(st.booleans()):
        rows.insert(0, list(header))
    return draw(mutated_bytes(text_bytes(_csv(draw(mutated_rows(rows))), draw(st.sampled_from(["utf-8", "gbk"])))))


GOOD_CALL = "1,CALL,VMR,u-1,TRUE,2024-01-01T10:00:00.000+01:00,2024-01-01T11:00:00Z,sip:a@x"


def _calls(*lines: str) -> bytes:
    return "\r\n".join(lines).encode("utf-8", errors="surrogatepass")


@settings(max_examples=examples(300), deadline=None)
@given(
    data=polycom_members(), name=st.sampled_from(["calls.csv", "conferences.csv", "counts.txt"]), small=st.booleans()
)
@example(data=",".join(render.CALL_HEADER[:8]).encode(), name="calls.csv", small=False)  # only a header, no line end
@example(data=_calls(GOOD_CALL + "," + BIG_FIELD), name="calls.csv", small=False)
@example(data=_calls(*[GOOD_CALL] * 3, LONG_LINE), name="calls.csv", small=True)
@example(data=_calls("1,CALL,VMR,u,TRUE,0001-01-01T00:00:00+14:00"), name="calls.csv", small=False)
@example(data=_calls("1,CALL,VMR,u,TRUE,9999-12-31T23:59:59-12:00"), name="calls.csv", small=False)
@example(data=_calls("1,CALL,VMR,u,TRUE,2024-01-01T10:00:00Z,9999-12-31T23:59:59.999Z"), name="calls.csv", small=False)
@example(data=_calls("1,CONF,PCO,c,u,0001-01-01T00:00:00Z,,o,r,1" + "0" * 30), name="conferences.csv", small=False)
@example(data=_calls("1,CALL,VMR,u,TRUE,1e20"), name="calls.csv", small=False)
@example(data=_calls("1,CALL,VMR,\ud800,TRUE,2024-01-01T10:00:00Z"), name="calls.csv", small=False)
@example(data=("9" * 5000 + " calls").encode(), name="counts.txt", small=False)
def test_polycom_members(data: bytes, name: str, small: bool) -> None:
    parser = ExportParser(account="dma", chunk_end=datetime(2030, 1, 1, tzinfo=UTC))
    tables = Polycom.output_tables()
    with mock.patch.object(blocks, "BLOCK_BYTES", 200 if small else blocks.BLOCK_BYTES):
        try:
            for table in parser.member(name, io.BytesIO(data)):
                for batch in table.to_batches():
                    check(batch, records.CALLS)
            for kind, rows in (("calls", parser.export.calls), ("conferences", parser.export.conferences)):
                for batch in records.batches(kind, tables[kind], rows):
                    check(batch.data, tables[kind])
            parser.check_counts()
        except CdrfetchError as error:
            names_its_file(error, name)


XML_FIELDS = ["status-type", "download-ready", "download-url", "total-number-cdr-records", "from-date", "to-date"]
STATUS = st.one_of(
    JSONISH,
    st.dictionaries(
        st.sampled_from(
            ["statusType", "downloadReady", "totalNumberCdrRecords", "fromDate", "toDate", "plcmBillingStatus"]
        ),
        JSON_VALUE | st.sampled_from(["SUCCESS", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"]),
    ).map(json_bytes),
    st.lists(st.tuples(st.sampled_from(XML_FIELDS), CELL), max_size=6).map(
        lambda fields: ("<s>" + "".join(f"<{k}>{v}</{k}>" for k, v in fields) + "</s>").encode("utf-8", "surrogatepass")
    ),
    st.binary(max_size=64).map(lambda raw: b"<" + raw),
)


@settings(max_examples=examples(300), deadline=None)
@given(body=STATUS, content_type=st.sampled_from(["application/json", "application/xml", ""]))
@example(body=deep_json(kind="dict"), content_type="application/json")
@example(body=b"<a>" * 10_000 + b"</a>" * 10_000, content_type="application/xml")
@example(
    body=b'<!DOCTYPE a [<!ENTITY b "bbbbbbbbbb"><!ENTITY c "&b;&b;&b;&b;">]><a><statusType>&c;</statusType></a>',
    content_type="",
)
@example(body=b'{"statusType":"SUCCESS","fromDate":"0001-01-01T00:00:00+14:00","toDate":"x"}', content_type="")
@example(body=b'{"statusType":"SUCCESS","totalNumberCdrRecords":' + b"9" * 5000 + b"}", content_type="")
@example(body=b'{"statusType":"\\ud800","downloadUrl":"\\udfff"}', content_type="")
def test_polycom_status_documents(body: bytes, content_type: str) -> None:
    read_polycom(body, content_type)


def read_polycom(body: bytes, content_type: str = "application/json") -> None:
    polycom_status.error_text(body)
    try:
        status = polycom_status.parse_status(body, content_type)
    except CdrfetchError:
        return
    status.verdict()
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    status.owned_by(moment, moment + timedelta(hours=1))


# ---- every answer reader, a wrong JSON type in each field -------------------------------------------------

GOOD_ANSWERS = {
    "youlianyun": (
        {"respCode": "000000", "accountBill": [{"downUrl": "https://x.invalid/b", "token": "t"}]},
        read_youlianyun,
    ),
    "laaffic": ({"status": "0", "reason": "ok", "data": {"total": 1, "pages": 1, "records": [SAMPLE]}}, read_laaffic),
    "huawei-cec": ({"resultCode": "0", "resultDesc": "ok", "response": {"resultCode": "0"}}, read_huawei),
    "polycom": ({"statusType": "SUCCESS", "downloadReady": True, "fromDate": "2024-01-01T00:00:00Z"}, read_polycom),
}


def _with_each_wrong_type(document: Any) -> Iterator[Any]:
    """`document` with one member (at any depth) replaced by each wrong value in turn."""
    if isinstance(document, dict):
        for key, value in document.items():
            for wrong in [*WRONG, *_with_each_wrong_type(value)]:
                yield {**document, key: wrong}
    elif isinstance(document, list) and document:
        for wrong in [*WRONG, *_with_each_wrong_type(document[0])]:
            yield [wrong, *document[1:]]


@pytest.mark.parametrize("provider", sorted(GOOD_ANSWERS))
def test_answers_with_a_wrong_json_type_in_any_field(provider: str) -> None:
    good, read = GOOD_ANSWERS[provider]
    for document in _with_each_wrong_type(good):
        read(json_bytes(document))
