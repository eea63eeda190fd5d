"""JSON Schema of the spec files, generated from the spec classes (pydantic), so that editors
validate YAML as it is typed: put ``# yaml-language-server: $schema=model.schema.json`` on the
first line of a model file (the YAML extension of VS Code and other LSP editors read it)."""

from __future__ import annotations

from typing import Any

#: Spec kinds with a schema: kind -> (module, class).
KINDS = {
    "model": ("planner.specs.model", "Model"),
    "hardware": ("planner.specs.hardware", "Hardware"),
    "scenario": ("planner.specs.scenario", "Scenario"),
    "network-prices": ("planner.specs.network", "NetworkPrices"),
}
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a ``kind`` spec file."""
    import importlib

    from pydantic import TypeAdapter

    from planner.errors import UsageError

    if kind not in KINDS:
        raise UsageError(f"unknown spec kind {kind!r}; expected one of: {', '.join(KINDS)}")
    module, name = KINDS[kind]
    cls = getattr(importlib.import_module(module), name)
    schema = TypeAdapter(cls).json_schema()
    out = {"$schema": SCHEMA_DIALECT, **schema}
    out["title"] = f"planner {kind} spec"
    out["description"] = (cls.__doc__ or "").strip().splitlines()[0]
    return out
