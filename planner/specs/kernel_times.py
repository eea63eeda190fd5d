"""Measured kernel times a hardware spec may hold beside its efficiency factors: times, not
fractions of a peak, read where a kernel's cost is not a roofline of its FLOPs and bytes.

``dsa_indexer_decode`` (``hardware/*.yaml``, top level): the time DeepSeek Sparse Attention's
lightning indexer adds to one decode layer (its projections, its FP8 key cache, the logits over
the context, the top-k), over the sequences on one GPU and their context, reduced by
``benchmarks/extract_aic_dsa.py``; ``dsa_indexer_prefill`` the same for a prefill layer over
the prompts on one GPU and their tokens. A spec without them leaves the indexer to the roofline (its
FLOPs and key bytes with the attention core's). Not inherited through ``efficiency_from``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

from planner.specs._types import SPEC_CONFIG, NonNegFloat, PosFloat, Str


def check_increasing(values: tuple[float, ...], name: str) -> None:
    """A measured table's axis: non-empty and strictly increasing, else a ValueError naming it."""
    if not values:
        raise ValueError(f"{name} must be non-empty")
    if any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError(f"{name} must increase")


@dataclass(frozen=True, kw_only=True)
class TimeGrid:
    """A measured per-layer time over a batch (sequences on one GPU) and a context (tokens):
    ``latency_us[i][j]`` at ``batch[i]``, ``context[j]`` (both increasing), read between the
    points linearly in log batch and log context, constant past the ends."""

    __pydantic_config__ = SPEC_CONFIG
    batch: Tuple[PosFloat, ...]
    context: Tuple[PosFloat, ...]
    latency_us: Tuple[Tuple[NonNegFloat, ...], ...]
    source: Str
    reduction: Str

    def __post_init__(self) -> None:
        # Tuples of floats however built (validated, or from the cache's plain lists).
        object.__setattr__(self, "batch", tuple(float(v) for v in self.batch))
        object.__setattr__(self, "context", tuple(float(v) for v in self.context))
        object.__setattr__(self, "latency_us",
                           tuple(tuple(float(v) for v in row) for row in self.latency_us))
        check_increasing(self.batch, "batch")
        check_increasing(self.context, "context")
        if len(self.latency_us) != len(self.batch) or any(
                len(row) != len(self.context) for row in self.latency_us):
            raise ValueError(f"latency_us must hold {len(self.batch)} rows (one per batch) of "
                             f"{len(self.context)} values (one per context)")
