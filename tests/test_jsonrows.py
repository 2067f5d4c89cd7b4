"""JSON rows built column-wise give exactly the text `json.dumps` gives row by row."""

from __future__ import annotations

import io
import json
from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from cdrfetch import jsonrows
from cdrfetch.records import CALLS
from cdrfetch.sinks import JsonLinesSink, JsonSink, as_text_columns

TEXT = st.one_of(st.none(), st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12))
ROWS = st.lists(
    st.fixed_dictionaries({
        "name": TEXT,
        "count": st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
        "extra": st.one_of(st.none(), st.dictionaries(st.text(max_size=4), TEXT, max_size=3).map(json.dumps)),
    }),
    max_size=20,
)  # fmt: skip
SCHEMA = pa.schema([("name", pa.string()), ("count", pa.int64()), ("extra", pa.string())])


def row_wise(row: dict[str, Any]) -> str:
    """The writer this replaces: a dict through json.dumps, `extra` embedded raw, last, when present."""
    extra = row.pop("extra", None)
    body = json.dumps(row, ensure_ascii=False, separators=(",", ":"))
    return body if extra is None else f'{body[:-1]},"extra":{extra}}}'


@settings(max_examples=200, deadline=None)
@given(rows=ROWS)
def test_each_row_is_what_json_dumps_writes(rows: list[dict[str, Any]]) -> None:
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    got = jsonrows.json_objects(table).to_pylist()
    assert got == [row_wise(row) for row in table.to_pylist()]  # the old writer's dicts: schema order
    for text, row in zip(got, rows, strict=True):
        parsed = json.loads(text)
        assert {k: v for k, v in parsed.items() if k != "extra"} == {k: row[k] for k in ("name", "count")}


@settings(max_examples=50, deadline=None)
@given(batches=st.lists(ROWS, max_size=4), array=st.booleans())
def test_json_lines_and_json_files_are_unchanged_across_batches(
    batches: list[list[dict[str, Any]]], array: bool
) -> None:
    sink_type = JsonSink if array else JsonLinesSink
    sink = sink_type.__new__(sink_type)  # writes to a buffer: no file, no stdout
    sink.schema, sink.rows, sink._stream, sink._file = SCHEMA, 0, io.BytesIO(), None
    sink.begin()
    for rows in batches:
        sink.write(
            pa.Table.from_pylist(rows, schema=SCHEMA)
            if len(rows) % 2
            else pa.RecordBatch.from_pylist(rows, schema=SCHEMA)
        )
    sink.end()
    every = [row_wise(row) for rows in batches for row in pa.Table.from_pylist(rows, schema=SCHEMA).to_pylist()]
    if array:
        want = "[" + "".join(("\n" if i == 0 else ",\n") + text + "\n" for i, text in enumerate(every))
        want += "\n]\n" if every else "]\n"
    else:
        want = "".join(text + "\n" for text in every)
    assert sink._stream.getvalue().decode("utf-8") == want
    if array:
        assert len(json.loads(want)) == len(every)


def test_the_calls_schema_renders_as_json() -> None:
    batch = as_text_columns(
        pa.RecordBatch.from_pylist([{"provider": "p", "record_id": 'x\u2028\x00"\\'}], schema=CALLS), keep_integers=True
    )
    (text,) = jsonrows.json_objects(batch).to_pylist()
    assert json.loads(text)["record_id"] == 'x\u2028\x00"\\' and text == row_wise(batch.to_pylist()[0])
