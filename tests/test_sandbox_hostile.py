"""The hostile files and answers the sandbox serves: what they are, read back with independent readers."""

from __future__ import annotations

import bz2
import io
import json
import zipfile
import zlib
from pathlib import Path

import pytest

from cdrfetch import archive, providers, sandbox
from cdrfetch.errors import DataError, UsageError
from cdrfetch.sandbox import hostile
from cdrfetch.sandbox.faults import HOSTILE_ARCHIVES, HOSTILE_JSON

MEMBERS = [("calls.csv", b"start,caller\n" + b"2024-03-04 10:00:00,+8613800000000\n" * 500), ("counts.txt", b"1\n")]
REFUSALS = {
    "bzip2_bomb": r"calls\.csv' uses compression method 12 \(bzip2\)",
    # refused from the directory (a streaming refusal names no sizes), before gigabytes are inflated
    "deflate_bomb": r"expands (beyond the size limit|more than 1000x its compressed size) \(2097152000 bytes",
    "shared_members": r"members 'calls\.csv' and '00001-calls\.csv' overlap",
    "duplicate_entries": r"member 'calls\.csv' appears twice",
    "flipped_byte": r"damaged archive",
    "encrypted": r"member 'calls\.csv' is encrypted",
    "zip_slip": r"member '\.\./\.\./calls\.csv' escapes the archive",
}


def test_the_bzip2_bomb_is_one_valid_stream_of_zeros() -> None:
    stream = hostile.bzip2_zeros(2)
    assert bz2.decompress(stream) == bytes(80 << 20)  # the stdlib reader: one stream, CRCs right
    assert len(hostile.bzip2_zeros(hostile.BZIP2_BOMB_COPIES)) < 4096


def test_the_deflate_bomb_inflates_to_zeros_with_the_declared_crc() -> None:
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    assert inflater.decompress(hostile.deflate_zeros(3)) == bytes(3 << 20) and inflater.eof
    assert hostile.zeros_crc(3) == zlib.crc32(bytes(3 << 20))


@pytest.mark.parametrize("kind", ["bzip2_bomb", "deflate_bomb"])
def test_a_bomb_declares_what_it_expands_to(kind: str) -> None:
    data = hostile.archive(kind, MEMBERS)
    [entry] = zipfile.ZipFile(io.BytesIO(data)).infolist()
    assert (entry.filename, entry.file_size) == ("calls.csv", hostile.BOMB_MIB << 20)
    assert entry.file_size > 1000 * len(data)


def test_the_honest_parts_of_a_hostile_zip_read_back() -> None:
    bundle = zipfile.ZipFile(io.BytesIO(hostile.archive("zip_slip", MEMBERS)))
    assert bundle.namelist() == ["../../calls.csv", "counts.txt"]
    assert bundle.read("../../calls.csv") == MEMBERS[0][1] and bundle.testzip() is None
    assert len(zipfile.ZipFile(io.BytesIO(hostile.archive("shared_members", MEMBERS))).infolist()) == 2000


@pytest.mark.parametrize("kind", HOSTILE_ARCHIVES)
def test_each_hostile_zip_is_refused_or_reported_as_damage(tmp_path: Path, kind: str) -> None:
    source = tmp_path / "export.zip"
    source.write_bytes(hostile.archive(kind, MEMBERS))
    (tmp_path / "out").mkdir()
    with pytest.raises(DataError, match=REFUSALS[kind]) as caught:
        archive.extract(source, tmp_path / "out", name="export.zip")
    assert caught.value.retryable is (kind == "flipped_byte")  # damage only: a fresh download may be whole
    assert list((tmp_path / "out").iterdir()) == []


PAGE = {"status": "0", "data": {"total": 1, "records": [{"callid": "1", "caller": "+8613800000000"}]}}


def test_hostile_json_answers() -> None:
    with pytest.raises(RecursionError):
        json.loads(hostile.json_answer("deep", PAGE, "caller"))
    assert json.loads(hostile.json_answer("wrong_types", PAGE, "caller"))["data"]["records"][0]["caller"] == [
        "+8613800000000"
    ]
    surrogate = hostile.json_answer("lone_surrogate", PAGE, "caller")
    assert b"\\ud800" in surrogate and json.loads(surrogate)["data"]["records"][0]["caller"].endswith("\ud800")
    huge = hostile.json_answer("huge", PAGE, "caller")
    assert len(huge) > 64 << 20 and json.loads(huge) == PAGE
    assert json.loads(hostile.json_answer("wrong_types", {"status": "0"}, "caller")) == {"status": "0", "caller": [""]}


@pytest.mark.parametrize("name", providers.names())
def test_unknown_choices_are_usage_errors_naming_the_known_ones(name: str) -> None:
    for knob in ("hostile_archive", "hostile_json"):
        if knob not in sandbox.emulator_class(name).supported_faults():
            continue
        with pytest.raises(UsageError, match="expected one of") as caught:
            sandbox.serve(name, {knob: "gzip_bomb"})
        assert (HOSTILE_ARCHIVES if knob == "hostile_archive" else HOSTILE_JSON)[0] in caught.value.message


def test_which_emulators_serve_hostile_data() -> None:
    served = {name: set(sandbox.emulator_class(name).supported_faults()) for name in providers.names()}
    for name in ("youlianyun", "huawei-cec", "polycom"):
        assert {"hostile_archive", "hostile_json"} <= served[name]
    assert "hostile_json" in served["laaffic"] and "hostile_archive" not in served["laaffic"]  # no archive
