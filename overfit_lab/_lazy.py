"""Names of a package imported on first use, so importing the package stays light."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list]]:
    """A package's ``__getattr__`` and ``__dir__`` for ``exports`` (name -> module relative to
    ``package``, e.g. ``".analysis"``); a name is imported on first access and kept."""
    namespace = import_module(package).__dict__

    def __getattr__(name: str):
        if name in exports:
            value = getattr(import_module(exports[name], package), name)
            namespace[name] = value  # later lookups skip this function
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
