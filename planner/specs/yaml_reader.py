"""The one YAML reader of the planner: bytes -> UTF-8 text -> the ``yaml`` safe loader (no Python
tags, duplicate keys refused) within fixed limits of size, depth and expanded nodes, so that a
hostile or broken file is refused in milliseconds with one line, never a crash or a hang."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from planner.errors import SpecError

#: Largest spec file read, in bytes: a spec is a few kilobytes; this bounds memory and time.
MAX_SPEC_FILE_BYTES = 1_000_000
#: Deepest nesting of mappings and sequences: a spec needs 4; libyaml's composer recurses in C
#: and crashes the interpreter near 100,000 levels, so depth is checked on the event stream first.
MAX_YAML_DEPTH = 64
#: Most YAML nodes after expanding aliases (an alias counts the whole node it names): bounds
#: "billion laughs" alias bombs, which expand exponentially; a spec has a few hundred nodes.
MAX_YAML_NODES = 100_000

# ----------------------------------------------------------------------------- reading
def read_yaml_file(path: Path) -> tuple[dict[str, Any], bytes]:
    """(top-level mapping, the file's bytes), or a one-line :class:`SpecError`
    (:func:`read_yaml_mapping` without the key lines)."""
    data, raw, _ = read_yaml_mapping(path)
    return data, raw


def read_yaml_mapping(path: Path) -> tuple[dict[str, Any], bytes, dict[tuple[str, ...], int]]:
    """(top-level mapping, the file's bytes, the 1-based line of every mapping key by its path
    of keys), from one parse; or a one-line :class:`SpecError`.

    Limits: at most :data:`MAX_SPEC_FILE_BYTES` bytes are read, UTF-8 only; the YAML may nest at
    most :data:`MAX_YAML_DEPTH` levels and expand to at most :data:`MAX_YAML_NODES` nodes
    (aliases included); duplicate keys are errors (YAML would keep the last one silently); only
    the safe loader's tags are understood (``!!python/object`` is refused).
    """
    where = str(path)
    text, raw = read_text_file(path, limit=MAX_SPEC_FILE_BYTES, what="a YAML file")
    data, lines = parse_yaml_document(text, file=where)
    if data is None:
        raise SpecError("file is empty, expected a mapping of fields", file=where)
    if not isinstance(data, dict):
        raise SpecError(
            f"expected a mapping of fields at the top level, got {type(data).__name__}",
            file=where,
        )
    return data, raw, lines


def read_text_file(path: Path, *, limit: int, what: str) -> tuple[str, bytes]:
    """(UTF-8 text, bytes) of a regular file of at most ``limit`` bytes (only ``limit + 1`` are
    ever read), or a one-line :class:`SpecError`: a directory, a FIFO or device, a missing or
    unreadable file, a larger file, bytes that are not UTF-8."""
    where = str(path)
    try:
        if path.is_dir():
            raise SpecError(f"is a directory, expected {what}", file=where)
        if path.exists() and not path.is_file():
            raise SpecError(f"not a regular file, expected {what}", file=where)
        with open(path, "rb") as fh:
            raw = fh.read(limit + 1)
    except FileNotFoundError:
        raise SpecError("file not found", file=where) from None
    except OSError as exc:
        raise SpecError(f"cannot read file ({exc.strerror or exc})", file=where) from None
    if len(raw) > limit:
        raise SpecError(f"file is larger than {limit:,} bytes", file=where)
    try:
        return raw.decode("utf-8"), raw
    except UnicodeDecodeError as exc:
        raise SpecError(f"not valid UTF-8 (byte {exc.start})", file=where) from None


def parse_yaml_text(text: str, *, file: str) -> Any:
    """The document in ``text``, read by the safe loader within the limits above."""
    return parse_yaml_document(text, file=file)[0]


def parse_yaml_document(text: str, *, file: str) -> tuple[Any, dict[tuple[str, ...], int]]:
    """(the document in ``text``, the 1-based line of each mapping key by its path of keys),
    composed once by the safe loader within the limits above."""
    import yaml

    try:
        _check_yaml_shape(text, file=file)
        loader = _spec_loader()(text)
        try:
            node = loader.get_single_node()
            data = None if node is None else loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"invalid YAML: {at}{problem}", file=file,
                        line=mark.line + 1 if mark else None) from None
    except RecursionError:
        raise SpecError("invalid YAML: nested too deeply", file=file) from None
    return data, _key_lines(node)


def _key_lines(root: Any) -> dict[tuple[str, ...], int]:
    """Line of every scalar mapping key under ``root`` (a composed node), by its path of keys;
    each node is visited once (aliases may repeat or nest a node)."""
    import yaml

    lines: dict[tuple[str, ...], int] = {}
    stack: list[tuple[Any, tuple[str, ...]]] = [(root, ())]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if id(node) in seen or not isinstance(node, yaml.MappingNode):
            continue
        seen.add(id(node))
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                here = (*path, str(key.value))
                lines.setdefault(here, key.start_mark.line + 1)
                stack.append((value, here))
    return lines


def _check_yaml_shape(text: str, *, file: str) -> None:
    """Walk the parser's events (libyaml keeps its own stack: no recursion) and refuse a
    document nested deeper than :data:`MAX_YAML_DEPTH` or expanding, aliases included, to more
    than :data:`MAX_YAML_NODES` nodes, before anything recursive or exponential runs."""
    import yaml
    from yaml import events as ev

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    open_nodes: list[tuple[str | None, int]] = []   # (anchor, node count when it opened)
    sizes: dict[str, int] = {}                      # anchor -> expanded size of its node
    total = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, ev.CollectionStartEvent):
            open_nodes.append((event.anchor, total))
            total += 1
            if len(open_nodes) > MAX_YAML_DEPTH:
                raise SpecError(f"invalid YAML: nested more than {MAX_YAML_DEPTH} levels deep "
                                f"(line {event.start_mark.line + 1})", file=file,
                                line=event.start_mark.line + 1)
        elif isinstance(event, ev.CollectionEndEvent):
            anchor, before = open_nodes.pop()
            if anchor is not None:
                sizes[anchor] = total - before
        elif isinstance(event, ev.ScalarEvent):
            total += 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, ev.AliasEvent):
            total += sizes.get(event.anchor, 1)
        if total > MAX_YAML_NODES:
            raise SpecError(f"invalid YAML: expands to more than {MAX_YAML_NODES:,} nodes "
                            "(aliases counted at every use)", file=file)


@functools.lru_cache(maxsize=None)
def _spec_loader() -> type:
    """The safe loader (libyaml's when available) refusing duplicate keys."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class SpecLoader(base):  # type: ignore[misc, valid-type]
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            if isinstance(node, yaml.MappingNode):
                seen: set[Any] = set()
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    key = self.construct_object(key_node, deep=deep)
                    try:
                        duplicate = key in seen
                        seen.add(key)
                    except TypeError:   # an unhashable key: the base class reports it
                        continue
                    if duplicate:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"duplicate key {key!r}", key_node.start_mark)
            return super().construct_mapping(node, deep=deep)

    return SpecLoader
