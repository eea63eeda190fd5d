"""Collective communication times under the alpha-beta model, on one link tier.

Ref: Thakur, Rabenseifner & Gropp, "Optimization of collective communication operations in
MPICH", IJHPCA 2005 (ring and binomial-tree costs); P Table 5 for the latencies α (IB 2.8 / 3.7
µs same / cross leaf, RoCE 3.6 / 5.6 µs, NVLink 3.33 µs).

Symbols: p ranks; n bytes (the full buffer: the all-reduce input, the all-gather output, the
reduce-scatter input, the all-to-all send buffer of one rank); α the per-message latency (s);
B the per-rank unidirectional bandwidth (bytes/s). Convention: no contention, computation of
reductions not counted, every rank sends and receives at B at once (full duplex).
"""

from __future__ import annotations

import math

#: Operations and their algorithms.
OPERATIONS = {
    "all-reduce": ("ring", "tree", "two-shot"),
    "all-gather": ("ring",),
    "reduce-scatter": ("ring",),
    "all-to-all": ("direct",),
}
#: A ring all-reduce is a reduce-scatter then an all-gather; a tree all-reduce a reduce then a
#: broadcast.
ALL_REDUCE_PHASES = 2


def ring_all_gather_time_s(*, num_ranks, bytes_total, latency_s, bandwidth_bytes_per_s):
    """Ring all-gather (and ring reduce-scatter) time (s).

    Formula: (p − 1)·α + (p − 1)/p · n / B.
    Ref: Thakur et al. 2005 §4.
    Convention: n is the full gathered buffer; each step moves n/p.
    Example: p = 8, n = 1 GB, α = 3.33 µs, B = 200 GB/s: 23.3 µs + 4.375 ms = 4.398 ms.
    """
    p = num_ranks
    return (p - 1) * latency_s + (p - 1) / p * bytes_total / bandwidth_bytes_per_s


def ring_all_reduce_time_s(*, num_ranks, bytes_total, latency_s, bandwidth_bytes_per_s):
    """Ring all-reduce time (s).

    Formula: 2(p − 1)·α + 2(p − 1)/p · n / B.
    Ref: Thakur et al. 2005 §4.4 (reduce-scatter + all-gather).
    Convention: bandwidth-optimal for large n.
    Example: p = 8, n = 1 GB, α = 3.33 µs, B = 200 GB/s: 8.797 ms.
    """
    return ALL_REDUCE_PHASES * ring_all_gather_time_s(
        num_ranks=num_ranks, bytes_total=bytes_total, latency_s=latency_s,
        bandwidth_bytes_per_s=bandwidth_bytes_per_s)


def tree_all_reduce_time_s(*, num_ranks, bytes_total, latency_s, bandwidth_bytes_per_s):
    """Binomial-tree all-reduce time (s): a reduce then a broadcast, unpipelined.

    Formula: 2·⌈log₂ p⌉·(α + n / B).
    Ref: Thakur et al. 2005 §4.4.
    Convention: latency-optimal for small n; no pipelining (NCCL's pipelined double binary tree
    approaches 2·n/B for large n).
    Example: p = 8, n = 1 MB, α = 3.7 µs, B = 50 GB/s: 6 × (3.7 + 20) µs = 142.2 µs.
    """
    steps = math.ceil(math.log2(num_ranks)) if num_ranks > 1 else 0
    return ALL_REDUCE_PHASES * steps * (latency_s + bytes_total / bandwidth_bytes_per_s)


def two_shot_all_reduce_time_s(*, num_ranks, bytes_total, latency_s, bandwidth_bytes_per_s):
    """Two-shot all-reduce time (s): a direct reduce-scatter then a direct all-gather, every
    rank reading or writing all its peers at once over a switch (NVSwitch).

    Formula: 2·α + 2(p − 1)/p · n / B.
    Ref: vLLM csrc/custom_all_reduce.cuh (cross_device_reduce_2stage) and TensorRT-LLM's
    custom all-reduce, the kernels engines run for small messages inside an NVLink domain;
    Thakur et al. 2005 §4.4 for the phase costs.
    Convention: one latency per phase (all peers at once); needs all-to-all connectivity.
    Example: p = 8, n = 3.67 MB, α = 3.33 µs, B = 160 GB/s: 6.66 + 40.14 = 46.8 µs (ring:
    86.8 µs).
    """
    p = num_ranks
    return ALL_REDUCE_PHASES * (latency_s + (p - 1) / p * bytes_total / bandwidth_bytes_per_s)


def all_to_all_time_s(*, num_ranks, bytes_total, latency_s, bandwidth_bytes_per_s):
    """Direct (pairwise) all-to-all time (s).

    Formula: (p − 1)·α + (p − 1)/p · n / B.
    Ref: Thakur et al. 2005 §4.6 (pairwise exchange).
    Convention: n is one rank's whole send buffer, n/p to each rank (its own share stays).
    Example: p = 64, n = 64 MB, α = 3.7 µs, B = 50 GB/s: 233 µs + 1.260 ms = 1.493 ms.
    """
    p = num_ranks
    return (p - 1) * latency_s + (p - 1) / p * bytes_total / bandwidth_bytes_per_s


_FUNCTIONS = {
    ("all-reduce", "ring"): ring_all_reduce_time_s,
    ("all-reduce", "tree"): tree_all_reduce_time_s,
    ("all-reduce", "two-shot"): two_shot_all_reduce_time_s,
    ("all-gather", "ring"): ring_all_gather_time_s,
    ("reduce-scatter", "ring"): ring_all_gather_time_s,
    ("all-to-all", "direct"): all_to_all_time_s,
}


def collective_time_s(*, operation, algorithm, num_ranks, bytes_total, latency_s,
                      bandwidth_bytes_per_s):
    """The time of ``operation`` with ``algorithm`` (see :data:`OPERATIONS`), in seconds.

    Formula: the algorithm's alpha-beta cost: ring all-reduce 2(p − 1)·α + 2(p − 1)/p · n / B;
    tree all-reduce 2·⌈log₂ p⌉·(α + n / B); two-shot 2·α + 2(p − 1)/p · n / B; ring all-gather
    and reduce-scatter, direct all-to-all (p − 1)·α + (p − 1)/p · n / B.
    Ref: Thakur et al. 2005 §4; the functions above.
    Convention: see the module docstring (no contention, reductions free, full duplex).
    Example: all-reduce, ring, p = 8, n = 1e9 bytes, α = 3.33 µs, B = 200e9 B/s:
    14 × 3.33 µs + 14/8 × 1e9 / 200e9 = 46.6 µs + 8.750 ms = 8.797 ms.
    """
    return _FUNCTIONS[(operation, algorithm)](num_ranks=num_ranks, bytes_total=bytes_total,
                                              latency_s=latency_s,
                                              bandwidth_bytes_per_s=bandwidth_bytes_per_s)


#: Link tiers a collective may run on, and the hardware-spec latency each uses.
LINKS = {
    "scale-up": "scale_up.latency_us",
    "scale-out-same-leaf": "scale_out.latency_same_leaf_us",
    "scale-out-cross-leaf": "scale_out.latency_cross_leaf_us",
}


def link_latency_us(hardware, link: str) -> float | None:
    """The spec's per-message latency α of ``link`` (one of :data:`LINKS`), in µs, or None
    where the spec gives none.

    Formula: none (a lookup): scale-up -> ``scale_up.latency_us``; scale-out-same-leaf ->
    ``scale_out.latency_same_leaf_us``; scale-out-cross-leaf -> ``scale_out.latency_cross_leaf_us``.
    Ref: P Table 5 (the catalog's latencies: NVLink 3.33 µs, IB 2.8 / 3.7 µs).
    Convention: µs as the spec writes it, not converted to seconds.
    Example: H800: scale-up 3.33, scale-out-same-leaf 2.8, scale-out-cross-leaf 3.7 µs.
    """
    tier = hardware.scale_up if link == "scale-up" else hardware.scale_out
    return {"scale-up": getattr(tier, "latency_us", None),
            "scale-out-same-leaf": hardware.scale_out.latency_same_leaf_us,
            "scale-out-cross-leaf": hardware.scale_out.latency_cross_leaf_us}[link]


def hardware_collective(hardware, *, operation: str, algorithm: str | None, num_ranks: int,
                        bytes_total: float, link: str, achievable: bool = False,
                        latency_us: float | None = None) -> dict:
    """One collective on ``hardware``'s ``link`` tier: α from the spec's latency (P Table 5
    figures in the catalog) unless given, B the tier's per-GPU unidirectional bandwidth, peak or
    achievable (× the spec's efficiency factor). Returns a record of inputs and ``time_s``.

    Formula: time_s = :func:`collective_time_s` (p, n, α, B · η), η = 1 at peak or the spec's
    ``efficiency.scale_up_bandwidth`` / ``scale_out_bandwidth`` when ``achievable``.
    Ref: Thakur et al. 2005 §4; P Table 5 for α.
    Convention: a scale-up collective must fit in the scale-up domain; the algorithm defaults to
    the first of :data:`OPERATIONS` (ring for all-reduce); ``latency_us`` overrides the spec.
    Example: all-reduce of n = 1e9 bytes over p = 8 H800 on the scale-up link: α = 3.33 µs
    (scale_up.latency_us), B = 200e9 B/s peak, ring: 8.797 ms.
    """
    from planner.errors import UsageError
    from planner.units import US

    algorithms = OPERATIONS.get(operation)
    if algorithms is None:
        raise UsageError(f"unknown operation {operation!r}; expected one of: "
                         f"{', '.join(OPERATIONS)}")
    algorithm = algorithm or algorithms[0]
    if algorithm not in algorithms:
        raise UsageError(f"{operation} has no {algorithm!r} algorithm here; expected one of: "
                         f"{', '.join(algorithms)}")
    if link not in LINKS:
        raise UsageError(f"unknown link {link!r}; expected one of: {', '.join(LINKS)}")
    tier = hardware.require_scale_up() if link == "scale-up" else hardware.scale_out
    if link == "scale-up" and num_ranks > hardware.scale_up.domain_gpus:
        raise UsageError(f"{num_ranks} ranks exceed the {hardware.scale_up.domain_gpus}-GPU "
                         "scale-up domain; use a scale-out link")
    if latency_us is not None:
        latency_s, latency_origin = latency_us * US, "given"
    else:
        us = link_latency_us(hardware, link)
        if us is None:
            raise UsageError(f"the hardware spec gives no {LINKS[link]}; give latency_us")
        latency_s, latency_origin = us * US, f"hardware spec {LINKS[link]}"
    bandwidth, basis = tier.bandwidth_bytes_per_s, "peak"
    if achievable:
        name = "scale_up_bandwidth" if link == "scale-up" else "scale_out_bandwidth"
        factor = hardware.efficiency_frac(name)
        bandwidth, basis = bandwidth * factor.frac, f"achievable, {factor.frac:g} x peak"
    return {
        "hardware": hardware.name or hardware.label, "operation": operation,
        "algorithm": algorithm, "num_ranks": num_ranks, "bytes_total": bytes_total,
        "link": link, "latency_s": latency_s, "latency_origin": latency_origin,
        "bandwidth_bytes_per_s": bandwidth, "bandwidth_basis": basis,
        "time_s": collective_time_s(operation=operation, algorithm=algorithm,
                                    num_ranks=num_ranks, bytes_total=bytes_total,
                                    latency_s=latency_s, bandwidth_bytes_per_s=bandwidth),
    }
