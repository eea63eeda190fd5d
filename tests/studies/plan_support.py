"""A small vectorized stand-in for the workload model, for the selection tests that must not
depend on its numbers: decode step = weights read + KV read at HBM speed, prefill at a fixed
FLOP rate. Its outputs have the shape and names of ``WorkloadResult``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FakeResult:
    ttft_s: np.ndarray
    tpot_s: np.ndarray
    e2e_latency_s: np.ndarray
    tokens_per_s_per_gpu: np.ndarray
    total_tokens_per_s_per_gpu: np.ndarray
    tokens_per_s_per_user: np.ndarray
    memory_bytes_per_gpu: np.ndarray
    fits: np.ndarray
    gpus: np.ndarray
    decode_bound: np.ndarray
    prefill_bound: np.ndarray
    basis: str = "fake"
    efficiency_note: str = "fake"


BYTES = {"bf16": 2.0, "fp8": 1.0, "fp4": 0.5}


def fake_workload(model, hardware, engine, *, isl, osl, concurrency, tp=1, pp=1,
                  attention_dp=1, moe_tp=None, moe_ep=None, weights_dtype="fp8",
                  moe_weights_dtype=None, kv_dtype=None, prefix_cache_hit_frac=0.0):
    gpus = np.asarray(tp) * attention_dp * pp
    weights = 7e11 * BYTES[moe_weights_dtype or weights_dtype] / gpus
    kv = 7e4 * BYTES[kv_dtype or "bf16"] * (isl + osl) * concurrency / gpus
    hbm = hardware.gpu.hbm_bandwidth_bytes_per_s
    step = (weights + kv) / hbm * pp + 1e-4 * np.log2(moe_ep) + 2e-3
    prefill = isl * (1 - prefix_cache_hit_frac) * concurrency * 7e10 / (gpus * 1e15) + 0.05 / attention_dp
    tokens = concurrency / step / gpus
    memory = weights + kv
    return FakeResult(ttft_s=prefill + 0 * step, tpot_s=step, e2e_latency_s=prefill + osl * step,
                      tokens_per_s_per_gpu=tokens, total_tokens_per_s_per_gpu=tokens * 2,
                      tokens_per_s_per_user=1 / step, memory_bytes_per_gpu=memory,
                      fits=memory < hardware.gpu.hbm_usable_bytes, gpus=gpus,
                      decode_bound=np.zeros_like(gpus), prefill_bound=np.zeros_like(gpus))
