"""Hostile inputs for the parser property tests: cell values, JSON values, and mutations of valid files."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

# Cells that broke, or could break, a parser somewhere: quoting and line ends, encodings, numbers out
# of every range, impossible and edge dates, digits that are not ASCII, and sheer size (the csv
# module's field limit is 128 KiB).
HOSTILE_CELLS = [
    "", " ", "\t", "\x00", '"', '""', "'", "\r", "\n", "\r\n", ",", ";", "|", "\ufeff", "\u2028", "\x85",
    "-", "-1", "0", "1e20", "-1e20", "1E+999999", "NaN", "nan", "inf", "-inf", "35.0", "35.5", " 7 ",
    "9223372036854775807", "9223372036854775808", "-9223372036854775809", "99999999999999999999",
    "100000000000000000000", "1" * 400, "0.000001", "1" * 30 + ".0",
    "0001-01-01 00:00:00", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "0001-1-1 0:0:0",
    "9999-12-31 23:59:59", "9999-12-31T23:59:59-12:00", "9999-12-31T23:59:59.999999999Z", "9999/12/31 23:59:59",
    "0000-00-00 00:00:00", "2024-02-30 10:00:00", "2024-01-01 24:00:00", "2024-01-01 23:59:60",
    "2024-01-01T10:00:00+24:00", "2024-01-01T10:00:00+23:59", "2024-01-01T10:00:00-99:99",
    "-2024-01-01T10:00:00Z", "2024-01-01T10:00:00.", "2024-01-01 10:00:00.1234567890123",
    "２０２４-０１-０１ １０:００:００", "٢٠٢٤-٠١-٠١ ١٠:٠٠:٠٠", "²⁰²⁴", "١٢٣", "１２３",
    "developer", "version", "CALL", "CONF", "TRUE", "会议室", "é", "\ud800", "\udfff",
    "x" * (130 << 10),
]  # fmt: skip
HOSTILE_JSON = [
    "[" * 10_000 + "]" * 10_000,
    '{"a":' * 10_000 + "1" + "}" * 10_000,
    "[" * 100_000,
    "1" * 5_000,
    "1" * 5_000 + "e0",
    "1e999999999",
    '"\\ud800"',
    '{"\\udfff": "\\ud800"}',
    "NaN",
    "-Infinity",
    "\ufeff{}",
    "",
    "null",
]
# Text with lone surrogates (what a JSON "\ud800" escape decodes to), controls and any script.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=24)
CELL = st.one_of(st.sampled_from(HOSTILE_CELLS), ANY_TEXT, st.text("0123456789-: T.+Z/", max_size=30))
NUMBER = st.one_of(
    st.integers(),
    st.sampled_from([10**20, -1, 2**63, -(2**63) - 1, 10**400, 0]),
    st.floats(),
    st.sampled_from([1e20, -1e20, 1e308, float("inf"), float("nan"), 0.5]),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from([Decimal("1e20"), Decimal("1E+999999999"), Decimal("1" * 5000), Decimal("-0.0")]),
)
SCALAR = st.one_of(st.none(), st.booleans(), NUMBER, CELL)
JSON_VALUE = st.recursive(
    SCALAR, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4), max_leaves=12
)


def deep_list(levels: int = 10_000) -> Any:
    """A list nested `levels` deep (what a hostile JSON document decodes to)."""
    value: Any = []
    for _ in range(levels):
        value = [value]
    return value


def deep_dict(levels: int = 10_000) -> Any:
    value: Any = {}
    for _ in range(levels):
        value = {"a": value}
    return value


def deep_json(levels: int = 10_000, kind: str = "list") -> bytes:
    """A JSON document nested `levels` deep, as text (no encoder recurses that far)."""
    if kind == "list":
        return b"[" * levels + b"]" * levels
    return b'{"a":' * levels + b"{}" + b"}" * levels


def json_bytes(value: Any) -> bytes:
    """A JSON value as UTF-8 bytes, lone surrogates escaped as JSON allows."""
    return json.dumps(value, default=str).encode("utf-8")


def text_bytes(text: str, encoding: str) -> bytes:
    """`text` in `encoding` as a broken writer would send it: unencodable characters as raw bytes."""
    try:
        return text.encode(encoding)
    except UnicodeEncodeError:
        return text.encode("utf-8", errors="surrogatepass")


Rows = list[list[str]]


@st.composite
def mutated_rows(draw: st.DrawFn, rows: Rows) -> Rows:
    """`rows` with a few cells replaced, rows cut or widened, and junk lines added or dropped."""
    rows = [list(row) for row in rows]
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["cell", "cell", "cell", "cut", "widen", "junk", "drop", "repeat"]))
        at = draw(st.integers(0, max(len(rows) - 1, 0)))
        if kind == "cell" and rows and rows[at]:
            rows[at][draw(st.integers(0, len(rows[at]) - 1))] = draw(CELL)
        elif kind == "cut" and rows:
            rows[at] = rows[at][: draw(st.integers(0, len(rows[at])))]
        elif kind == "widen" and rows:
            rows[at] += draw(st.lists(CELL, min_size=1, max_size=4))
        elif kind == "junk":
            rows.insert(at, draw(st.lists(CELL, max_size=3)))
        elif kind == "drop" and rows:
            del rows[at]
        elif kind == "repeat" and rows:
            rows.insert(at, list(rows[at]))
    return rows


@st.composite
def mutated_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` with a few bytes flipped, inserted or removed, or cut short."""
    out = bytearray(data)
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(out)))
        kind = draw(st.sampled_from(["flip", "insert", "delete", "cut"]))
        if kind == "flip" and at < len(out):
            out[at] ^= draw(st.integers(1, 255))
        elif kind == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=8) | st.sampled_from([b"\r", b"\n", b'"', b"\xff", b"\0"]))
        elif kind == "delete":
            del out[at : at + draw(st.integers(1, 8))]
        elif kind == "cut":
            del out[at:]
    return bytes(out)
