"""How far an account is complete in a table destination, advanced one stored chunk at a time.

The state is a watermark per (provider, account): every record up to it is stored. A stored chunk
moves it only when the chunk covers it (or, with no watermark yet, covers the chunk's anchor). A
chunk stored after a gap is remembered but leaves the watermark where it is; when the gap is filled,
the watermark moves on across every remembered chunk that now joins on. So chunks may be stored in
any order, any number of times, and the state never claims a gap as complete.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from cdrfetch.destinations.base import Chunk

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def advance(
    watermark: datetime | None, chunk: Chunk, end_of_chunk_at: Callable[[datetime], datetime | None]
) -> datetime | None:
    """The watermark once `chunk` is stored; `end_of_chunk_at(t)` is the end of a stored chunk starting at t."""
    reached = watermark if watermark is not None else chunk.anchor
    if not chunk.start <= reached < chunk.end:
        return watermark  # before the watermark (nothing new), or after a gap (waits for the gap)
    reached = chunk.end
    while (following := end_of_chunk_at(reached)) is not None and following > reached:
        reached = following
    return reached


def to_millis(moment: datetime) -> int:
    """A moment as whole milliseconds since 1970 (how the table destinations store it)."""
    return (moment - EPOCH) // _MILLI


def from_millis(millis: int) -> datetime:
    return EPOCH + millis * _MILLI


_MILLI = datetime(1970, 1, 1, 0, 0, 0, 1000, tzinfo=timezone.utc) - EPOCH
