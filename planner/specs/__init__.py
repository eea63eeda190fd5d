"""Validated specs: model and hardware dataclasses (base units derived once at construction) and
the loader that reads, validates and converts YAML files. Importing this package does not import
pydantic; loading a file does, when the file has not been validated before. Names are imported on
first use, so a command that needs only model specs does not build the hardware classes."""

from __future__ import annotations

from planner._lazy import lazy_exports

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
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
