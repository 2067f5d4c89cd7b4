"""Sorted segments of fingerprints: searched and merged in memory, or moved to disk when full.

In memory a segment is two sorted numpy columns (hi, lo); `lower_bound` and `inserted` search and
merge whole sorted batches at once. A segment moved to disk (SpilledSegment) keeps a run's dedup
memory from growing with the export.

A run remembers every record id it wrote (to drop later repeats and to tell the ledger): 16 bytes
an id, 80 MB for a 5M-row export if all of it stayed in memory. A segment that has stopped growing
is written to an unnamed temp file in the run's spool directory instead; in memory stay only the
top 32 bits of each entry, sorted (4 bytes an entry). A query is looked up in those first. Among a
million entries a random fingerprint shares its top 32 bits with one in about 4,000, so the few
queries that match are then checked against their candidates' full 16 bytes in the file. The file
is memory-mapped: only the pages read are touched, and they are given back after each lookup.
"""

from __future__ import annotations

import mmap
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
Pair = tuple[U64, U64]  # (hi, lo) columns, sorted by (hi, lo)
_TOP = np.uint64(32)


def stored(hi: U64, lo: U64) -> npt.NDArray[np.uint64]:
    """Fingerprints as rows of two big-endian 64-bit words: the ledger's and the spill file's format."""
    rows = np.empty((len(hi), 2), ">u8")
    rows[:, 0], rows[:, 1] = hi, lo
    return rows


def order(hi: U64, lo: U64) -> npt.NDArray[np.intp]:
    """Indices sorting the fingerprints by (hi, lo); equal ones keep their input order (stable)."""
    order = np.argsort(hi)  # one numeric sort of 8-byte keys: many times faster than of 16-byte ones
    sorted_hi = hi[order]
    if (sorted_hi[1:] == sorted_hi[:-1]).any():  # repeats (or distinct ones sharing hi): order them exactly
        order = np.lexsort((lo, hi))  # stable, so the earliest of equal rows comes first
    return order


def lower_bound(segment: Pair, hi: U64, lo: U64) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    """Where each query would go in the sorted `segment`, by (hi, lo), and whether it is there.

    Sorted queries are several times faster (searchsorted then walks the segment in order)."""
    seg_hi, seg_lo = segment
    size = len(seg_hi)
    position = np.searchsorted(seg_hi, hi)  # sorted queries: cache friendly, and the only full search
    held = np.flatnonzero(position < size)
    held = held[seg_hi[position[held]] == hi[held]]  # queries whose hi the segment has
    # Most such queries meet one entry with their hi; where several share it (ids that are not
    # hash-like), bisect on lo between them, for all such queries at once.
    after = np.minimum(position[held] + 1, size - 1)
    shared = (position[held] + 1 < size) & (seg_hi[after] == hi[held])
    single = held[~shared]
    position[single] += seg_lo[position[single]] < lo[single]
    several = held[shared]
    if len(several):
        end = np.searchsorted(seg_hi, hi[several], "right")
        begin = position[several]
        open_ = np.flatnonzero(begin < end)
        while len(open_):
            middle = (begin[open_] + end[open_]) // 2
            above = seg_lo[middle] < lo[several[open_]]
            begin[open_] = np.where(above, middle + 1, begin[open_])
            end[open_] = np.where(above, end[open_], middle)
            open_ = open_[begin[open_] < end[open_]]
        position[several] = begin
    found = np.zeros(len(hi), bool)
    inside = held[position[held] < size]
    found[inside] = (seg_hi[position[inside]] == hi[inside]) & (seg_lo[position[inside]] == lo[inside])
    return position, found


def inserted(segment: Pair, position: npt.NDArray[np.intp], hi: U64, lo: U64) -> Pair:
    """The segment with sorted fingerprints it lacks put at their lower bounds `position`."""
    size = len(segment[0]) + len(hi)
    landing = position + np.arange(len(hi))  # each new one lands after the new ones before it
    old = np.ones(size, bool)
    old[landing] = False
    merged = []
    for existing, new in zip(segment, (hi, lo), strict=True):
        out = np.empty(size, np.uint64)
        out[landing], out[old] = new, existing
        merged.append(out)
    return merged[0], merged[1]


class SpilledSegment:
    """Sorted fingerprints kept in a temp file, with their top 32 bits in memory."""

    def __init__(self, hi: U64, lo: U64, directory: Path) -> None:
        self._file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 (lives as long as the set)
        self._file.write(stored(hi, lo).data)
        self._file.flush()
        self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        self._entries = np.frombuffer(self._map, ">u8").reshape(-1, 2)
        self._tops = (hi >> _TOP).astype(np.uint32)

    def __len__(self) -> int:
        return len(self._tops)

    def found(self, hi: U64, lo: U64) -> npt.NDArray[np.bool_]:
        """For each (sorted) query: whether the segment holds it."""
        tops = (hi >> _TOP).astype(np.uint32)
        begin = np.searchsorted(self._tops, tops, "left")
        end = np.searchsorted(self._tops, tops, "right")
        found = np.zeros(len(hi), bool)
        queries = np.flatnonzero(end > begin)
        if not len(queries):
            return found
        spans = end[queries] - begin[queries]  # the candidates of each query: entries sharing its top
        owner = np.repeat(queries, spans)
        within = np.arange(int(spans.sum())) - np.repeat(np.cumsum(spans) - spans, spans)
        candidates = self._entries[begin[owner] + within]
        match = (candidates[:, 0] == hi[owner]) & (candidates[:, 1] == lo[owner])
        found[owner[match]] = True
        self._release()
        return found

    def parts(self) -> Iterator[memoryview]:
        """The stored fingerprints (for the ledger), their pages given back once read."""
        yield memoryview(self._map)
        self._release()

    def _release(self) -> None:
        # The pages stay in the page cache; they only leave this process's resident set.
        if hasattr(mmap, "MADV_DONTNEED"):  # not on Windows, which trims working sets itself
            self._map.madvise(mmap.MADV_DONTNEED)
