"""The serving model beside measured deployment runs (issue 4's validation table).

Every run here is a published, deployment-level measurement with its setup; the planner's
prediction comes from :func:`planner.calc.serving.serve` with the catalog's default efficiency
factors (derived from kernel-level measurements only: DeepGEMM, FlashMLA, DeepEP). Nothing here
is fitted to these runs: a run's ``serve`` arguments restate its published setup, and where the
source leaves a setting open, ``assumed`` says what was taken and why. Each run's expert balance
restates its setup: ``eplb`` where it ran EPLB on real routing, ``uniform`` for routing simulated
at random, ``exact`` for DeepSeek's profiles, which simulate absolutely balanced routing; the skew
behind ``eplb`` is measured routing statistics (TensorRT-LLM), not these runs.

Error = predicted / measured - 1 (positive: the planner is optimistic).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from planner.calc.serving.result import Bottleneck

SGLANG_96_H100 = ("SGLang team, \"Deploying DeepSeek with PD Disaggregation and Large-scale "
                  "Expert Parallelism on 96 H100 GPUs\", lmsys.org/blog/2025-05-05-large-scale-ep")
DEEPSEEK_PROFILE = ("DeepSeek profile-data (github.com/deepseek-ai/profile-data, README: setups); "
                    "throughput per node as derived in " + SGLANG_96_H100)

ANT_H20 = ("Ant Group and SGLang team, \"Together with SGLang: Best Practices for Serving "
           "DeepSeek-R1 on H20-96G\", lmsys.org/blog/2025-09-26-sglang-ant-group")

DEPLOY, EP_STUDY = "Decode Deployment table", "Investigation for EP size"
EP_STUDY_ASSUMED = ("MTP 1 step as in the source's base configuration (its EP 16 figure at 32 "
                    "sequences, 675 tokens/s, is the InferX Pro run's); ")
H20_DECODE_NOTE = ("with the H20's own kernel factors the step gap (measured minus planner "
                   "step) is about the same at every batch (8-48 sequences) and EP size (16, "
                   "32): a per-step cost outside the kernels, which the planner does not model "
                   "and does not fit (SGLang 0.5.2 runs speculative decoding without overlap "
                   "scheduling, sglang PR 9588 and issue 11762; DP-attention synchronisation; the "
                   "draft pass's own EP round trip); the source: 'resources are not fully "
                   "utilized' at small batches on the H20")

H20_FACTORS = ("the attention (FlashMLA), dense and MoE decode GEMM and GEMM weight-stream "
               "(DeepGEMM) and NVLink (DeepEP) factors measured on the H20; the prefill "
               "grouped-GEMM, HBM and NIC factors assumed equal to the H800's (none is "
               "published for the H20)")

#: The error bands issue 4 asks for.
MEDIAN_TARGET, CASE_LIMIT = 0.15, 0.30


@dataclass(frozen=True)
class MeasuredRun:
    id: str
    source: str
    setup: str                    # the published setup, in words
    model: str
    hardware: str
    measured: float               # tokens/s per node (output in decode, input in prefill)
    serve: dict[str, Any]         # arguments of calc.serving.serve restating the setup
    assumed: str = ""             # settings the source leaves open, and what was taken
    note: str = ""                # what the planner does not model that bears on this run


RUNS: tuple[MeasuredRun, ...] = (
    MeasuredRun(
        "sglang-h100-decode-tbo", SGLANG_96_H100,
        "decode on 9 nodes of 8 H100 (EP 72, DP attention), 256 sequences per GPU, KV length "
        "2,000, two-batch overlap, DeepEP low-latency, DeepGEMM masked, EPLB, FP8 weights, "
        "BF16 KV, no MTP: 22,282 output tokens/s per node",
        "deepseek-v3", "h100", 22_282,
        dict(phase="decode", gpus=72, batch_per_gpu=256, context_tokens=2000,
             expert_balance="eplb"),
        assumed="shared expert computed locally (SGLang's DeepEP path dispatches routed experts "
                "only); EPLB skew as TensorRT-LLM measured it for DeepSeek-R1",
        note="the source's own ablation: two-batch overlap gains 25.5% here, where the slot "
             "model gains about 44%; its profile shows communication kernels busy-waiting"),
    MeasuredRun(
        "sglang-h100-decode-no-tbo", SGLANG_96_H100,
        "as sglang-h100-decode-tbo without two-batch overlap: the source gives 22,310 tokens/s "
        "with overlap as a 25.5% speedup, i.e. 22,310 / 1.255 = 17,777 without",
        "deepseek-v3", "h100", 22_310 / 1.255,
        dict(phase="decode", gpus=72, batch_per_gpu=256, context_tokens=2000, overlap="none",
             expert_balance="eplb"),
        assumed="shared expert computed locally; EPLB skew as TensorRT-LLM measured it"),
    *(MeasuredRun(
        f"sglang-h100-prefill-{k}k", SGLANG_96_H100,
        f"prefill on 4 nodes of 8 H100 (EP 32, DP attention), {prompt:,}-token prompts, "
        "16,384 tokens per GPU, two-batch overlap, DeepEP normal kernels, DeepGEMM contiguous, "
        f"EPLB placed from a distribution matching the input data (the source's setup; its "
        f"profile section calls this the default distribution): {measured:,} input tokens/s "
        f"per node",
        "deepseek-v3", "h100", measured,
        dict(phase="prefill", gpus=32, batch_per_gpu=16384, context_tokens=prompt,
             expert_balance="eplb"),
        assumed="16,384 tokens per GPU (stated for the 4K run; taken for 1K and 2K as well); "
                "EPLB skew as TensorRT-LLM measured it for DeepSeek-R1 decode, taken for "
                "prefill",
        note="the source measures its 4K run with this distribution 20% slower than "
             "DeepSeek's profile and with simulated perfect EPLB within 5% of it; both its "
             "and DeepSeek's communication ran slower under two-batch overlap than in DeepEP's "
             "unit tests")
      for k, prompt, measured in ((1, 1000, 57_674), (2, 2000, 54_543), (4, 4096, 50_302))),
    MeasuredRun(
        "sglang-h100-prefill-4k-balanced", SGLANG_96_H100,
        "as sglang-h100-prefill-4k with simulated perfect EPLB (random experts under "
        "group-limited routing): 59,337 input tokens/s per node",
        "deepseek-v3", "h100", 59_337,
        dict(phase="prefill", gpus=32, batch_per_gpu=16384, context_tokens=4096,
             expert_balance="uniform")),
    MeasuredRun(
        "deepseek-profile-prefill-h800", DEEPSEEK_PROFILE,
        "DeepSeek's production prefill profile: EP 32, TP 1, 4K prompts, 16K tokens per GPU, "
        "two micro-batches with attention balanced between them, absolutely balanced routing "
        "simulated, on H800: 62,713 input tokens/s per node",
        "deepseek-v3", "h800", 62_713,
        dict(phase="prefill", gpus=32, batch_per_gpu=16384, context_tokens=4096,
             expert_balance="exact")),
    MeasuredRun(
        "deepseek-profile-decode-h800", DEEPSEEK_PROFILE,
        "DeepSeek's production decode profile: EP 128, TP 1, 4K prompts, 128 requests per GPU, "
        "two micro-batches, shared expert dispatched as a routed one (V3R §3.4), absolutely "
        "balanced routing simulated, on H800: 18,598 output tokens/s per node",
        "deepseek-v3", "h800", 18_598,
        dict(phase="decode", gpus=128, batch_per_gpu=128, context_tokens=4096,
             shared_experts="routed", mtp_acceptance=0.6, expert_balance="exact"),
        assumed="MTP with one draft at 60% acceptance: the profile runs DeepSeek's MTP, and the "
                "source derives the throughput with the 60% acceptance it assumes for its own "
                "simulated-MTP runs"),
    *(MeasuredRun(
        f"ant-h20-decode-{name}", f"{ANT_H20} ({section})",
        f"{label}: DeepSeek-R1 decode on {ep // 8} nodes of 8 H20-96G (attention DP {ep}, MoE "
        f"EP {ep}), {batch} sequences per GPU, MTP with {depth} draft step"
        f"{'s' if depth > 1 else ''} ({depth + 1} query tokens per sequence), DeepEP "
        "low-latency with the EP traffic to the own node on NVLink (the source: ~50% at EP 16, "
        "~25% at EP 32), single-batch overlap, FlashMLA with FP8 Q and "
        "KV, DeepGEMM swapAB (BLOCK_M 32) in the masked grouped GEMM of the routed experts "
        "(DeepGEMM PR 192), expert-affinity EPLB, random 4,096-token inputs "
        f"and 1,536-token outputs, SGLang 0.5.2: {per_gpu} output tokens/s per GPU "
        f"({per_gpu * 8:,} per node)",
        "deepseek-v3", "h20", per_gpu * 8,
        dict(phase="decode", gpus=ep, batch_per_gpu=batch, context_tokens=4096 + 1536 // 2,
             kv_dtype="fp8", attention_dtype="fp8", overlap="single", mtp_acceptance=p,
             mtp_depth=depth, intranode_nvlink=True, expert_tile_rows=32,
             expert_balance="eplb"),
        assumed=f"{extra}KV length 4,864 (the input plus half the output, mid-decode); "
                f"acceptance {p} per draft, from the source's accept length {accept} for this "
                "MTP setting (1 + p" + (" + p²" if depth == 2 else "") + "); the other GEMMs "
                "in DeepGEMM's 64-row tiles; shared expert computed locally (SGLang); EPLB skew "
                f"as TensorRT-LLM measured it; {H20_FACTORS}",
        note=H20_DECODE_NOTE)
      for name, label, section, ep, batch, depth, p, accept, per_gpu, extra in (
          ("base", "InferX Base", DEPLOY, 16, 48, 1, 0.85, "1.8-1.9", 714, ""),
          ("pro", "InferX Pro", DEPLOY, 16, 32, 1, 0.85, "1.8-1.9", 675, ""),
          ("max", "InferX Max", DEPLOY, 16, 12, 2, 0.842, "2.4-2.7", 423, ""),
          *((f"ep{ep}-bs{batch}", "EP-size study", EP_STUDY, ep, batch, 1, 0.85, "1.8-1.9",
             per_gpu, EP_STUDY_ASSUMED)
            for ep, batch, per_gpu in ((16, 8, 278), (32, 8, 293), (32, 32, 585))))),
    MeasuredRun(
        "ant-h20-prefill-4k", f"{ANT_H20} (Performance: Prefill; Introduction: 16.5k)",
        "DeepSeek-R1 prefill on 1 node of 8 H20-96G at TP 8 (attention and experts split by "
        "tensor parallelism, no EP), 4,096-token prompts (512 random prompts, one output "
        "token), MHA for long prompts, FA3 with FP8 attention, tuned MoE kernels, "
        "reduce-scatter + all-gather around the norms, SGLang 0.5.2: 16.5k input tokens/s per "
        "node",
        "deepseek-v3", "h20", 16_500,
        dict(phase="prefill", gpus=8, tp=8, ep=1, batch_per_gpu=8192 / 8, context_tokens=4096,
             kv_dtype="fp8", attention_dtype="fp8"),
        assumed="8,192 tokens per batch (SGLang's default chunked prefill size for GPUs of "
                "35-160 GB, the H20 among them), 1,024 per GPU; FP8 KV cache as the decode "
                "instances read it; the MoE GEMMs at DeepGEMM's contiguous grouped-GEMM factor "
                "(the source tuned its TP MoE kernels and publishes no kernel figures); "
                + H20_FACTORS),
)


@dataclass(frozen=True)
class MeasuredAblation:
    """A source's own measurement of what one engine feature gains: the throughput with the
    change over the throughput without it, on one deployment."""

    id: str
    source: str
    setup: str                    # the published ablation, in words
    model: str
    hardware: str
    measured: tuple[float, float]  # gain (after / before - 1); a range where the source gives one
    before: dict[str, Any]        # arguments of calc.serving.serve without the feature
    after: dict[str, Any]         # ... with it
    assumed: str = ""


def _run(run_id: str) -> MeasuredRun:
    return next(r for r in RUNS if r.id == run_id)


#: The H20 decode deployment of the source's optimization study (2 nodes, EP 16, MTP 1 draft,
#: all optimizations on); each ablation switches off the later ones as the source's cumulative
#: figure does (BF16 + MTP, then FP8 MLA, then swapAB, then SBO).
_ANT_DECODE = {k: v for k, v in _run("ant-h20-decode-pro").serve.items() if k != "batch_per_gpu"}
_ANT_ASSUMED = ("the optimizations cumulative in the source's order (FP8 MLA, then swapAB, then "
                "SBO), so each is measured with the earlier ones on and the later ones off; "
                "BF16 attention with a BF16 KV cache before FP8 MLA; the rest as the InferX "
                "Pro run")
_NO_LATER = {"expert_tile_rows": None, "overlap": "none"}

ABLATIONS: tuple[MeasuredAblation, ...] = (
    MeasuredAblation(
        "sglang-h100-decode-tbo-gain", SGLANG_96_H100,
        "two-batch overlap on the decode deployment of sglang-h100-decode-tbo: +25.5%",
        "deepseek-v3", "h100", (0.255, 0.255),
        _run("sglang-h100-decode-no-tbo").serve, _run("sglang-h100-decode-tbo").serve),
    MeasuredAblation(
        "ant-h20-fp8-mla-bs56", f"{ANT_H20} (Decode: Performance improvements)",
        "FP8 MLA (FP8 Q and KV, FP8 FlashMLA) over BF16 at 56 sequences per GPU: +16.9%",
        "deepseek-v3", "h20", (0.169, 0.169),
        {**_ANT_DECODE, **_NO_LATER, "batch_per_gpu": 56, "attention_dtype": "bf16",
         "kv_dtype": "bf16"},
        {**_ANT_DECODE, **_NO_LATER, "batch_per_gpu": 56}, assumed=_ANT_ASSUMED),
    *(MeasuredAblation(
        f"ant-h20-swapab-bs{batch}", f"{ANT_H20} (Decode: Performance improvements)",
        f"DeepGEMM swapAB (32-row tiles in the routed experts' masked grouped GEMM) over "
        f"64-row tiles at {batch} sequences per GPU: "
        f"+{gain * 100:.1f}%",
        "deepseek-v3", "h20", (gain, gain),
        {**_ANT_DECODE, **_NO_LATER, "batch_per_gpu": batch},
        {**_ANT_DECODE, "overlap": "none", "batch_per_gpu": batch}, assumed=_ANT_ASSUMED)
      for batch, gain in ((2, 0.081), (4, 0.077))),
    *(MeasuredAblation(
        f"ant-h20-sbo-bs{batch}", f"{ANT_H20} (Decode: Performance improvements)",
        f"single-batch overlap at {batch} sequences per GPU: +8% to +10% over 20-56 sequences",
        "deepseek-v3", "h20", (0.08, 0.10),
        {**_ANT_DECODE, "overlap": "none", "batch_per_gpu": batch},
        {**_ANT_DECODE, "batch_per_gpu": batch}, assumed=_ANT_ASSUMED)
      for batch in (20, 56)),
    *(MeasuredAblation(
        f"ant-h20-ep16-to-ep32-bs{batch}", f"{ANT_H20} ({EP_STUDY})",
        f"EP 32 over EP 16 at {batch} sequences per GPU: runs {lo.id} and {hi.id}, "
        f"{(hi.measured / lo.measured - 1) * 100:+.1f}%",
        "deepseek-v3", "h20", (hi.measured / lo.measured - 1,) * 2, lo.serve, hi.serve)
      for batch, lo, hi in ((8, _run("ant-h20-decode-ep16-bs8"), _run("ant-h20-decode-ep32-bs8")),
                            (32, _run("ant-h20-decode-pro"), _run("ant-h20-decode-ep32-bs32")))),
)


@dataclass(frozen=True)
class AblationRow:
    ablation: MeasuredAblation
    predicted: float              # the planner's gain (after / before - 1)

    @property
    def difference(self) -> float:
        """Planner minus measured gain, from the nearer end of a measured range (0 inside)."""
        lo, hi = self.ablation.measured
        return max(self.predicted - hi, 0.0) + min(self.predicted - lo, 0.0)


def ablations(items: tuple[MeasuredAblation, ...] = ABLATIONS) -> tuple[AblationRow, ...]:
    """The planner's gain for each of the sources' own ablations (default efficiencies)."""
    from planner import catalog
    from planner.calc.serving import serve
    from planner.specs.deployment import ServeConfig

    rows = []
    for a in items:
        model, hw = catalog.load_model(a.model), catalog.load_hardware(a.hardware)
        before, after = (serve(model, hw, ServeConfig(**kw)).tokens_per_s_per_gpu
                         for kw in (a.before, a.after))
        rows.append(AblationRow(a, after / before - 1))
    return tuple(rows)


@dataclass(frozen=True)
class ValidationRow:
    run: MeasuredRun
    predicted: float
    error: float                  # predicted / measured - 1
    bottleneck: Bottleneck        # what binds the planner's step (report: its text)
    basis: str
    expert_balance: str           # the balance the prediction used (the run's, else serve's)
    step_s: float                 # the planner's step (decode) or batch (prefill) time

    @property
    def measured_step_s(self) -> float:
        """The step time the measured throughput implies: the same tokens per step at the
        measured rate, step × predicted / measured."""
        return self.step_s * (1 + self.error)

    @property
    def step_gap_s(self) -> float:
        """Measured minus predicted step time (s); positive where the planner is optimistic."""
        return self.measured_step_s - self.step_s


@dataclass(frozen=True)
class ValidationReport:
    rows: tuple[ValidationRow, ...]
    median_abs_error: float
    max_abs_error: float
    beyond_limit: tuple[str, ...] = field(default_factory=tuple)
    ablations: tuple[AblationRow, ...] = field(default_factory=tuple)

    @property
    def meets_targets(self) -> bool:
        return self.median_abs_error <= MEDIAN_TARGET and not self.beyond_limit


def validate(runs: tuple[MeasuredRun, ...] = RUNS,
             ablation_items: tuple[MeasuredAblation, ...] = ABLATIONS) -> ValidationReport:
    """Predict every run with the default efficiency factors; the error statistics; and the
    planner's gain for each of the sources' own ablations."""
    from planner import catalog
    from planner.calc.serving import serve
    from planner.specs.deployment import ServeConfig

    rows = []
    for run in runs:
        r = serve(catalog.load_model(run.model), catalog.load_hardware(run.hardware),
                  ServeConfig(**run.serve))
        rows.append(ValidationRow(run, r.tokens_per_s_per_node,
                                  r.tokens_per_s_per_node / run.measured - 1, r.bottleneck,
                                  r.basis, r.expert_balance, r.step_s))
    errors = [abs(row.error) for row in rows]
    return ValidationReport(tuple(rows), statistics.median(errors), max(errors),
                            tuple(row.run.id for row in rows if abs(row.error) > CASE_LIMIT),
                            ablations(ablation_items))
