"""Setting values: raw text (YAML, env, --set) to typed values within their range, and the rules
between settings that every provider shares."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from cdrfetch.errors import ConfigError, DataError

if TYPE_CHECKING:
    from cdrfetch.config import Resolved
    from cdrfetch.providers.base import Setting

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def convert(setting: Setting, raw: Any, source: str) -> Any:
    """Convert a raw value (YAML scalar or text) to the setting's kind, checking choices."""
    try:
        if setting.kind is bool and not isinstance(raw, bool):
            text = str(raw).strip().lower()
            if text not in _TRUE | _FALSE:
                raise ValueError(text)
            value: Any = text in _TRUE
        else:
            value = setting.kind(raw)
    except (TypeError, ValueError):
        raise ConfigError(
            f"setting {setting.name!r} from {source}: {'<secret>' if setting.secret else repr(raw)} "
            f"is not a valid {setting.kind.__name__}",
            setting.help,
        ) from None
    _check_range(setting, value, source)
    if setting.choices and str(value) not in setting.choices:
        raise ConfigError(
            f"setting {setting.name!r} from {source}: {value!r} is not one of {', '.join(setting.choices)}",
            setting.help,
        )
    return value


def _check_range(setting: Setting, value: Any, source: str) -> None:
    if setting.kind is float and not math.isfinite(value):  # inf and nan compare false with every bound
        raise ConfigError(f"setting {setting.name!r} from {source}: {value!r} is not a finite number", setting.help)
    low, high = setting.minimum, setting.maximum
    below, above = low is not None and value < low, high is not None and value > high
    if setting.kind not in (int, float) or not (below or above):
        return
    valid = f"at least {low:g}" if high is None else f"at most {high:g}" if low is None else f"{low:g} to {high:g}"
    raise ConfigError(f"setting {setting.name!r} from {source}: {value!r} is out of range ({valid})", setting.help)


def check_consistent(resolved: Resolved) -> None:
    """Rules between settings that every provider shares."""
    from urllib.parse import urlsplit

    from cdrfetch.http import check_url, in_the_clear

    if resolved["base_url"]:
        try:
            check_url(str(resolved["base_url"]), f"{resolved.provider}: base_url")
        except DataError as error:
            raise ConfigError(
                error.message, "base_url is an absolute http(s) URL, e.g. https://api.example.com"
            ) from None
    base = urlsplit(str(resolved["base_url"] or ""))
    if in_the_clear(str(resolved["base_url"] or "")) and not resolved["allow_http"]:
        raise ConfigError(
            f"{resolved.provider}: base_url {base.scheme}://{base.netloc} is plain http: credentials would cross "
            "the network in the clear",
            "use https://, or set `allow_http: true` if the network is trusted (warned on every run)",
        )
    if resolved["ca_bundle"] and resolved["insecure"]:
        raise ConfigError(
            f"{resolved.provider}: `ca_bundle` and `insecure: true` contradict each other",
            "keep `ca_bundle` (verification against your CA) and remove `insecure`",
        )
