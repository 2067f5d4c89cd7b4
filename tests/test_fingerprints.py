"""Record-id fingerprints and the vectorized dedup, against a plain Python reference."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdrfetch import fingerprints
from cdrfetch.fingerprints import FingerprintSet, of, of_ids
from cdrfetch.segments import SpilledSegment


def sha1(n: int) -> str:
    return hashlib.sha1(str(n).encode()).hexdigest()


# Ids of every kind the dedup must tell apart: SHA-1 hex (decoded); 40-hex ids that share their
# high 64 fingerprint bits (zero-padded counters: the slow tie paths); plugin strings (hashed):
# uppercase hex, 40 characters with one not hex, empty, non-ASCII.
POOL = [
    *(sha1(n) for n in range(12)),
    *(f"{n:040x}" for n in range(6)),
    *(f"{n:08x}" + "0" * 32 for n in range(1, 4)),
    sha1(1).upper(),
    sha1(2)[:39] + "g",
    sha1(3)[:39],
    "",
    "callid-17",
    "1240301123456 00001",
    "Zürich-é" * 5,
]
ids = st.sampled_from(POOL) | st.text(max_size=8)


def reference(batches: list[list[str]], already: list[str]) -> list[list[bool]]:
    """The old row-wise dedup: keep the first sighting of each id, across batches and `already`."""
    seen = set(already)
    kept = []
    for batch in batches:
        keep = []
        for rid in batch:
            keep.append(rid not in seen)
            seen.add(rid)
        kept.append(keep)
    return kept


@settings(max_examples=300, deadline=None)
@given(
    batches=st.lists(st.lists(ids, max_size=12), max_size=6),
    already=st.lists(ids, max_size=8),
    segment=st.sampled_from([1, 3, 1 << 20]),
    spilled=st.booleans(),
)
def test_vectorized_dedup_matches_the_row_wise_reference(
    batches: list[list[str]], already: list[str], segment: int, spilled: bool
) -> None:
    original = fingerprints.SEGMENT_ENTRIES
    fingerprints.SEGMENT_ENTRIES = segment  # small segments: every insert and lookup path, many segments
    with tempfile.TemporaryDirectory() as directory:
        spill = Path(directory) if spilled else None  # on disk: every full segment, whatever its size
        try:
            previous = FingerprintSet.of_ids(already)
            written = FingerprintSet(spill=spill)
            got = [written.first_sightings(of_ids(batch), previous).tolist() for batch in batches]
            stored = [bytes(part) for part in written.parts()]
        finally:
            fingerprints.SEGMENT_ENTRIES = original
        assert got == reference(batches, already)
        fresh = {rid for batch in batches for rid in batch} - set(already)
        assert len(written) == len(fresh)  # exactly the new ids are remembered, each once
        assert written.contains(of_ids(sorted(fresh))).all()
        assert not written.contains(of_ids(sorted(set(already)))).any()
    assert sum(map(len, stored)) == fingerprints.WIDTH * len(fresh)  # spilled parts outlive their set's directory
    assert FingerprintSet.from_parts(stored).contains(of_ids(sorted(fresh))).all()


@given(st.lists(ids, max_size=30))
def test_stored_parts_are_sorted_and_come_back_whole(values: list[str]) -> None:
    built = FingerprintSet()
    for start in range(0, len(values), 4):
        built.first_sightings(of_ids(values[start : start + 4]))
    parts = [bytes(part) for part in built.parts()]
    for part in parts:
        assert len(part) % fingerprints.WIDTH == 0
        keys = [part[i : i + 16] for i in range(0, len(part), 16)]
        assert keys == sorted(set(keys))  # big-endian bytes sort as (hi, lo): the order lookups need
    back = FingerprintSet.from_parts(parts)
    assert back.contains(of_ids(values)).all()
    assert len(back) == len(set(values))
    assert not back.contains(of_ids([v + "+" for v in values if v + "+" not in values])).any()


def test_hex_ids_are_decoded_and_others_hashed() -> None:
    hi, lo = of_ids([sha1(0), "x"])
    raw = bytes.fromhex(sha1(0))
    head = int.from_bytes(raw[:4], "big")
    assert int(hi[0]) == int.from_bytes(raw[4:12], "big") ^ (head << 32)
    assert int(lo[0]) == int.from_bytes(raw[12:], "big")
    assert (int(hi[1]), int(lo[1])) == short_reference(b"x")
    long = "x" * (fingerprints.SHORT_ID + 1)
    digest = hashlib.blake2b(long.encode(), digest_size=16).digest()
    [long_hi], [long_lo] = of_ids([long])
    assert (int(long_hi), int(long_lo)) == (int.from_bytes(digest[:8], "big"), int.from_bytes(digest[8:], "big"))


MASK = (1 << 64) - 1


def _mix(state: int) -> int:
    state ^= state >> 33
    state = (state * 0xFF51AFD7ED558CCD) & MASK
    state ^= state >> 33
    state = (state * 0xC4CEB9FE1A85EC53) & MASK
    return state ^ (state >> 33)


def short_reference(raw: bytes) -> tuple[int, int]:
    """The vectorized hash of a short id, one Python integer at a time: 8-byte little-endian words,
    zero-padded, absorbed by two lanes seeded with the length."""
    words = [int.from_bytes(raw[at : at + 8].ljust(8, b"\0"), "little") for at in range(0, len(raw), 8)]
    lanes = []
    for seed, multiplier in ((0x243F6A8885A308D3, 0x9E3779B97F4A7C15), (0x13198A2E03707344, 0xC2B2AE3D27D4EB4F)):
        state = seed ^ ((len(raw) * multiplier) & MASK)
        for word in words:
            state = _mix(((state ^ word) * multiplier) & MASK)
        lanes.append(_mix(state))
    return lanes[0], lanes[1]


@settings(max_examples=200)
@given(st.lists(st.text(max_size=fingerprints.SHORT_ID // 4), min_size=1, max_size=40), st.data())
def test_short_ids_hash_as_the_reference_whatever_their_batch(ids: list[str], data: st.DataObject) -> None:
    ids = [value for value in ids if len(value) != 40]  # not hex-shaped: these take the hash path
    if not ids:
        return
    hi, lo = of_ids(ids)
    for position, value in enumerate(ids):
        assert (int(hi[position]), int(lo[position])) == short_reference(value.encode("utf-8"))
    start = data.draw(st.integers(0, len(ids) - 1))
    sliced = of(pa.array(ids).slice(start))  # an array that starts inside its buffers
    assert (sliced[0] == hi[start:]).all() and (sliced[1] == lo[start:]).all()


def test_ids_that_differ_only_at_either_end_get_different_fingerprints() -> None:
    counters = [f"{n:040x}" for n in range(1000)] + [f"{n:08x}" + "f" * 32 for n in range(1000)]
    hi, lo = of_ids(counters)
    assert len({(int(h), int(low)) for h, low in zip(hi, lo, strict=True)}) == len(counters)


def test_a_value_has_one_fingerprint_whatever_column_it_is_in() -> None:
    values = [sha1(n) for n in range(50)]
    alone = of_ids(values)
    mixed = of_ids([*values[:25], "plugin id", None, *values[25:]])
    keep = np.r_[0:25, 27:52]
    assert (mixed[0][keep] == alone[0]).all() and (mixed[1][keep] == alone[1]).all()
    column = pa.array(["pad", *values, "pad"])
    for same in (
        of(column.slice(1, 50)),
        of(pa.array(values, pa.large_string())),
        of(pa.chunked_array([values[:10], values[10:]])),
    ):
        assert (same[0] == alone[0]).all() and (same[1] == alone[1]).all()


def test_nulls_are_one_id_apart_from_the_empty_string() -> None:
    written = FingerprintSet()
    assert written.first_sightings(of_ids([None, "", None, ""])).tolist() == [True, True, False, False]
    assert written.first_sightings(of(pa.array([None, "x"]))).tolist() == [False, True]


def test_only_string_columns_have_fingerprints() -> None:
    with pytest.raises(TypeError, match="strings"):
        of(pa.array([1, 2]))


def test_a_large_batch_against_many_segments() -> None:
    original = fingerprints.SEGMENT_ENTRIES
    fingerprints.SEGMENT_ENTRIES = 5_000
    try:
        written = FingerprintSet()
        for start in range(0, 40_000, 4_000):
            batch = [sha1(n) for n in range(start, start + 4_000)]
            assert written.first_sightings(of_ids(batch)).all()
        again = [sha1(n) for n in range(39_000, 41_000)]
        assert written.first_sightings(of_ids(again)).tolist() == [False] * 1_000 + [True] * 1_000
        assert len(written) == 41_000 and 8 <= len(list(written.parts())) <= 12  # full ones, then a binary counter
    finally:
        fingerprints.SEGMENT_ENTRIES = original


def test_ids_sharing_their_high_bits_stay_in_order_across_batches() -> None:
    # zero-padded counters: one hi for all, so inserts and lookups must order them by lo
    c = [f"{n:040x}" for n in range(6)]
    written = FingerprintSet()
    batches = [[c[1]], [c[3]], [c[1], c[3], c[2]], [c[0], c[5]], [c[4], c[2], c[0], c[5]]]
    got = [written.first_sightings(of_ids(batch)).tolist() for batch in batches]
    assert got == reference(batches, [])
    parts = [bytes(part) for part in written.parts()]
    for part in parts:
        keys = [part[i : i + 16] for i in range(0, len(part), 16)]
        assert keys == sorted(keys)
    assert sum(len(part) for part in parts) == 6 * 16 and len(parts) < len(batches)  # some were merged


def test_a_spilled_segment_tells_apart_ids_that_share_their_top_bits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fingerprints, "SEGMENT_ENTRIES", 8)  # spilled from 4 entries on
    counters = [f"{n:040x}" for n in range(0, 40, 2)]  # one top 32 bits for all: only the file tells them apart
    written = FingerprintSet(spill=tmp_path)
    for start in range(0, len(counters), 4):
        assert written.first_sightings(of_ids(counters[start : start + 4])).all()
    assert any(isinstance(segment, SpilledSegment) for segment in written._segments)
    odd = [f"{n:040x}" for n in range(1, 40, 2)]
    assert written.contains(of_ids(counters)).all() and not written.contains(of_ids(odd)).any()
    assert written.first_sightings(of_ids([counters[3], odd[3], counters[3]])).tolist() == [False, True, False]
