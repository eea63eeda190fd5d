"""Pipeline-parallel schedules: bubble time and per-device parameter and activation memory of
1F1B, ZB1P, DualPipe and DualPipeV.

Ref: V3R §3.2.1, Table 2; the DualPipe README (github.com/deepseek-ai/DualPipe), whose table adds
DualPipeV (the "cut-in-half" DualPipe on PP/2 devices); P Table 4 (arXiv 2505.09343 §5.1) for
the F, B and W times.

Symbols: PP pipeline stages; F the time of a forward chunk; B of a full backward chunk (input and
weight gradients); W of a "backward for weights" chunk; F&B of a forward and a backward chunk
run overlapped. Convention: memory multipliers are relative to one stage's parameters (1×) and
one micro-batch's activations on one stage; ``F&B`` defaults to F + B (no overlap gain), the
conservative case, when not given.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner import vocab

#: Schedules, in the order of the DualPipe README's table.
SCHEDULES = vocab.PIPELINE_SCHEDULES
#: W chunks a schedule moves into the bubble: ZB1P 2W; DualPipe(V) 3W.
ZB1P_W_CHUNKS = 2
DUALPIPE_W_CHUNKS = 3
#: DualPipe keeps two copies of the parameters of a stage pair (both directions).
DUALPIPE_PARAM_COPIES = 2
#: DualPipe's and DualPipeV's ``step()`` assert num_chunks >= num_ranks * 2 (DualPipe also
#: num_chunks even): github.com/deepseek-ai/DualPipe@3da1bbe dualpipe/dualpipe.py l. 333,
#: dualpipe/dualpipev.py l. 318. num_chunks = m micro-batches, num_ranks = p.
DUALPIPE_MIN_CHUNKS_PER_RANK = 2


def bubble_1f1b_s(*, pp, f_s, b_s):
    """1F1B bubble per device (s). Formula: (PP − 1)(F + B). Ref: V3R Table 2.
    Convention: F, B per chunk. Example: PP = 16, F = 1.13, B = 1.99: 15 × 3.12 = 46.80 s."""
    return (pp - 1) * (f_s + b_s)


def bubble_zb1p_s(*, pp, f_s, b_s, w_s, num_micro_batches=None):
    """ZB1P (zero-bubble, one pipeline) bubble per device (s).

    Formula: (PP − 1)(F + B − 2W) (m >= PP); with m micro-batches max((PP − 1)(F + B − 2W),
    (PP − 1)(F + B − W) − (m − 1)·W).
    Ref: V3R Table 2; Qi et al., "Zero Bubble Pipeline Parallelism", ICLR 2024 (arXiv
    2401.10241 §2.1). ZB-H1 takes the W passes off the backward chain ((PP − 1)·W) and fills
    the drain with delayed W passes (another (PP − 1)·W), stated for m >= PP; with m < PP a
    stage has only m − 1 W passes to delay behind its last B, so the drain hides (m − 1)·W
    (derived here; equal to the first form at m = PP; checked against an event simulation in
    tests/calc/test_train_rules.py).
    Convention: W is part of B; ``num_micro_batches`` None is Table 2's form (m >= PP);
    arrays broadcast.
    Example: PP = 16, F = 1.13, B = 1.99, W = 0.48: 15 × 2.16 = 32.40 s; with m = 4:
    max(32.40, 15 × 2.64 − 3 × 0.48) = 38.16 s.
    """
    import numpy as np

    table2 = (pp - 1) * (f_s + b_s - ZB1P_W_CHUNKS * w_s)
    if num_micro_batches is None:
        return table2
    drain = (pp - 1) * (f_s + b_s - w_s) - (np.asarray(num_micro_batches, dtype=float) - 1) * w_s
    return np.maximum(table2, drain)


def bubble_dualpipe_s(*, pp, fb_s, b_s, w_s):
    """DualPipe (and DualPipeV) bubble per device (s). Formula: (PP/2 − 1)(F&B + B − 3W).
    Ref: V3R Table 2; DualPipe README. Convention: PP even. Example: PP = 16, F&B = F + B = 3.12,
    B = 1.99, W = 0.48: 7 × 3.67 = 25.69 s."""
    return (pp / 2 - 1) * (fb_s + b_s - DUALPIPE_W_CHUNKS * w_s)


def bubble_frac(*, bubble_s, num_micro_batches, f_s, b_s):
    """Share of a device's step time spent in the bubble (fraction).

    Formula: bubble / (bubble + m·(F + B)), m micro-batches of useful F + B each.
    Ref: the usual definition (Narayanan et al., SC'21). Convention: communication hidden.
    Example: 1F1B, PP = 16, m = 64, F + B = 3.12: 46.8 / (46.8 + 199.68) = 19.0%.
    """
    return bubble_s / (bubble_s + num_micro_batches * (f_s + b_s))


@dataclass(frozen=True)
class ScheduleResult:
    schedule: str
    pp: int
    fb_s: float                  # the F&B time used (F + B unless given)
    num_devices: int
    bubble_s: float
    bubble_frac: float | None
    param_copies: float          # × one stage's parameters
    activation_micro_batches: int   # × one micro-batch's activations on one stage
    param_bytes_per_device: float | None
    activation_bytes_per_device: float | None
    note: str = ""               # why the schedule cannot run these micro-batches ("" if it can)


def pipeline_schedules(*, pp: int, f_s: float, b_s: float, w_s: float, fb_s: float | None = None,
                       num_micro_batches: int | None = None,
                       stage_param_bytes: float | None = None,
                       micro_batch_activation_bytes: float | None = None) -> list[ScheduleResult]:
    """Every schedule's bubble and memory for ``pp`` stages and chunk times F, B, W (F&B = F + B
    unless given); bytes when one stage's parameters and one micro-batch's activations on one
    stage are given.

    Formula: bubbles 1F1B (PP − 1)(F + B); ZB1P (PP − 1)(F + B − 2W), with m < PP micro-batches
    :func:`bubble_zb1p_s`'s drain form; DualPipe and DualPipeV (PP/2 − 1)(F&B + B − 3W);
    bubble share bubble / (bubble + m·(F + B)); parameters 1× (2× DualPipe(V)); activations
    min(PP, m) (min(PP + 1, m) for DualPipe(V)) micro-batches.
    Ref: V3R §3.2.1, Table 2; DualPipe README (github.com/deepseek-ai/DualPipe); paper.md §9.
    Convention: see the module docstring; DualPipeV runs on PP/2 devices; ``bubble_frac`` and
    the bytes are None when their inputs are not given; W is refused above min((F + B)/2,
    (F&B + B)/3), where a bubble would go negative; given m, DualPipe(V) below 2·PP
    micro-batches (DualPipe: or odd m) is not runnable (DualPipe's ``step()`` asserts): its
    row says why in ``note`` and has no bubble share.
    Example: PP = 16, F = 1.13, B = 1.99, W = 0.48 s, m = 64: 1F1B 15 × 3.12 = 46.80 s (19.0%);
    ZB1P 15 × (3.12 − 0.96) = 32.40 s (14.0%); DualPipe 7 × (3.12 + 1.99 − 1.44) = 25.69 s
    (11.4%) with 2× parameters and 17 micro-batches of activations; DualPipeV the same on 8
    devices.
    """
    from planner.errors import UsageError

    if pp < 2 or pp % 2:
        raise UsageError(f"PP must be an even number >= 2 for DualPipe (got {pp})")
    if w_s > b_s:
        raise UsageError(f"W ({w_s:g} s) is part of B ({b_s:g} s) and cannot exceed it")
    if not f_s + b_s > 0:
        raise UsageError("F + B must be > 0 s: a chunk with no work has no schedule")
    fb = f_s + b_s if fb_s is None else fb_s
    # The bubble formulas move W chunks into the bubble; past these bounds they would go
    # negative (and the bubble share past 100%): the schedules cannot hide more than the bubble.
    w_max = min((f_s + b_s) / ZB1P_W_CHUNKS, (fb + b_s) / DUALPIPE_W_CHUNKS)
    if w_s > w_max:
        raise UsageError(
            f"W = {w_s:g} s is more weight-backward time than the bubbles can absorb: the "
            f"formulas need {ZB1P_W_CHUNKS}W <= F + B ({f_s + b_s:g} s) and "
            f"{DUALPIPE_W_CHUNKS}W <= F&B + B ({fb + b_s:g} s), so W <= {w_max:.4g} s")
    m = num_micro_batches
    dual_bubble = bubble_dualpipe_s(pp=pp, fb_s=fb, b_s=b_s, w_s=w_s)
    rows = [
        ("1f1b", pp, bubble_1f1b_s(pp=pp, f_s=f_s, b_s=b_s), 1, pp, ""),
        ("zb1p", pp, float(bubble_zb1p_s(pp=pp, f_s=f_s, b_s=b_s, w_s=w_s,
                                         num_micro_batches=m)), 1, pp, ""),
        ("dualpipe", pp, dual_bubble, DUALPIPE_PARAM_COPIES, pp + 1,
         _dualpipe_refusal(m, pp=pp, even=True)),
        ("dualpipev", pp // 2, dual_bubble, DUALPIPE_PARAM_COPIES, pp + 1,
         _dualpipe_refusal(m, pp=pp, even=False)),
    ]
    out = []
    for name, devices, bubble, copies, stage_acts, note in rows:
        acts = stage_acts if m is None else min(stage_acts, m)
        out.append(ScheduleResult(
            schedule=name, pp=pp, fb_s=fb, num_devices=devices, bubble_s=bubble, note=note,
            bubble_frac=(None if m is None or note else bubble_frac(
                bubble_s=bubble, num_micro_batches=m, f_s=f_s, b_s=b_s)),
            param_copies=copies, activation_micro_batches=acts,
            param_bytes_per_device=(None if stage_param_bytes is None
                                    else copies * stage_param_bytes),
            activation_bytes_per_device=(None if micro_batch_activation_bytes is None
                                         else acts * micro_batch_activation_bytes),
        ))
    return out


def _dualpipe_refusal(num_micro_batches: int | None, *, pp: int, even: bool) -> str:
    """Why DualPipe (``even``) or DualPipeV cannot run ``num_micro_batches`` on ``pp`` stages,
    "" where it can or none is given (its ``step()`` asserts, :data:`DUALPIPE_MIN_CHUNKS_PER_RANK`)."""
    m = num_micro_batches
    if m is None:
        return ""
    if m < DUALPIPE_MIN_CHUNKS_PER_RANK * pp:
        return (f"not runnable at m = {m}: step() needs m >= 2 x PP = "
                f"{DUALPIPE_MIN_CHUNKS_PER_RANK * pp} micro-batches")
    return f"not runnable at m = {m}: DualPipe's step() needs an even m" if even and m % 2 else ""


#: Backward ≈ 2 × forward (input gradients + weight gradients, each about one forward).
BACKWARD_TO_FORWARD = 2
#: The weight-gradient part of the backward ≈ 1 × forward.
WEIGHT_BACKWARD_TO_FORWARD = 1


def chunk_times_s(*, forward_flops_per_token, tokens_per_micro_batch, pp,
                  achieved_flop_per_s):
    """(F, B, W) chunk times of one micro-batch on one of ``pp`` equal stages (s).

    Formula: F = f · T / PP / R; B = 2F; W = F, with f forward FLOPs per token, T tokens per
    micro-batch, R the achieved FLOP/s of one device.
    Ref: the usual 1 : 2 forward : backward FLOP ratio (Kaplan et al. 2020, 6N = 2N + 4N); ZB1P's
    split of B into input and weight gradients (Qi et al., ICLR 2024).
    Convention: layers split evenly; communication and recomputation not counted.
    Example: DeepSeek-V3, f = 83.48e9, T = 4,096, PP = 16, R = 0.73 × 989e12 = 722e12:
    F = 29.6 ms, B = 59.2 ms, W = 29.6 ms.
    """
    f = forward_flops_per_token * tokens_per_micro_batch / pp / achieved_flop_per_s
    return f, BACKWARD_TO_FORWARD * f, WEIGHT_BACKWARD_TO_FORWARD * f


#: P Table 4's chunk times (s): the defaults when neither times nor a model are given.
PAPER_F_S, PAPER_B_S, PAPER_W_S = 1.13, 1.99, 0.48


def pipeline_chunk_times(*, f_s=None, b_s=None, w_s=None, model=None, hardware=None, pp=16,
                         tokens_per_micro_batch=4096):
    """(F, B, W, where they came from): given times win; otherwise derived from ``model`` and
    ``hardware`` (:class:`~planner.specs.Model` and :class:`~planner.specs.Hardware` specs;
    achievable = dense BF16 peak × the matmul efficiency factor) with :func:`chunk_times_s`;
    otherwise P Table 4's 1.13 / 1.99 / 0.48 s.

    Formula: F = f · T / PP / (R_peak · η); B = 2F; W = F (:func:`chunk_times_s`), f the forward
    FLOPs per token at s = T (exact-causal).
    Ref: P Table 4 (the default times); V3R §3.2.1; Kaplan et al. 2020 (backward = 2 × forward).
    Convention: ``model`` and ``hardware`` come together or not at all (a UsageError otherwise);
    each of ``f_s``, ``b_s``, ``w_s`` given overrides its derived value.
    Example: DeepSeek-V3 on H800, T = 4,096, PP = 16: f = 83.48e9, R = 989e12 × η = 0.526 =
    520e12 FLOP/s: F = 83.48e9 × 4,096 / 16 / 520e12 = 41.08 ms, B = 82.17 ms, W = 41.08 ms.
    With no model: (1.13, 1.99, 0.48).
    """
    from planner.errors import UsageError

    if (model is None) != (hardware is None):
        raise UsageError("give model and hardware together to derive chunk times")
    if model is not None and hardware is not None:
        from planner.calc.flops import model_flops_per_token

        m, h = model, hardware
        factor = h.efficiency_frac("matmul_flops")
        rate = h.peak_dense_flop_per_s("bf16") * factor.frac
        fwd = model_flops_per_token(m, seq_len=int(tokens_per_micro_batch)).forward_flops_per_token
        df, db, dw = chunk_times_s(forward_flops_per_token=fwd,
                                   tokens_per_micro_batch=tokens_per_micro_batch, pp=pp,
                                   achieved_flop_per_s=rate)
        origin = (f"derived: {m.label}, {tokens_per_micro_batch:g} tokens per micro-batch over "
                  f"{pp} stages at {rate / 1e12:.0f} TFLOP/s (BF16 dense peak x {factor.frac:g} "
                  "achievable), B = 2F, W = F; given values override")
    else:
        df, db, dw = PAPER_F_S, PAPER_B_S, PAPER_W_S
        origin = "P Table 4 (1F 1.13 s, 1B 1.99 s, 1W 0.48 s) unless given"
    return (df if f_s is None else f_s, db if b_s is None else b_s,
            dw if w_s is None else w_s, origin)
