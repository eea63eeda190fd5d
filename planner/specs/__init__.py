"""Validated specs: model and hardware dataclasses (base units derived once at construction) and
the loader that reads, validates and converts YAML files. Importing this package does not import
pydantic; loading a file does, when the file has not been validated before. Names are imported on
first use, so a command that needs only model specs does not build the hardware classes."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Hardware": "hardware",
    "DenseFFN": "model",
    "HeadAttention": "model",
    "MLAttention": "model",
    "Model": "model",
    "MoEFFN": "model",
    "load_hardware_file": "load",
    "load_model_file": "load",
    "load_spec_file": "load",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'planner.specs' has no attribute {name!r}")
    return getattr(importlib.import_module(f"planner.specs.{module}"), name)


def __dir__() -> list[str]:
    return __all__
