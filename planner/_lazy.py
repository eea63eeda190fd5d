"""Lazy package exports (PEP 562): a name is imported from its submodule on first use, so that
importing a package does not import every submodule (the CLI's cold start depends on it)."""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any],
                                                                  Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose name -> submodule map is ``exports``.

    A value ``"sub.module"`` exports the attribute of the same name from
    ``package.sub.module``; ``"sub.module:other"`` exports its attribute ``other`` under the
    exported name (an alias)."""

    def __getattr__(name: str) -> Any:
        target = exports.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = target.partition(":")
        return getattr(importlib.import_module(f"{package}.{module}"), attribute or name)

    def __dir__() -> list[str]:
        import sys

        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
