"""The paper's closed-form figures, recomputed from the catalog specs, beside what the paper prints.

Each :class:`PaperRow` holds the planner's value and the paper's printed value in base units, the
way the paper rounds (so "agrees" means: the planner's value, rounded as the paper rounds it,
is the printed figure), and a note wherever the paper rounds an input (hidden "7K") or
contradicts itself (Table 1 prints 7.28x where its own values give 7.34x).

Ref: Zhao et al., "Insights into DeepSeek-V3", ISCA 2025, arXiv 2505.09343 (P);
../shared/reference/paper.md §1-§3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.calc.ep import ep_decode_limit
from planner.calc.flops import model_flops_per_token
from planner.calc.kv_cache import model_kv_cache
from planner.catalog import load_hardware, load_model

#: P's EP estimate takes the hidden size 7168 as "7K".
PAPER_HIDDEN_SIZE = 7000
#: P counts FP8 dispatch as 1 byte per element (no scales) and BF16 combine as 2.
PAPER_DISPATCH_BYTES = 1
PAPER_COMBINE_BYTES = 2
#: P's GB200 NVL72 figure keeps the EP group inside the 72-GPU NVLink domain.
PAPER_GB200_EP_SIZE = 72
#: Table 2's sequence length.
PAPER_SEQ_LEN = 4096


@dataclass(frozen=True)
class PaperRow:
    """One figure: the planner's value beside the paper's printed one (base units)."""

    section: str
    quantity: str
    metric: str
    model: str
    hardware: str | None
    unit: str
    value: float
    paper_value: float | None
    paper_printed: str | None
    rounding: tuple[str, int] | None
    note: str = ""

    @property
    def diff_frac(self) -> float | None:
        """value / paper − 1, or None when the paper prints no value."""
        if self.paper_value is None:
            return None
        return self.value / self.paper_value - 1

    @property
    def agrees(self) -> bool | None:
        """Whether the value, rounded as the paper rounds it, is the printed figure."""
        if self.paper_value is None or self.rounding is None:
            return None
        mode, digits = self.rounding
        v, p = self.value, self.paper_value
        if mode == "round":
            return round(v, digits) == round(p, digits)
        if mode == "truncate":
            scale = 10.0**digits
            return math.floor(v * scale) / scale == round(p, digits)
        if mode == "sig":  # "≈1200": equal to the printed significant digits
            magnitude = 10.0 ** (math.floor(math.log10(abs(v))) - digits + 1)
            return round(v / magnitude) * magnitude == p
        raise ValueError(f"unknown rounding mode {mode!r}")


def table1_kv_cache() -> list[PaperRow]:
    """P Table 1: KV cache per token in BF16, and the multipliers against DeepSeek-V3."""
    section = "Table 1: KV cache per token (BF16)"
    printed = [("deepseek-v3", 70_272, "70.272 KB", None, None),
               ("qwen2.5-72b", 327_680, "327.680 KB", 4.66, "4.66x"),
               ("llama-3.1-405b", 516_096, "516.096 KB", 7.28, "7.28x")]
    rows: list[PaperRow] = []
    reference = None
    for name, paper_bytes, paper_text, paper_mult, mult_text in printed:
        r = model_kv_cache(load_model(name), dtype="bf16")
        reference = reference or r.kv_cache_bytes_per_token
        rows.append(PaperRow(section, "KV cache / token", "kv_cache_bytes_per_token",
                             name, None, "bytes", r.kv_cache_bytes_per_token, paper_bytes,
                             paper_text, ("round", 0),
                             f"{r.attention.upper()}: {r.elements_per_token_per_layer} elements "
                             "per layer x 2 B"))
        if paper_mult is not None:
            mult = r.kv_cache_bytes_per_token / reference
            note = ""
            if round(mult, 2) != paper_mult:
                note = (f"ERRATUM: P prints {mult_text}, but its own values give "
                        f"{r.kv_cache_bytes_per_token:,.0f} / {reference:,.0f} = {mult:.2f}x")
            rows.append(PaperRow(section, "multiplier vs V3",
                                 "kv_cache_multiplier_vs_first", name, None, "x", mult,
                                 paper_mult, mult_text, ("round", 2), note))
    return rows


def table2_train_flops() -> list[PaperRow]:
    """P Table 2: training GFLOP per token at s = 4096, in the convention P evidently used per row,
    and the planner's default convention beside each dense row."""
    section = "Table 2: training compute per token (s = 4096)"
    printed = [("deepseek-v2", 155e9, "155", "exact-causal"),
               ("deepseek-v3", 250e9, "250", "exact-causal"),
               ("qwen2.5-72b", 394e9, "394", "approx-12ld2"),
               ("llama-3.1-405b", 2448e9, "2448", "approx-12ld2")]
    rows: list[PaperRow] = []
    for name, paper_flops, text, convention in printed:
        model = load_model(name)
        r = model_flops_per_token(model, seq_len=PAPER_SEQ_LEN, convention=convention)
        note = f"convention {convention}"
        if convention != "exact-causal":
            note += " (P's dense rows use the 12·L·d² approximation)"
        rows.append(PaperRow(section, "train FLOPs / token", "train_flops_per_token", name,
                             None, "FLOPs", r.train_flops_per_token, paper_flops,
                             f"{text} GFLOP", ("round", -9), note))
        if convention != "exact-causal":
            d = model_flops_per_token(model, seq_len=PAPER_SEQ_LEN, convention="exact-causal")
            rows.append(PaperRow(
                section, "train FLOPs / token (default)", "train_flops_per_token",
                name, None, "FLOPs", d.train_flops_per_token, paper_flops, f"{text} GFLOP", None,
                "convention exact-causal: exact activated matmul parameters + causal attention; "
                "P's row does not use it",
            ))
    return rows


def ep_speed_limit() -> list[PaperRow]:
    """P §2.3.2: EP communication time and the decode ceiling on H800 (400 Gbit/s IB) and
    GB200 NVL72, with P's rounded inputs, then with the exact hidden size and DeepEP's bytes."""
    section = "§2.3.2: expert-parallel decode speed limit"
    v3 = load_model("deepseek-v3")
    paper_inputs = dict(hidden_size=PAPER_HIDDEN_SIZE, dispatch_bytes_per_element=PAPER_DISPATCH_BYTES,
                        combine_bytes_per_element=PAPER_COMBINE_BYTES)
    seven_k = "hidden 7168 taken as \"7K\" = 7000, 1 B dispatch + 2 B combine, as P"
    rows: list[PaperRow] = []

    h800 = ep_decode_limit(v3, load_hardware("h800"), **paper_inputs)
    rows += [
        PaperRow(section, "EP comm / layer (400G IB)", "ep_comm_time_per_layer_s",
                 "deepseek-v3", "h800", "s", h800.ep_comm_time_per_layer_s, 120.96e-6,
                 "120.96 µs", ("round", 8), seven_k),
        PaperRow(section, "time / layer (2 micro-batches)", "time_per_layer_s", "deepseek-v3",
                 "h800", "s", h800.time_per_layer_s, 241.92e-6, "241.92 µs", ("round", 8),
                 "2 micro-batches x comm time; computation assumed hidden"),
        PaperRow(section, "TPOT (61 layers)", "tpot_s", "deepseek-v3", "h800", "s", h800.tpot_s,
                 14.76e-3, "14.76 ms", ("round", 5), ""),
        PaperRow(section, "decode tokens/s", "decode_tokens_per_s", "deepseek-v3", "h800",
                 "tokens/s", h800.decode_tokens_per_s, 67, "67", ("truncate", 0),
                 "P truncates 67.76 to 67"),
    ]
    gb200 = ep_decode_limit(v3, load_hardware("gb200-nvl72"), ep_size=PAPER_GB200_EP_SIZE,
                            **paper_inputs)
    rows += [
        PaperRow(section, "EP comm / layer (NVL72)", "ep_comm_time_per_layer_s",
                 "deepseek-v3", "gb200-nvl72", "s", gb200.ep_comm_time_per_layer_s, 6.72e-6,
                 "6.72 µs", ("round", 8), seven_k + "; EP 72 inside the NVLink domain"),
        PaperRow(section, "TPOT (61 layers)", "tpot_s", "deepseek-v3", "gb200-nvl72", "s",
                 gb200.tpot_s, 0.82e-3, "0.82 ms", ("round", 5), ""),
        PaperRow(section, "decode tokens/s", "decode_tokens_per_s", "deepseek-v3", "gb200-nvl72",
                 "tokens/s", gb200.decode_tokens_per_s, 1200, "≈1200", ("sig", 2),
                 "P rounds 1219.8 to ≈1200 and calls it purely theoretical"),
    ]
    exact = ep_decode_limit(v3, load_hardware("h800"), dispatch_bytes_per_element=1,
                            combine_bytes_per_element=2)
    deepep = ep_decode_limit(v3, load_hardware("h800"))
    effective = ep_decode_limit(v3, load_hardware("h800"), achievable=True, **paper_inputs)
    rows += [
        PaperRow(section, "EP comm / layer, hidden 7168", "ep_comm_time_per_layer_s",
                 "deepseek-v3", "h800", "s", exact.ep_comm_time_per_layer_s, None, None, None,
                 f"TPOT {exact.tpot_s * 1e3:.2f} ms, {exact.decode_tokens_per_s:.1f} tokens/s; "
                 "not printed by P"),
        PaperRow(section, "EP comm / layer, DeepEP bytes", "ep_comm_time_per_layer_s",
                 "deepseek-v3", "h800", "s", deepep.ep_comm_time_per_layer_s, None, None, None,
                 f"{deepep.dispatch_bytes_per_token_expert:,.0f} B dispatch (with scales) + "
                 f"{deepep.combine_bytes_per_token_expert:,.0f} B combine; TPOT "
                 f"{deepep.tpot_s * 1e3:.2f} ms, {deepep.decode_tokens_per_s:.1f} tokens/s "
                 "(planner default)"),
        PaperRow(section, "EP comm / layer, 40 GB/s IB",
                 "ep_comm_time_per_layer_s", "deepseek-v3", "h800", "s",
                 effective.ep_comm_time_per_layer_s, None, None, None,
                 f"{effective.bandwidth_basis}; TPOT {effective.tpot_s * 1e3:.2f} ms, "
                 f"{effective.decode_tokens_per_s:.1f} tokens/s"),
    ]
    return rows


def paper_rows() -> list[PaperRow]:
    """Every closed-form figure of P §2 that the planner computes, in the paper's order."""
    return table1_kv_cache() + table2_train_flops() + ep_speed_limit()
