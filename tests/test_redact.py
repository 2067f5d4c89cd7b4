from __future__ import annotations

import logging

import pytest

from cdrfetch.redact import RedactingFilter, Redactor


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("POST https://h/Accounts/x/billList?sig=87BC2AF87E4F19425D9C60B2B1D7270C", "87BC2AF8"),
        ("GET http://h/fileserver/file?fileName=abc%2B&token=4302d5deb51110ebe7e8522f5c59412c", "4302d5de"),
        ("Authorization: MTc4NGZkNjJhZTM1NGExZWNhNTRmOGIzNGU1YTliYWY6MjAxNTEwMTMxNjA3NTY=", "MTc4NGZk"),
        ("authorization=Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ('{"Sign": "e10adc3949ba59abbe56e057f20f883e"}', "e10adc39"),
        ("Sign: e10adc3949ba59abbe56e057f20f883e", "e10adc39"),
    ],
)
def test_signature_shapes_are_masked(text: str, leak: str) -> None:
    assert leak not in Redactor()(text)


def test_known_secret_values_are_masked_anywhere() -> None:
    redact = Redactor()
    redact.add("0123456789abcdef", "ab")  # too-short values are ignored (would mask noise)
    assert redact("token was 0123456789abcdef here, ab") == "token was *** here, ab"


def test_filter_renders_arguments_before_masking(caplog: pytest.LogCaptureFixture) -> None:
    redact = Redactor()
    redact.add("hunter2hunter2")
    logger = logging.getLogger("cdrfetch.test-redact")
    logger.addFilter(RedactingFilter(redact))
    with caplog.at_level(logging.INFO, logger="cdrfetch.test-redact"):
        logger.info("password is %s", "hunter2hunter2")
    assert "hunter2" not in caplog.text and "***" in caplog.text
