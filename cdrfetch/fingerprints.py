"""Record ids as 128-bit fingerprints, and sets of them probed a whole batch at a time.

The pipeline drops rows whose record_id it (or, per the ledger, a recent run) has written already.
Holding every id as a Python string costs over 100 bytes a row and a Python step per row; a
fingerprint is 16 bytes in a numpy array, and a batch is checked with a few array operations.

A fingerprint depends on the id alone (never on the other ids of its batch), so the same id gets the
same fingerprint in every batch, run and ledger. Ids of 40 lowercase hex digits (the SHA-1 ids of
`records.record_id`) are decoded, vectorized: the 160 bits with the first 32 folded (xor) into the
top of the other 128, so ids that agree on their first 8 digits, or on the next 8 (zero-padded
counters, say), never share a fingerprint. Any other id (a plugin's own strings) is hashed with
BLAKE2b-128, one Python call per value: correct, only slower. 128 bits and not 64 because a false
match silently drops a real record; at 128 bits the odds stay negligible over any ledger's lifetime.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

import numpy as np
import numpy.typing as npt
import pyarrow as pa

U64 = npt.NDArray[np.uint64]
Fingerprints = tuple[U64, U64]  # (hi, lo): the high and low 64 bits of each fingerprint, in row order
WIDTH = 16  # bytes per fingerprint when stored
HEX_DIGITS = 40
# A new owned segment is started beyond this many entries: inserting a batch copies only the newest
# segment, and no copy (the transient memory of an insert) ever exceeds 16 MiB.
SEGMENT_ENTRIES = 1 << 20

_NIBBLE = np.full(256, 255, np.uint8)  # each byte's hex value; 255 where it is no lowercase hex digit
_NIBBLE[np.frombuffer(b"0123456789abcdef", np.uint8)] = np.arange(16, dtype=np.uint8)
_NULL = b"\x00null"  # what a null id is hashed as (no str encodes to it: a str never holds a NUL here)


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
    hi, lo = np.zeros(n, np.uint64), np.zeros(n, np.uint64)
    if n == 0:
        return hi, lo
    _, offsets_buffer, data_buffer = array.buffers()
    offsets = np.frombuffer(offsets_buffer, width, n + 1, array.offset * np.dtype(width).itemsize)
    data = np.frombuffer(data_buffer, np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    starts = offsets[:-1].astype(np.int64)
    candidates = np.diff(offsets) == HEX_DIGITS
    if array.null_count:
        candidates &= array.is_valid().to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(candidates)
    if len(rows) == n:  # all 40 bytes long, hence back to back: one reshape, no gather
        digits = data[starts[0] : starts[0] + n * HEX_DIGITS].reshape(n, HEX_DIGITS)
    else:
        digits = data[starts[rows, None] + np.arange(HEX_DIGITS)]
    nibbles = _NIBBLE[digits]
    is_hex = (nibbles != 255).all(axis=1)
    decoded = rows[is_hex]
    hi[decoded], lo[decoded] = _decode(nibbles[is_hex])
    hashed = np.ones(n, bool)
    hashed[decoded] = False
    others = np.flatnonzero(hashed)
    if len(others):
        hi[others], lo[others] = _hashed(array.take(pa.array(others)).to_pylist())
    return hi, lo


def of_ids(ids: Iterable[str | None]) -> Fingerprints:
    """The fingerprints of ids given as Python strings (tests, and ledgers of the old schema)."""
    return of(pa.array(list(ids), pa.string()))


def _decode(nibbles: npt.NDArray[np.uint8]) -> Fingerprints:
    """40 hex digits per row (as nibbles) -> 160 bits, the first 32 xor-ed into the top of the last 128."""
    raw = (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]  # 20 bytes a row
    head = np.ascontiguousarray(raw[:, :4]).view(">u4")[:, 0].astype(np.uint64)
    hi = np.ascontiguousarray(raw[:, 4:12]).view(">u8")[:, 0].astype(np.uint64)
    lo = np.ascontiguousarray(raw[:, 12:]).view(">u8")[:, 0].astype(np.uint64)
    return hi ^ (head << np.uint64(32)), lo


def _hashed(values: list[str | None]) -> Fingerprints:
    digests = b"".join(
        hashlib.blake2b(_NULL if value is None else value.encode("utf-8"), digest_size=WIDTH).digest()
        for value in values
    )
    pairs = np.frombuffer(digests, ">u8").reshape(-1, 2)
    return pairs[:, 0].astype(np.uint64), pairs[:, 1].astype(np.uint64)


def _order(hi: U64, lo: U64) -> npt.NDArray[np.intp]:
    """Indices sorting the fingerprints by (hi, lo); equal ones keep their input order (stable)."""
    order = np.argsort(hi, kind="stable")  # one numeric sort: many times faster than sorting 16-byte keys
    sorted_hi = hi[order]
    tie = sorted_hi[1:] == sorted_hi[:-1]
    if tie.any():
        sorted_lo = lo[order]
        if (sorted_lo[1:][tie] != sorted_lo[:-1][tie]).any():  # distinct ones share hi: not for hashes
            order = np.lexsort((lo, hi))
    return order


def _lower_bound(segment: Fingerprints, hi: U64, lo: U64) -> npt.NDArray[np.intp]:
    """Where each query would go in the sorted `segment`: the first entry not below it, by (hi, lo)."""
    seg_hi, seg_lo = segment
    first = np.searchsorted(seg_hi, hi, "left")
    end = np.searchsorted(seg_hi, hi, "right")
    # Among the entries sharing a query's hi (none or one, unless ids are not hash-like) bisect on lo,
    # for all such queries at once; each round halves every open range.
    open_ = np.flatnonzero(first < end)
    while len(open_):
        middle = (first[open_] + end[open_]) // 2
        above = seg_lo[middle] < lo[open_]
        first[open_] = np.where(above, middle + 1, first[open_])
        end[open_] = np.where(above, end[open_], middle)
        open_ = open_[first[open_] < end[open_]]
    return first


def _in(segment: Fingerprints, hi: U64, lo: U64) -> npt.NDArray[np.bool_]:
    position = _lower_bound(segment, hi, lo)
    inside = np.flatnonzero(position < len(segment[0]))
    found = np.zeros(len(hi), bool)
    found[inside] = (segment[0][position[inside]] == hi[inside]) & (segment[1][position[inside]] == lo[inside])
    return found


class FingerprintSet:
    """A set of fingerprints: sorted (hi, lo) segments, probed with binary searches.

    Why segments: numpy has no sorted set, and re-sorting everything for each batch would cost
    O(size) per batch. Sorted arrays take 16 bytes an entry and answer a batch with searchsorted;
    a batch's new entries are inserted into the newest segment only (an O(segment) copy), and a
    new one is begun once it is full, so a lookup costs O(batch * log(size)) per segment.
    Segments read from the ledger (one per run and part) may overlap: lookups only ask "in any".
    """

    def __init__(self, segments: Iterable[Fingerprints] = ()) -> None:
        self._segments: list[Fingerprints] = [segment for segment in segments if len(segment[0])]
        self._growing = False  # whether the last segment was built here (and may take more)

    def __len__(self) -> int:
        """Entries held (counted once per segment: segments from several runs may share some)."""
        return sum(len(hi) for hi, _ in self._segments)

    def contains(self, fingerprints: Fingerprints) -> npt.NDArray[np.bool_]:
        """For each fingerprint: whether the set holds it."""
        hi, lo = fingerprints
        found = np.zeros(len(hi), bool)
        for segment in self._segments:
            found |= _in(segment, hi, lo)
        return found

    def first_sightings(
        self, fingerprints: Fingerprints, besides: FingerprintSet | None = None
    ) -> npt.NDArray[np.bool_]:
        """For each row: True where its fingerprint is neither held here (nor in `besides`) nor seen
        earlier in the batch; those are added."""
        hi, lo = fingerprints
        keep = np.zeros(len(hi), bool)
        if not len(hi):
            return keep
        order = _order(hi, lo)
        sorted_hi, sorted_lo = hi[order], lo[order]
        first = np.ones(len(hi), bool)  # the first of each run of equal ones: the earliest row (stable sort)
        first[1:] = (sorted_hi[1:] != sorted_hi[:-1]) | (sorted_lo[1:] != sorted_lo[:-1])
        unique_hi, unique_lo = sorted_hi[first], sorted_lo[first]
        new = ~self.contains((unique_hi, unique_lo))
        if besides is not None:
            new &= ~besides.contains((unique_hi, unique_lo))
        self._add(unique_hi[new], unique_lo[new])
        keep[order[first][new]] = True
        return keep

    def _add(self, hi: U64, lo: U64) -> None:
        """Insert sorted fingerprints that the set does not hold."""
        if not len(hi):
            return
        if self._growing and len(self._segments[-1][0]) + len(hi) <= SEGMENT_ENTRIES:
            segment = self._segments[-1]
            position = _lower_bound(segment, hi, lo)
            self._segments[-1] = (np.insert(segment[0], position, hi), np.insert(segment[1], position, lo))
        else:
            self._segments.append((hi.copy(), lo.copy()))
            self._growing = True

    def parts(self) -> Iterator[memoryview]:
        """Each segment as sorted 16-byte big-endian fingerprints (the ledger's storage format)."""
        for hi, lo in self._segments:
            stored = np.empty((len(hi), 2), ">u8")
            stored[:, 0], stored[:, 1] = hi, lo
            yield stored.data.cast("B")  # sqlite3 binds any buffer as a BLOB: no bytes copy

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
