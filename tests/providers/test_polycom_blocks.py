"""The block reader's byte scan, held to the plain definition it replaces."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cdrfetch.providers.polycom import blocks

_CONTROL = bytes(c for c in range(32) if c != 10)


def reference_lines(data: bytes) -> int:
    """-1 if a control byte other than \\n appears outside a \\r\\n pair, else the line count."""
    if len(data) - len(data.translate(None, _CONTROL)) != data.count(b"\r\n"):
        return -1
    return data.count(b"\n") + (not data.endswith(b"\n"))


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from([b"a", b",", b'"', b"\r", b"\n", b"\r\n", b"\t", b"\x00", b"\x1f", "é".encode()])))
def test_plain_lines_is_the_reference(pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    assert blocks._plain_lines(data) == reference_lines(data)


def test_plain_lines_edges() -> None:
    assert blocks._plain_lines(b"") == reference_lines(b"") == 1
    assert blocks._plain_lines(b"a\r") == -1  # a carriage return at the very end has no \n after it
    assert blocks._plain_lines(b"a\r\nb\r\n") == 2
    assert blocks._plain_lines(b"a\nb") == 2
