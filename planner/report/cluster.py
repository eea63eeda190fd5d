"""Tables of the cluster commands: ``planner network``, ``pipeline``, ``train``, ``routing``,
``collective`` and ``numerics``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from planner.report.formats import (fmt_bytes, fmt_count_si, fmt_frac_pct, fmt_gflop, fmt_int,
                                    fmt_rate_bytes, fmt_seconds, fmt_value)
from planner.report.table import Table

if TYPE_CHECKING:
    from planner.calc.network import NetworkCost
    from planner.calc.numerics import AccumulationError, FormatError
    from planner.calc.pipeline import ScheduleResult
    from planner.calc.routing import RoutingResult
    from planner.calc.training import TrainResult


# ----------------------------------------------------------------------------- network
#: Parameters of P Table 3's networks, so that a changed topology is not compared to P.
_TABLE3_PARAMS = {"ft2": "k = 64", "mpft": "k = 64, 8 planes", "ft3": "k = 64",
                  "sf": "q = 28, k' = 42", "df": "p = 16, a = 32, h = 16, g = 511"}


def _network_record(c: NetworkCost, printed: tuple | None) -> dict[str, Any]:
    topo = c.topology
    return {
        "topology": topo.name, "kind": topo.kind, "parameters": topo.params,
        "num_endpoints": topo.num_endpoints, "num_switches": topo.num_switches,
        "num_links": topo.num_links, "num_endpoint_links": topo.num_endpoint_links,
        **{f"num_{k}_links": n for k, n in topo.links_by_kind},
        "cost_usd": c.cost_usd, "cost_per_endpoint_usd": c.cost_per_endpoint_usd,
        **{f"cost_{k.replace(' ', '_')}_usd": v for k, v in c.cost_parts.items},
        "paper_cost_per_endpoint_usd": float(printed[4]) * 1e3 if printed else None,
        "prices": c.prices,
    }


def network_table(costs: list[NetworkCost], paper: dict[str, tuple] | None = None) -> Table:
    """Topologies: endpoints, switches, links and cost, beside P Table 3 where it prints one."""
    t = Table("Network topologies (P Table 3)",
              ["topology", "parameters", "endpoints", "switches", "links", "cost",
               "cost / endpoint", "P: cost / endpoint", "diff"], align="llrrrrrrr")
    for c in costs:
        topo = c.topology
        printed = (paper or {}).get(topo.kind) if topo.params == _TABLE3_PARAMS.get(topo.kind) \
            else None
        rec = _network_record(c, printed)
        p_end = rec["paper_cost_per_endpoint_usd"]
        t.add(rec, [rec["topology"], rec["parameters"], fmt_int(rec["num_endpoints"]),
                    fmt_int(rec["num_switches"]), fmt_int(rec["num_links"]),
                    f"{rec['cost_usd'] / 1e6:,.1f} M$",
                    f"{rec['cost_per_endpoint_usd'] / 1e3:,.2f} k$",
                    f"{printed[4]} k$" if printed else "-",
                    fmt_frac_pct(rec["cost_per_endpoint_usd"] / p_end - 1) if p_end else "-"])
    t.notes.append("links: switch-to-switch only, as P counts them; every endpoint also has one "
                   "link to its switch (priced as an endpoint link). Layout: "
                   + "; ".join(f"{c.topology.name}: {c.topology.layout}" for c in costs) + ".")
    if costs:
        t.notes.append(f"Prices: {costs[0].prices} (assumptions calibrated to P Table 3, which "
                       "prints no prices; see its YAML). diff: planner / P - 1.")
    return t


# ----------------------------------------------------------------------------- pipeline
def _schedule_cells(rec: dict[str, Any]) -> list[str]:
    params = f"{rec['param_copies']:g}x" + (
        f" ({fmt_bytes(rec['param_bytes_per_device'])})"
        if rec["param_bytes_per_device"] is not None else "")
    acts = f"{rec['activation_micro_batches']} mb" + (
        f" ({fmt_bytes(rec['activation_bytes_per_device'])})"
        if rec["activation_bytes_per_device"] is not None else "")
    return [rec["schedule"], str(rec["num_devices"]), fmt_seconds(rec["bubble_s"]),
            f"{rec['bubble_frac'] * 100:.1f}%" if rec["bubble_frac"] is not None
            else "not runnable" if rec["note"] else "n/a",
            params, acts]


def pipeline_table(results: list[ScheduleResult], *, f_s: float, b_s: float, w_s: float,
                   fb_s: float) -> Table:
    pp = results[0].pp
    t = Table(f"Pipeline schedules, PP = {pp} (F = {f_s:g} s, B = {b_s:g} s, W = {w_s:g} s, "
              f"F&B = {fb_s:g} s)",
              ["schedule", "devices", "bubble", "bubble share", "parameters / device",
               "activations / device"], align="lrrrrr")
    for r in results:
        rec: dict[str, Any] = {
            "schedule": r.schedule, "pp": r.pp, "num_devices": r.num_devices,
            "bubble_s": r.bubble_s, "bubble_frac": r.bubble_frac,
            "param_copies": r.param_copies,
            "activation_micro_batches": r.activation_micro_batches,
            "param_bytes_per_device": r.param_bytes_per_device,
            "activation_bytes_per_device": r.activation_bytes_per_device,
            "f_s": f_s, "b_s": b_s, "w_s": w_s, "fb_s": fb_s, "note": r.note}
        t.add(rec, _schedule_cells(rec))
        if r.note:
            t.notes.append(f"{r.schedule}: {r.note} (github.com/deepseek-ai/DualPipe@3da1bbe).")
    t.notes.append("Bubble formulas (V3R Table 2, DualPipe README): 1F1B (PP-1)(F+B); ZB1P "
                   "(PP-1)(F+B-2W), with m < PP micro-batches max(that, (PP-1)(F+B-W)-(m-1)W) "
                   "(Qi et al. 2024 §2.1: only m-1 W passes to delay); DualPipe and DualPipeV "
                   "(PP/2-1)(F&B+B-3W), DualPipeV on PP/2 devices. Parameters in units of one "
                   "stage's, activations in micro-batches (mb) of one stage (at most m). "
                   "bubble share: bubble / (bubble + micro-batches x (F+B)).")
    return t


# ----------------------------------------------------------------------------- train
TRAIN_FIELDS = ("model", "hardware", "convention", "seq_len", "tokens", "num_gpus", "basis",
                "train_flops_per_token", "peak_flop_per_s_per_gpu", "achieved_flop_per_s_per_gpu",
                "train_tokens_per_s_per_gpu", "tokens_per_day", "mfu_frac", "train_gpu_hours",
                "train_days", "usd_per_gpu_hour", "train_cost_usd")


def train_table(r: TrainResult) -> Table:
    t = Table(f"Training {r.model} on {r.num_gpus:,} x {r.hardware} ({r.convention}, "
              f"s = {r.seq_len})", ["metric", "value"])
    rec: dict[str, Any] = {k: getattr(r, k) for k in TRAIN_FIELDS}
    cost = rec["train_cost_usd"]
    t.rows += [
        ["tokens", fmt_count_si(rec["tokens"])],
        ["train FLOPs per token", fmt_gflop(rec["train_flops_per_token"])],
        ["tokens/s per GPU", f"{rec['train_tokens_per_s_per_gpu']:,.1f}"],
        ["tokens per day", fmt_count_si(rec["tokens_per_day"])],
        ["achieved FLOP/s per GPU", fmt_value(rec["achieved_flop_per_s_per_gpu"], "FLOP/s")],
        [f"mfu_frac ({'given' if rec['basis'] == 'mfu' else 'derived'}; of the dense peak)",
         f"{rec['mfu_frac'] * 100:.2f}% of "
         f"{fmt_value(rec['peak_flop_per_s_per_gpu'], 'FLOP/s')}"],
        ["train_gpu_hours", f"{rec['train_gpu_hours']:,.0f}"],
        ["train days", f"{rec['train_days']:,.2f}"],
        ["train_cost_usd", f"{cost:,.0f} USD at {rec['usd_per_gpu_hour']:g} USD/GPU-hour"
         if cost is not None else "n/a (no price per GPU-hour in the spec)"],
    ]
    t.records.append(rec)
    t.notes.append(f"Speed fixed by --{r.basis.replace('_', '-')}; GPU-hours count every GPU for "
                   "the whole run; MFU against the dense peak (not 'with sparsity').")
    return t


# ----------------------------------------------------------------------------- routing
def routing_table(r: RoutingResult) -> Table:
    t = Table(f"Node-limited routing: {r.model} on {r.hardware}, {r.num_nodes} nodes "
              f"(P §4.3)", ["metric", "value"])
    rec: dict[str, Any] = {k: v for k, v in r.__dict__.items() if k != "inputs"}
    t.rows += [
        ["experts per token / per node",
         f"{rec['experts_per_token']} / {rec['experts_per_node']:g}"],
        ["node limit M", str(rec["node_limit"])],
        ["expected distinct nodes (limited / unlimited)",
         f"{rec['expected_distinct_nodes_limited']:.3f} / "
         f"{rec['expected_distinct_nodes_unlimited']:.3f}"],
        ["IB copies per token without forwarding (expected / worst)",
         f"{rec['ib_copies_per_token_without_forwarding']:.3f} / "
         f"{rec['ib_copies_worst_without']}"],
        ["IB copies per token with NVLink forwarding (expected / worst)",
         f"{rec['ib_copies_per_token_with_forwarding']:.3f} / {rec['ib_copies_worst_with']}"],
        ["experts per node at no extra IB cost", f"{rec['free_experts_per_node']:.2f}"],
        ["most experts for the IB cost of M nodes", f"{rec['max_experts_same_ib_cost']:.1f}"],
        [f"IB time per layer ({rec['tokens_per_gpu']:g} tokens/GPU)",
         fmt_seconds(rec["ib_time_per_layer_s"])],
        ["NVLink forwarding time per layer", fmt_seconds(rec["nvlink_time_per_layer_s"])],
        ["ep_time_per_layer_s (bottleneck)",
         f"{fmt_seconds(rec['ep_time_per_layer_s'])} ({rec['bottleneck']})"],
    ]
    t.records.append(rec)
    t.notes.append("Expected values assume uniform routing over the allowed nodes; worst cases "
                   "count every target node as P does. IB at nominal, NVLink at achievable "
                   "bandwidth (as V3R compares them); IB and NVLink overlap.")
    return t


# ----------------------------------------------------------------------------- collective
def collective_table(rows: list[dict[str, Any]]) -> Table:
    from planner.calc.collectives import ALL_REDUCE_PHASES

    t = Table("Collective times (alpha-beta model)",
              ["operation", "algorithm", "ranks", "bytes", "link", "alpha", "bandwidth",
               "time"], align="llrrlrrr")
    for r in rows:
        rec = dict(r)
        t.add(rec, [rec["operation"], rec["algorithm"], str(rec["num_ranks"]),
                    fmt_bytes(rec["bytes_total"]), rec["link"], fmt_seconds(rec["latency_s"]),
                    f"{fmt_rate_bytes(rec['bandwidth_bytes_per_s'])} "
                    f"({rec['bandwidth_basis']})", fmt_seconds(rec["time_s"])])
    t.notes.append("Ring: (p-1)a + (p-1)/p n/B per phase (all-reduce: "
                   f"{ALL_REDUCE_PHASES} phases); tree: "
                   "2 ceil(log2 p)(a + n/B); all-to-all: (p-1)a + (p-1)/p n/B. n: the full "
                   "buffer; B: per-rank, one direction (Thakur et al. 2005).")
    return t


# ----------------------------------------------------------------------------- numerics
def _format_error_table(errors: list[FormatError], seed: int) -> Table:
    from planner.calc import numerics as n

    t = Table(f"Quantize-dequantize error on activation-like data (seed {seed})",
              ["format", "data", "scaling", "rel. L2 error", "bits / element"], align="lllrr")
    for e in errors:
        rec: dict[str, Any] = {
            "table": "format_error", "format": e.format, "dataset": e.dataset,
            "tile": e.tile, "scaling": e.scaling, "rel_l2_error": e.rel_l2_error,
            "bits_per_element": e.bits_per_element, "seed": seed}
        t.add(rec, [rec["format"], rec["dataset"], rec["scaling"], f"{rec['rel_l2_error']:.3e}",
                    f"{rec['bits_per_element']:g}"])
    t.notes.append("rel. L2 error: ||x - Q(x)|| / ||x|| over the tensor. Data: gaussian-outliers "
                   f"= N(0,1) with {n.OUTLIER_CHANNEL_FRAC:.0%} of channels x{n.OUTLIER_SCALE:g}; "
                   f"heavy-tailed = Student-t ({n.HEAVY_TAIL_DOF} dof). Bits "
                   "include FP32 scales (FP8) or FP32 min and max (LogFMT) per tile; BF16 is "
                   "unscaled. P: LogFMT-8 beats E4M3 and E5M2; LogFMT-10 is close to BF16.")
    return t


def _accumulation_table(accumulation: list[AccumulationError], seed: int) -> Table:
    from planner.calc import numerics as n

    t = Table(f"FP8 GEMM accumulation with {n.ACCUM_FRACTION_BITS} fraction bits (seed {seed})",
              ["data", "K", "limited precision", f"promoted every {n.PROMOTION_INTERVAL}",
               "FP32"], align="lrrrr")
    for a in accumulation:
        rec: dict[str, Any] = {
            "table": "accumulation", "data": a.data, "k": a.k,
            "limited_rel_error": a.limited_rel_error,
            "promoted_rel_error": a.promoted_rel_error,
            "fp32_rel_error": a.fp32_rel_error, "seed": seed}
        t.add(rec, [rec["data"], f"{rec['k']:,}", f"{rec['limited_rel_error'] * 100:.3f}%",
                    f"{rec['promoted_rel_error'] * 100:.3f}%",
                    f"{rec['fp32_rel_error'] * 100:.5f}%"])
    t.notes.append(f"Each {n.MMA_K}-product tensor-core step aligns its products and the "
                   "accumulator to the largest exponent and keeps "
                   f"{n.ACCUM_FRACTION_BITS} fraction bits (truncation); promotion adds "
                   "the partial sum to an FP32 accumulator every "
                   f"{n.PROMOTION_INTERVAL} elements (V3R §3.3.2). "
                   "Error: ||c - exact|| / ||exact|| over 512 dot products of E4M3 inputs. P "
                   "reports up to about 2% at K = 4096 without promotion: between the mean-zero "
                   "and the positive (every product adds up) cases here.")
    return t


def _comm_bytes_table(comm: list[dict[str, Any]]) -> Table:
    from planner.calc.numerics import DEFAULT_HIDDEN_SIZE, DEFAULT_TILE

    t = Table(f"Bytes per token and expert on the wire (hidden {DEFAULT_HIDDEN_SIZE})",
              ["format", "bytes", "vs BF16"], align="lrr")
    bf16 = next((c["bytes"] for c in comm if c["format"] == "bf16"), None)
    for c in comm:
        rec: dict[str, Any] = {"table": "comm_bytes", **c}
        t.add(rec, [rec["format"], fmt_int(rec["bytes"]),
                    f"{rec['bytes'] / bf16:.3f}x" if bf16 else "-"])
    t.notes.append(f"Payload + per-1x{DEFAULT_TILE}-tile metadata; `planner ep --dispatch-format "
                   "F --combine-format F` uses these (dispatch adds DeepEP's 16 B per token).")
    return t


def numerics_tables(errors: list[FormatError], accumulation: list[AccumulationError],
                    comm: list[dict[str, Any]], *, seed: int) -> list[Table]:
    """The format error table, the accumulation study and the bytes on the wire."""
    return [_format_error_table(errors, seed), _accumulation_table(accumulation, seed),
            _comm_bytes_table(comm)]
