"""Redaction of secrets from every log line and error message.

Two nets: the exact values of the run's secret settings, and the shapes that carry signatures or
tokens in any protocol (query parameters, Authorization/Sign headers). Both apply to every record
of the `cdrfetch` logger and to every error the CLI prints.
"""

from __future__ import annotations

import logging
import re
from typing import Any

MASK = "***"
_SHAPES = (
    # query or form parameters that carry signatures, tokens or passwords
    re.compile(r"(?i)([?&;](?:sig|sign|signature|token|access_token|password|secret)=)[^&\s\"']+"),
    # header lines and header-like "name: value" / "name=value" pairs
    re.compile(
        r"(?i)((?:authorization|sign|x-auth-token|proxy-authorization)\s*[:=]\s*)[^\s,;\"'}]+(?:\s+[^\s,;\"'}]+)?"
    ),
    # JSON members
    re.compile(r"(?i)(\"(?:token|sign|sig|password|secret|sk|auth_token|api_secret)\"\s*:\s*\")[^\"]*"),
)


class Redactor:
    """Masks known secret values and signature-bearing shapes in text."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, *secrets: str) -> None:
        """Remember secret values to mask (values shorter than 4 characters would mask noise)."""
        self._values.update(s for s in secrets if s and len(s) >= 4)

    def __call__(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, MASK)
        for shape in _SHAPES:
            text = shape.sub(lambda m: m.group(1) + MASK, text)
        return text

    def scrub(self, data: Any) -> Any:
        """`data` (JSON-like: dicts, lists, strings) with every string masked, keys included."""
        if isinstance(data, str):
            return self(data)
        if isinstance(data, dict):
            return {self.scrub(key): self.scrub(value) for key, value in data.items()}
        if isinstance(data, (list, tuple)):
            return [self.scrub(item) for item in data]
        return data


REDACTOR = Redactor()


class RedactingFilter(logging.Filter):
    """Logging filter that renders each record's message once and redacts it."""

    def __init__(self, redactor: Redactor = REDACTOR) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor(record.getMessage())
        record.args = None
        return True
