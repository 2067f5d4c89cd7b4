"""Reading and vetting a zip's directory before any member is unpacked.

zipfile trusts the directory: it loads every entry the directory bytes hold (whatever count the end
record declares), lets whatever its parsing hits escape, and lets entries share bytes. Here the end
records are read from the file tail first, so the entry count is refused before the directory is
loaded, and every entry is checked (method, encryption, name, duplicates, overlaps, bounds) before
a byte of member data is read.
Refusals are DataErrors that are not retryable; bytes that do not add up are damage (retryable).
"""

from __future__ import annotations

import dataclasses
import re
import struct
from typing import BinaryIO

from cdrfetch.errors import DataError

STORED, DEFLATED = 0, 8
METHOD_NAMES = {1: "shrink", 6: "implode", 9: "deflate64", 12: "bzip2", 14: "lzma", 93: "zstd", 95: "xz", 99: "aes"}
MAX_DIRECTORY = 16 << 20  # directory bytes held in memory; ~200 bytes an entry in practice
_ENCRYPTED, _UTF8_NAME = 0x1, 0x800
_SATURATED = 0xFFFFFFFF  # a 32-bit field whose real value is in the zip64 extra block
_UNSAFE_NAME = re.compile(r"(^|[\\/])\.\.([\\/]|$)|^[\\/]|^[A-Za-z]:|\x00")

_END = struct.Struct("<4sHHHHIIH")  # end of central directory record
_LOCATOR = struct.Struct("<4sIQI")  # zip64 end of central directory locator
_END64 = struct.Struct("<4sQHHIIQQQQ")  # zip64 end of central directory record
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")  # central directory file header
_LOCAL = struct.Struct("<4sHHHHHIIIHH")  # local file header
_END_SIG, _LOCATOR_SIG, _END64_SIG = b"PK\x05\x06", b"PK\x06\x07", b"PK\x06\x06"
_CENTRAL_SIG, _LOCAL_SIG = b"PK\x01\x02", b"PK\x03\x04"
_TAIL = _END.size + 0xFFFF  # the end record plus the longest comment it can announce


@dataclasses.dataclass(frozen=True)
class Entry:
    """One directory entry, with `data` (where its compressed bytes start) once its header is read."""

    name: str
    raw: bytes
    method: int
    flags: int
    crc: int
    compressed: int
    size: int
    offset: int
    data: int = -1

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")


def damaged(name: str, what: str) -> DataError:
    return DataError(f"{name}: damaged archive ({what})", "the download is damaged; run again", retryable=True)


def refused(name: str, what: str) -> DataError:
    return DataError(f"{name}: {what}", "refusing a suspicious archive")


def read_entries(handle: BinaryIO, name: str, max_members: int) -> list[Entry]:
    """The vetted entries of the zip open in `handle`, each with its data offset; DataError otherwise."""
    count, start, end = _directory_span(handle, name, max_members)
    handle.seek(start)
    directory = handle.read(end - start)
    if len(directory) != end - start:
        raise damaged(name, "directory cut short")
    entries = _parse_directory(directory, count, name)
    names: set[str] = set()
    for entry in entries:
        _vet(entry, name)
        if entry.name in names:
            raise refused(name, f"member {entry.name!r} appears twice in the directory")
        names.add(entry.name)
    return _locate(handle, entries, start, name)


def _directory_span(handle: BinaryIO, name: str, max_members: int) -> tuple[int, int, int]:
    """(entry count, directory start, directory end) from the end records, count refused first."""
    size = handle.seek(0, 2)
    tail_start = max(0, size - _TAIL)
    handle.seek(tail_start)
    tail = handle.read()
    at = _find_end(tail)
    if at < 0:
        raise damaged(name, "no end of central directory record; cut short?")
    _, disk, cd_disk, on_disk, count, cd_size, cd_offset, _ = _END.unpack_from(tail, at)
    end = tail_start + at
    if at >= _LOCATOR.size and tail[at - _LOCATOR.size : at - _LOCATOR.size + 4] == _LOCATOR_SIG:
        _, _, end64, _ = _LOCATOR.unpack_from(tail, at - _LOCATOR.size)
        if end64 + _END64.size > end - _LOCATOR.size:
            raise damaged(name, "zip64 end record out of place")
        handle.seek(end64)
        record = handle.read(_END64.size)
        if len(record) != _END64.size or record[:4] != _END64_SIG:
            raise damaged(name, "zip64 end record missing")
        _, _, _, _, disk, cd_disk, on_disk, count, cd_size, cd_offset = _END64.unpack(record)
        end = end64
    if disk or cd_disk or on_disk != count:
        raise refused(name, "the archive spans several disks")
    if count > max_members:
        raise refused(name, f"{count} members is more than {max_members}")
    if cd_size > MAX_DIRECTORY:
        raise refused(name, f"a {cd_size}-byte directory is more than {MAX_DIRECTORY}")
    # The directory ends where the end records begin; anything else is a cut or a corrupt field.
    if cd_offset + cd_size != end or cd_size < count * _CENTRAL.size:
        raise damaged(name, "directory size or offset does not add up")
    return count, cd_offset, end


def _find_end(tail: bytes) -> int:
    """Offset in `tail` of the end record: the last one whose comment ends the file, else the last."""
    at = tail.rfind(_END_SIG, 0, len(tail) - _END.size + len(_END_SIG))
    last = at
    while at >= 0:
        if at + _END.size + int.from_bytes(tail[at + 20 : at + 22], "little") == len(tail):
            return at
        at = tail.rfind(_END_SIG, 0, at)
    return last


def _parse_directory(directory: bytes, count: int, name: str) -> list[Entry]:
    entries: list[Entry] = []
    pos = 0
    for _ in range(count):
        if pos + _CENTRAL.size > len(directory):
            raise damaged(name, "directory cut short")
        fields = _CENTRAL.unpack_from(directory, pos)
        sig, _, _, flags, method, _, _, crc, compressed, size, name_len, extra_len, comment_len = fields[:13]
        offset = fields[16]
        if sig != _CENTRAL_SIG:
            raise damaged(name, "bad directory entry")
        pos += _CENTRAL.size
        raw, extra = directory[pos : pos + name_len], directory[pos + name_len : pos + name_len + extra_len]
        pos += name_len + extra_len + comment_len
        if pos > len(directory):
            raise damaged(name, "directory entry runs past the directory")
        size, compressed, offset = _zip64(extra, [size, compressed, offset], name)
        entry = Entry(_decode_name(raw, flags, name), raw, method, flags, crc, compressed, size, offset)
        entries.append(entry)
    if pos != len(directory):
        raise damaged(name, "directory holds more than its declared entries")
    return entries


def _zip64(extra: bytes, fields: list[int], name: str) -> list[int]:
    """`fields` (sizes, offset), the saturated ones taken in order from the zip64 extra block."""
    pos = 0
    while pos + 4 <= len(extra):
        kind, length = struct.unpack_from("<HH", extra, pos)
        block = extra[pos + 4 : pos + 4 + length]
        if len(block) != length:
            raise damaged(name, "extra field cut short")
        if kind == 1:
            values = iter(struct.unpack_from(f"<{length // 8}Q", block))
            try:
                return [next(values) if field == _SATURATED else field for field in fields]
            except StopIteration:
                raise damaged(name, "zip64 extra block too short") from None
        pos += 4 + length
    return fields


def _decode_name(raw: bytes, flags: int, name: str) -> str:
    if not flags & _UTF8_NAME:
        return raw.decode("cp437")  # what zip tools assume when the UTF-8 flag is clear
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise refused(name, f"member name {raw!r} is flagged UTF-8 but is not valid UTF-8") from None


def _vet(entry: Entry, name: str) -> None:
    """Per-entry refusals, decided from the directory alone: no member byte has been read yet."""
    if entry.method not in (STORED, DEFLATED):
        method = f"{entry.method} ({METHOD_NAMES[entry.method]})" if entry.method in METHOD_NAMES else entry.method
        raise refused(name, f"member {entry.name!r} uses compression method {method}; only stored and deflate are read")
    if entry.flags & _ENCRYPTED:
        raise refused(name, f"member {entry.name!r} is encrypted")
    if _UNSAFE_NAME.search(entry.name):
        raise DataError(f"{name}: member {entry.name!r} escapes the archive", "refusing a malicious archive")


def _locate(handle: BinaryIO, entries: list[Entry], directory: int, name: str) -> list[Entry]:
    """Entries with their data offsets, in directory order, refusing any two that share bytes.

    Each entry spans its local header, name, extra field and compressed data. A bomb that points many
    entries at one member (or quotes headers inside another member's data) makes spans overlap.
    """
    located: dict[int, Entry] = {}
    previous: Entry | None = None
    reach = 0
    for index, entry in sorted(enumerate(entries), key=lambda item: item[1].offset):
        if previous is not None and entry.offset < reach:
            raise refused(name, f"members {previous.name!r} and {entry.name!r} overlap (a zip bomb)")
        if entry.offset + _LOCAL.size > directory:  # checked before seeking: zip64 offsets reach 2**64
            raise damaged(name, f"member {entry.name!r} starts past the end of the data")
        handle.seek(entry.offset)
        header = handle.read(_LOCAL.size)
        if header[:4] != _LOCAL_SIG:
            raise damaged(name, f"no local header for {entry.name!r}")
        name_len, extra_len = _LOCAL.unpack(header)[9:]
        if handle.read(name_len) != entry.raw:
            raise damaged(name, f"local header of {entry.name!r} names another file")
        data = entry.offset + _LOCAL.size + name_len + extra_len
        reach = data + entry.compressed
        if reach > directory:
            raise damaged(name, f"member {entry.name!r} runs past the end of the data")
        located[index] = dataclasses.replace(entry, data=data)
        previous = entry
    return [located[index] for index in range(len(entries))]
