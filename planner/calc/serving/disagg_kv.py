"""The KV cache between a disaggregated deployment's pools: its bytes per request, the
parallel senders of one request's cache, the link and its latency, and the transfer time
(scalars or numpy arrays: one call evaluates a grid of layouts).

Ref: :mod:`planner.calc.serving.disagg` (the closed forms); Mooncake / NIXL and TensorRT-LLM's
cache transceiver (each function's own references).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from planner.calc.serving.disagg_workload import PoolLayout
    from planner.specs.hardware import Hardware
    from planner.specs.model import Model


def kv_sender_gpus(model: Model, *, kv_dtype: str, tp: Any, pp: Any,
                   decode_tp: Any = None) -> Any:
    """Parallel senders of one request's KV cache, per copy of it: t_KV = Q_KV / (n · B).

    Formula: s(t) = b_KV(1) / b_KV(t), the distinct shards over t attention-TP ranks (GQA
    min(t, n_kv), MLA 1); the decode worker's t_D ranks hold R = t_D / s(t_D) copies of the
    cache. R = 1: n = s(t_P) · PP (each prefill rank sends its own shard); R > 1: n = PP ·
    min(t_P, t_D) / R (R copies leave the t_P prefill ranks that hold them, at most one
    sender per receiving rank): MLA from an attention-DP prefill rank to a TP 8 decode
    worker sends the whole latent 8 times over one link.
    Ref: :func:`~planner.calc.memory.kv_bytes_per_token_per_gpu`; Mooncake / NIXL (each rank
    sends its own shard); TensorRT-LLM ``cpp/tensorrt_llm/batch_manager/mlaCacheFormatter.cpp``
    (``needSendCache``: every context rank sends while its TP group is no larger than the
    generation side's; ``formatOutput`` sends the whole cache, split by PP only, over each
    connection to a generation TP rank).
    Convention: attention-DP ranks hold different requests, so they do not split one;
    ``decode_tp`` None: R = 1 (the decode side's copies not counted); the receiving links
    not modelled where R = 1.
    Example: Llama-3.1-70B (8 KV heads) TP 8, PP 1: 8; DeepSeek-V3 (MLA) TP 8 to decode TP
    8: 8 · 1 / 8 = 1; MLA attention DP (t_P = 1) to decode TP 8: 1 / 8.
    """
    from planner.calc.memory import kv_bytes_per_token_per_gpu

    whole = kv_bytes_per_token_per_gpu(model, kv_dtype=kv_dtype, tp=1)

    def shards(t: Any) -> Any:
        ts = np.asarray(t)
        per = {int(x): whole / kv_bytes_per_token_per_gpu(model, kv_dtype=kv_dtype, tp=int(x))
               for x in np.unique(ts)}
        return np.vectorize(lambda x: per[int(x)], otypes=[float])(ts)

    own = shards(tp) * np.asarray(pp)
    if decode_tp is None:
        return own
    t_d = np.asarray(decode_tp, dtype=float)
    copies = t_d / shards(decode_tp)
    shared = np.asarray(pp) * np.minimum(np.asarray(tp, dtype=float), t_d) / copies
    return np.where(copies > 1, shared, own)


def kv_link_rates(hardware: Hardware) -> tuple[float, float, float, float]:
    """(scale-up bytes/s, scale-out bytes/s, scale-up latency s, scale-out latency s) per GPU,
    achievable, for the KV transfer.

    Formula: B = peak · η (the spec's ``scale_up_bandwidth`` / ``scale_out_bandwidth``).
    Ref: :func:`~planner.calc.serving.rates.serving_rates`; the hardware spec's sources.
    Convention: no scale-up domain: the NIC both ways; latency 0 where the spec gives none.
    Example: H800: 200 GB/s × 0.8 = 160 GB/s NVLink, 50 GB/s × 0.8 = 40 GB/s per NIC.
    """
    from planner.calc.collectives import link_latency_us
    from planner.units import US

    out = hardware.scale_out.bandwidth_bytes_per_s * hardware.efficiency_frac(
        "scale_out_bandwidth").frac
    up_lat = (link_latency_us(hardware, "scale-up") or 0.0) * US
    out_lat = (link_latency_us(hardware, "scale-out-same-leaf") or 0.0) * US
    if hardware.scale_up is None:
        return out, out, out_lat, out_lat
    up = hardware.scale_up.bandwidth_bytes_per_s * hardware.efficiency_frac(
        "scale_up_bandwidth").frac
    return up, out, up_lat, out_lat


def kv_bytes_per_request(model: Model, *, kv_dtype: str, isl_tokens: Any) -> Any:
    """The KV cache one request's prompt moves from the prefill to the decode pool (bytes).

    Formula: Q_KV = ISL · b_KV, b_KV the whole model's KV bytes per token at ``kv_dtype``
    (:func:`~planner.calc.memory.kv_bytes_per_token_per_gpu` at TP 1).
    Ref: :func:`~planner.calc.serving.disagg.kv_transfer_bytes_per_request`.
    Convention: the whole prompt's cache, with a prefix cache too (the cached part is read on
    the prefill side); scalars or numpy arrays of ISL.
    Example: DeepSeek-V3, FP8 KV (40,016 B per token over its 61 layers), 4,096 tokens:
    163.9 MB.
    """
    from planner.calc.memory import kv_bytes_per_token_per_gpu
    from planner.calc.serving.disagg import kv_transfer_bytes_per_request

    return kv_transfer_bytes_per_request(
        kv_bytes_per_token=kv_bytes_per_token_per_gpu(model, kv_dtype=kv_dtype, tp=1),
        isl_tokens=isl_tokens)


def pools_kv_transfer(model: Model, hardware: Hardware, prefill: PoolLayout,
                      decode: PoolLayout, *, isl_tokens: Any, kv_dtype: str,
                      kv_bytes_per_s: Any = None) -> tuple[Any, Any, Any]:
    """(bytes per request, both pools inside one scale-up domain, transfer s) of the KV cache
    between two pools (:func:`~planner.calc.serving.disagg_workload.serve_disagg`'s).

    Formula: Q_KV (:func:`kv_bytes_per_request`); the link of
    :func:`~planner.calc.serving.disagg.kv_link_bytes_per_s` for n_P · g_P + n_D · g_D GPUs (or
    ``kv_bytes_per_s``) and its latency; senders :func:`kv_sender_gpus`;
    t = :func:`~planner.calc.serving.disagg.kv_transfer_s`.
    Ref: the three functions named.
    Convention: arrays of the layouts' broadcast shape; ``kv_bytes_per_s`` a dedicated link's
    achievable bandwidth per GPU in place of the hardware's.
    Example: DeepSeek-V3 FP8 KV, 4K prompts, 1 prefill worker of 8 H800 GPUs and 1 decode
    worker of 16: 24 GPUs > 8, the 163.9 MB cross the NIC (tests/calc/test_disagg_workload.py).
    """
    from planner.calc.serving.disagg import kv_link_bytes_per_s, kv_transfer_s

    q_kv = kv_bytes_per_request(model, kv_dtype=kv_dtype, isl_tokens=isl_tokens)
    up, out, up_lat, out_lat = kv_link_rates(hardware)
    pool = (np.asarray(prefill.workers) * prefill.gpus_per_worker
            + np.asarray(decode.workers) * decode.gpus_per_worker)
    inside = pool <= hardware.scale_up_domain_gpus
    link = kv_link_bytes_per_s(pool_gpus=pool, scale_up_domain_gpus=hardware.scale_up_domain_gpus,
                               scale_up_bytes_per_s=up, scale_out_bytes_per_s=out)
    if kv_bytes_per_s is not None:
        link = np.broadcast_arrays(np.asarray(kv_bytes_per_s, dtype=float), link)[0]
    lat = np.where(inside, up_lat, out_lat)
    senders = kv_sender_gpus(model, kv_dtype=kv_dtype, tp=prefill.tp, pp=prefill.pp,
                             decode_tp=decode.tp)
    return q_kv, inside, kv_transfer_s(kv_bytes_per_request=q_kv, link_bytes_per_s=link,
                                       sender_gpus=senders, latency_s=lat)
