"""The plain-ASCII shortcut picks the encoding archive.detect_encoding would pick."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdrfetch import archive
from cdrfetch.errors import DataError
from cdrfetch.providers.huawei_cec import parse

_PIECES = [b"a,b\r\n", b"\x7f", b"\x00", "汉".encode(), "汉".encode("gbk"), b"\xff", codecs.BOM_UTF8]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(_PIECES)))
def test_ascii_is_utf8_as_detect_encoding_says(tmp_path_factory: pytest.TempPathFactory, pieces: list[bytes]) -> None:
    path = Path(tmp_path_factory.mktemp("enc")) / "x_call.csv"
    path.write_bytes(b"".join(pieces))
    try:
        detected: str | None = archive.detect_encoding(path, path.name)
    except DataError:
        detected = None
    if parse._ascii(path):
        assert detected == "utf-8"
    else:
        assert not b"".join(pieces).isascii()
