"""Hostile archives: refused or reported as damage, fast, in bounded memory, leaving nothing behind.

Each test builds its archive bytes itself: `build_zip` packs local headers, the central directory
and the end records field by field, so any field can lie.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdrfetch import archive, zipcheck
from cdrfetch.errors import DataError, LocalIOError
from cdrfetch.sandbox.hostile import bzip2_zeros

ROOT = Path(__file__).resolve().parent.parent
TEXT = b"".join(
    b"2024-05-%02d 10:%02d:00,+8613800%06d,+8613900%06d,%d\n" % (i % 28 + 1, i % 60, i, i * 7, i % 300)
    for i in range(2000)
)


@dataclass
class Raw:
    """One member as `build_zip` writes it; `data` overrides the compressed bytes, the rest may lie."""

    name: bytes
    content: bytes = b""
    method: int = zipcheck.STORED
    flags: int = 0
    data: bytes | None = None
    size: int | None = None
    crc: int | None = None

    def stored(self) -> bytes:
        if self.data is not None:
            return self.data
        if self.method == zipcheck.DEFLATED:
            packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
            return packer.compress(self.content) + packer.flush()
        return self.content

    def fields(self) -> tuple[int, int, int, int, int]:
        """(flags, method, crc, compressed size, size) as the headers declare them."""
        crc = zlib.crc32(self.content) if self.crc is None else self.crc
        size = len(self.content) if self.size is None else self.size
        return self.flags, self.method, crc, len(self.stored()), size


def local_header(member: Raw) -> bytes:
    flags, method, crc, compressed, size = member.fields()
    head = struct.pack(
        "<4sHHHHHIIIHH", b"PK\x03\x04", 20, flags, method, 0, 0x21, crc, compressed, size, len(member.name), 0
    )
    return head + member.name


def central_header(member: Raw, offset: int, *, zip64: bool = False) -> bytes:
    flags, method, crc, compressed, size = member.fields()
    extra = b""
    if zip64:  # every size and the offset saturated, their values in the zip64 extra block
        extra = struct.pack("<HHQQQ", 1, 24, size, compressed, offset)
        size = compressed = offset = 0xFFFFFFFF
    head = struct.pack(
        "<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, flags, method, 0, 0x21, crc, compressed, size,
        len(member.name), len(extra), 0, 0, 0, 0, offset,
    )  # fmt: skip
    return head + member.name + extra


def end_records(count: int, size: int, offset: int, *, zip64: bool = False) -> bytes:
    if not zip64:
        return struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, count, count, size, offset, 0)
    record = struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size, offset)
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, offset + size, 1)
    return record + locator + struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, *[0xFFFFFFFF] * 2, 0)


def build_zip(members: list[Raw], directory: list[tuple[Raw, int]] | None = None, *, zip64: bool = False) -> bytes:
    """A zip of `members`; `directory` (entry, header offset) replaces the honest central directory."""
    body, offsets = b"", []
    for member in members:
        offsets.append(len(body))
        body += local_header(member) + member.stored()
    entries = directory if directory is not None else list(zip(members, offsets, strict=True))
    central = b"".join(central_header(member, offset, zip64=zip64) for member, offset in entries)
    return body + central + end_records(len(entries), len(central), len(body), zip64=zip64)


def write(tmp_path: Path, data: bytes, name: str = "hostile.zip") -> tuple[Path, Path]:
    (tmp_path / "out").mkdir()
    (tmp_path / name).write_bytes(data)
    return tmp_path / name, tmp_path / "out"


def refusal(source: Path, dest: Path, match: str, **limits: int) -> DataError:
    with pytest.raises(DataError, match=match) as caught:
        archive.extract(source, dest, name=source.name, **limits)
    assert source.name in caught.value.message
    assert list(dest.iterdir()) == [], "a refused archive leaves nothing behind"
    return caught.value


@pytest.mark.parametrize(("method", "label"), [(zipfile.ZIP_BZIP2, "bzip2"), (zipfile.ZIP_LZMA, "lzma")])
def test_bzip2_and_lzma_members_are_refused_before_anything_is_written(tmp_path: Path, method: int, label: str) -> None:
    source, dest = write(tmp_path, b"")
    with zipfile.ZipFile(source, "w") as bundle:
        bundle.writestr("a.csv", TEXT, compress_type=zipfile.ZIP_DEFLATED)  # first in name order
        bundle.writestr("b.csv", TEXT, compress_type=method)
    error = refusal(source, dest, rf"member 'b\.csv' uses compression method {method} \({label}\)")
    assert not error.retryable


def test_a_tiny_bzip2_bomb_is_refused_at_once_in_bounded_memory(tmp_path: Path) -> None:
    pytest.importorskip("resource")
    stream = bzip2_zeros(60)  # 2.4 GiB of zeros
    source, dest = write(tmp_path, build_zip([Raw(b"calls.csv", data=stream, method=12, size=60 * 40 << 20)]))
    assert 2_000 < source.stat().st_size < 3_000
    # A fresh interpreter, so the peak RSS measured is this extraction's alone.
    probe = (
        "import json, resource, sys, time\nfrom pathlib import Path\nfrom cdrfetch import archive, errors\n"
        "message = None\nbefore, start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()\n"
        "try:\n    archive.extract(Path(sys.argv[1]), Path(sys.argv[2]), name='bomb.zip')\n"
        "except errors.DataError as error:\n    message = error.message\n"
        "grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before\n"
        "print(json.dumps({'seconds': time.perf_counter() - start, 'rss_kib': grown, 'message': message}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", probe, str(source), str(dest)], capture_output=True, env=env, check=True
    )
    report = json.loads(done.stdout)
    assert "compression method 12 (bzip2)" in report["message"]
    assert report["seconds"] < 1.0
    assert report["rss_kib"] < 100 * 1024  # KiB on Linux; bytes (smaller still) on macOS
    assert list(dest.iterdir()) == []


@pytest.mark.parametrize("step", [0, 7, 30], ids=["same-offset", "inside-the-header", "inside-the-data"])
def test_entries_sharing_one_member_are_refused_fast(tmp_path: Path, step: int) -> None:
    zeros = Raw(b"0000.csv", bytes(1 << 20), method=zipcheck.DEFLATED)
    zeros = dataclasses.replace(zeros, data=zeros.stored(), crc=zlib.crc32(zeros.content))  # ~1 KiB, once
    entries = [(dataclasses.replace(zeros, name=b"%04d.csv" % i), i * step) for i in range(2000)]
    source, dest = write(tmp_path, build_zip([zeros], entries))
    started = time.perf_counter()
    error = refusal(source, dest, "overlap")
    assert time.perf_counter() - started < 0.5
    assert not error.retryable


def test_more_entries_than_max_members_are_refused_before_the_directory_is_read(tmp_path: Path) -> None:
    data = bytearray(build_zip([Raw(b"%d.csv" % i, b"x") for i in range(6)]))
    directory = struct.unpack_from("<I", data, len(data) - 6)[0]
    data[directory:-22] = bytes(len(data) - 22 - directory)  # garbage where the directory was
    source, dest = write(tmp_path, bytes(data))
    assert not refusal(source, dest, "6 members is more than 5", max_members=5).retryable
    with pytest.raises(DataError, match="damaged"):  # reading that directory would have failed
        archive.extract(source, dest, name="hostile.zip", max_members=6)


def test_a_zip64_count_of_a_trillion_entries_is_refused_from_the_end_record(tmp_path: Path) -> None:
    data = bytearray(build_zip([Raw(b"a.csv", b"x")], zip64=True))
    record = len(data) - 22 - 20 - 56
    struct.pack_into("<QQ", data, record + 24, 1 << 40, 1 << 40)
    source, dest = write(tmp_path, bytes(data))
    refusal(source, dest, f"{1 << 40} members is more than {archive.MAX_MEMBERS}")


def test_zip64_records_and_extra_fields_are_read(tmp_path: Path) -> None:
    members = [Raw(b"a.csv", TEXT, method=zipcheck.DEFLATED), Raw(b"b.csv", b"stored\n")]
    source, dest = write(tmp_path, build_zip(members, zip64=True))
    extracted = archive.extract(source, dest, name="z64.zip")
    assert [(m.name, m.path.read_bytes()) for m in extracted] == [("a.csv", TEXT), ("b.csv", b"stored\n")]


REFUSED = {
    "duplicate": ([Raw(b"calls.csv", b"1"), Raw(b"calls.csv", b"2")], "'calls.csv' appears twice"),
    "encrypted": ([Raw(b"a.csv", b"1"), Raw(b"b.csv", b"secret", flags=0x1)], "'b.csv' is encrypted"),
    "bad-utf8-name": ([Raw(b"\xff\xfe.csv", b"1", flags=0x800)], "flagged UTF-8 but is not valid UTF-8"),
    "deflate64": ([Raw(b"a.csv", data=b"\x03\x00", method=9)], r"method 9 \(deflate64\)"),
    "unknown-method": ([Raw(b"a.csv", data=b"??", method=77)], "method 77; only stored and deflate"),
    "nul-in-name": ([Raw(b"a.csv\x00../../x", b"1")], "escapes the archive"),
}


@pytest.mark.parametrize(("members", "match"), REFUSED.values(), ids=REFUSED.keys())
def test_a_hostile_directory_entry_is_refused(tmp_path: Path, members: list[Raw], match: str) -> None:
    source, dest = write(tmp_path, build_zip(members))
    assert not refusal(source, dest, match).retryable


def test_member_names_decode_by_their_flag(tmp_path: Path) -> None:
    members = [Raw("话单.csv".encode(), b"1", flags=0x800), Raw("Ä.csv".encode("cp437"), b"2")]
    source, dest = write(tmp_path, build_zip(members))
    assert [m.name for m in archive.extract(source, dest, name="n.zip")] == ["Ä.csv", "话单.csv"]


@pytest.mark.parametrize("where", [0.3, 0.5, 0.8])
def test_one_flipped_byte_in_a_deflate_stream_is_retryable_damage(tmp_path: Path, where: float) -> None:
    member = Raw(b"calls.csv", TEXT, method=zipcheck.DEFLATED)
    data = bytearray(build_zip([Raw(b"a.csv", b"first\n"), member]))
    start = len(local_header(Raw(b"a.csv", b"first\n"))) + len(b"first\n") + len(local_header(member))
    data[start + int(len(member.stored()) * where)] ^= 0x55
    source, dest = write(tmp_path, bytes(data))
    assert refusal(source, dest, "damaged").retryable


@pytest.mark.parametrize("keep", [0.5, 0.9, -1, -23], ids=["half", "most", "last-byte", "end-record"])
def test_a_truncated_archive_is_retryable_damage(tmp_path: Path, keep: float) -> None:
    data = build_zip([Raw(b"a.csv", TEXT, method=zipcheck.DEFLATED), Raw(b"b.csv", TEXT)])
    cut = int(len(data) * keep) if keep > 0 else len(data) + int(keep)
    source, dest = write(tmp_path, data[:cut])
    assert refusal(source, dest, "damaged").retryable


def test_a_truncated_gzip_is_retryable_damage(tmp_path: Path) -> None:
    source, dest = write(tmp_path, gzip.compress(TEXT)[:-100], "bill.gz")
    assert refusal(source, dest, "damaged").retryable


def test_a_deflate_bomb_is_refused_by_its_own_ratio(tmp_path: Path) -> None:
    # The incompressible member makes the archive large, so only the bomb's own ratio can stop it.
    members = [
        Raw(b"a.bin", random.Random(0).randbytes(256 << 10)),
        Raw(b"b.csv", bytes(8 << 20), method=zipcheck.DEFLATED),
    ]
    source, dest = write(tmp_path, build_zip(members))
    assert not refusal(source, dest, r"b\.csv: expands more than 100x", max_ratio=100).retryable


DAMAGED = {
    "crc": (Raw(b"a.csv", TEXT, crc=12345), "CRC or size mismatch"),
    "longer-than-declared": (Raw(b"a.csv", TEXT, method=zipcheck.DEFLATED, size=100), "more bytes than the directory"),
    "shorter-than-declared": (Raw(b"a.csv", TEXT, method=zipcheck.DEFLATED, size=len(TEXT) + 1), "size mismatch"),
    "deflate-cut-short": (Raw(b"a.csv", TEXT, method=zipcheck.DEFLATED, data=b"\x00\x05\x00\xfa\xffab"), "cut short"),
}


@pytest.mark.parametrize(("member", "match"), DAMAGED.values(), ids=DAMAGED.keys())
def test_a_member_that_does_not_match_its_entry_is_retryable_damage(tmp_path: Path, member: Raw, match: str) -> None:
    source, dest = write(tmp_path, build_zip([Raw(b"0.csv", b"first\n"), member]))
    assert refusal(source, dest, match).retryable


@pytest.mark.parametrize(
    "error",
    [struct.error("x"), ValueError("x"), OverflowError("x"), UnicodeDecodeError("utf-8", b"\xff", 0, 1, "x"),
     NotImplementedError("x"), OSError(5, "I/O error")],
    ids=lambda error: type(error).__name__,
)  # fmt: skip
def test_any_other_parse_failure_is_a_data_error_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    def fail(*_: object) -> list[zipcheck.Entry]:
        raise error

    monkeypatch.setattr(zipcheck, "read_entries", fail)
    source, dest = write(tmp_path, build_zip([Raw(b"a.csv", b"1")]))
    refusal(source, dest, rf"hostile\.zip: unreadable archive \({type(error).__name__}\)")


def test_an_unwritable_destination_is_a_local_io_error(tmp_path: Path) -> None:
    source, _ = write(tmp_path, build_zip([Raw(b"a.csv", b"1")]))
    with pytest.raises(LocalIOError, match="cannot write the unpacked file") as caught:
        archive.extract(source, tmp_path / "missing", name="hostile.zip")
    assert caught.value.exit_code == 74  # the local disk, not the provider's data


def _mutations() -> st.SearchStrategy[list[tuple[str, float, int]]]:
    operation = st.tuples(
        st.sampled_from(["flip", "flip", "flip", "truncate", "insert"]), st.floats(0, 1), st.integers(1, 255)
    )
    return st.lists(operation, min_size=1, max_size=4)


def _mutate(data: bytes, operations: list[tuple[str, float, int]]) -> bytes:
    mutated = bytearray(data)
    for kind, where, value in operations:
        # Past the 4 magic bytes: a file whose magic is gone is read as plain text, which tests nothing.
        at = min(4 + int(where * (len(mutated) - 4)), len(mutated) - 1)
        if at < 4:
            break
        if kind == "flip":
            mutated[at] ^= value
        elif kind == "truncate":
            del mutated[at:]
        else:
            mutated[at:at] = bytes([value]) * (value % 5 + 1)
    return bytes(mutated)


VALID = {
    ".zip": build_zip([Raw(b"a.csv", TEXT[:3000], method=zipcheck.DEFLATED), Raw(b"b/c.csv", b"stored,row\n")]),
    ".gz": gzip.compress(TEXT[:3000], mtime=0),
}


@pytest.mark.parametrize("suffix", VALID)
@settings(max_examples=200, deadline=None)
@given(operations=_mutations())
def test_a_mutated_archive_extracts_or_raises_a_data_error(
    suffix: str, operations: list[tuple[str, float, int]]
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        source, dest = write(Path(scratch), _mutate(VALID[suffix], operations), f"mutated{suffix}")
        try:
            members = archive.extract(source, dest, name=source.name)
        except DataError as error:
            assert source.name in error.message
            assert list(dest.iterdir()) == []
        else:
            assert all(member.path.is_file() for member in members)
