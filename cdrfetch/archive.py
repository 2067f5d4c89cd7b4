"""Downloaded files: container sniffing, safe extraction, text decoding, delimiter sniffing.

Providers get archives from servers we do not control, so extraction never trusts a member name
(zip-slip), never trusts declared sizes (bombs), and reports damage as a DataError naming the file:
retryable for transfer damage (a fresh download may be whole), never for a refusal (bombs, escapes).
A zip's directory is vetted by cdrfetch.zipcheck before any member is read; members are then
streamed here, stored or deflate only, in bounded blocks, against a per-member ratio and the
archive's total budget.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import hashlib
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Protocol

from cdrfetch import zipcheck
from cdrfetch.errors import DataError, LocalIOError

ZIP, GZIP, PLAIN = "zip", "gzip", "plain"
MAX_BYTES = 16 << 30  # total decompressed bytes accepted from one archive
MAX_RATIO = 1000  # decompressed / compressed; CDR text compresses ~10-30x, bombs far more
MAX_MEMBERS = 10_000  # zip entries; counted from the end record before the directory is read
BLOCK = 1 << 20
DELIMITERS = (",", "\t", "|", ";")


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
    path: Path,
    dest: Path,
    *,
    name: str,
    max_bytes: int = MAX_BYTES,
    max_ratio: int = MAX_RATIO,
    max_members: int = MAX_MEMBERS,
) -> list[Member]:
    """Unpack `path` (zip, gzip or plain) into `dest`; members in name order. `name` is for errors.

    Every failure is a DataError naming the file, and leaves nothing of this call behind in `dest`.
    """
    kind = sniff(path)
    if kind == PLAIN:
        return [Member(name, path)]
    limits = _Limits(min(max_bytes, max(path.stat().st_size, 1) * max_ratio), max_ratio)
    written: list[Path] = []
    try:
        if kind == GZIP:
            written.append(dest / f"{path.name}.out")
            with gzip.open(path, "rb") as source:
                _drain(_blocks(source), written[0], limits, name)
            return [Member(name.removesuffix(".gz"), written[0])]
        return _extract_zip(path, dest, name, limits, max_members, written)
    except BaseException as exc:
        for target in written:
            target.unlink(missing_ok=True)
        if isinstance(exc, (zlib.error, EOFError, gzip.BadGzipFile)):  # a cut or garbled stream
            raise zipcheck.damaged(name, type(exc).__name__) from None
        if isinstance(exc, _HOSTILE):  # any other way that bytes which do not parse can surface
            raise DataError(
                f"{name}: unreadable archive ({type(exc).__name__})", "refusing a malformed archive"
            ) from None
        raise


# struct/ValueError/OverflowError: impossible fields; NotImplementedError: unsupported features;
# OSError: reads (writes raise their own DataError in _drain). UnicodeDecodeError is a ValueError.
_HOSTILE = (struct.error, ValueError, OverflowError, NotImplementedError, OSError)


@dataclass
class _Limits:
    budget: int  # decompressed bytes still accepted from the whole archive
    ratio: int  # decompressed / compressed bytes accepted from any one member


def _extract_zip(
    path: Path, dest: Path, name: str, limits: _Limits, max_members: int, written: list[Path]
) -> list[Member]:
    with open(path, "rb") as handle:
        entries = zipcheck.read_entries(handle, name, max_members)  # all vetted before any is unpacked
        _refuse_declared_bombs(entries, name, limits)
        members = []
        for index, entry in enumerate(sorted((e for e in entries if not e.is_dir), key=lambda e: e.name)):
            target = dest / f"{path.stem}-{index:05d}"  # never a path derived from the member name
            written.append(target)
            where = f"{name}:{entry.name}"
            _drain(_member(handle, entry, limits.ratio, where), target, limits, where)
            members.append(Member(entry.name, target))
        return members


def _refuse_declared_bombs(entries: list[zipcheck.Entry], name: str, limits: _Limits) -> None:
    """A directory announcing a bomb is refused before a byte is inflated, not gigabytes later.

    Sizes that lie are caught while streaming (`_member`, `_drain`), as is anything under a block:
    reading that costs little, and a member cut short inside an intact directory reads as damage."""
    if (total := sum(entry.size for entry in entries)) > limits.budget:
        raise DataError(f"{name}: expands beyond the size limit ({total} bytes)", "refusing a decompression bomb")
    for entry in entries:
        if entry.size > max(BLOCK, max(entry.compressed, 1) * limits.ratio):
            where = f"{name}:{entry.name}: expands more than {limits.ratio}x its compressed size"
            raise DataError(f"{where} ({entry.size} bytes from {entry.compressed})", "refusing a zip bomb")


def _member(handle: BinaryIO, entry: zipcheck.Entry, ratio: int, name: str) -> Iterator[bytes]:
    """The bytes of one vetted member in blocks, refusing a bomb and reporting damage as it streams."""
    handle.seek(entry.data)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS) if entry.method == zipcheck.DEFLATED else None
    limit = max(entry.compressed, 1) * ratio  # whatever the member declares about itself
    size = crc = 0
    left = entry.compressed
    while left:
        chunk = handle.read(min(BLOCK, left))
        if not chunk:
            raise zipcheck.damaged(name, "cut short")
        left -= len(chunk)
        for block in _inflate(inflater, chunk) if inflater else (chunk,):
            size += len(block)
            if size > limit:
                raise DataError(f"{name}: expands more than {ratio}x its compressed size", "refusing a zip bomb")
            if size > entry.size:
                raise zipcheck.damaged(name, "more bytes than the directory declares")
            crc = zlib.crc32(block, crc)
            yield block
    if inflater is not None and not inflater.eof:
        raise zipcheck.damaged(name, "deflate stream cut short")
    if size != entry.size or crc != entry.crc:
        raise zipcheck.damaged(name, "CRC or size mismatch")


def _inflate(inflater: zlib._Decompress, chunk: bytes) -> Iterator[bytes]:
    """`chunk` decompressed at most BLOCK bytes at a time, so a dense chunk cannot flood memory."""
    while True:
        block = inflater.decompress(chunk, BLOCK)
        if block:
            yield block
        chunk = inflater.unconsumed_tail
        # A full block may leave output pending inside zlib even when all input is consumed.
        if not chunk and len(block) < BLOCK:
            return


def _blocks(source: _Readable) -> Iterator[bytes]:
    while block := source.read(BLOCK):
        yield block


def _drain(blocks: Iterable[bytes], target: Path, limits: _Limits, name: str) -> None:
    """Write `blocks` into `target`, refusing more than the archive's remaining budget."""
    with contextlib.ExitStack() as stack:
        try:
            out = stack.enter_context(open(target, "wb"))
        except OSError as exc:
            raise _unwritable(name, exc) from None
        for block in blocks:
            limits.budget -= len(block)
            if limits.budget < 0:
                raise DataError(f"{name}: expands beyond the size limit", "refusing a decompression bomb")
            try:
                out.write(block)
            except OSError as exc:
                raise _unwritable(name, exc) from None


def _unwritable(name: str, exc: OSError) -> LocalIOError:
    """A full or failing local disk is the run's failure (74), not the provider's data."""
    return LocalIOError(
        f"{name}: cannot write the unpacked file ({exc.strerror or exc})",
        "check the free space and permissions of the work directory",
    )


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
