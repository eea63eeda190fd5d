"""Validated specs: model and hardware dataclasses (base units derived once at construction) and
the loader that reads, validates and converts YAML files. Importing this package does not import
pydantic; :func:`load_spec_file` does, when a file has not been validated before."""

from planner.specs.hardware import Hardware
from planner.specs.load import load_hardware_file, load_model_file, load_spec_file
from planner.specs.model import DenseFFN, HeadAttention, MLAttention, Model, MoEFFN

__all__ = [
    "DenseFFN",
    "Hardware",
    "HeadAttention",
    "MLAttention",
    "Model",
    "MoEFFN",
    "load_hardware_file",
    "load_model_file",
    "load_spec_file",
]
