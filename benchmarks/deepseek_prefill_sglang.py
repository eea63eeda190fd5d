"""DeepSeek-V3 prefill under SGLang: each part of the planner's forward pass beside SGLang's own
AIConfigurator kernel tables at the same shape (issue 22, sgl13). Run through
``benchmarks/deepseek_prefill_parts.py --engine sglang`` (its docstring names the tables).

The dump step needs pyarrow (a separate environment); the report step reads the JSON only.
Table times are per layer in milliseconds (AIConfigurator's unit; DeepEP's comm table in µs).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: AIConfigurator system -> planner hardware name.
SYSTEMS = {"b200_sxm": "b200", "gb200": "gb200-nvl72", "h200_sxm": "h200"}
V_KERNELS, V_DEEPEP = "sglang/0.5.10", "sglang/0.5.12"
#: DeepSeek-V3's MoE shape in the tables: hidden, expert intermediate, experts, top-k.
DSV3_MOE = (7168, 2048, 256, 8)
#: DeepEP's default SMs for its normal-mode kernels (deep_ep.Buffer.num_sms).
DEEPEP_SMS = 20
#: The fused q_a + kv_a (+ rope) GEMM SGLang runs outside the attention module (N, K).
QKV_A = (1536 + 512 + 64, 7168)


def proj_shapes(tp: int) -> tuple:
    """Attention projections (N, K) on one GPU at attention TP ``tp``: q_a and kv_a whole on
    every rank, q_b (128 heads x 192), kv_b (128 x 256) and o (7168 x 128 heads x 128) split."""
    return ((1536, 7168), (576, 7168), (24576 // tp, 1536), (32768 // tp, 512),
            (7168, 16384 // tp))

#: The shared expert's GEMMs (N, K) at TP 1: gate + up fused, down.
SHARED = ((2 * 2048, 7168), (7168, 2048))
GEMM_DTYPES = {"fp8": "fp8_block", "fp4": "nvfp4"}
#: (name, attention TP, attention DP, MoE EP) of the prefill workers the runs use.
LAYOUTS = (("DEP8", 1, 8, 8), ("DEP4", 1, 4, 4), ("TEP8", 8, 1, 8), ("TEP4", 4, 1, 4),
           ("TP8", 8, 1, 1), ("TP4", 4, 1, 1))


def _rows(path: Path) -> list[dict]:
    import pyarrow.parquet as pq

    d = pq.read_table(path).to_pydict()
    keys = list(d)
    return [{k: d[k][i] for k in keys} for i in range(len(d[keys[0]]))]


def _keep_min(table: dict, key: str, value: float) -> None:
    table[key] = min(value, table.get(key, value))


def dump_sglang(root: Path, out: Path) -> None:
    """Reduce the SGLang tables under ``root`` (``<system>/<op>/sglang/<v>/``) to the JSON the
    report reads: the fastest kernel per configuration, DeepSeek-V3's shapes only."""
    data: dict = {}
    for system, hw in SYSTEMS.items():
        base = root / system
        mla = {f"{r['kv_cache_dtype']}|{r['num_heads']}|{r['batch_size']}|{r['isl']}": r["latency"]
               for r in _rows(base / "mla" / V_KERNELS / "context_mla_perf.parquet")}
        module = {f"{r['num_heads']}|{r['batch_size']}|{r['isl']}": r["latency"]
                  for r in _rows(base / "mla" / V_KERNELS / "wideep_context_mla_perf.parquet")}
        gemm: dict = {}
        for r in _rows(base / "gemm" / V_KERNELS / "gemm_perf.parquet"):
            if r["gemm_dtype"] in GEMM_DTYPES.values():
                _keep_min(gemm, f"{r['gemm_dtype']}|{r['m']}|{r['n']}|{r['k']}", r["latency"])
        moe: dict = {}
        for r in _rows(base / "moe" / V_KERNELS / "moe_perf.parquet"):
            if (r["hidden_size"], r["inter_size"], r["num_experts"], r["topk"]) == DSV3_MOE:
                _keep_min(moe, f"{r['moe_dtype']}|{r['num_tokens']}|{r['moe_tp_size']}|"
                          f"{r['moe_ep_size']}|{r['distribution']}", r["latency"])
        deepep = {f"{r['distribution']}|{r['moe_ep_size']}|{r['num_tokens']}": r["latency"]
                  for r in _rows(base / "moe" / V_KERNELS / "wideep_context_moe_perf.parquet")}
        a2a = {}
        for r in _rows(base / "comm" / V_DEEPEP / "wideep_deepep_normal_perf.parquet"):
            if ((r["hidden_size"], r["num_topk"], r["num_experts"]) == (7168, 8, 256)
                    and r["node_num"] == 1 and r["dispatch_sms"] == DEEPEP_SMS):
                a2a[str(r["num_token"])] = (r["dispatch_transmit_us"]
                                            + r["combine_transmit_us"]) / 1e3
        data[hw] = dict(mla=mla, module=module, gemm=gemm, moe=moe, deepep=deepep, a2a=a2a,
                        **_decode_tables(base))
    out.write_text(json.dumps(data))


def _decode_tables(base: Path) -> dict:
    """SGLang's wide-EP decode tables: the generation attention module by (heads, batch per
    rank, context), DeepEP low-latency experts by (distribution, EP, batch per rank x EP) and
    the low-latency dispatch + combine (ms) by batch per rank."""
    gen_module = {f"{r['num_heads']}|{r['batch_size']}|{r['isl']}": r["latency"] for r in
                  _rows(base / "mla" / V_KERNELS / "wideep_generation_mla_perf.parquet")}
    gen_moe = {f"{r['distribution']}|{r['moe_ep_size']}|{r['num_tokens']}": r["latency"]
               for r in _rows(base / "moe" / V_KERNELS / "wideep_generation_moe_perf.parquet")}
    ll = {str(r["num_token"]): (r["dispatch_avg_t_us"] + r["combine_avg_t_us"]) / 1e3
          for r in _rows(base / "comm" / V_DEEPEP / "wideep_deepep_ll_perf.parquet")
          if (r["hidden_size"], r["num_topk"], r["num_experts"]) == (7168, 8, 256)}
    return dict(gen_module=gen_module, gen_moe=gen_moe, ll=ll)


def gemm_ms(gemm: dict, *, dtype: str, rows: int, shapes) -> float:
    """Sum over ``shapes`` (N, K) of the table's time at ``rows`` for the nearest (N, K) it
    holds (relative distance in N and K), scaled by N·K; NaN where the table lacks ``rows``."""
    have = sorted({tuple(map(int, k.split("|")[2:])) for k in gemm
                   if k.startswith(f"{dtype}|{rows}|")})
    if not have:
        return math.nan
    total = 0.0
    for n, k in shapes:
        nn, kk = min(have, key=lambda s: abs(s[0] - n) / n + abs(s[1] - k) / k)
        total += gemm[f"{dtype}|{rows}|{nn}|{kk}"] * n * k / (nn * kk)
    return total


def deepep_moe_ms(deepep: dict, *, dist: str, ep: int, rank_tokens: int) -> float:
    """DeepEP expert time at ``rank_tokens`` per rank and EP ``ep``; an EP the table lacks is
    read between the nearest EPs either side at the same tokens per rank (linear in log EP:
    the expert rows per GPU are the same, only their spread over experts differs)."""
    eps = sorted({int(k.split("|")[1]) for k in deepep if k.startswith(f"{dist}|")
                  and int(k.split("|")[2]) == rank_tokens * int(k.split("|")[1])})
    at = {e: deepep[f"{dist}|{e}|{rank_tokens * e}"] for e in eps}
    if ep in at:
        return at[ep]
    lo, hi = [e for e in eps if e < ep], [e for e in eps if e > ep]
    if not lo or not hi:
        return math.nan
    a, b = lo[-1], hi[0]
    w = (math.log(ep) - math.log(a)) / (math.log(b) - math.log(a))
    return at[a] + w * (at[b] - at[a])


def table_parts(tab: dict, *, tp: int, adp: int, ep: int, isl: int, weights: str) -> dict:
    """SGLang's per-layer ms of one prompt of ``isl`` tokens per attention rank (NaN where a
    table lacks the shape). The experts see the ``isl`` · DP_att tokens the worker routes
    (DeepEP: that over EP per rank; with TP attention SGLang scatters the tokens over ranks)."""
    nan = math.nan
    heads, dtype = 128 // tp, GEMM_DTYPES[weights]
    moe_tp, routed_tokens = tp * adp // ep, isl * adp
    shared = tuple((n // tp, k) if i == 0 else (n, k // tp) for i, (n, k) in enumerate(SHARED))
    return dict(
        core=tab["mla"].get(f"fp8|{heads}|1|{isl}", nan),
        module=tab["module"].get(f"{heads}|1|{isl}", nan)
        + gemm_ms(tab["gemm"], dtype="fp8_block", rows=isl, shapes=(QKV_A,)),
        proj=gemm_ms(tab["gemm"], dtype=dtype, rows=isl, shapes=proj_shapes(tp)),
        shared=gemm_ms(tab["gemm"], dtype=dtype, rows=isl, shapes=shared),
        deepep=deepep_moe_ms(tab["deepep"], dist="uniform", ep=ep,
                             rank_tokens=routed_tokens // ep) if weights == "fp8" else nan,
        deepep_pl=deepep_moe_ms(tab["deepep"], dist="power_law_1.01", ep=ep,
                                rank_tokens=routed_tokens // ep) if weights == "fp8" else nan,
        moe=tab["moe"].get(f"{dtype}|{routed_tokens}|{moe_tp}|{ep}|balanced", nan),
        moe_pl=tab["moe"].get(f"{dtype}|{routed_tokens}|{moe_tp}|{ep}|power_law_1.01", nan),
        a2a=(tab["a2a"].get(str(isl), nan) if ep > 1 else nan) if adp > 1 else 0.0)


def substituted_pass_ms(planner: dict, table: dict, *, layers: int, moe_layers: int,
                        deepep: bool, skew: bool = False) -> float:
    """The planner's pass with its attention, shared-expert, routed-expert and all-to-all
    parts replaced by the tables' (attention: the module + q_a/kv_a GEMM; routed: DeepEP with
    ``deepep`` (attention data parallel, experts expert parallel), else the fused kernel;
    uniform routing, ``skew``: the tables' power law 1.01, the runs' recipes balancing no
    experts; the all-to-all the planner's where no DeepEP table applies (NaN))."""
    att = planner["proj"] + planner["core"] + planner["att_other"]
    routed = table[("deepep" if deepep else "moe") + ("_pl" if skew else "")]
    a2a = table["a2a"] if math.isfinite(table["a2a"]) else planner["a2a"]
    moe_pl = planner["shared"] + planner["routed"] + planner["moe_other"] + planner["a2a"]
    moe_tab = table["shared"] + routed + a2a
    return planner["pass_ms"] + layers * (table["module"] - att) + moe_layers * (moe_tab - moe_pl)


def report_sglang(path: Path) -> None:
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "benchmarks"))
    from deepseek_prefill_parts import _parts

    from planner import catalog

    data = json.loads(path.read_text())
    model = catalog.load_model("deepseek-v3")
    print("per layer, ms: planner / SGLang table; one prompt per attention rank, all ranks")
    for hw, tab in data.items():
        hardware = catalog.load_hardware(hw)
        for name, tp, adp, ep in LAYOUTS:
            for weights in ("fp8", "fp4") if hw != "h200" else ("fp8",):
                for isl in (1024, 8192):
                    pl = _parts(model, hardware, tp=tp, adp=adp, ep=ep, isl=isl, prompts=1,
                                lone=False, weights=weights)
                    t = table_parts(tab, tp=tp, adp=adp, ep=ep, isl=isl, weights=weights)
                    sub = substituted_pass_ms(pl, t, layers=61, moe_layers=58,
                                              deepep=adp > 1 and ep > 1)
                    skew = substituted_pass_ms(pl, t, layers=61, moe_layers=58,
                                               deepep=adp > 1 and ep > 1, skew=True)
                    att = pl["proj"] + pl["core"] + pl["att_other"]
                    print(f"{hw} {weights.upper()} {name} ISL {isl}: core {pl['core']:.3f} / "
                          f"{t['core']:.3f}; attention {att:.3f} / module {t['module']:.3f}; "
                          f"projections {pl['proj']:.3f} / {t['proj']:.3f}; shared "
                          f"{pl['shared']:.3f} / {t['shared']:.3f}; routed {pl['routed']:.3f}"
                          f" (+ other {pl['moe_other']:.3f}) / DeepEP {t['deepep']:.3f} "
                          f"(power law {t['deepep_pl']:.3f}), fused {t['moe']:.3f} (power "
                          f"law {t['moe_pl']:.3f}); all-to-all {pl['a2a']:.3f} / "
                          f"{t['a2a']:.3f}; pass {pl['pass_ms']:.0f} -> {sub:.0f} ms (x"
                          f"{sub / pl['pass_ms']:.2f}; power law {skew:.0f} ms, x"
                          f"{skew / pl['pass_ms']:.2f}), input tokens/s per GPU "
                          f"{isl / tp / pl['pass_ms'] * 1e3:,.0f} -> "
                          f"{isl / tp / sub * 1e3:,.0f}")


def _nearest_isl(isl: float) -> int:
    return min((1024, 2048, 4096, 8192), key=lambda x: abs(math.log(x / isl)))


def what_if(path: Path, *, skew: bool = False) -> None:
    """``planner validate-disagg``'s SGLang DeepSeek rows with each prefill pass scaled by the
    tables' / the planner's pass (:func:`substituted_pass_ms`) at the row's prefill layout and
    the nearest of 1K, 2K, 4K, 8K input (a row whose shape a table lacks keeps its pass): what
    reading SGLang's kernels would do to TTFT before any recalibration. Not the planner."""
    import collections

    import numpy as np

    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "benchmarks"))
    import planner.calc.serving.disagg_workload as dw
    from deepseek_prefill_parts import _parts

    from planner import catalog
    from planner.specs.runs import read_runs, resolve
    from planner.studies.disagg_runs import predict_disagg_rows

    data, model = json.loads(path.read_text()), catalog.load_model("deepseek-v3")
    cache: dict = {}
    state: dict = {"on": False, "scaled": []}

    def ratio(hw: str, wd: str, tp: int, adp: int, ep: int, isl: int) -> float:
        key = (hw, wd, tp, adp, ep, _nearest_isl(isl))
        if key not in cache:
            cache[key] = math.nan
            if hw in data and wd in GEMM_DTYPES and 128 % tp == 0:
                pl = _parts(model, catalog.load_hardware(hw), tp=tp, adp=adp, ep=ep,
                            isl=key[-1], prompts=1, lone=False, weights=wd)
                t = table_parts(data[hw], tp=tp, adp=adp, ep=ep, isl=key[-1], weights=wd)
                cache[key] = substituted_pass_ms(pl, t, layers=61, moe_layers=58,
                                                 deepep=adp > 1 and ep > 1,
                                                 skew=skew) / pl["pass_ms"]
        return cache[key]

    piece, opass = dw.prefill_piece, dw.overlapped_pass_s

    def scaled_piece(m, hardware, engine, *, isl_tokens, layout, **kw):
        state.update(on=engine is not None and engine.name == "sglang"
                     and m.name.startswith("deepseek"), hw=hardware.name, isl=isl_tokens,
                     wd=str(kw.get("weights_dtype")).replace("nvfp4", "fp4"))
        try:
            return piece(m, hardware, engine, isl_tokens=isl_tokens, layout=layout, **kw)
        finally:
            state["on"] = False

    def scaled_pass(m, hardware, fig, rates, lay, **kw):
        t, b = opass(m, hardware, fig, rates, lay, **kw)
        if not state["on"]:
            return t, b
        arr = np.broadcast_arrays(lay.tp, lay.adp, lay.moe_ep, state["isl"])
        r = np.array([ratio(state["hw"], state["wd"], int(a), int(d), int(e), int(i))
                      for a, d, e, i in zip(*(x.ravel() for x in arr))]).reshape(arr[0].shape)
        state["scaled"].extend(r.ravel().tolist())
        return t * np.where(np.isfinite(r), r, 1.0), b

    runs = read_runs(REPO / "planner" / "data" / "serving-runs.csv")
    res = resolve(runs)
    before = predict_disagg_rows(runs, res)
    dw.prefill_piece, dw.overlapped_pass_s = scaled_piece, scaled_pass
    try:
        after = predict_disagg_rows(runs, res)
    finally:
        dw.prefill_piece, dw.overlapped_pass_s = piece, opass
    groups: dict = collections.defaultdict(list)
    for i in np.flatnonzero(before.predicted & after.predicted):
        if res.engine[i] != "sglang" or not str(res.model[i]).startswith("deepseek"):
            continue
        err = [p.ttft_s[i] / runs.measured_ttft_s[i] - 1 for p in (before, after)]
        lay = (f"TP {runs.prefill_tp[i]} DP {runs.prefill_attention_dp[i]} EP "
               f"{runs.prefill_moe_ep[i]}, ISL {_nearest_isl(float(runs.isl[i]))}")
        groups[(res.hardware[i], res.weights_dtype[i], "all")].append(err)
        groups[(res.hardware[i], res.weights_dtype[i], lay)].append(err)
    scaled = np.array(state["scaled"])
    print(f"prefill passes scaled: {np.isfinite(scaled).sum()} of {scaled.size}; routing "
          f"{'power law 1.01' if skew else 'uniform'}")
    print("SGLang DeepSeek rows: TTFT median signed (|error|), planner -> with SGLang's tables")
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2] != "all", k[2])):
        e = np.array(groups[key])
        if key[2] == "all" or len(e) >= 4:
            print(f"{key[0]} {key[1]} {key[2]}: {len(e)} rows, {np.median(e[:, 0]):+.1%} "
                  f"({np.median(abs(e[:, 0])):.1%}) -> {np.median(e[:, 1]):+.1%} "
                  f"({np.median(abs(e[:, 1])):.1%})")


#: Decode shapes of the wide-EP runs: (EP = attention DP, requests per rank, mean context).
DECODE_SHAPES = ((8, 64, 1536), (32, 32, 1536), (32, 64, 1536), (32, 128, 1536),
                 (32, 16, 8704), (32, 64, 8704))


def decode_parts(model, hardware, *, ep: int, batch: int, context: int) -> dict:
    """The planner's per-layer ms of a wide-EP decode step (attention DP = MoE EP = ``ep``,
    ``batch`` requests per rank at ``context`` tokens, FP8): the attention block (projections,
    the measured MLA decode kernel, the rest), shared + routed experts, the all-to-all."""
    import numpy as np

    sys.path.insert(0, str(REPO / "benchmarks"))
    from deepseek_prefill_parts import recorded_buckets

    from planner.calc.serving import workload_step as ws

    fig = ws.model_figures(model, weights_dtype="fp8", moe_weights_dtype="fp8", kv_dtype="fp8")
    lay = ws.Layout(tp=np.array(1), pp=np.array(1), adp=np.array(ep), moe_tp=np.array(1),
                    moe_ep=np.array(ep), tile=None)
    rates = ws._rates(hardware, phase="decode", weights_dtype="fp8")
    with recorded_buckets() as rec:
        total, _ = ws.forward_pass(
            model, hardware, fig, rates, lay, decode_seqs=np.array(float(batch)),
            prefill_tokens=np.array(0.0), decode_context=np.array(float(context)),
            prefill_context=np.array(1.0), prompts=np.array(0.0))
    calls, links, kernels = rec["calls"], rec["links"], rec["kernels"]
    assert len(calls) == 10 and len(links) == 4 and len(kernels) == 1, (calls, links, kernels)
    att, moe = fig.layers / 1e3, fig.moe_layers / 1e3
    return dict(attention=(calls[0] + calls[1] + calls[2]) / att + kernels[0] * 1e3,
                shared=calls[6] / moe, routed=calls[7] / moe, a2a=links[1] / moe,
                step_ms=float(total) * 1e3)


def report_sglang_decode(path: Path) -> None:
    """Wide-EP decode: the planner's parts beside SGLang's generation module, DeepEP
    low-latency experts and its low-latency dispatch + combine (one node's measurement)."""
    sys.path.insert(0, str(REPO))
    from planner import catalog

    data = json.loads(path.read_text())
    model = catalog.load_model("deepseek-v3")
    print("decode, per layer, ms: planner / SGLang table (module at the nearest context)")
    for hw, tab in data.items():
        hardware = catalog.load_hardware(hw)
        for ep, batch, context in DECODE_SHAPES:
            pl = decode_parts(model, hardware, ep=ep, batch=batch, context=context)
            ctx = _nearest_isl(context)
            module = tab["gen_module"].get(f"128|{batch}|{ctx}", math.nan) + gemm_ms(
                tab["gemm"], dtype="fp8_block", rows=batch, shapes=(QKV_A,))
            experts = {d: tab["gen_moe"].get(f"{d}|{ep}|{batch * ep}", math.nan)
                       for d in ("uniform", "power_law_1.01")}
            ll = tab["ll"].get(str(batch), math.nan)
            print(f"{hw} FP8 DEP{ep} {batch} per rank, context {context}: attention "
                  f"{pl['attention']:.3f} / module + q_a/kv_a {module:.3f}; routed "
                  f"{pl['routed']:.3f} / DeepEP LL experts {experts['uniform']:.3f} (power law "
                  f"{experts['power_law_1.01']:.3f}); all-to-all {pl['a2a']:.3f} / "
                  f"{ll:.3f}; step {pl['step_ms']:.2f} ms")
