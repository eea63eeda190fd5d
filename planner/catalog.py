"""The built-in catalog (``models/*.yaml``, ``hardware/*.yaml``), name resolution, and the shipped
validation data (``validation/*.yaml``).

A catalog name is a file stem in any case (``deepseek-v3``, ``DeepSeek-V3``); an unknown one is
refused with the closest names suggested; a Hugging Face id that a catalog model lists in its
``hf_ids`` (``deepseek-ai/DeepSeek-R1``, any case) is that model, unless a file of that name
exists; anything else that looks like a path (it has a directory separator or ends in
``.yaml``/``.yml``) is read as the user's own file; a ``.json`` path is read as a Hugging Face
config.json. In an installed
wheel the catalog sits in ``planner/_catalog/``; in a source checkout it is read from the
repository's top-level ``models/``, ``hardware/`` and ``validation/`` folders.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planner.errors import CatalogError
from planner.specs.load import (
    load_hardware_file,
    load_model_file,
    load_model_or_hardware_file,
    load_spec_file,
)

if TYPE_CHECKING:
    from planner.specs.hardware import Hardware
    from planner.specs.model import Model
    from planner.specs.validation import PaperFile, RunsFile

_PKG = Path(__file__).resolve().parent
#: Catalog kind -> its folder.
KINDS = {"model": "models", "hardware": "hardware", "engine": "engines"}
#: The ``notes:`` (caveats) of the specs loaded since the last :func:`take_notes`, by spec name:
#: the CLI prints them wherever the spec's numbers are shown.
_NOTES: dict[str, str] = {}


def _noted(spec: Any) -> Any:
    """``spec``, its ``notes`` (if any) recorded for :func:`take_notes`."""
    if getattr(spec, "notes", None):
        _NOTES.setdefault(spec.name or spec.label, " ".join(spec.notes.split()))
    return spec


def take_notes() -> list[tuple[str, str]]:
    """(spec name, notes) of every spec loaded since the last call, in load order; clears them."""
    notes = list(_NOTES.items())
    _NOTES.clear()
    return notes

#: An unknown name gets up to this many suggestions, of at least this difflib similarity.
SUGGEST_COUNT = 3
SUGGEST_CUTOFF = 0.6


def _shipped_dir(folder: str, what: str) -> Path:
    """``planner/_catalog/<folder>`` in a wheel, else the checkout's top-level ``<folder>``."""
    for candidate in (_PKG / "_catalog" / folder, _PKG.parent / folder):
        if candidate.is_dir():
            return candidate
    raise CatalogError(f"{what} not found (looked in {_PKG / '_catalog'})")


def catalog_dir(kind: str) -> Path:
    """The folder of the built-in ``kind`` catalog (``model`` or ``hardware``)."""
    return _shipped_dir(KINDS[kind], f"built-in {kind} catalog")


def validation_dir() -> Path:
    """The folder of the shipped validation data (``validation/``: the paper's printed figures,
    the measured runs)."""
    return _shipped_dir("validation", "shipped validation data")


#: The measured serving runs shipped with the planner (AIConfigurator's silicon accuracy set; its
#: provenance and license notice beside it): the default of ``planner validate --runs``.
SERVING_RUNS_CSV = _PKG / "data" / "serving-runs.csv"


@functools.lru_cache(maxsize=None)
def load_paper() -> PaperFile:
    """The paper's sections, stated inputs and printed figures (``validation/paper.yaml``)."""
    from planner.specs.validation import PaperFile

    return load_spec_file(PaperFile, validation_dir() / "paper.yaml")


@functools.lru_cache(maxsize=None)
def load_runs() -> RunsFile:
    """The measured deployment runs and ablations (``validation/runs.yaml``)."""
    from planner.specs.validation import RunsFile

    return load_spec_file(RunsFile, validation_dir() / "runs.yaml")


def names(kind: str) -> list[str]:
    """Sorted catalog names of ``kind``."""
    return sorted(p.stem for p in catalog_dir(kind).glob("*.yaml"))


def looks_like_path(name: str) -> bool:
    return (
        os.sep in name
        or "/" in name
        or name.endswith((".yaml", ".yml", ".json"))
    )


#: Longest name repeated in an "unknown name" message (and the longest one given suggestions).
MAX_SHOWN_NAME = 60


def _shown(name: str) -> str:
    """``repr(name)``, cut to :data:`MAX_SHOWN_NAME` characters."""
    return repr(name) if len(name) <= MAX_SHOWN_NAME else \
        f"{name[:MAX_SHOWN_NAME]!r}... ({len(name):,} characters)"


#: Hardware ids of measured data (AIConfigurator's ``system``) -> the catalog's device: ``-H
#: h200_sxm`` is h200. Ids of devices the catalog lacks resolve to no file.
HARDWARE_IDS = {"h100_sxm": "h100", "h200_sxm": "h200", "b200_sxm": "b200",
                "gb200": "gb200-nvl72", "b300_sxm": "b300", "gb300": "gb300-nvl72"}


def _catalog_file(kind: str, name: str) -> Path | None:
    """The built-in file of ``name`` in the ``kind`` catalog, matched exactly or else ignoring
    case (``H100``, ``Llama-3.1-70B``), or None: a name no file system accepts (too long, a NUL
    byte) is simply not in the catalog."""
    folder = catalog_dir(kind)
    try:
        path = folder / f"{name}.yaml"
        if path.is_file():
            return path
    except (OSError, ValueError):
        pass
    folded = {n.casefold(): n for n in names(kind)}.get(name.casefold())
    if folded is None and kind == "hardware" and name.casefold() in HARDWARE_IDS:
        return _catalog_file(kind, HARDWARE_IDS[name.casefold()])
    return folder / f"{folded}.yaml" if folded is not None else None


def did_you_mean(name: str, candidates: list[str]) -> str:
    """" (did you mean x?)" for the catalog names closest to ``name`` (difflib's ratio at least
    :data:`SUGGEST_CUTOFF`, at most :data:`SUGGEST_COUNT`), else "" (and for a name longer
    than :data:`MAX_SHOWN_NAME`)."""
    import difflib

    if len(name) > MAX_SHOWN_NAME:
        return ""
    folded = {c.casefold(): c for c in candidates}
    close = difflib.get_close_matches(name.casefold(), list(folded), n=SUGGEST_COUNT,
                                      cutoff=SUGGEST_CUTOFF)
    return f" (did you mean {' or '.join(folded[c] for c in close)}?)" if close else ""


@functools.lru_cache(maxsize=None)
def hf_ids() -> dict[str, tuple[str, str]]:
    """Every Hugging Face id the catalog's models list (``hf_ids:``): the id case-folded -> (the
    id as listed, the model's catalog name)."""
    index: dict[str, tuple[str, str]] = {}
    for stem in names("model"):
        for hf_id in load_model_file(catalog_dir("model") / f"{stem}.yaml").hf_ids:
            index.setdefault(hf_id.casefold(), (hf_id, stem))
    return index


def looks_like_hf_id(name: str) -> bool:
    """``organisation/name``: one slash, not at the start, no file extension."""
    return (name.count("/") == 1 and not name.startswith(("/", ".")) and
            not name.endswith((".yaml", ".yml", ".json")))


def model_of_hf_id(hf_id: str) -> str | None:
    """The catalog name of the model that lists ``hf_id`` (any case) in its ``hf_ids``, else
    None."""
    hit = hf_ids().get(hf_id.casefold())
    return hit[1] if hit else None


def _hf_file(name: str) -> Path | None:
    """The catalog file of Hugging Face id ``name`` where no file of that name exists; None for
    a name that is no such id or is a file; a :class:`CatalogError` for an id no model lists."""
    if not looks_like_hf_id(name) or Path(name).exists():
        return None
    stem = model_of_hf_id(name)
    if stem is not None:
        return catalog_dir("model") / f"{stem}.yaml"
    known = sorted(listed for listed, _ in hf_ids().values())
    raise CatalogError(
        f"unknown model {_shown(name)}: no such file, and no catalog model lists this Hugging "
        f"Face id in its hf_ids{did_you_mean(name, known)} (give a YAML path, a config.json, or "
        "a catalog name: planner models)")


def resolve(kind: str, name: str) -> Path:
    """The file of catalog entry ``name`` (any case; a model also by a Hugging Face id it lists),
    or ``name`` itself when it is a path."""
    if kind == "model":
        hf_file = _hf_file(name)
        if hf_file is not None:
            return hf_file
    if looks_like_path(name):
        return Path(name)
    path = _catalog_file(kind, name)
    if path is not None:
        return path
    valid = names(kind)
    raise CatalogError(
        f"unknown {kind} {_shown(name)}{did_you_mean(name, valid)}; "
        f"valid names: {', '.join(valid)} "
        "(or give a path to a YAML file)"
    )


def load_model(name: str) -> Model:
    """A model from the catalog by name, from a YAML path, or from a Hugging Face config.json."""
    if name.endswith(".json"):
        from planner.specs.hf import load_hf_model

        return _noted(load_hf_model(name))
    return _noted(load_model_file(resolve("model", name)))


def load_hardware(name: str) -> Hardware:
    """A hardware spec from the catalog by name, or from a YAML path; the efficiency factors it
    lacks taken from its ``efficiency_from`` sibling (assumed)."""
    return _noted(_inherit(load_hardware_file(resolve("hardware", name))))


#: ``efficiency_from`` links followed at most (a longer chain is a cycle or a mistake).
MAX_EFFICIENCY_FROM = 4


def _inherit(spec: Any, chain: tuple[str, ...] = ()) -> Any:
    """A hardware spec with its ``efficiency_from`` sibling's factors merged in (recursively)."""
    sibling_name = getattr(spec, "efficiency_from", None)
    if sibling_name is None:
        return spec
    here = spec.name or spec.label
    if len(chain) >= MAX_EFFICIENCY_FROM or sibling_name in (*chain, here):
        raise CatalogError(f"{here}: efficiency_from: {' -> '.join((*chain, here, sibling_name))}"
                           " is a cycle or longer than "
                           f"{MAX_EFFICIENCY_FROM} links")
    try:
        sibling = load_hardware_file(resolve("hardware", sibling_name))
    except CatalogError as exc:
        raise CatalogError(f"{here}: efficiency_from: {exc}") from None
    return spec.inherit_efficiency(_inherit(sibling, (*chain, here)))


def load_any(name: str) -> Model | Hardware:
    """A model or a hardware spec by catalog name, or from a YAML path (told apart by its
    fields: a hardware spec has ``gpu``)."""
    if name.endswith(".json"):
        return load_model(name)
    if looks_like_hf_id(name) and not Path(name).exists():
        return load_model(name)
    if looks_like_path(name):
        return _noted(_inherit(load_model_or_hardware_file(name)))
    if _catalog_file("model", name) is not None:
        return load_model(name)
    if _catalog_file("hardware", name) is not None:
        return load_hardware(name)
    every = names("model") + names("hardware")
    raise CatalogError(
        f"unknown name {_shown(name)}{did_you_mean(name, every)}; "
        f"models: {', '.join(names('model'))}; hardware: {', '.join(names('hardware'))} (or give a path to a YAML file)"
    )
