"""A training layout end to end: memory per GPU by part and the fit, step time by part with the
binding part, tokens/s per GPU, MFU, GPU-hours and cost for a token budget; and the search over
layouts for the fastest that fit (one vectorized call over the grid).

Ref: see :mod:`planner.calc.train`; planner.calc.training for the accounting (GPU-hours =
T / (τ·3600), MFU = τ·F / R_peak, cost = GPU-hours × price).
Convention: MFU counts the model's FLOPs (exact-causal, P's "causal", no recomputation, no MTP)
against the dense BF16 peak, and separately against the FP8 peak where the device has one;
GPUs = t·p·c·d; m = global batch / (micro-batch · d) micro-batches per step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from planner.calc.pipeline import DUALPIPE_MIN_CHUNKS_PER_RANK
from planner.calc.train.memory import train_memory_per_gpu
from planner.calc.train.recipe import RECIPES, RECOMPUTE_MODES, TRAIN_SCHEDULES
from planner.calc.train.step import train_step_time
from planner.errors import UsageError

if TYPE_CHECKING:
    from planner.specs.hardware import Hardware
    from planner.specs.model import Model

SECONDS_PER_HOUR = 3600
#: The formula and reference an explanation of a layout prints.
FORMULA = ("step = m·(F + B) + bubble + PP + DP (exposed) + optimizer; τ = B·s / (step·N); "
           "MFU = τ·F_tok / R_peak(BF16); GPU-hours = T / (τ·3600); memory = W + G + O + A + "
           "logits + buffers")
REF = ("Narayanan et al. SC'21; Korthikanti et al. 2022; ZeRO; V3R §3.2-3.3; DualPipe README; "
       "Megatron-LM theoretical_memory_usage.py")


#: Narayanan et al. 2021 eq. 3: FLOPs of one iteration with activation recomputation are
#: 96·B·s·l·h²·(1 + s/(6h) + V/(16·l·h)); 96 = 24 (a layer's GEMMs per token / h²) × 4 passes.
MEGATRON_FLOPS_COEFF = 96
MEGATRON_SEQ_TERM = 6
MEGATRON_VOCAB_TERM = 16


def megatron_iteration_flops(*, num_layers: int, hidden_size: int, vocab_size: int,
                             global_batch: float, seq_len: int) -> float:
    """FLOPs Megatron-LM's papers count for one iteration with full recomputation (FLOP), the
    basis of their "achieved teraFLOP/s per GPU".

    Formula: F = 96·B·s·l·h²·(1 + s/(6h) + V/(16·l·h)).
    Ref: Narayanan et al. 2021 (arXiv 2104.04473) §5.1, eq. 3.
    Convention: GEMMs only (forward, backward and the recomputed forward), the logit layer's
    6·B·s·h·V included; achieved FLOP/s per GPU = F / (step · GPUs).
    Example: GPT-3 175B (l = 96, h = 12,288, V = 51,200), B = 1,536, s = 2,048: 4.51e18 FLOP;
    at 153 TFLOP/s on 384 GPUs a step of 76.78 s.
    """
    h, layers = float(hidden_size), float(num_layers)
    return (MEGATRON_FLOPS_COEFF * global_batch * seq_len * layers * h * h
            * (1 + seq_len / (MEGATRON_SEQ_TERM * h)
               + vocab_size / (MEGATRON_VOCAB_TERM * layers * h)))


@dataclass(frozen=True)
class LayoutGrid:
    """Layouts as numpy arrays of one shape (ints; recompute and schedule as indices)."""

    tp: np.ndarray
    pp: np.ndarray
    dp: np.ndarray
    cp: np.ndarray
    ep: np.ndarray
    vpp: np.ndarray
    micro_batch: np.ndarray
    zero: np.ndarray
    recompute: np.ndarray
    schedule: np.ndarray


@dataclass(frozen=True)
class TrainEvaluation:
    """Every output of a grid of layouts (arrays), and what the grid shares."""

    grid: LayoutGrid
    valid: np.ndarray
    reason: np.ndarray          # "" where valid
    memory_parts: dict
    memory_bytes_per_gpu: np.ndarray
    capacity_bytes: float
    fits: np.ndarray
    device_memory_parts: dict   # "end" / "middle" -> parts; memory_parts are the busiest's
    middle_device: np.ndarray   # True where a middle stage, not an end one, is the busiest
    step_parts: dict
    step_time_s: np.ndarray
    num_micro_batches: np.ndarray
    tokens_per_s_per_gpu: np.ndarray
    mfu_frac: np.ndarray
    mfu_fp8_frac: np.ndarray | None
    train_flops_per_token: float
    rates_note: str


def _validity(model: Model, g: LayoutGrid, *, gpus: int, global_batch: int):
    """(valid mask, reason strings) of each layout of the grid."""
    heads = model.attention.num_heads
    experts = getattr(model.ffn, "num_routed_experts", 1)
    sched = g.schedule
    m = global_batch / np.maximum(g.micro_batch * g.dp, 1)
    dualpipe = sched >= TRAIN_SCHEDULES.index("dualpipe")
    checks = [
        (g.tp * g.pp * g.cp * g.dp != gpus, "t·p·c·d != GPUs"),
        (global_batch % np.maximum(g.micro_batch * g.dp, 1) != 0,
         "global batch not a multiple of micro-batch × d"),
        (g.pp > model.num_layers, "more stages than layers"),
        (heads % g.tp != 0, "heads not divisible by t"),
        (experts % g.ep != 0, "experts not divisible by EP"),
        ((g.dp * g.cp * g.tp) % g.ep != 0, "EP does not divide d·c·t"),
        ((sched >= TRAIN_SCHEDULES.index("dualpipe")) & (g.pp % 2 != 0),
         "DualPipe needs an even p"),
        (dualpipe & (m < DUALPIPE_MIN_CHUNKS_PER_RANK * g.pp),
         "DualPipe's step() needs m >= 2p micro-batches (num_chunks >= num_ranks * 2)"),
        ((sched == TRAIN_SCHEDULES.index("dualpipe")) & (m % 2 != 0),
         "DualPipe's step() needs an even m (num_chunks % 2 == 0)"),
        ((sched == TRAIN_SCHEDULES.index("interleaved")) & (g.vpp < 2),
         "interleaved needs v >= 2"),
        ((sched != TRAIN_SCHEDULES.index("interleaved")) & (g.vpp != 1),
         "v > 1 only with the interleaved schedule"),
        (g.pp * g.vpp > model.num_layers, "more virtual stages than layers"),
    ]
    reason = np.full(np.broadcast(*[c for c, _ in checks]).shape, "", dtype=object)
    for bad, text in reversed(checks):
        reason = np.where(bad, text, reason)
    return reason == "", reason


def dualpipe_runnable_micro_batches(num_micro_batches, *, pp, schedule):
    """The micro-batches per step nearest below ``num_micro_batches`` that the schedule's
    ``step()`` runs: DualPipe an even count of at least 2p, DualPipeV at least 2p, the other
    schedules any.

    Formula: DualPipe max(2p, m − m mod 2); DualPipeV max(2p, m); else m.
    Ref: DualPipe@3da1bbe ``step()`` asserts (:data:`DUALPIPE_MIN_CHUNKS_PER_RANK`).
    Convention: ``schedule`` an index into TRAIN_SCHEDULES; arrays broadcast.
    Example: DualPipe, p = 16, m = 27 -> 32; m = 39 -> 38; 1F1B m = 27 -> 27.
    """
    m, sched = np.asarray(num_micro_batches), np.asarray(schedule)
    dual = sched == TRAIN_SCHEDULES.index("dualpipe")
    floor = np.maximum(DUALPIPE_MIN_CHUNKS_PER_RANK * np.asarray(pp), m - dual * (m % 2))
    return np.where(sched >= TRAIN_SCHEDULES.index("dualpipe"), floor, m)


def evaluate_layouts(model: Model, hardware: Hardware, grid: LayoutGrid, *, gpus: int,
                     global_batch: int, seq_len: int, recipe: str = "bf16",
                     sequence_parallel: bool = True, flash_attention: bool = True,
                     dropout: bool = False, dp_overlap: bool | None = None,
                     grad_accumulation_fused: bool = True) -> TrainEvaluation:
    """Memory, step time, tokens/s per GPU and MFU of every layout of ``grid`` (one call).

    Formula: memory :func:`~planner.calc.train.memory.train_memory_per_gpu`; step
    :func:`~planner.calc.train.step.train_step_time`; τ = B·s / (step · N); MFU = τ·F /
    R_peak(BF16), F the model's training FLOPs per token (exact-causal).
    Ref: see the module docstring.
    Convention: invalid layouts (``reason`` says why) get NaN-free figures that callers must
    not report; ``recipe`` fp8 needs an FP8 peak in the hardware spec.
    Example: DeepSeek-V3 on 2,048 H800 (p = 16, EP 64, d = 128, ZeRO 1, DualPipe, FP8,
    selective, B = 15,360 x 4,096): step 17.31 s, 1,774.9 tokens/s per GPU, MFU 44.95%;
    74.13 GB per GPU (a middle stage; activations 43.02 GB): fits 85.5 GB.
    """
    from planner.calc.flops import model_flops_per_token
    from planner.calc.train.rates import train_rates
    from planner.calc.train.shape import train_shape

    if recipe not in RECIPES:
        raise UsageError(f"unknown precision recipe {recipe!r}; expected {', '.join(RECIPES)}")
    valid, reason = _validity(model, grid, gpus=gpus, global_batch=global_batch)
    shape = train_shape(model, seq_len=seq_len, recipe=recipe, dropout=dropout)
    g = grid
    rows = g.micro_batch * seq_len / np.maximum(g.cp, 1)
    expert_rows = _expert_rows(model, rows, tp=g.tp, ep=g.ep)
    rates = train_rates(hardware, gemm_dtype=RECIPES[recipe].gemm_dtype, rows=rows,
                        expert_rows=expert_rows)
    m = global_batch / np.maximum(g.micro_batch * g.dp, 1)
    kw = dict(recipe=recipe, tp=g.tp, pp=g.pp, dp=g.dp, cp=g.cp, ep=g.ep, vpp=g.vpp,
              micro_batch=g.micro_batch, seq_len=seq_len, num_micro_batches=m,
              recompute=g.recompute, zero=g.zero, schedule=g.schedule,
              sequence_parallel=sequence_parallel, flash_attention=flash_attention)
    mem = train_memory_per_gpu(shape, capacity_bytes=hardware.gpu.hbm_usable_bytes, **kw)
    step = train_step_time(shape, rates, dp_overlap=dp_overlap,
                           grad_accumulation_fused=grad_accumulation_fused, **kw)
    tps = global_batch * seq_len / step.step_time_s / gpus
    flops = model_flops_per_token(model, seq_len=seq_len).train_flops_per_token
    peaks = hardware.gpu.peak_dense_tflop_per_s
    fp8 = None if peaks is None or peaks.fp8 is None else tps * flops / hardware.peak_dense_flop_per_s("fp8")
    return TrainEvaluation(
        grid=g, valid=valid, reason=reason, memory_parts=mem.parts,
        memory_bytes_per_gpu=mem.total_bytes, capacity_bytes=mem.capacity_bytes,
        fits=mem.fits & valid, device_memory_parts=mem.device_parts,
        middle_device=mem.middle_device & valid, step_parts=step.parts,
        step_time_s=step.step_time_s,
        num_micro_batches=m, tokens_per_s_per_gpu=tps,
        mfu_frac=tps * flops / hardware.peak_dense_flop_per_s("bf16"), mfu_fp8_frac=fp8,
        train_flops_per_token=flops, rates_note=rates.note)


def grid_of(**values) -> LayoutGrid:
    """A LayoutGrid from scalars or arrays that broadcast (recompute and schedule by name).

    Formula: np.broadcast_arrays of the fields. Ref: none (a constructor).
    Convention: names are looked up in RECOMPUTE_MODES / TRAIN_SCHEDULES.
    Example: grid_of(tp=8, pp=8, dp=1, cp=1, ep=1, vpp=3, micro_batch=1, zero=0,
    recompute="selective", schedule="interleaved") is one layout.
    """
    for key, names in (("recompute", RECOMPUTE_MODES), ("schedule", TRAIN_SCHEDULES)):
        v = values[key]
        listed = [v] if isinstance(v, str) else list(np.ravel(v))
        for name in listed:
            if isinstance(name, str) and name not in names:
                raise UsageError(f"{key} must be one of {', '.join(names)} (got {name!r})")
        values[key] = np.reshape([names.index(x) if isinstance(x, str) else x
                                  for x in listed], np.shape(v))
    arrays = np.broadcast_arrays(*(np.asarray(values[f], dtype=np.int64)
                                   for f in LayoutGrid.__dataclass_fields__))
    return LayoutGrid(*arrays)


#: The most layouts one search evaluates (its arrays hold ~40 floats per layout).
MAX_SEARCH_LAYOUTS = 2_000_000


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def search_grid(model: Model, *, gpus: int, micro_batches=(1, 2, 4), schedules=None,
                recomputes=RECOMPUTE_MODES, zeros=(0, 1, 2, 3), domain_gpus: int = 8,
                cps=(1,)) -> LayoutGrid:
    """The layouts a search tries: every t (dividing the scale-up domain), p, EP, v, b, ZeRO,
    recompute and schedule with t·p·c·d = GPUs (count of layouts = the grid's size).

    Formula: the Cartesian product of the candidate lists (numpy), kept where t·p·c divides the
    GPUs and v > 1 only with the interleaved schedule; d = GPUs / (t·p·c).
    Ref: none (enumeration). Convention: c = 1 unless ``cps`` says otherwise; t within one
    scale-up domain; EP powers of two up to the experts; v in 1, 2, 4; the other invalid
    combinations are kept and masked by :func:`evaluate_layouts`; more than
    :data:`MAX_SEARCH_LAYOUTS` is refused before the arrays are built.
    Example: Llama-3.1-70B on 64 GPUs: t in 1, 2, 4, 8 and p in 1, 2, 4, 8, 16, 32, 64:
    5,544 layouts (4,176 of them valid at B = 256: DualPipe(V) needs m >= 2p).
    """
    names = [TRAIN_SCHEDULES.index(s) for s in (schedules or TRAIN_SCHEDULES)]
    tps = [t for t in _divisors(domain_gpus) if gpus % t == 0]
    pps = [p for p in _divisors(gpus) if p <= model.num_layers]
    experts = getattr(model.ffn, "num_routed_experts", 1)
    eps = [e for e in (2 ** i for i in range(0, 12)) if e <= experts and gpus % e == 0]
    axes = [tps, pps, list(cps), eps, [1, 2, 4], list(micro_batches), list(zeros),
            [RECOMPUTE_MODES.index(r) for r in recomputes], names]
    size = int(np.prod([len(a) for a in axes]))
    if size > MAX_SEARCH_LAYOUTS:
        raise UsageError(f"the search grid has {size:,} layouts, more than "
                         f"{MAX_SEARCH_LAYOUTS:,}; search fewer GPUs' divisors")
    t, p, c, e, v, b, z, r, s = (x.ravel() for x in np.meshgrid(*[np.asarray(a, dtype=np.int64)
                                                                   for a in axes], indexing="ij"))
    keep = (gpus % (t * p * c) == 0) & ((v == 1) | (s == TRAIN_SCHEDULES.index("interleaved")))
    t, p, c, e, v, b, z, r, s = (x[keep] for x in (t, p, c, e, v, b, z, r, s))
    return LayoutGrid(tp=t, pp=p, dp=gpus // (t * p * c), cp=c, ep=e, vpp=v, micro_batch=b,
                      zero=z, recompute=r, schedule=s)


@dataclass(frozen=True)
class TrainLayoutResult:
    """One layout's outputs as plain numbers (the CLI's and the JSON's)."""

    model: str
    hardware: str
    layout: dict
    valid: bool
    reason: str
    memory_parts: dict
    memory_bytes_per_gpu: float
    capacity_bytes: float
    fits: bool
    busiest_device: str         # "a middle stage" or "an end stage" (it holds the ends)
    largest_memory_part: str
    step_parts: dict
    step_time_s: float
    binding_part: str
    num_micro_batches: float
    tokens_per_s_per_gpu: float
    mfu_frac: float
    mfu_fp8_frac: float | None
    train_flops_per_token: float
    tokens: float
    train_gpu_hours: float
    train_days: float
    usd_per_gpu_hour: float | None
    train_cost_usd: float | None
    rates_note: str
    inputs: tuple = ()


def _expert_rows(model: Model, rows, *, tp, ep):
    """Rows per expert of one micro-batch's grouped GEMM (balanced routing: the tokens/t of
    each of the EP ranks reach k of the E experts); None for a dense model."""
    if not model.is_moe:
        return None
    ffn: Any = model.ffn
    return (rows / np.maximum(tp, 1) * ep * ffn.num_experts_per_token
            / ffn.num_routed_experts)


def train_layout(model: Model, hardware: Hardware, *, gpus: int, tokens: float, tp: int = 1,
                 pp: int = 1, dp: int | None = None, cp: int = 1, ep: int = 1, vpp: int = 1,
                 micro_batch: int = 1, global_batch: int, seq_len: int = 4096,
                 recompute: str = "selective", zero: int = 1, schedule: str = "1f1b",
                 recipe: str = "bf16", usd_per_gpu_hour: float | None = None,
                 **options) -> TrainLayoutResult:
    """One training layout: memory by part and fit, step time by part, tokens/s per GPU, MFU,
    GPU-hours, days and cost for ``tokens``.

    Formula: :func:`evaluate_layouts` on a grid of one; GPU-hours = T / (τ·3600); days =
    GPU-hours / (N·24); cost = GPU-hours × price.
    Ref: see the module docstring; planner.calc.training (the accounting).
    Convention: ``dp`` defaults to GPUs / (t·p·c); an invalid layout is a UsageError naming
    why; the price defaults to the hardware spec's.
    Example: GPT-3 175B on 64 A100 (t = 8, p = 8, v = 3, b = 1, B = 64, selective): see
    docs/training.md.
    """
    from planner.calc.train.rates import train_rate_inputs
    from planner.calc.training import train_cost_usd, train_days, train_gpu_hours

    if dp is None:
        dp = max(gpus // max(tp * pp * cp, 1), 1)
    grid = grid_of(tp=tp, pp=pp, dp=dp, cp=cp, ep=ep, vpp=vpp, micro_batch=micro_batch,
                   zero=zero, recompute=recompute, schedule=schedule)
    e = evaluate_layouts(model, hardware, grid, gpus=gpus, global_batch=global_batch,
                         seq_len=seq_len, recipe=recipe, **options)
    if not bool(e.valid):
        raise UsageError(f"layout t={tp} p={pp} c={cp} d={dp} EP={ep} v={vpp} on {gpus} GPUs, "
                         f"global batch {global_batch}, micro-batch {micro_batch} "
                         f"(m = {global_batch / max(micro_batch * dp, 1):g}): "
                         f"{e.reason.item()}")
    tps = float(e.tokens_per_s_per_gpu)
    hours = float(train_gpu_hours(tokens=tokens, tokens_per_s_per_gpu=tps))
    price = hardware.price_usd_per_gpu_hour if usd_per_gpu_hour is None else usd_per_gpu_hour
    mem = {k: float(v) for k, v in e.memory_parts.items()}
    step = {k: float(v) for k, v in e.step_parts.items()}
    return TrainLayoutResult(
        model=model.name or model.label, hardware=hardware.name or hardware.label,
        layout=dict(gpus=gpus, tp=tp, pp=pp, dp=dp, cp=cp, ep=ep, vpp=vpp,
                    micro_batch=micro_batch, global_batch=global_batch, seq_len=seq_len,
                    recompute=recompute, zero=zero, schedule=schedule, recipe=recipe),
        valid=True, reason="", memory_parts=mem,
        memory_bytes_per_gpu=float(e.memory_bytes_per_gpu), capacity_bytes=e.capacity_bytes,
        fits=bool(e.fits),
        busiest_device="a middle stage" if bool(e.middle_device) else "an end stage",
        largest_memory_part=max(mem, key=lambda k: mem[k]),
        step_parts=step, step_time_s=float(e.step_time_s),
        binding_part=max(step, key=lambda k: step[k]),
        num_micro_batches=float(e.num_micro_batches), tokens_per_s_per_gpu=tps,
        mfu_frac=float(e.mfu_frac),
        mfu_fp8_frac=None if e.mfu_fp8_frac is None else float(e.mfu_fp8_frac),
        train_flops_per_token=e.train_flops_per_token, tokens=tokens, train_gpu_hours=hours,
        train_days=float(train_days(gpu_hours=hours, num_gpus=gpus)),
        usd_per_gpu_hour=price,
        train_cost_usd=None if price is None else float(train_cost_usd(
            gpu_hours=hours, usd_per_gpu_hour=price)),
        rates_note=e.rates_note,
        inputs=train_rate_inputs(
            hardware, gemm_dtype=RECIPES[recipe].gemm_dtype,
            rows=micro_batch * seq_len / max(cp, 1),
            expert_rows=_expert_rows(model, micro_batch * seq_len / max(cp, 1), tp=tp, ep=ep)))


def search_layouts(model: Model, hardware: Hardware, *, gpus: int, global_batch: int,
                   seq_len: int = 4096, recipe: str = "bf16", top: int = 10,
                   **options) -> tuple[TrainEvaluation, np.ndarray]:
    """The fastest layouts that fit: (the whole grid's evaluation, indices of the best ``top``
    valid, fitting layouts by step time).

    Formula: argsort of step time over valid & fits. Ref: none (a search).
    Convention: the grid of :func:`search_grid` (t within the scale-up domain); evaluated in one
    vectorized call.
    Example: Llama-3.1-70B on 64 H100, B = 256 sequences of 4,096: see the README.
    """
    grid = search_grid(model, gpus=gpus, domain_gpus=hardware.scale_up_domain_gpus)
    e = evaluate_layouts(model, hardware, grid, gpus=gpus, global_batch=global_batch,
                         seq_len=seq_len, recipe=recipe, **options)
    ok = np.flatnonzero(e.fits)
    order = ok[np.argsort(e.step_time_s[ok], kind="stable")][:top]
    return e, order
