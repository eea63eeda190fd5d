"""Every closed set of values, defined once.

The specs validate against these sets, the calculators check them and the CLI builds its choices
from them, so a value is added or renamed in one place. Plain tuples of strings, in the order the
CLI lists them (the first is not implied to be a default). This module imports nothing, so the
CLI can read it without loading a calculator.
"""

from __future__ import annotations

#: Output formats of every command.
OUTPUT_FORMATS = ("table", "json", "csv", "markdown")

#: Element types with a byte size (:data:`planner.units.DTYPE_BYTES` holds the sizes).
DTYPES = ("fp32", "bf16", "fp16", "fp8", "fp4")

#: Serving phases: one decode step, or one prefill batch.
PHASES = ("decode", "prefill")
#: Weight element types the serving model runs (with their scale bytes).
#: fp4 is MXFP4 (E8M0 scales per 32), nvfp4 NVFP4 (E4M3 scales per 16), int4 weight-only
#: groups (AWQ/GPTQ); 4-bit formats run natively only where the device has an FP4 peak.
SERVING_WEIGHT_DTYPES = ("fp8", "bf16", "fp4", "nvfp4", "int4")
#: Precision of the attention core (FlashMLA / FlashAttention in BF16, or FP8 Q and KV).
ATTENTION_DTYPES = ("bf16", "fp8")
#: Compute / EP overlap schedules: dual micro-batches, single-batch overlap, none.
OVERLAP_SCHEDULES = ("dual", "single", "none")
#: What a user may ask for: a schedule, or "auto", the fastest schedule for the step.
OVERLAP_MODES = ("auto",) + OVERLAP_SCHEDULES
#: Where the shared experts run: beside attention on every GPU, or dispatched like a routed one.
SHARED_EXPERTS = ("local", "routed")
#: Load of the hottest EP rank (:data:`planner.calc.imbalance.EXPERT_BALANCES` holds each one's
#: figures).
EXPERT_BALANCES = ("exact", "uniform", "eplb", "no-eplb")

#: FLOPs-per-token conventions (:data:`planner.calc.flops.CONVENTIONS` describes each).
FLOPS_CONVENTIONS = ("exact-causal", "exact-full", "approx-12ld2")
#: Expert-parallel dispatch and combine element types.
DISPATCH_DTYPES = ("fp8", "bf16")
COMBINE_DTYPES = ("bf16", "fp8")
#: Link bandwidth basis: the datasheet peak, or peak × the hardware's efficiency factor.
BANDWIDTH_BASES = ("peak", "achievable")

#: Wire formats of the numerics study (:mod:`planner.calc.numerics` defines each).
FLOAT_WIRE_FORMATS = ("e4m3", "e5m2", "e5m6", "bf16")
LOGFMT_WIRE_FORMATS = ("logfmt8", "logfmt10")
WIRE_FORMATS = FLOAT_WIRE_FORMATS + LOGFMT_WIRE_FORMATS

#: Network topologies of P Table 3 (:mod:`planner.calc.network`).
TOPOLOGIES = ("ft2", "mpft", "ft3", "sf", "df")
#: Link tiers a collective can run over.
LINK_TIERS = ("scale-up", "scale-out-same-leaf", "scale-out-cross-leaf")
#: Pipeline schedules (:mod:`planner.calc.pipeline`).
PIPELINE_SCHEDULES = ("1f1b", "zb1p", "dualpipe", "dualpipev")

#: Spec kinds with a JSON Schema (:data:`planner.specs.schema.KINDS`).
SPEC_KINDS = ("model", "hardware", "scenario", "network-prices")


def check_choice(value: str, allowed: tuple[str, ...], name: str) -> str:
    """``value`` if it is one of ``allowed``; otherwise a :class:`~planner.errors.UsageError`
    naming ``name`` and the allowed values."""
    if value not in allowed:
        from planner.errors import UsageError

        raise UsageError(f"{name} must be one of {', '.join(allowed)} (got {value!r})")
    return value

#: Abbreviations of the sources that tables, help and the README cite, and what each stands for;
#: an output or a help text that uses one defines it beneath.
SOURCE_ABBREVIATIONS = (
    ("P", 'the paper: Zhao et al., "Insights into DeepSeek-V3: Scaling Challenges and Reflections '
          'on Hardware for AI Architectures", ISCA 2025, arXiv 2505.09343'),
    ("V3R", "the DeepSeek-V3 Technical Report, arXiv 2412.19437"),
)


def abbreviations_used(text: str) -> str:
    """"P: ...; V3R: ..." for the abbreviations of :data:`SOURCE_ABBREVIATIONS` that ``text``
    uses as words, or "" when it uses none."""
    import re

    return "; ".join(f"{short}: {meaning}" for short, meaning in SOURCE_ABBREVIATIONS
                     if re.search(rf"(?<![\w-]){short}(?![\w-])", text))
