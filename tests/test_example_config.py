"""configs/cdrfetch.example.yaml documents every provider, with known settings and no secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cdrfetch import providers

EXAMPLE = Path(__file__).resolve().parent.parent / "configs" / "cdrfetch.example.yaml"


@pytest.mark.parametrize("name", providers.names())
def test_every_provider_has_a_valid_block_without_secrets(name: str) -> None:
    profile = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))["profiles"]["default"]
    assert name in profile, f"add a `{name}:` block to {EXAMPLE.name}"
    settings = {s.name: s for s in providers.load(name).all_settings()}
    block = profile[name]
    assert set(block) <= set(settings), f"unknown keys: {set(block) - set(settings)}"
    assert not [key for key in block if settings[key].secret]
    required = {s.name for s in settings.values() if s.is_required and not s.secret}
    assert required <= set(block), f"required settings missing from the example: {required - set(block)}"
