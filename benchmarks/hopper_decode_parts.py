"""DeepSeek-R1 FP8 decode under TensorRT-LLM on H200 / H100 (and B200 beside them): each part
of the planner's decode step per layer beside AIConfigurator's measured kernel at the same
shape (issue 22, round 15, hopdec15).

Two steps (the planner never imports pyarrow):

    /work/venv-aic/bin/python benchmarks/hopper_decode_parts.py --dump AIC_ROOT /tmp/hd.json
    python benchmarks/hopper_decode_parts.py /tmp/hd.json

AIC_ROOT/<system>/... holds AIConfigurator's TensorRT-LLM 1.3.0rc20 tables (ai-dynamo/
aiconfigurator @ 095f58a51c4c, ``aic-core/src/aiconfigurator_core/systems/data/<system>/``):
mla/trtllm/1.3.0rc20/mla_generation_module_perf (DeepSeek-V3's whole attention module in
generation: the q_a / kv_a, q_b, kv_b (absorbed) and o GEMMs, norms, RoPE, the MLA kernel;
FP8 KV, fp8_block GEMMs), generation_mla_perf (the MLA kernel alone), gemm/.../gemm_perf
(fp8_block and bf16 GEMMs at DeepSeek's own (N, K)), moe/.../moe_perf (fp8_block, h 7168,
i 2048, E 256, k 8, fastest kernel per run; ``num_tokens`` the tokens the EP group routes),
comm/trtllm/1.3.0rc20/custom_allreduce_perf (TensorRT-LLM's one-node all-reduce, BF16).
Tables are read between their points linearly in log batch / log positions / log bytes.

Planner parts are the workload model's decode forward pass (``workload_step.forward_pass``,
the engine's calibrated per-layer and per-peer times as validate-disagg runs it), per layer
(attention, all-reduces, engine terms) or per MoE layer (experts), recorded per call.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SYSTEMS = {"h200": "h200_sxm", "h100": "h100_sxm", "b200": "b200_sxm"}
TRT = "trtllm/1.3.0rc20"
#: DeepSeek-V3's decode GEMMs (N, K) at attention TP 1; TP divides N of the column-parallel and
#: K of the row-parallel ones (``_gemm_shapes``).
HIDDEN, SHARED_INTER, DENSE_INTER, VOCAB = 7168, 2048, 18432, 129280
#: AIConfigurator's h100_sxm / h200_sxm system specs: node.inter_node_bw, intra_node_bw (B/s).
AIC_INTER_NODE_BW, AIC_INTRA_NODE_BW = 50e9, 450e9
#: Representative rows (validate-disagg, main 3f409f0): hardware, label, attention TP,
#: attention DP, MoE EP, requests per attention rank, mean decode context (ISL + OSL / 2 of the
#: client's mean lengths), measured and predicted TPOT (ms; /tmp/an/rows.csv of main).
ROWS = (
    ("h200", "TEP8 1K/1K c36 (cfg303)", 8, 1, 8, 4, 1382, 13.39, 9.77),
    ("h200", "TEP8 1K/1K c288 (cfg303)", 8, 1, 8, 32, 1382, 25.29, 20.86),
    ("h200", "TEP8 1K/1K c576 (cfg303)", 8, 1, 8, 64, 1382, 30.90, 27.11),
    ("h200", "DEP8 8K/1K c192 (cfg325)", 1, 8, 8, 8, 7833, 33.14, 28.08),
    ("h200", "DEP8 8K/1K c512 (cfg334)", 1, 8, 8, 64, 7833, 58.28, 49.67),
    ("h100", "TEP16 8K/1K c30 (cfg494)", 16, 1, 16, 10, 7833, 21.11, 15.74),
    ("h100", "TEP16 1K/1K c60 (cfg494)", 16, 1, 16, 20, 1382, 30.33, 18.02),
    ("b200", "TEP8 1K/1K b4 (no row: the H200 shape)", 8, 1, 8, 4, 1382, math.nan, math.nan),
)


def _gemm_shapes(tp: int) -> dict[str, tuple[int, int]]:
    """DeepSeek-V3's decode GEMMs at attention TP ``tp`` (dense FFN and shared experts at the
    same TP; attention DP: tp 1)."""
    return {"q_a+kv_a": (2112, HIDDEN), "q_b": (24576 // tp, 1536), "o": (HIDDEN, 16384 // tp),
            "shared_gate_up": (2 * SHARED_INTER // tp, HIDDEN),
            "shared_down": (HIDDEN, SHARED_INTER // tp), "router": (256, HIDDEN),
            "dense_gate_up": (2 * DENSE_INTER // tp, HIDDEN),
            "dense_down": (HIDDEN, DENSE_INTER // tp), "head": (VOCAB // tp, HIDDEN)}


def dump(root: Path, out: Path) -> None:
    import pyarrow.parquet as pq

    def read(system: str, path: str) -> dict:
        return pq.read_table(root / system / path).to_pydict()

    data: dict = {}
    for hw, system in SYSTEMS.items():
        mod = read(system, f"mla/{TRT}/mla_generation_module_perf.parquet")
        module = {f"{h}|{b}|{s}": t for kv, g, h, b, s, t in zip(
            mod["kv_cache_dtype"], mod["gemm_type"], mod["num_heads"], mod["batch_size"],
            mod["step"], mod["latency"]) if kv == "fp8" and g == "fp8_block"}
        gen = read(system, f"mla/{TRT}/generation_mla_perf.parquet")
        core = {f"{h}|{b}|{s + 1}": t for kv, h, b, s, t in zip(
            gen["kv_cache_dtype"], gen["num_heads"], gen["batch_size"], gen["step"],
            gen["latency"]) if kv == "fp8"}
        ar = read(system, f"comm/{TRT}/custom_allreduce_perf.parquet")
        allreduce = {f"{n}|{s}": t for n, s, t in zip(ar["num_gpus"], ar["message_size"],
                                                     ar["latency"])}
        g = read(system, f"gemm/{TRT}/gemm_perf.parquet")
        gemm: dict = {}
        for dt, m, n, k, t in zip(g["gemm_dtype"], g["m"], g["n"], g["k"], g["latency"]):
            if dt in ("fp8_block", "bfloat16") and m <= 512:
                key = f"{dt}|{m}|{n}|{k}"
                gemm[key] = min(t, gemm.get(key, t))
        mo = read(system, f"moe/{TRT}/moe_perf.parquet")
        moe: dict = {}
        for i in range(len(mo["latency"])):
            if (mo["moe_dtype"][i], mo["hidden_size"][i], mo["inter_size"][i],
                    mo["num_experts"][i], mo["topk"][i]) != ("fp8_block", HIDDEN, 2048, 256, 8):
                continue
            key = (f"{mo['num_tokens'][i]}|{mo['moe_tp_size'][i]}|{mo['moe_ep_size'][i]}|"
                   f"{mo['distribution'][i]}")
            moe[key] = min(mo["latency"][i], moe.get(key, mo["latency"][i]))
        data[hw] = dict(module=module, core=core, allreduce=allreduce, gemm=gemm, moe=moe)
    out.write_text(json.dumps(data))


def _interp(points: dict[float, float], x: float) -> float:
    """Linear in log x between the table's points, constant past its ends (NaN: none)."""
    xs = sorted(points)
    if not xs:
        return math.nan
    if x <= xs[0]:
        return points[xs[0]]
    if x >= xs[-1]:
        return points[xs[-1]]
    hi = next(i for i, v in enumerate(xs) if v >= x)
    a, b = xs[hi - 1], xs[hi]
    w = (math.log(x) - math.log(a)) / (math.log(b) - math.log(a))
    return points[a] + w * (points[b] - points[a])


def _table2(tab: dict, prefix: str, batch: float, positions: float) -> float:
    """A table keyed ``prefix|batch|positions`` read at (batch, positions), log-log."""
    rows: dict[int, dict[float, float]] = {}
    for key, t in tab.items():
        p, b, s = key.rsplit("|", 2)
        if p == prefix:
            rows.setdefault(int(b), {})[float(s)] = t
    return _interp({b: _interp(pts, positions) for b, pts in rows.items()}, batch)


def table_parts(tab: dict, *, tp: int, adp: int, ep: int, batch: int, context: float) -> dict:
    """The measured kernels of one decode step's parts (µs): per layer (attention module, MLA
    kernel, the two all-reduces), per MoE layer (routed experts balanced / power law, shared
    experts, router), per dense layer (FFN), the head."""
    heads = 128 // tp
    shapes = _gemm_shapes(tp)

    def gemm(name: str, dtype: str = "fp8_block") -> float:
        """The GEMM at its (N, K), else the nearest shape the table has scaled by N·K."""
        n, k = shapes[name]
        have = {tuple(map(int, key.split("|")[2:])) for key in tab["gemm"]
                if key.startswith(f"{dtype}|")}
        nn, kk = min(have, key=lambda s: abs(math.log(s[0] / n)) + abs(math.log(s[1] / k)))
        pts = {float(key.split("|")[1]): t for key, t in tab["gemm"].items()
               if key.startswith(f"{dtype}|") and key.endswith(f"|{nn}|{kk}")}
        return _interp(pts, batch) * 1e3 * max(1.0, n * k / (nn * kk))

    msg = batch * HIDDEN * 2
    ar = _interp({float(k.split("|")[1]): t for k, t in tab["allreduce"].items()
                  if k.split("|")[0] == str(min(tp, 8))}, msg) if tp > 1 else math.nan
    # past one node no table: AIConfigurator's own rule (aic-core/rust/.../operators/
    # communication.rs, custom_allreduce_empirical) scales the 8-GPU time by the ratio of its
    # speed-of-light times, (p-1)/p over 50 GB/s inter-node against 7/8 over 450 GB/s NVLink
    ar_rule = ar * (tp - 1) / tp / AIC_INTER_NODE_BW / ((8 - 1) / 8 / AIC_INTRA_NODE_BW) \
        if tp > 8 else math.nan
    ar = ar if tp <= 8 else math.nan
    group = batch * adp                     # tokens the EP group routes
    moe_tp = tp * adp // ep
    routed = {d: _interp({float(k.split("|")[0]): t for k, t in tab["moe"].items()
                          if k.endswith(f"|{moe_tp}|{ep}|{d}")}, group) * 1e3
              for d in ("balanced", "power_law_1.01")}
    return dict(module=_table2(tab["module"], str(heads), batch, context) * 1e3,
                core=_table2(tab["core"], str(heads), batch, context) * 1e3,
                allreduce=2 * ar * 1e3, allreduce_aic_rule=2 * ar_rule * 1e3,
                routed=routed["balanced"],
                routed_pl=routed["power_law_1.01"],
                shared=gemm("shared_gate_up") + gemm("shared_down"),
                router=gemm("router", "bfloat16"),
                dense=gemm("dense_gate_up") + gemm("dense_down"),
                head=gemm("head", "bfloat16"))


def planner_parts(hw: str, *, tp: int, adp: int, ep: int, batch: int, context: float) -> dict:
    """The planner's decode step parts (µs; per layer / per MoE layer / per dense layer / the
    head, as :func:`table_parts`) and the step (ms), TensorRT-LLM's calibrated engine terms."""
    import numpy as np

    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "benchmarks"))
    from deepseek_prefill_parts import recorded_buckets

    from planner import catalog
    from planner.calc.serving import workload_step as ws
    from planner.calc.serving.disagg_workload import PoolLayout, _setup
    from planner.specs.load import load_engine

    model, hardware = catalog.load_model("deepseek-v3"), catalog.load_hardware(hw)
    layout = PoolLayout(workers=1, batch=batch, tp=tp, attention_dp=adp,
                        moe_tp=tp * adp // ep, moe_ep=ep)
    fig, lay, eng = _setup(model, hardware, load_engine("trtllm"), layout,
                           dict(weights_dtype="fp8", moe_weights_dtype="fp8", kv_dtype=None),
                           "fp8")
    rates = ws._rates(hardware, phase="decode", weights_dtype="fp8")
    with recorded_buckets() as rec:
        total, _ = ws.forward_pass(
            model, hardware, fig, rates, lay, decode_seqs=np.array(float(batch)),
            prefill_tokens=np.array(0.0), decode_context=np.array(float(context)),
            prefill_context=np.array(0.0), prompts=np.array(0.0),
            layer_overhead_s=eng.layer_s, peer_overhead_s=eng.peer_s)
    c, links, k = rec["calls"], rec["links"], rec["kernels"]
    layers, moe, dense = fig.layers, fig.moe_layers, fig.dense_layers
    us = 1e6
    core = k[0] * us if k else 0.0    # a measured kernel's time per layer (no count)
    attention = (c[0] + c[1] + c[2]) / layers * us + core
    return dict(module=attention, core=core, allreduce=links[0] / layers * us,
                routed=c[7] / moe * us, shared=c[6] / moe * us, router=c[5] / moe * us,
                dense=(c[3] + c[4]) / dense * us, head=c[9] * us, a2a=links[1] / moe * us,
                peer=links[3] / layers * us, layer=eng.layer_s * us,
                step_ms=float(total) * 1e3)


def step_ms(parts: dict, *, layers: int = 61, moe: int = 58, dense: int = 3,
            routed: str = "routed") -> float:
    """A step (ms) summed from per-layer parts: attention module + all-reduces (+ the engine's
    per-layer and per-peer terms where given) per layer, MoE parts per MoE layer."""
    per_layer = parts["module"] + parts["allreduce"] + parts.get("peer", 0.0) + parts.get(
        "layer", 0.0)
    per_moe = parts[routed] + parts["shared"] + parts["router"] + parts.get("a2a", 0.0)
    return (layers * per_layer + moe * per_moe + dense * parts["dense"] + parts["head"]) / 1e3


def report(path: Path) -> None:
    data = json.loads(path.read_text())
    cols = ("module", "core", "allreduce", "routed", "shared", "router", "dense", "head")
    print("per layer (attention module, MLA kernel alone, 2 all-reduces), per MoE layer "
          "(routed, shared, router), per dense layer, head: µs, planner / table")
    for hw, label, tp, adp, ep, batch, context, measured, predicted in ROWS:
        pl = planner_parts(hw, tp=tp, adp=adp, ep=ep, batch=batch, context=context)
        tb = table_parts(data[hw], tp=tp, adp=adp, ep=ep, batch=batch, context=context)
        cells = "; ".join(f"{c} {pl[c]:.1f} / {tb[c]:.1f}" for c in cols)
        print(f"{hw} {label}, {batch} per rank, context {context}: {cells}; routed power law "
              f"{tb['routed_pl']:.1f}; planner engine terms: per layer {pl['layer']:.1f}, "
              f"per-peer {pl['peer']:.1f}, all-to-all {pl['a2a']:.1f}")
        if not math.isnan(tb["allreduce_aic_rule"]):
            rule = dict(tb, allreduce=tb["allreduce_aic_rule"])
            print(f"    TP {tp} across nodes: planner all-reduces + per-peer term "
                  f"{pl['allreduce'] + pl['peer']:.1f} µs a layer; AIConfigurator's rule "
                  f"(8-GPU table x speed-of-light ratio) {tb['allreduce_aic_rule']:.1f}: with it "
                  f"the tables' step {step_ms(rule):.2f} ms, the planner's with it in place of "
                  f"its own {step_ms(dict(pl, peer=0.0, allreduce=rule['allreduce'])):.2f} ms")
        kernels = dict(tb, allreduce=0.0 if math.isnan(tb["allreduce"]) else tb["allreduce"])
        print(f"    step: planner {pl['step_ms']:.2f} ms (sum of parts "
              f"{step_ms(pl):.2f}); tables' kernels alone {step_ms(kernels):.2f} ms "
              f"(power law {step_ms(kernels, routed='routed_pl'):.2f}; "
              f"{'no TP>8 all-reduce table' if math.isnan(tb['allreduce']) else 'all-reduce in'})"
              f"; measured TPOT {measured} ms, validate-disagg on main 3f409f0 {predicted} ms")


def main() -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from deepseek_prefill_parts import dump_or_report

    dump_or_report(__doc__, dump, report)


if __name__ == "__main__":
    main()
