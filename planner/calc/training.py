"""Training cost: GPU-hours, days and USD for a token count, and the MFU a run implies.

Ref: P Table 4 (arXiv 2505.09343 §5.1: 272.80B tokens/day on 2,048 H800 -> 385 TFLOPS causal,
38.94% MFU; 432 TFLOPS and 43.73% non-causal); DeepSeek-V3 report (V3R, arXiv 2412.19437) §1,
Table 1 (180K GPU-hours per trillion tokens, 2.664M for pre-training, 2.788M in all, $2/GPU-hour).

Convention: MFU = achieved FLOP/s per GPU / the GPU's DENSE BF16 peak (as P: 385 / 38.94% =
989 TFLOPS); FLOPs per token from :func:`planner.calc.flops.model_flops_per_token` under the
chosen convention (P's "causal" = ``exact-causal``, "non-causal" = ``exact-full``). GPU-hours
count every GPU for the whole run (wall time × GPUs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from planner.calc.common import Input
from planner.errors import UsageError

#: The formula and reference that explain a training run.
FORMULA = ("GPU-hours = T / (τ·3600), τ = R / F; MFU = R / R_peak; "
           "cost = GPU-hours × price")
REF = "P Table 4; DeepSeek-V3 report Table 1"

if TYPE_CHECKING:
    from planner.specs.hardware import Hardware
    from planner.specs.model import Model

SECONDS_PER_HOUR = 3600
HOURS_PER_DAY = 24
SECONDS_PER_DAY = SECONDS_PER_HOUR * HOURS_PER_DAY


def train_tokens_per_s_per_gpu(*, achieved_flop_per_s_per_gpu, train_flops_per_token):
    """Training tokens per second per GPU (tokens/s).

    Formula: τ = R / F, R = achieved FLOP/s per GPU, F = training FLOPs per token.
    Ref: P Table 4 (inverse: R = τ·F).
    Convention: R counts the FLOPs of the convention F uses.
    Example: R = 385e12, F = 250.45e9: τ = 1,537.2 tokens/s per GPU.
    """
    return achieved_flop_per_s_per_gpu / train_flops_per_token


def train_gpu_hours(*, tokens, tokens_per_s_per_gpu):
    """GPU-hours to train on ``tokens`` (h).

    Formula: H = T / (τ · 3600).
    Ref: V3R Table 1 (2.664M GPU-hours for 14.8T tokens).
    Convention: every GPU counted for the whole run.
    Example: T = 1e12, τ = 1,541.7: H = 180,176 GPU-hours (V3R: 180K per trillion tokens).
    """
    return tokens / (tokens_per_s_per_gpu * SECONDS_PER_HOUR)


def train_days(*, gpu_hours, num_gpus):
    """Wall-clock days of a run of ``gpu_hours`` on ``num_gpus`` GPUs (days).

    Formula: D = H / (N · 24).
    Ref: V3R §1 (3.7 days per trillion tokens on 2,048 H800).
    Convention: no downtime.
    Example: H = 180,176, N = 2,048: D = 3.666 days.
    """
    return gpu_hours / (num_gpus * HOURS_PER_DAY)


def mfu_frac(*, achieved_flop_per_s_per_gpu, peak_flop_per_s_per_gpu):
    """Model FLOPs utilization (fraction).

    Formula: MFU = R / R_peak.
    Ref: P Table 4 (385 / 989 = 38.94%).
    Convention: R_peak is the dense BF16 peak unless stated.
    Example: R = 385e12, R_peak = 989e12: 0.3893.
    """
    return achieved_flop_per_s_per_gpu / peak_flop_per_s_per_gpu


def train_cost_usd(*, gpu_hours, usd_per_gpu_hour):
    """Cost of a run (USD).

    Formula: C = H · p.
    Ref: V3R Table 1 ($2 per H800 GPU-hour: 2.788M GPU-hours -> $5.576M).
    Convention: rental price per GPU-hour, nothing else.
    Example: H = 2.788e6, p = 2: 5.576e6 USD.
    """
    return gpu_hours * usd_per_gpu_hour


@dataclass(frozen=True)
class TrainResult:
    """A training run of one model on one hardware: what was given and what it implies."""

    model: str
    hardware: str
    convention: str
    seq_len: int
    tokens: float
    num_gpus: int
    basis: str                      # which input fixed the speed: mfu, gpu_hours or tokens_per_day
    train_flops_per_token: float
    peak_flop_per_s_per_gpu: float
    achieved_flop_per_s_per_gpu: float
    train_tokens_per_s_per_gpu: float
    tokens_per_day: float
    mfu_frac: float
    train_gpu_hours: float
    train_days: float
    usd_per_gpu_hour: float | None
    train_cost_usd: float | None
    inputs: tuple[Input, ...]


def train_run(model: Model, hardware: Hardware, *, tokens: float, num_gpus: int,
              mfu: float | None = None, gpu_hours: float | None = None,
              tokens_per_day: float | None = None, convention: str = "exact-causal",
              seq_len: int = 4096, peak_dtype: str = "bf16",
              usd_per_gpu_hour: float | None = None) -> TrainResult:
    """GPU-hours, days, cost and MFU of training ``model`` on ``tokens`` with ``num_gpus`` GPUs;
    exactly one of ``mfu``, ``gpu_hours`` or ``tokens_per_day`` fixes the speed, the others are
    derived. The price defaults to the hardware spec's ``price_usd_per_gpu_hour``.

    Formula: τ = R / F (from ``mfu``: R = MFU · R_peak; from ``gpu_hours``: τ = T / (H · 3600);
    from ``tokens_per_day``: τ = tokens/day / (86,400 · N)); H = T / (τ · 3600); D = H / (N · 24);
    MFU = τ · F / R_peak; cost = H · p.
    Ref: P Table 4; V3R §1, Table 1; paper.md §9.
    Convention: see the module docstring (MFU against the dense ``peak_dtype`` peak; every GPU
    counted for the whole run); F from :func:`~planner.calc.flops.model_flops_per_token` under
    ``convention`` at ``seq_len``.
    Example: DeepSeek-V3 on N = 2,048 H800, T = 1e12 tokens at 272.80e9 tokens/day, causal:
    τ = 272.80e9 / (86,400 × 2,048) = 1,541.7 tokens/s per GPU; R = 1,541.7 × F = 250.45e9 =
    386.1 TFLOPS per GPU (P: 385); MFU 386.1 / 989 = 39.04% (P: 38.94%); H = 1e12 / (1,541.7 ×
    3,600) = 180,176 GPU-hours (V3R: 180K); D = 3.666 days; cost 180,176 × 2 = 360,352 USD.
    """
    from planner.calc.flops import model_flops_per_token

    given = [n for n, v in (("mfu", mfu), ("gpu_hours", gpu_hours),
                            ("tokens_per_day", tokens_per_day)) if v is not None]
    if len(given) != 1:
        raise UsageError("give exactly one of mfu, gpu_hours or tokens_per_day"
                         + (f" (got {', '.join(given)})" if given else ""))
    speed = {"mfu": mfu, "gpu_hours": gpu_hours, "tokens_per_day": tokens_per_day}[given[0]]
    if not (tokens > 0 and speed is not None and speed > 0):
        raise UsageError(f"tokens ({tokens:g}) and {given[0]} ({speed:g}) must be > 0")
    f = model_flops_per_token(model, seq_len=seq_len, convention=convention)
    flops_per_token = f.train_flops_per_token
    peak = hardware.peak_dense_flop_per_s(peak_dtype)
    if mfu is not None:
        achieved = mfu * peak
        tps = train_tokens_per_s_per_gpu(achieved_flop_per_s_per_gpu=achieved,
                                         train_flops_per_token=flops_per_token)
    elif gpu_hours is not None:
        tps = tokens / (gpu_hours * SECONDS_PER_HOUR)
        achieved = tps * flops_per_token
    else:
        assert tokens_per_day is not None   # exactly one of the three is given (checked above)
        tps = tokens_per_day / (SECONDS_PER_DAY * num_gpus)
        achieved = tps * flops_per_token
    if not 0 < tps < math.inf:      # a speed too small or too large to compute with
        raise UsageError(f"the training speed comes out as {tps:g} tokens/s per GPU: "
                         f"{given[0]} = {speed:g} is out of range")
    hours = train_gpu_hours(tokens=tokens, tokens_per_s_per_gpu=tps)
    if not 0 < hours < math.inf:
        raise UsageError(f"the run comes out as {hours:g} GPU-hours: tokens = {tokens:g} and "
                         f"{given[0]} = {speed:g} are out of range")
    price = hardware.price_usd_per_gpu_hour if usd_per_gpu_hour is None else usd_per_gpu_hour
    inputs = (
        Input("T (training tokens)", tokens, "tokens", "given"),
        Input("N (GPUs)", num_gpus, "GPUs", "given"),
        Input("F (training FLOPs per token)", flops_per_token, "FLOPs",
              f"{convention} at s = {seq_len} (model spec)"),
        Input("R_peak (dense peak per GPU)", peak, "FLOP/s",
              f"hardware spec gpu.peak_dense_tflop_per_s.{peak_dtype}"),
        Input(f"{given[0]}", {"mfu": mfu, "gpu_hours": gpu_hours,
                              "tokens_per_day": tokens_per_day}[given[0]],
              {"mfu": "fraction", "gpu_hours": "h", "tokens_per_day": "tokens/day"}[given[0]],
              "given: fixes the speed"),
        Input("p (price per GPU-hour)", price if price is not None else "n/a", "USD",
              "hardware spec price_usd_per_gpu_hour" if usd_per_gpu_hour is None else "given"),
    )
    return TrainResult(
        model=model.name or model.label, hardware=hardware.name or hardware.label,
        convention=convention, seq_len=seq_len, tokens=tokens, num_gpus=num_gpus,
        basis=given[0], train_flops_per_token=flops_per_token, peak_flop_per_s_per_gpu=peak,
        achieved_flop_per_s_per_gpu=achieved, train_tokens_per_s_per_gpu=tps,
        tokens_per_day=tps * SECONDS_PER_DAY * num_gpus,
        mfu_frac=mfu_frac(achieved_flop_per_s_per_gpu=achieved, peak_flop_per_s_per_gpu=peak),
        train_gpu_hours=hours, train_days=train_days(gpu_hours=hours, num_gpus=num_gpus),
        usd_per_gpu_hour=price,
        train_cost_usd=(None if price is None
                        else train_cost_usd(gpu_hours=hours, usd_per_gpu_hour=price)),
        inputs=inputs,
    )
