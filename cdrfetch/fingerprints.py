"""Record ids as 128-bit fingerprints, and sets of them probed a whole batch at a time.

The pipeline drops rows whose record_id it (or, per the ledger, a recent run) has written already.
Holding every id as a Python string costs over 100 bytes a row and a Python step per row; a
fingerprint is 16 bytes in a numpy array, and a batch is checked with a few array operations.

A fingerprint depends on the id alone (never on the other ids of its batch), so the same id gets the
same fingerprint in every batch, run and ledger. Ids of 40 lowercase hex digits (the SHA-1 ids of
`records.record_id`) are decoded, vectorized: the 160 bits with the first 32 folded (xor) into the
top of the other 128, so ids that agree on their first 8 digits, or on the next 8 (zero-padded
counters, say), never share a fingerprint. Any other id of up to SHORT_ID bytes (Polycom's and
Laaffic's ids, a plugin's own strings) is hashed by a vectorized two-lane 128-bit hash; a longer
one, or a null, with BLAKE2b-128, one Python call per value. 128 bits and not 64 because a false
match silently drops a real record; at 128 bits the odds stay negligible over any ledger's lifetime.
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from cdrfetch.segments import SpilledSegment, inserted, lower_bound, order, stored

U64 = npt.NDArray[np.uint64]
Fingerprints = tuple[U64, U64]  # (hi, lo): the high and low 64 bits of each fingerprint, in row order
Segment = Fingerprints | SpilledSegment
Rows = TypeVar("Rows", pa.RecordBatch, pa.Table)
WIDTH = 16  # bytes per fingerprint when stored
HEX_DIGITS = 40
# Segments are merged up to this many entries and no further: no merge (its copy, and the transient
# memory that takes) exceeds 16 MiB, and a 5M-id run is searched in about a dozen segments. A set
# with a spill directory moves each segment that has reached half that to disk (cdrfetch.segments).
SEGMENT_ENTRIES = 1 << 20
# Other ids up to this many bytes are hashed vectorized (_mixed_words); longer ones with BLAKE2b.
SHORT_ID = 64
_LANES = (
    (np.uint64(0x243F6A8885A308D3), np.uint64(0x9E3779B97F4A7C15)),
    (np.uint64(0x13198A2E03707344), np.uint64(0xC2B2AE3D27D4EB4F)),
)  # (seed, odd multiplier) per lane

_HEX = b"0123456789abcdef"
_NIBBLE = np.full(256, 255, np.uint8)  # each byte's hex value; 255 where it is no lowercase hex digit
_NIBBLE[np.frombuffer(_HEX, np.uint8)] = np.arange(16, dtype=np.uint8)
_DECODED = np.dtype([("head", ">u4"), ("hi", ">u8"), ("lo", ">u8")])  # 40 hex digits, decoded (packed)


def of(column: pa.Array | pa.ChunkedArray) -> Fingerprints:
    """The fingerprints of a string column's values, in row order."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_large_string(array.type):
        width: type[np.integer] = np.int64
    elif pa.types.is_string(array.type):
        width = np.int32
    else:
        raise TypeError(f"record ids must be strings, not {array.type}")
    n = len(array)
    if n == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    _, offsets_buffer, data_buffer = array.buffers()
    offsets = np.frombuffer(offsets_buffer, width, n + 1, array.offset * np.dtype(width).itemsize)
    first, last = int(offsets[0]), int(offsets[-1])
    if last - first == n * HEX_DIGITS and not array.null_count and data_buffer is not None:
        digits = data_buffer[first:last].to_pybytes()
        if not digits.translate(None, _HEX) and (np.diff(offsets) == HEX_DIGITS).all():
            return _decode(binascii.unhexlify(digits))  # every id SHA-1 like: the usual case, all in C
    return _mixed(array, offsets.astype(np.int64), data_buffer)


def of_ids(ids: Iterable[str | None]) -> Fingerprints:
    """The fingerprints of ids given as Python strings (tests, and ledgers of the old schema)."""
    return of(pa.array(list(ids), pa.string()))


def _mixed(array: pa.Array, offsets: npt.NDArray[np.int64], data_buffer: pa.Buffer | None) -> Fingerprints:
    """Decode the rows that are 40 lowercase hex digits, hash the others."""
    n = len(array)
    hi, lo = np.zeros(n, np.uint64), np.zeros(n, np.uint64)
    lengths = np.diff(offsets)
    valid = array.is_valid().to_numpy(zero_copy_only=False) if array.null_count else np.ones(n, bool)
    data = np.frombuffer(data_buffer, np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    candidates = (lengths == HEX_DIGITS) & valid
    rows = np.flatnonzero(candidates)
    if len(rows):
        digits = data[offsets[rows, None] + np.arange(HEX_DIGITS)]
        is_hex = (_NIBBLE[digits] != 255).all(axis=1)
        decoded = rows[is_hex]
        hi[decoded], lo[decoded] = _decode(binascii.unhexlify(digits[is_hex].tobytes()))
        candidates[rows[~is_hex]] = False
    short = ~candidates & valid & (lengths <= SHORT_ID)
    rows = np.flatnonzero(short)
    if len(rows):
        hi[rows], lo[rows] = _mixed_words(data, offsets[rows], lengths[rows])
    others = np.flatnonzero(~candidates & ~short)
    if len(others):
        hi[others], lo[others] = _hashed(array.take(pa.array(others)).to_pylist())
    return hi, lo


def _mixed_words(
    data: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]
) -> Fingerprints:
    """Ids of at most SHORT_ID bytes, hashed a whole batch at a time: each id is laid out in zero-padded
    8-byte words, and two 64-bit lanes (seeded with the length, so padding never matches a real zero
    byte) absorb the words in turn through an invertible step and a final mix. An id differing in one
    word changes both lanes for certain; ids differing in several collide only by chance (2**-128)."""
    width = max(8, -(-int(lengths.max()) // 8) * 8)
    first = int(starts.min())
    source = np.concatenate([data[first : int((starts + lengths).max())], np.zeros(width, np.uint8)])
    window = np.arange(width)
    padded = source[(starts - first)[:, None] + window]  # each id's bytes and whatever follows it ...
    padded[window >= lengths[:, None]] = 0  # ... cut to the id
    words = np.ascontiguousarray(padded.view("<u8").T)  # one row of words per position
    counts = -(-lengths // 8)  # an id's own words: the batch's longest id must not change the others'
    lanes = []
    for seed, multiplier in _LANES:
        state = seed ^ (lengths.astype(np.uint64) * multiplier)
        for position, word in enumerate(words):
            mixed = _finalized((state ^ word) * multiplier)
            state = np.where(position < counts, mixed, state)
        lanes.append(_finalized(state))
    return lanes[0], lanes[1]


def _finalized(state: U64) -> U64:
    """A 64-bit mix in which every input bit reaches every output bit (invertible, so nothing is lost)."""
    state = state ^ (state >> np.uint64(33))
    state = state * np.uint64(0xFF51AFD7ED558CCD)
    state = state ^ (state >> np.uint64(33))
    state = state * np.uint64(0xC4CEB9FE1A85EC53)
    mixed: U64 = state ^ (state >> np.uint64(33))
    return mixed


def _decode(raw: bytes) -> Fingerprints:
    """20 bytes a row (160 bits) -> the last 128 bits with the first 32 xor-ed into their top."""
    rows = np.frombuffer(raw, _DECODED)
    head = rows["head"].astype(np.uint64)
    return rows["hi"].astype(np.uint64) ^ (head << np.uint64(32)), rows["lo"].astype(np.uint64)


def _hashed(values: list[str | None]) -> Fingerprints:
    digests = b"".join(
        hashlib.blake2b(value.encode("utf-8"), digest_size=WIDTH).digest()
        if value is not None
        else hashlib.blake2b(digest_size=WIDTH, person=b"cdrfetch null id").digest()  # apart from every string
        for value in values
    )
    pairs = np.frombuffer(digests, ">u8").reshape(-1, 2)
    return pairs[:, 0].astype(np.uint64), pairs[:, 1].astype(np.uint64)


def unseen(data: Rows, seen: FingerprintSet, *besides: FingerprintSet | None) -> Rows:
    """The rows of `data` (a batch or a table) whose record_id neither `seen` nor any of `besides` holds
    nor an earlier row repeats, in order; `seen` takes them in."""
    keep = seen.first_sightings(of(data.column("record_id")), *besides)
    return data if keep.all() else data.filter(pa.array(keep))


def _entries(segment: Segment) -> int:
    return len(segment) if isinstance(segment, SpilledSegment) else len(segment[0])


class FingerprintSet:
    """A set of fingerprints: sorted (hi, lo) segments, probed with binary searches.

    Why this shape: numpy has no hash set, and a Python set costs over 100 bytes and a Python step
    per id. Sorted arrays take 16 bytes an entry and answer a whole (sorted) batch with one
    searchsorted over the 64-bit `hi` column, numpy's fast numeric kernel; `lo` is only read where
    `hi` matches. Sorting or searching 16-byte void/structured keys instead is 5-30 times slower.
    A batch's new entries become a segment, merged with the newest one while that is no larger (a
    binary counter): O(log n) segments, each entry copied O(log n) times, whatever the batch size.
    Merged segments stop growing at SEGMENT_ENTRIES, which bounds a merge's transient memory; with
    a `spill` directory, they go to disk from half that size, so memory stays about 4 bytes an entry.
    Segments read from the ledger (one per stored part) may overlap; they are only ever searched.
    """

    def __init__(self, segments: Iterable[Fingerprints] = (), spill: Path | None = None) -> None:
        self._segments: list[Segment] = [segment for segment in segments if len(segment[0])]
        self._given = len(self._segments)  # the first ones, never merged (they may overlap)
        self._spill = spill

    def __len__(self) -> int:
        """Entries held (counted once per segment: segments from several runs may share some)."""
        return sum(map(_entries, self._segments))

    def contains(self, fingerprints: Fingerprints) -> npt.NDArray[np.bool_]:
        """For each fingerprint: whether the set holds it."""
        hi, lo = fingerprints
        found = np.zeros(len(hi), bool)
        for segment in self._segments:
            found |= segment.found(hi, lo) if isinstance(segment, SpilledSegment) else lower_bound(segment, hi, lo)[1]
        return found

    def first_sightings(self, fingerprints: Fingerprints, *besides: FingerprintSet | None) -> npt.NDArray[np.bool_]:
        """For each row: True where its fingerprint is neither held here nor in any of `besides` nor
        seen earlier in the batch; those are added."""
        hi, lo = fingerprints
        keep = np.zeros(len(hi), bool)
        if not len(hi):
            return keep
        ranks = order(hi, lo)
        sorted_hi, sorted_lo = hi[ranks], lo[ranks]
        first = np.ones(len(hi), bool)  # the first of each run of equal ones: the earliest row (stable sort)
        first[1:] = (sorted_hi[1:] != sorted_hi[:-1]) | (sorted_lo[1:] != sorted_lo[:-1])
        unique = (sorted_hi[first], sorted_lo[first])  # sorted: each segment is walked in order
        new = ~self.contains(unique)
        for other in besides:
            if other is not None and new.any():
                new &= ~other.contains(unique)
        if new.any():
            self._push((unique[0][new], unique[1][new]))
        keep[ranks[first][new]] = True
        return keep

    def _push(self, segment: Fingerprints) -> None:
        """Add sorted fingerprints the set lacks, merge while the newest two are in binary-counter order,
        then spill the newest if it has grown to half a full segment."""
        self._segments.append(segment)
        while len(self._segments) - self._given >= 2:
            older, newer = self._segments[-2], self._segments[-1]
            if isinstance(older, SpilledSegment) or isinstance(newer, SpilledSegment):
                break
            if len(older[0]) > len(newer[0]) or len(older[0]) + len(newer[0]) > SEGMENT_ENTRIES:
                break
            position, _ = lower_bound(older, *newer)  # disjoint: each lands before its lower bound
            self._segments[-2:] = [inserted(older, position, *newer)]
        newest = self._segments[-1]
        if self._spill is None or isinstance(newest, SpilledSegment) or len(self._segments) == self._given:
            return
        if len(newest[0]) >= SEGMENT_ENTRIES // 2:
            self._segments[-1] = SpilledSegment(newest[0], newest[1], self._spill)

    def absorb(self, other: FingerprintSet) -> None:
        """Take in the entries of `other`, none of which this set holds (`other` is not used again)."""
        for segment in other._segments:
            if isinstance(segment, SpilledSegment):
                self._segments.insert(self._given, segment)  # before the in-memory ones, which may still merge
            else:
                self._push(segment)

    def parts(self) -> Iterator[memoryview]:
        """Each segment as sorted 16-byte big-endian fingerprints (the ledger's storage format)."""
        for segment in self._segments:
            if isinstance(segment, SpilledSegment):
                yield from segment.parts()
            else:
                yield stored(*segment).data.cast("B")  # sqlite3 binds any buffer as a BLOB: no bytes copy

    @classmethod
    def from_parts(cls, parts: Iterable[bytes]) -> FingerprintSet:
        """The set of stored parts (each sorted, as `parts` writes them)."""
        segments = []
        for part in parts:
            pairs = np.frombuffer(part, ">u8").reshape(-1, 2)
            segments.append((pairs[:, 0].astype(np.uint64), pairs[:, 1].astype(np.uint64)))
        return cls(segments)

    @classmethod
    def of_ids(cls, ids: Iterable[str]) -> FingerprintSet:
        """The set of these ids."""
        found = cls()
        found.first_sightings(of_ids(ids))
        return found
