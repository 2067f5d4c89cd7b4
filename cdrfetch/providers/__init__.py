"""The provider registry: every module here (but `base`) exports `PROVIDER = <Provider subclass>`.

Names are discovered without importing the modules (module `huawei_cec` -> provider
`huawei-cec`), so `cdrfetch --help` stays fast; a provider is imported when it is used.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cdrfetch.providers.base import Provider

_NOT_PROVIDERS = {"base"}


def names() -> list[str]:
    """Every provider name, sorted."""
    return sorted(
        info.name.replace("_", "-")
        for info in pkgutil.iter_modules(__path__)
        if info.name not in _NOT_PROVIDERS and not info.name.startswith("_")
    )


def module_name(name: str) -> str:
    """`huawei-cec` -> `huawei_cec`."""
    return name.replace("-", "_")


def load(name: str) -> type[Provider]:
    """The provider class registered under `name`."""
    module = importlib.import_module(f"{__name__}.{module_name(name)}")
    provider: type[Provider] = module.PROVIDER
    return provider
