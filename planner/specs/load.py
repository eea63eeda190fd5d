"""Read a YAML spec file, validate it, and build the spec dataclass.

Pipeline: bytes -> UTF-8 text -> ``yaml`` safe loader (no Python tags;
:mod:`planner.specs.yaml_reader`) -> a mapping -> pydantic
validation (strict numbers, unknown fields rejected, cross-field checks) -> frozen dataclasses in
base units. Every failure is a :class:`SpecError` naming the file and the field path.

Speed: pydantic costs ~50 ms to import and build its validators, more than the rest of a CLI call.
A file whose exact bytes were validated before, by the same spec code, is therefore built
directly, when the validation cache (:mod:`planner.specs.cache`) holds a record of it that carries
the right keyed digest: a record is never trusted because it exists. Change one byte of the
file, of the spec code, units or vocabulary, or the pydantic version, and it is validated again.
``PLANNER_NO_CACHE=1`` turns the cache off; an unusable cache is ignored.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from planner.errors import SpecError
from planner.specs._types import Tagged
from planner.specs.yaml_reader import (MAX_SPEC_FILE_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES,
                                       parse_yaml_document, parse_yaml_text, read_text_file,
                                       read_yaml_file, read_yaml_mapping)

if TYPE_CHECKING:
    from planner.specs.engine import Engine
    from planner.specs.hardware import Hardware
    from planner.specs.model import Model

T = TypeVar("T")

__all__ = ["MAX_SPEC_FILE_BYTES", "MAX_YAML_DEPTH", "MAX_YAML_NODES", "build_spec",
           "load_engine", "load_hardware_file", "load_model_file", "load_model_or_hardware_file",
           "load_spec_file", "parse_yaml_document", "parse_yaml_text", "read_text_file",
           "read_yaml_file", "read_yaml_mapping", "validate"]

# ----------------------------------------------------------------------------- validating
def validate(cls: type[T], data: dict[str, Any], *, file: str, raw: bytes | None = None) -> T:
    """Validate ``data`` (parsed from the file bytes ``raw``) against the spec dataclass ``cls``;
    a :class:`SpecError` otherwise. Without ``raw`` nothing is recorded or looked up."""
    from planner.specs import cache

    if raw is not None and cache.is_validated(cls, raw):
        try:
            return _construct(cls, data)
        except Exception:  # noqa: BLE001 - any doubt: fall through to full validation
            pass
    obj = _validate_with_pydantic(cls, data, file=file)
    if raw is not None:
        cache.record_validated(cls, raw)
    return obj


_ADAPTERS: dict[type, Any] = {}
#: Longest repr of a wrong input that an error message repeats.
MAX_SHOWN_INPUT = 80


def _validate_with_pydantic(cls: type[T], data: dict[str, Any], *, file: str) -> T:
    from pydantic import TypeAdapter, ValidationError

    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        field, msg = _describe(cls, data, first, yaml=not file.endswith(".json"))
        more = len(errors) - 1
        if more:
            msg += f" (and {more} more error{'s' if more > 1 else ''})"
        raise SpecError(msg, file=file, field=field or "(top level)") from None
    except RecursionError:
        raise SpecError("nested too deeply", file=file) from None


def _describe(cls: type, data: Any, err: typing.Mapping[str, Any], *,
              yaml: bool = True) -> tuple[str, str]:
    """Turn one pydantic error into (dotted field path as the user wrote it, message); ``yaml``:
    the data came from YAML (where ``1e12`` is text)."""
    loc = tuple(err["loc"])
    path, _ = _walk(cls, data, loc)
    kind, msg = err["type"], err["msg"]
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        allowed = _init_fields(_walk(cls, data, loc[:-1])[1])
        name = str(loc[-1])
        import difflib

        close = difflib.get_close_matches(name, allowed, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(allowed)}"
        return path, f"unknown field; {hint}"
    if kind in ("missing", "missing_keyword_only_argument"):
        return path, "required field is missing"
    if kind == "value_error":
        msg = msg.removeprefix("Value error, ")
    elif kind in ("dataclass_type", "dict_type"):
        msg = f"expected a mapping of fields, got {err.get('input')!r}"
    elif "input" in err and not isinstance(err["input"], (dict, list)):
        got = repr(err["input"])
        if len(got) > MAX_SHOWN_INPUT:      # a 4,000-digit number, a long string
            got = got[:MAX_SHOWN_INPUT] + f"... ({len(got):,} characters)"
        msg = f"{msg} (got {got})"
        if yaml and isinstance(err["input"], str) and _looks_like_number(err["input"]):
            msg += "; YAML 1.1 reads a number such as 1e12 as text: write 1.0e+12"
    return path, msg


def _looks_like_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _walk(cls: Any, data: Any, loc: tuple[Any, ...]) -> tuple[str, Any]:
    """Follow a pydantic error location through the input and the spec classes: (the dotted
    path as the user wrote it, the spec class found there). Pydantic puts the union tag into the
    location (``attention.mla.kv_lora_rank``); it is dropped from the path."""
    path: list[str] = []
    node, node_cls = data, cls
    for part in loc:
        if isinstance(node, dict) and part not in node and part == node.get("kind"):
            node_cls = _tagged_member(node_cls, part)
            continue
        path.append(str(part))
        node_cls = _field_class(node_cls, part)
        node = node.get(part) if isinstance(node, dict) else None
    if typing.get_origin(node_cls) in (typing.Union, types.UnionType) and isinstance(node, dict):
        node_cls = _tagged_member(node_cls, node.get("kind"))
    return ".".join(path), node_cls


def _hints(cls: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls, include_extras=True)
    except Exception:  # noqa: BLE001
        return {}


def _strip(tp: Any) -> tuple[Any, tuple[Any, ...]]:
    """(underlying type, Annotated metadata) with Optional removed."""
    meta: tuple[Any, ...] = ()
    if typing.get_origin(tp) is typing.Annotated:
        meta = tp.__metadata__
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _strip(args[0])
    return tp, meta


def _field_class(cls: Any, name: Any) -> Any:
    if typing.get_origin(cls) is dict:  # a mapping of name -> spec (a scenario's budgets)
        return _strip(typing.get_args(cls)[1])[0]
    if not dataclasses.is_dataclass(cls):
        return None
    tp, _ = _strip(_hints(cls).get(name))
    return tp


def _tagged_member(union: Any, tag: Any) -> Any:
    for member in typing.get_args(union) or ():
        kinds = typing.get_args(_hints(member).get("kind"))
        if tag in kinds:
            return member
    return None


def _init_fields(cls: Any) -> list[str]:
    if not dataclasses.is_dataclass(cls):
        return []
    return [f.name for f in dataclasses.fields(cls) if f.init]


def _construct(cls: Any, data: dict[str, Any]) -> Any:
    """Build ``cls`` from data already known to validate (no pydantic): nested dataclasses and
    tagged unions are built recursively, everything else is passed as it is."""
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init or f.name not in data:
            continue
        value = data[f.name]
        tp, meta = _strip(hints[f.name])
        if isinstance(value, dict):
            tagged = next((m for m in meta if isinstance(m, Tagged)), None)
            if tagged is not None:
                tp = _tagged_member(tp, value[tagged.key])
            if dataclasses.is_dataclass(tp):
                value = _construct(tp, value)
            elif typing.get_origin(tp) is dict:
                item = _strip(typing.get_args(tp)[1])[0]
                if dataclasses.is_dataclass(item):
                    value = {k: _construct(item, v) for k, v in value.items()}
        elif tp is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)   # as pydantic's float schema does: 80 -> 80.0
        kwargs[f.name] = value
    return cls(**kwargs)


# ----------------------------------------------------------------------------- public
def load_spec_file(cls: type[T], path: str | os.PathLike[str]) -> T:
    """Read, validate and build a spec of type ``cls`` (:class:`Model`, :class:`Hardware`) from
    ``path``; ``name`` defaults to the file stem."""
    p = Path(path)
    data, raw = read_yaml_file(p)
    return build_spec(cls, p, data, raw)


def load_model_or_hardware_file(path: str | os.PathLike[str]) -> Model | Hardware:
    """A :class:`Hardware` when the file has a ``gpu`` field, else a :class:`Model`; the file is
    read once."""
    from planner.specs.hardware import Hardware
    from planner.specs.model import Model

    p = Path(path)
    data, raw = read_yaml_file(p)
    if "gpu" in data:
        return build_spec(Hardware, p, data, raw)
    return build_spec(Model, p, data, raw)


def build_spec(cls: type[T], p: Path, data: dict[str, Any], raw: bytes) -> T:
    """Validate ``data`` read from ``p`` (bytes ``raw``) as ``cls``; ``name`` defaults to the
    file stem."""
    obj = validate(cls, data, file=str(p), raw=raw)
    if getattr(obj, "name", "") is None:
        obj = dataclasses.replace(typing.cast(Any, obj), name=p.stem)
    return obj


def load_model_file(path: str | os.PathLike[str]) -> Model:
    """A :class:`Model` from a YAML file."""
    from planner.specs.model import Model

    return load_spec_file(Model, path)


def load_hardware_file(path: str | os.PathLike[str]) -> Hardware:
    """A :class:`Hardware` from a YAML file."""
    from planner.specs.hardware import Hardware

    return load_spec_file(Hardware, path)


def load_engine(name_or_path: str | os.PathLike[str]) -> Engine:
    """A serving :class:`~planner.specs.engine.Engine` by catalog name (``trtllm``, ``vllm``,
    ``sglang``: ``engines/<name>.yaml``, any case) or from a YAML path; an unknown name is a
    :class:`~planner.errors.CatalogError` with the valid names."""
    from planner import catalog
    from planner.specs.engine import Engine

    return load_spec_file(Engine, catalog.resolve("engine", str(name_or_path)))
