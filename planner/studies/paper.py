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


#: P Table 3: (kind, endpoints, switches, links, cost M$, cost per endpoint k$) as printed.
PAPER_TABLE3 = {
    "ft2": (2_048, 96, 2_048, 9, "4.39"),
    "mpft": (16_384, 768, 16_384, 72, "4.39"),
    "ft3": (65_536, 5_120, 131_072, 491, "7.5"),
    "sf": (32_928, 1_568, 32_928, 146, "4.4"),
    "df": (261_632, 16_352, 384_272, 1_522, "5.8"),
}
#: P Table 4 (MPFT): tokens per day on 2,048 H800, and the printed TFLOPS and MFU.
PAPER_TOKENS_PER_DAY = 272.80e9
PAPER_TRAIN_GPUS = 2_048
#: V3R Table 1: pre-training tokens; GPU-hours of context extension and post-training.
PAPER_PRETRAIN_TOKENS = 14.8e12
PAPER_CONTEXT_EXTENSION_GPU_HOURS = 119e3
PAPER_POST_TRAINING_GPU_HOURS = 5e3


def default_network_prices():
    """The calibrated price set shipped in ``hardware/network/ib-ndr-400g.yaml``."""
    from planner.catalog import catalog_dir
    from planner.specs.load import load_spec_file
    from planner.specs.network import NetworkPrices

    return load_spec_file(NetworkPrices, catalog_dir("hardware") / "network" / "ib-ndr-400g.yaml")


def table3_network() -> list[PaperRow]:
    """P Table 3: endpoints, switches and links of five 64-port topologies (exact), and the cost
    per endpoint under the calibrated price set (hardware/network/ib-ndr-400g.yaml)."""
    from planner.calc.network import topology, topology_cost

    section = "Table 3: network topologies (64-port switches)"
    prices = default_network_prices()
    rows: list[PaperRow] = []
    for kind, (ends, switches, links, cost_m, per_end) in PAPER_TABLE3.items():
        c = topology_cost(topology(kind), prices)
        t = c.topology
        for quantity, metric, value, printed in (
                ("endpoints", "num_endpoints", t.num_endpoints, ends),
                ("switches", "num_switches", t.num_switches, switches),
                ("links (switch-switch)", "num_links", t.num_links, links)):
            rows.append(PaperRow(section, quantity, metric, t.name, None, "count", value,
                                 printed, f"{printed:,}", ("round", 0), t.params))
        rows.append(PaperRow(section, "cost", "cost_usd", t.name, None, "USD", c.cost_usd,
                             cost_m * 1e6, f"{cost_m:,} M$", None,
                             "assumed prices calibrated to P (P prints none); diff is the "
                             "residual"))
        rows.append(PaperRow(section, "cost per endpoint", "cost_per_endpoint_usd", t.name, None,
                             "USD", c.cost_per_endpoint_usd, float(per_end) * 1e3,
                             f"{per_end} k$", None,
                             "assumed prices calibrated to P; diff is the residual"))
    return rows


def training_cost() -> list[PaperRow]:
    """P Table 4 and V3R Table 1: throughput, MFU and GPU-hours of DeepSeek-V3's pre-training
    on 2,048 H800, from the printed 272.80B tokens per day."""
    from planner.calc.training import train_cost_usd, train_run

    section = "Table 4 / V3R: training DeepSeek-V3 on 2,048 H800"
    v3, h800 = load_model("deepseek-v3"), load_hardware("h800")
    rows: list[PaperRow] = []
    for conv, tflops, mfu, label in (("exact-causal", 385e12, 0.3894, "causal"),
                                     ("exact-full", 432e12, 0.4373, "non-causal")):
        r = train_run(v3, h800, tokens=1e12, num_gpus=PAPER_TRAIN_GPUS,
                      tokens_per_day=PAPER_TOKENS_PER_DAY, convention=conv)
        note = (f"{r.train_tokens_per_s_per_gpu:,.1f} tokens/s/GPU × "
                f"{r.train_flops_per_token / 1e9:.2f} GFLOP ({conv}); P's figure implies "
                f"{tflops / r.train_tokens_per_s_per_gpu / 1e9:.1f} GFLOP/token")
        rows.append(PaperRow(section, f"TFLOPS per GPU ({label})", "achieved_flop_per_s_per_gpu",
                             "deepseek-v3", "h800", "FLOP/s", r.achieved_flop_per_s_per_gpu,
                             tflops, f"{tflops / 1e12:.0f}", ("round", -12), note))
        rows.append(PaperRow(section, f"MFU ({label})", "mfu_frac", "deepseek-v3", "h800",
                             "fraction", r.mfu_frac, mfu, f"{mfu * 100:.2f}%", ("round", 3),
                             "against the dense BF16 peak, 989 TFLOPS"))
    per_t = train_run(v3, h800, tokens=1e12, num_gpus=PAPER_TRAIN_GPUS,
                      tokens_per_day=PAPER_TOKENS_PER_DAY)
    rows.append(PaperRow(section, "GPU-hours per 1T tokens", "train_gpu_hours", "deepseek-v3",
                         "h800", "h", per_t.train_gpu_hours, 180e3, "180K", ("round", -3),
                         "1e12 / 272.80e9 tokens per day × 24 h × 2,048 GPUs"))
    rows.append(PaperRow(section, "days per 1T tokens", "train_days", "deepseek-v3", "h800",
                         "days", per_t.train_days, 3.7, "3.7", ("round", 1), ""))
    pre = train_run(v3, h800, tokens=PAPER_PRETRAIN_TOKENS, num_gpus=PAPER_TRAIN_GPUS,
                    tokens_per_day=PAPER_TOKENS_PER_DAY)
    rows.append(PaperRow(section, "pre-training GPU-hours (14.8T)", "train_gpu_hours",
                         "deepseek-v3", "h800", "h", pre.train_gpu_hours, 2.664e6, "2,664K",
                         ("round", -3),
                         "V3R's 2,664K is 14.8 × its rounded 180K per trillion; from 272.80B "
                         "tokens/day the planner gets 2,666.6K"))
    pre_v3r = 14.8 * 180e3
    total = pre_v3r + PAPER_CONTEXT_EXTENSION_GPU_HOURS + PAPER_POST_TRAINING_GPU_HOURS
    rows.append(PaperRow(section, "total GPU-hours", "train_gpu_hours", "deepseek-v3", "h800",
                         "h", total, 2.788e6, "2,788K", ("round", -3),
                         "14.8 × 180K + 119K context extension + 5K post-training (V3R)"))
    cost = train_cost_usd(gpu_hours=total, usd_per_gpu_hour=h800.price_usd_per_gpu_hour)
    rows.append(PaperRow(section, "total cost", "train_cost_usd", "deepseek-v3", "h800", "USD",
                         cost, 5.576e6, "$5.576M", ("round", -3),
                         f"at ${h800.price_usd_per_gpu_hour:g} per GPU-hour (hardware/h800.yaml)"))
    return rows


def routing_figures() -> list[PaperRow]:
    """P §4.3 / V3R §3.2.2: experts per node at no extra IB cost, and the most experts a token
    may reach for the IB cost of 4 nodes."""
    from planner.calc.routing import node_limited_routing

    section = "§4.3: node-limited routing (H800, EP64 over 8 nodes)"
    r = node_limited_routing(load_model("deepseek-v3"), load_hardware("h800"), ep_size=64,
                             num_nodes=8)
    return [
        PaperRow(section, "experts per node at no extra cost", "free_experts_per_node",
                 "deepseek-v3", "h800", "x", r.free_experts_per_node, 3.2, "3.2",
                 ("round", 1), "NVLink achievable 160 GB/s / IB nominal 50 GB/s"),
        PaperRow(section, "experts for the IB cost of M = 4 nodes", "max_experts_same_ib_cost",
                 "deepseek-v3", "h800", "count", r.max_experts_same_ib_cost, 13, "13",
                 ("round", 0), "4 × 3.2 = 12.8"),
        PaperRow(section, "IB copies per token, worst case", "ib_copies_worst", "deepseek-v3",
                 "h800", "count", r.ib_copies_worst_without, 8, "8t", ("round", 0),
                 "without forwarding: 8 experts on 8 nodes"),
        PaperRow(section, "IB copies per token, forwarded", "ib_copies_worst", "deepseek-v3",
                 "h800", "count", r.ib_copies_worst_with, 4, "Mt, M <= 4", ("round", 0),
                 f"expected under uniform routing: {r.ib_copies_per_token_with_forwarding:.2f} "
                 f"(without forwarding {r.ib_copies_per_token_without_forwarding:.2f})"),
    ]


def paper_rows() -> list[PaperRow]:
    """Every closed-form figure of P that the planner computes, in the paper's order."""
    return (table1_kv_cache() + table2_train_flops() + ep_speed_limit() + table3_network()
            + routing_figures() + training_cost())
