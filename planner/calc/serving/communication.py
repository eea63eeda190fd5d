"""Communication of a serving step: expert-parallel dispatch and combine per MoE layer, and the
tensor-parallel all-reduces of the residual stream.

Ref: P §2.3.2 and §4.3; V3R §3.4; DeepEP README; Shoeybi et al. 2019 (Megatron-LM) §3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from planner.calc.memory import HIGH_PRECISION_BYTES

if TYPE_CHECKING:
    from planner.specs.hardware import Hardware
    from planner.specs.model import Model

#: All-reduces of the residual stream per layer under attention TP: after attention's output
#: projection and after the FFN block (Megatron-LM's forward pass).
TP_ALL_REDUCES_PER_LAYER = 2


def tp_all_reduce_s(model: Model, hardware: Hardware, *, tp: int, tokens: float,
                    up_bytes_per_s: float, out_bytes_per_s: float):
    """(time (s), link) of one all-reduce of ``tokens`` hidden states over a TP group of ``tp``.

    Formula: :func:`tp_all_reduce_time_s`; the link is the scale-up domain where the group fits
    in it, else the scale-out network.
    Ref: Shoeybi et al. 2019 (Megatron-LM) §3, two all-reduces per layer in the forward pass;
    :mod:`planner.calc.collectives` (two-shot: vLLM's and TensorRT-LLM's custom all-reduce).
    Convention: not overlapped with compute (the next kernel needs the result).
    Example: TP 8, 256 tokens of d = 7,168 (3.67 MB) over H800 NVLink at 160 GB/s, α = 3.33 µs:
    2 × 3.33 + 1.75 × 3.670e6 / 160e9 s = 6.7 + 40.1 = 46.8 µs.
    """
    up = hardware.scale_up is not None and tp <= hardware.scale_up_domain_gpus
    return float(tp_all_reduce_time_s(model, hardware, tp=tp, tokens=tokens,
                                      up_bytes_per_s=up_bytes_per_s,
                                      out_bytes_per_s=out_bytes_per_s)), (
        "scale_up" if up else "scale_out")


def tp_all_reduce_time_s(model: Model, hardware: Hardware, *, tp, tokens, up_bytes_per_s,
                         out_bytes_per_s, hierarchical: bool = False):
    """Time of one all-reduce of ``tokens`` hidden states over TP groups of ``tp`` (s); ``tp``
    and ``tokens`` scalars or numpy arrays (broadcast together).

    Formula: n = T·d·2 (BF16). Inside the scale-up domain the two-shot all-reduce engines run
    there, 2·α + 2(p − 1)/p · n / B; across nodes a ring, 2(p − 1)·α + 2(p − 1)/p · n / B; α
    the spec's latency (0 where it gives none). ``hierarchical`` (NCCL's across nodes): the
    two-shot all-reduce inside each node of g GPUs plus a ring over the p / g nodes of n / g
    bytes each, 2(N − 1)·α_out + 2(N − 1)/N · (n / g) / B_out.
    Ref: Shoeybi et al. 2019 (Megatron-LM) §3; :func:`~planner.calc.collectives.collective_time_s`;
    NCCL's hierarchical (tree / NVLS + ring) algorithms across nodes.
    Convention: p = 1 takes no time (both formulas give 2·α there: the group is one GPU).
    Example: TP 8, 256 tokens of d = 7,168 (3.67 MB) over H800 NVLink at 160 GB/s, α = 3.33 µs:
    46.8 µs; TP [1, 8]: [0, 46.8 µs]; TP 64 over 8 nodes, hierarchical: 46.8 µs in the node +
    14 × 2.8 µs + 1.75 × 0.459 MB / 40 GB/s = 46.8 + 39.2 + 20.1 = 106 µs (a 64-rank ring:
    533 µs).
    """
    import numpy as np

    from planner.calc.collectives import collective_time_s, link_latency_us
    from planner.units import US

    n = tokens * model.hidden_size * HIGH_PRECISION_BYTES
    out = collective_time_s(operation="all-reduce", algorithm="ring", num_ranks=tp,
                            bytes_total=n, latency_s=(link_latency_us(
                                hardware, "scale-out-same-leaf") or 0.0) * US,
                            bandwidth_bytes_per_s=out_bytes_per_s)
    if hardware.scale_up is None:
        return np.where(np.asarray(tp) > 1, out, 0.0)
    up = collective_time_s(operation="all-reduce", algorithm="two-shot", num_ranks=tp,
                           bytes_total=n, latency_s=(link_latency_us(
                               hardware, "scale-up") or 0.0) * US,
                           bandwidth_bytes_per_s=up_bytes_per_s)
    if hierarchical:
        g = hardware.scale_up_domain_gpus
        inside = collective_time_s(operation="all-reduce", algorithm="two-shot", num_ranks=g,
                                   bytes_total=n, latency_s=(link_latency_us(
                                       hardware, "scale-up") or 0.0) * US,
                                   bandwidth_bytes_per_s=up_bytes_per_s)
        across = collective_time_s(operation="all-reduce", algorithm="ring",
                                   num_ranks=np.maximum(np.asarray(tp) / g, 1), bytes_total=n / g,
                                   latency_s=(link_latency_us(
                                       hardware, "scale-out-same-leaf") or 0.0) * US,
                                   bandwidth_bytes_per_s=out_bytes_per_s)
        out = inside + across
    return np.where(np.asarray(tp) > 1,
                    np.where(np.asarray(tp) <= hardware.scale_up_domain_gpus, up, out), 0.0)


def ep_copy_bytes(model: Model) -> tuple[float, float]:
    """(dispatch, combine) bytes of one token's copy sent to one expert (bytes).

    Formula: dispatch: the FP8 message with DeepEP's scales and metadata
    (:func:`~planner.calc.ep.fp8_dispatch_bytes_per_token_expert`); combine: BF16, 2·d.
    Ref: DeepEP README (FP8 dispatch, BF16 combine); V3R §3.4.
    Convention: every engine's all-to-all is counted at DeepEP's message sizes.
    Example: d = 7,168: (7,408, 14,336) B.
    """
    from planner.calc import ep as ep_calc

    return (ep_calc.fp8_dispatch_bytes_per_token_expert(hidden_size=model.hidden_size),
            model.hidden_size * HIGH_PRECISION_BYTES)


def ep_layer_comm_s(model: Model, hardware: Hardware, *, ep: int, tokens: float, copies: int,
                    forwarding: bool, up_bytes_per_s: float, out_bytes_per_s: float,
                    rank_load: float = 1.0, node_load: float = 1.0,
                    intranode_nvlink: bool = False):
    """(dispatch (s), combine (s), link) of one MoE layer for ``tokens`` tokens on one GPU.

    Formula: T · copies · b / B per direction, b = the FP8 dispatch bytes with DeepEP's scales
    (7,408 B for d = 7,168) or the BF16 combine bytes (2·d). Inside the scale-up domain: over
    it. Across nodes without forwarding (DeepSeek's and SGLang's decode: DeepEP low-latency
    kernels, pure RDMA): every copy over the NIC; with ``intranode_nvlink`` (DeepEP's
    low-latency kernels with NVLink allowed, its newer default) the copies to the node's own
    GPUs, domain / EP of them under uniform routing, go over NVLink at the same time instead.
    With NVLink forwarding (prefill: DeepEP normal kernels): one NIC copy per distinct remote
    node (node-limited routing over the eligible nodes of the token's groups, uniform
    expectation) while NVLink fans out to the experts; the two run at once.
    Ref: P §2.3.2 and §4.3; V3R §3.4; DeepEP README (low-latency kernels at EP 128-256:
    39-40 GB/s per GPU, 0.8 of the 50 GB/s NIC).
    Convention: ``copies`` = top-k, plus the shared experts when they are dispatched. The
    hottest rank receives (dispatch) and returns (combine) ``rank_load`` times the mean; with
    forwarding its node's NIC legs carry ``node_load`` times the mean (the layer waits for both).
    Example: DeepSeek-V3, EP 72 over IB at 40 GB/s, 128 tokens, 8 copies: dispatch
    128 × 8 × 7,408 / 40e9 = 190 µs, combine 128 × 8 × 14,336 / 40e9 = 367 µs (DeepEP measures
    173 / 314 µs at EP 64 and 192 / 369 µs at EP 128). With ``intranode_nvlink`` at EP 16 on
    8-GPU nodes, half the copies stay on NVLink: the NIC legs take half as long (Ant Group
    reports ~50% of the EP 16 traffic on NVLink, lmsys.org/blog/2025-09-26-sglang-ant-group).
    """
    from planner.calc.routing import eligible_nodes, expected_distinct_nodes, ib_copies_per_token
    from planner.specs.model import MoEFFN

    ffn = model.ffn
    per = ep_copy_bytes(model)
    domain = hardware.scale_up_domain_gpus
    if ep <= domain and hardware.scale_up is not None:
        return (*(tokens * copies * rank_load * b / up_bytes_per_s for b in per), "scale_up")
    nodes = max(1, ep // domain)
    if forwarding and hardware.scale_up is not None and nodes > 1:
        assert isinstance(ffn, MoEFFN), "expert-parallel traffic of a dense model"
        distinct = expected_distinct_nodes(experts_per_token=ffn.num_experts_per_token,
                                           experts_per_node=ffn.num_routed_experts // nodes,
                                           num_nodes=eligible_nodes(ffn, nodes=nodes))
        ib = ib_copies_per_token(distinct_target_nodes=distinct, num_nodes=nodes)
        return (*(tokens * max(ib * node_load * b / out_bytes_per_s,
                               copies * rank_load * b / up_bytes_per_s)
                  for b in per), "scale_out + NVLink forwarding")
    if intranode_nvlink and hardware.scale_up is not None:
        local = min(domain, ep) / ep              # share of the copies bound for the own node
        return (*(tokens * copies * rank_load * max((1 - local) * b / out_bytes_per_s,
                                                    local * b / up_bytes_per_s)
                  for b in per), "scale_out + intranode NVLink")
    return (*(tokens * copies * rank_load * b / out_bytes_per_s for b in per), "scale_out")


def ep_all_to_all_latency_s(hardware: Hardware, *, ep: Any) -> Any:
    """Fixed time of one MoE layer's expert-parallel all-to-all inside the scale-up domain (s);
    ``ep`` a scalar or numpy array.

    Formula: the hardware's measured ``scale_up.ep_all_to_all`` latency at EP ranks, read
    linearly in log EP between its points and constant past its ends; 0 where the spec has no
    table, or at EP 1 (no exchange). The layer's all-to-all is this plus its bytes over the
    link (the workload model's bandwidth term).
    Ref: AIConfigurator's GB200 TensorRT-LLM all-to-all table (prepare + dispatch + combine,
    ``trtllm_alltoall_perf.parquet``); DeepEP's low-latency kernels (SGLang's GB200 table).
    Convention: the engine's kernels' launch, synchronization and flag exchange per layer,
    the same for every token count; the bytes term adds the rest.
    Example: GB200 NVL72 (36.2, 39.8, 44.1, 42.1, 52.4 µs at EP 4 .. 64): EP 32 -> 42.1 µs,
    EP 24 -> 42.9 µs, EP [1, 2, 128] -> [0, 36.2, 52.4] µs; H200 (no table) -> 0.
    """
    import numpy as np

    from planner.units import US

    ep = np.asarray(ep, dtype=float)
    table = hardware.scale_up.ep_all_to_all if hardware.scale_up is not None else None
    if table is None:
        return 0.0 * ep
    at = np.interp(np.log(np.maximum(ep, 1.0)), np.log(table.ep), table.latency_us) * US
    return np.where(ep > 1, at, 0.0)
