"""Acme Voice: the shared provider contract over loopback, and a known-answer signing vector."""

from __future__ import annotations

from cdrfetch_acme.provider import signature

from cdrfetch.testing.contract import ProviderContract


class TestAcmeContract(ProviderContract):
    provider = "acme"
    main_route = "/v1/calls"


def test_signature_known_answer() -> None:
    # HMAC-SHA256("s3cret", "GET\n/v1/calls?from=2024-01-01T00:00:00Z\n1704067200"), computed independently
    expected = "ca2a046fb457a34a2a8ea435dbc31581869c0fee24901aa48b721617290e3efa"
    assert signature("s3cret", "/v1/calls?from=2024-01-01T00:00:00Z", "1704067200") == expected
