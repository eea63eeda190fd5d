"""Measured kernel times a hardware spec may hold beside its efficiency factors: times, not
fractions of a peak, read where a kernel's cost is not a roofline of its FLOPs and bytes.

``dsa_indexer_decode`` (``hardware/*.yaml``, top level): the time DeepSeek Sparse Attention's
lightning indexer adds to one decode layer (its projections, its FP8 key cache, the logits over
the context, the top-k), over the sequences on one GPU and their context, reduced by
``benchmarks/extract_aic_dsa.py``; ``dsa_indexer_prefill`` the same for a prefill layer over
the prompts on one GPU and their tokens. A spec without them leaves the indexer to the roofline (its
FLOPs and key bytes with the attention core's). Not inherited through ``efficiency_from``.

``efficiency.routed_skew`` (:class:`SkewGrid`, per grouped-GEMM table): the routed experts'
time under AIConfigurator's skewed (power-law) routing over its balanced time, by EP size and
rows per expert, reduced by ``benchmarks/extract_aic_kernels.py``.
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


@dataclass(frozen=True, kw_only=True)
class SkewGrid:
    """A measured ratio of routed-expert times, skewed routing over balanced routing, over the
    EP size and the rows per expert: ``factor[i][j]`` at ``ep[i]``, ``rows[j]`` (both
    increasing), read between the points linearly in log EP and log rows, constant past the
    ends (:func:`~planner.calc.serving.kernels.routed_skew_factor`)."""

    __pydantic_config__ = SPEC_CONFIG
    ep: Tuple[PosFloat, ...]
    rows: Tuple[PosFloat, ...]
    factor: Tuple[Tuple[PosFloat, ...], ...]
    source: Str
    reduction: Str

    def __post_init__(self) -> None:
        object.__setattr__(self, "ep", tuple(float(v) for v in self.ep))
        object.__setattr__(self, "rows", tuple(float(v) for v in self.rows))
        object.__setattr__(self, "factor",
                           tuple(tuple(float(v) for v in row) for row in self.factor))
        check_increasing(self.ep, "ep")
        check_increasing(self.rows, "rows")
        if len(self.factor) != len(self.ep) or any(len(row) != len(self.rows)
                                                   for row in self.factor):
            raise ValueError(f"factor must hold {len(self.ep)} rows (one per ep) of "
                             f"{len(self.rows)} values (one per rows)")
