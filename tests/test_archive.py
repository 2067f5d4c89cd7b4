from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdrfetch import archive
from cdrfetch.errors import DataError


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_sniff_by_magic_bytes(tmp_path: Path) -> None:
    (tmp_path / "p").write_bytes(b"a,b\n")
    (tmp_path / "g").write_bytes(gzip.compress(b"a,b\n"))
    make_zip(tmp_path / "z", {"a.csv": b"a,b\n"})
    assert [archive.sniff(tmp_path / n) for n in "pgz"] == ["plain", "gzip", "zip"]


def test_zip_members_come_out_in_name_order(tmp_path: Path) -> None:
    source = make_zip(tmp_path / "bill.zip", {"x_call_2.csv": b"2", "x_call_1.csv": b"1", "dir/": b""})
    members = archive.extract(source, tmp_path, name="bill.zip")
    assert [m.name for m in members] == ["x_call_1.csv", "x_call_2.csv"]
    assert [m.path.read_bytes() for m in members] == [b"1", b"2"]


@pytest.mark.parametrize("evil", ["../escape.csv", "/etc/passwd", "a/../../b.csv", "C:/x.csv", "..\\x.csv"])
def test_zip_slip_is_refused(tmp_path: Path, evil: str) -> None:
    source = make_zip(tmp_path / "evil.zip", {evil: b"x"})
    with pytest.raises(DataError, match="escapes"):
        archive.extract(source, tmp_path / "out", name="evil.zip")


def test_bombs_are_refused(tmp_path: Path) -> None:
    (tmp_path / "bomb.gz").write_bytes(gzip.compress(b"0" * 5_000_000))
    with pytest.raises(DataError, match="size limit"):
        archive.extract(tmp_path / "bomb.gz", tmp_path, name="bomb.gz", max_ratio=100)
    source = make_zip(tmp_path / "bomb.zip", {"a.csv": b"0" * 5_000_000})
    with pytest.raises(DataError, match="size limit"):
        archive.extract(source, tmp_path, name="bomb.zip", max_bytes=1_000_000)


def test_damaged_archives_are_data_errors(tmp_path: Path) -> None:
    good = make_zip(tmp_path / "good.zip", {"a.csv": b"a,b,c\n" * 1000}).read_bytes()
    (tmp_path / "cut.zip").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match=r"cut\.zip"):
        archive.extract(tmp_path / "cut.zip", tmp_path, name="cut.zip")
    (tmp_path / "cut.gz").write_bytes(gzip.compress(b"a,b,c\n" * 1000)[:40])
    with pytest.raises(DataError, match="damaged"):
        archive.extract(tmp_path / "cut.gz", tmp_path, name="cut.gz")


def test_a_damaged_local_header_is_a_data_error(tmp_path: Path) -> None:
    data = bytearray(make_zip(tmp_path / "h.zip", {"a.csv": b"a,b,c\n" * 100}).read_bytes())
    data[:4] = b"PK\x03\x04"  # still sniffed as zip
    data[26:28] = b"\xff\xff"  # local header: file name length now points past the data
    (tmp_path / "h.zip").write_bytes(bytes(data))
    with pytest.raises(DataError, match="damaged"):
        archive.extract(tmp_path / "h.zip", tmp_path, name="h.zip")


@pytest.mark.parametrize(
    ("data", "encoding"),
    [("名,b\n".encode(), "utf-8"), (b"\xef\xbb\xbfa,b\n", "utf-8-sig"), ("直拨,b\n".encode("gbk"), "gbk")],
)
def test_encoding_detection(tmp_path: Path, data: bytes, encoding: str) -> None:
    (tmp_path / "f").write_bytes(data)
    assert archive.detect_encoding(tmp_path / "f", "f") == encoding
    with archive.open_text(tmp_path / "f", "f") as handle:
        assert not handle.read().startswith("\ufeff")


def test_undecodable_text_names_the_offset(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc\n" * 10 + b"\xff\xff\xff")
    with pytest.raises(DataError, match="f: byte offset 40"):
        archive.detect_encoding(tmp_path / "f", "f")


@pytest.mark.parametrize("delimiter", archive.DELIMITERS)
def test_delimiter_sniffing(delimiter: str) -> None:
    lines = [delimiter.join(["a", "b", "c", "d", "e"]) + "\n"] * 3
    assert archive.sniff_delimiter(lines, min_fields=5) == delimiter


def test_header_names_decide_the_delimiter() -> None:
    assert archive.sniff_delimiter(["ClientId;Callee\n"], header_names=["clientid", "callee"]) == ";"
    with pytest.raises(DataError, match="delimiter"):
        archive.sniff_delimiter(["a b c\n", "d e\n"], min_fields=5, name="x")


def test_blank_fields_still_count_their_delimiters() -> None:
    assert archive.sniff_delimiter([" \t \t \t \t \n"], min_fields=5) == "\t"
    assert archive.sniff_delimiter(["a,b,c,d,e\n", "   \n", "f,g,h,i,j\n"], min_fields=5) == ","


@given(
    st.lists(
        st.lists(st.text(alphabet="abc 12", min_size=1, max_size=5), min_size=5, max_size=5), min_size=1, max_size=10
    )
)
def test_sniffing_finds_tab_for_any_tab_table(rows: list[list[str]]) -> None:
    lines = ["\t".join(r) + "\n" for r in rows]
    assert archive.sniff_delimiter(lines, min_fields=5) == "\t"
    assert io.StringIO("".join(lines)).read().count("\t") == 4 * len(rows)
