"""Hostile files and answers for the `hostile_archive` and `hostile_json` faults, built byte by byte.

An emulator hands over what it would honestly serve (the members of its zip, the object of its JSON
answer) and gets back the hostile bytes. The zips are packed field by field here, because zipfile
refuses to write most of them (two entries over one member, a method it cannot compress, a name
with `..`). The bombs are built from repeated compressed blocks, so they cost kilobytes to serve
and a few hundred milliseconds to build, once per process.
"""

from __future__ import annotations

import bz2
import functools
import json
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from cdrfetch.sandbox.faults import HOSTILE_ARCHIVES, HOSTILE_JSON
from cdrfetch.sandbox.server import Reply

STORED, DEFLATED, BZIP2 = 0, 8, 12
MIB = 1 << 20
BOMB_MIB = 2000  # what each bomb expands to: more than a client may hold in memory
BZIP2_BOMB_COPIES = BOMB_MIB // 40  # one block of 40 MiB of zeros repeated: 2000 MiB from about 2 KiB
SHARED_ENTRIES = 2000  # directory entries over one 1 MiB member: 2000 MiB if each is unpacked
DEPTH = 100_000
HUGE_BYTES = 65 * MIB  # over the clients' default 64 MiB answer limit
_BZIP2_BLOCK_MAGIC, _BZIP2_END_MAGIC = 0x314159265359, 0x177245385090


@dataclass(frozen=True)
class Entry:
    """One zip member as the headers will declare it; `data` is its bytes as stored."""

    name: bytes
    data: bytes
    method: int
    crc: int
    size: int
    flags: int = 0


def archive(kind: str, members: Sequence[tuple[str, bytes]]) -> bytes:
    """The zip `kind` (one of HOSTILE_ARCHIVES) makes of the honest `members` (name, content)."""
    if kind not in HOSTILE_ARCHIVES:
        raise ValueError(f"hostile_archive {kind!r}: expected one of {', '.join(HOSTILE_ARCHIVES)}")
    honest = [deflated(name, content) for name, content in members]
    first = honest[0]
    if kind == "bzip2_bomb":
        return pack([Entry(first.name, bzip2_zeros(BZIP2_BOMB_COPIES), BZIP2, zeros_crc(BOMB_MIB), BOMB_MIB * MIB)])
    if kind == "deflate_bomb":  # deflate tops out near 1030:1: about 2 MiB
        return pack([Entry(first.name, deflate_zeros(BOMB_MIB), DEFLATED, zeros_crc(BOMB_MIB), BOMB_MIB * MIB)])
    if kind == "shared_members":
        zeros = Entry(first.name, deflate_zeros(1), DEFLATED, zeros_crc(1), MIB)
        names = [first.name] + [b"%05d-%s" % (i, first.name) for i in range(1, SHARED_ENTRIES)]
        return pack([zeros], [(replace(zeros, name=name), 0) for name in names])
    if kind == "duplicate_entries":  # the second copy says something else under the same name
        return pack([*honest, deflated(first.name.decode(), b"a second member under the same name\n")])
    if kind == "encrypted":
        return pack([replace(first, flags=first.flags | 0x1), *honest[1:]])
    if kind == "zip_slip":
        return pack([replace(first, name=b"../../" + first.name), *honest[1:]])
    return flip_one_byte(honest)


def deflated(name: str, content: bytes) -> Entry:
    """An honest deflated member."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    data = packer.compress(content) + packer.flush()
    return Entry(name.encode("utf-8"), data, DEFLATED, zlib.crc32(content), len(content), flags=0x800)


def flip_one_byte(members: list[Entry]) -> bytes:
    """The honest zip with one byte in the middle of its largest member's compressed data flipped."""
    target = max(range(len(members)), key=lambda index: len(members[index].data))
    data = bytearray(members[target].data)
    data[len(data) // 2] ^= 0x55
    return pack([*members[:target], replace(members[target], data=bytes(data)), *members[target + 1 :]])


def pack(members: Sequence[Entry], directory: Sequence[tuple[Entry, int]] | None = None) -> bytes:
    """Local headers and data of `members`, then a directory: honest, or `directory` (entry, offset)."""
    body, offsets = bytearray(), []
    for member in members:
        offsets.append(len(body))
        body += _header(member) + member.data
    entries = directory if directory is not None else list(zip(members, offsets, strict=True))
    central = b"".join(_central(entry, offset) for entry, offset in entries)
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), len(body), 0)
    return bytes(body) + central + end


def _header(entry: Entry) -> bytes:
    fields = (20, entry.flags, entry.method, 0, 0x21, entry.crc, len(entry.data), entry.size, len(entry.name), 0)
    return struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", *fields) + entry.name


def _central(entry: Entry, offset: int) -> bytes:
    fields = (entry.flags, entry.method, 0, 0x21, entry.crc, len(entry.data), entry.size, len(entry.name))
    return struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, *fields, 0, 0, 0, 0, 0, offset) + entry.name


@functools.cache
def deflate_zeros(mib: int) -> bytes:
    """A raw deflate stream of `mib` MiB of zeros: one fully flushed MiB repeated, then a final empty block."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    # a full flush ends byte-aligned with nothing to refer back to, so the piece can simply repeat
    piece = packer.compress(bytes(MIB)) + packer.flush(zlib.Z_FULL_FLUSH)
    return piece * mib + b"\x03\x00"


@functools.cache
def zeros_crc(mib: int) -> int:
    """CRC-32 of `mib` MiB of zeros."""
    crc, block = 0, bytes(MIB)
    for _ in range(mib):
        crc = zlib.crc32(block, crc)
    return crc


@functools.cache
def bzip2_zeros(copies: int) -> bytes:
    """One bzip2 stream of `copies` x 40 MiB of zeros: a single compressed block repeated bit for bit.

    Blocks are not byte-aligned, so the stream is taken apart as a string of bits: the 'BZh9' header,
    the block (from its magic to the end-of-stream magic), the 32-bit combined CRC and the padding.
    """
    packer = bz2.BZ2Compressor(9)
    for _ in range(40):
        packer.compress(bytes(MIB))
    single = packer.flush()
    bits = format(int.from_bytes(single, "big"), f"0{len(single) * 8}b")
    end_magic = format(_BZIP2_END_MAGIC, "048b")
    # the end magic, its CRC and 0-7 bits of padding close the stream
    end = next(at for at in range(len(bits) - 80, len(bits) - 88, -1) if bits[at : at + 48] == end_magic)
    block = bits[32:end]
    if int(block[:48], 2) != _BZIP2_BLOCK_MAGIC:
        raise AssertionError("bzip2 wrote more than one block")  # pragma: no cover
    block_crc, combined = int(block[48:80], 2), 0
    for _ in range(copies):
        combined = (((combined << 1) | (combined >> 31)) & 0xFFFFFFFF) ^ block_crc
    stream = bits[:32] + block * copies + end_magic + format(combined, "032b")
    stream += "0" * (-len(stream) % 8)
    return int(stream, 2).to_bytes(len(stream) // 8, "big")


def json_reply(kind: str, payload: Any, key: str) -> Reply:
    """A JSON answer of `payload`: honest when `kind` is '', else made hostile by `json_answer`."""
    reply = Reply.json(payload)
    if kind:
        reply.body = json_answer(kind, payload, key)
    return reply


def json_answer(kind: str, payload: Any, key: str) -> bytes:
    """`payload` as JSON made hostile by `kind` (one of HOSTILE_JSON), at the first value under `key`.

    deep: that value nested DEPTH levels down; wrong_types: the value inside a list; lone_surrogate:
    a \\ud800 escape (no character) added to its text; huge: the honest answer after HUGE_BYTES of
    whitespace. The value is searched depth-first; an answer without `key` gets it at the top level.
    """
    if kind not in HOSTILE_JSON:
        raise ValueError(f"hostile_json {kind!r}: expected one of {', '.join(HOSTILE_JSON)}")
    if kind == "huge":
        return b" " * HUGE_BYTES + json.dumps(payload).encode("utf-8")
    marker = "\x00deep\x00"  # a text no answer holds, swapped for the nesting once encoded
    copy = json.loads(json.dumps(payload))
    holder = _holder(copy, key) or copy
    value = holder.get(key, "")
    holder[key] = marker if kind == "deep" else [value] if kind == "wrong_types" else f"{value}\ud800"
    text = json.dumps(copy)  # ensure_ascii: the surrogate goes out as the escape \ud800, not as bytes
    if kind == "deep":
        text = text.replace(json.dumps(marker), "[" * DEPTH + "]" * DEPTH)
    return text.encode("ascii")


def _holder(value: Any, key: str) -> dict[str, Any] | None:
    """The first object (depth-first) that has `key`."""
    if isinstance(value, dict):
        if key in value:
            return value
        children: Any = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return None
    for child in children:
        found = _holder(child, key)
        if found is not None:
            return found
    return None
