"""Downloaded files: container sniffing, safe extraction, text decoding, delimiter sniffing.

Providers get archives from servers we do not control, so extraction never trusts a member name
(zip-slip), never trusts declared sizes (bombs), and reports damage as a DataError naming the file:
retryable for transfer damage (a fresh download may be whole), never for a refusal (bombs, escapes).
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import re
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from cdrfetch.errors import DataError

ZIP, GZIP, PLAIN = "zip", "gzip", "plain"
MAX_BYTES = 16 << 30  # total decompressed bytes accepted from one archive
MAX_RATIO = 1000  # decompressed / compressed; CDR text compresses ~10-30x, bombs far more
MAX_MEMBERS = 10_000
BLOCK = 1 << 20
DELIMITERS = (",", "\t", "|", ";")
_UNSAFE_NAME = re.compile(r"(^|[\\/])\.\.([\\/]|$)|^[\\/]|^[A-Za-z]:")


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


@dataclass(frozen=True)
class Member:
    """One extracted file: its name inside the archive and where it now lives."""

    name: str
    path: Path


def sniff(path: Path) -> str:
    """The container of `path` by its magic bytes: zip, gzip or plain."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head.startswith(b"PK\x03\x04") or head == b"PK\x05\x06":
        return ZIP
    if head.startswith(b"\x1f\x8b"):
        return GZIP
    return PLAIN


def extract(
    path: Path, dest: Path, *, name: str, max_bytes: int = MAX_BYTES, max_ratio: int = MAX_RATIO
) -> list[Member]:
    """Unpack `path` (zip, gzip or plain) into `dest`; members in name order. `name` is for errors."""
    kind = sniff(path)
    if kind == PLAIN:
        return [Member(name, path)]
    budget = min(max_bytes, max(path.stat().st_size, 1) * max_ratio)
    if kind == GZIP:
        target = dest / f"{path.name}.out"
        with gzip.open(path, "rb") as source:
            _copy(source, target, budget, name)
        return [Member(name.removesuffix(".gz"), target)]
    return _extract_zip(path, dest, name, budget)


def _extract_zip(path: Path, dest: Path, name: str, budget: int) -> list[Member]:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise DataError(
            f"{name}: not a readable zip archive", "the download is damaged; run again", retryable=True
        ) from None
    with archive:
        infos = sorted((i for i in archive.infolist() if not i.is_dir()), key=lambda i: i.filename)
        if len(infos) > MAX_MEMBERS:
            raise DataError(f"{name}: {len(infos)} members is more than {MAX_MEMBERS}", "refusing a suspicious archive")
        members = []
        for index, info in enumerate(infos):
            if _UNSAFE_NAME.search(info.filename):
                raise DataError(f"{name}: member {info.filename!r} escapes the archive", "refusing a malicious archive")
            target = dest / f"{path.stem}-{index:05d}"  # never a path derived from the member name
            budget -= _copy_member(archive, info, target, budget, f"{name}:{info.filename}")
            members.append(Member(info.filename, target))
        return members


def _copy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int, name: str) -> int:
    """Extract one member; a damaged local header or an unknown compression is bad data too."""
    try:
        source = archive.open(info)
    except (zipfile.BadZipFile, NotImplementedError, zlib.error, EOFError) as exc:
        raise DataError(
            f"{name}: damaged archive ({type(exc).__name__})", "the download is damaged; run again", retryable=True
        ) from None
    with source:
        return _copy(source, target, budget, name)


def _copy(source: _Readable, target: Path, budget: int, name: str) -> int:
    """Stream `source` into `target`, refusing more than `budget` bytes; returns bytes written."""
    written = 0
    try:
        with open(target, "wb") as out:
            while block := source.read(BLOCK):
                written += len(block)
                if written > budget:
                    raise DataError(f"{name}: expands beyond the size limit", "refusing a decompression bomb")
                out.write(block)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(
            f"{name}: damaged archive ({type(exc).__name__})", "the download is damaged; run again", retryable=True
        ) from None
    return written


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file's bytes (streamed), e.g. `md5` for tokens, `sha256` for checksums."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while block := handle.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def detect_encoding(path: Path, name: str) -> str:
    """UTF-8 (BOM tolerated) if the whole file decodes strictly, else GBK, else DataError."""
    with open(path, "rb") as handle:
        if handle.read(3) == codecs.BOM_UTF8:
            return _confirm(path, "utf-8-sig", name)
    try:
        _decode_all(path, "utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        return _confirm(path, "gbk", name)


def decode(data: bytes, name: str) -> tuple[str, str]:
    """(text, encoding) of an in-memory file by the rule of `detect_encoding`."""
    encodings = ("utf-8-sig",) if data.startswith(codecs.BOM_UTF8) else ("utf-8", "gbk")
    offset = 0
    for encoding in encodings:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError as exc:
            offset = exc.start
    raise _undecodable(name, offset)


def _confirm(path: Path, encoding: str, name: str) -> str:
    try:
        _decode_all(path, encoding)
    except UnicodeDecodeError as exc:
        raise _undecodable(name, exc.start) from None
    return encoding


def _undecodable(name: str, offset: int) -> DataError:
    return DataError(
        f"{name}: byte offset {offset}: not valid UTF-8 or GBK text", "the file is damaged or in an unknown encoding"
    )


def _decode_all(path: Path, encoding: str) -> None:
    """Decode the whole file incrementally (C speed, constant memory); raise on the first bad byte."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    offset = 0
    with open(path, "rb") as handle:
        while block := handle.read(BLOCK):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                raise UnicodeDecodeError(
                    exc.encoding, exc.object, offset + exc.start, offset + exc.end, exc.reason
                ) from None
            offset += len(block)
        decoder.decode(b"", final=True)


def open_text(path: Path, name: str) -> IO[str]:
    """The file as text in its detected encoding, newlines untranslated (for the csv module)."""
    return open(path, encoding=detect_encoding(path, name), newline="")


def head_lines(handle: Iterable[str], count: int = 20) -> list[str]:
    """Up to `count` non-blank lines from the start of `handle` (for sniffing)."""
    lines: list[str] = []
    for line in handle:
        if line.strip():
            lines.append(line)
            if len(lines) == count:
                break
    return lines


def sniff_delimiter(lines: list[str], *, min_fields: int = 2, header_names: Iterable[str] = (), name: str = "") -> str:
    """The delimiter among `DELIMITERS` giving a consistent field count >= `min_fields`.

    A delimiter that splits the first line into at least two `header_names` (case-insensitive) also
    wins. Ties go to the order of DELIMITERS. No fit raises DataError.
    """
    known = {h.lower() for h in header_names}
    for delimiter in DELIMITERS:
        rows = list(csv.reader(lines, delimiter=delimiter))
        if not rows:
            return DELIMITERS[0]
        # A blank line is one empty-looking field; a row of blank fields still counts its delimiters.
        counts = {len(row) for row in rows if len(row) > 1 or (row and row[0].strip())}
        header_hits = sum(cell.strip().lower() in known for cell in rows[0])
        if header_hits >= 2 or (len(counts) == 1 and counts.pop() >= min_fields):
            return delimiter
    raise DataError(f"{name}: cannot tell the column delimiter", f"expected one of {' '.join(map(repr, DELIMITERS))}")
