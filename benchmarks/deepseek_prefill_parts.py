"""DeepSeek-V3 prefill on H200 and B200 under TensorRT-LLM: each part of the planner's forward
pass per layer beside AIConfigurator's measured kernel at the same shape (issue 22, mla11).

Two steps (the planner never imports pyarrow):

    /work/venv-aic/bin/python benchmarks/deepseek_prefill_parts.py --dump /tmp/aic /tmp/ds.json
    python benchmarks/deepseek_prefill_parts.py /tmp/ds.json

Parts: the MLA prefill core (context_mla_perf at heads per GPU, prompts, ISL, by KV dtype), the
attention projections (gemm_perf fp8_block at DeepSeek's own (N, K): q_a 1536x7168, kv_a
576x7168 (read at 512x7168, scaled by N), q_b 24576/TP x 1536, kv_b 32768/TP x 512, o 7168 x
16384/TP; the nearest shape the table has, latency scaled by N·K), the routed experts
(moe_perf fp8_block, h 7168, i 2048, E 256, k 8, fastest kernel per run, balanced routing and
power_law_1.01). Planner parts are the forward pass's own roofline terms (recorded per call).

``--fp8`` (issue 22, fp8ctx15): the FP8 and NVFP4 TensorRT-LLM prefill workers of the
disaggregated rows (``FP8_CASES``: H100, H200, B200, GB200), every attention-DP rank
prefilling, each part beside the tables at its own dtype (fp8_block or nvfp4 GEMMs and MoE,
power_law_1.01 beside balanced), and the routed experts at the token counts the table holds:

    /work/venv-aic/bin/python benchmarks/deepseek_prefill_parts.py --fp8 --dump /tmp/aic /tmp/f.json
    python benchmarks/deepseek_prefill_parts.py --fp8 /tmp/f.json

``--engine sglang`` (issue 22, sgl13): the same parts beside SGLang's own AIConfigurator tables
(B200, GB200, H200; SGLang 0.5.10 kernels, DeepEP of 0.5.12), every attention-DP rank
prefilling as a disaggregated prefill worker's batch does (not one lone rank):

    /work/venv-aic/bin/python benchmarks/deepseek_prefill_parts.py --engine sglang \
        --dump <dir> /tmp/sgl.json      # <dir>/<system>/{mla,moe,gemm,comm}/sglang/<v>/...
    python benchmarks/deepseek_prefill_parts.py --engine sglang /tmp/sgl.json

Tables (``git show HEAD:aic-core/src/aiconfigurator_core/systems/data/<system>/<path>``):
mla/sglang/0.5.10/context_mla_perf (the MLA core, trtllm_mla kernel, by KV dtype),
mla/sglang/0.5.10/wideep_context_mla_perf (SGLang's DeepSeek-V3 attention module: core and
the q_b, kv_b, o projections, FP8-block GEMMs, FP8 KV; the fused q_a + kv_a GEMM, 2112 x
7168, runs outside it and is read from the GEMM table, as AIC's sglang large-EP graph does),
gemm/sglang/0.5.10/gemm_perf (fp8_block), moe/sglang/0.5.10/wideep_context_moe_perf (DeepEP
normal-mode experts, DeepGEMM; ``num_tokens`` = tokens per rank x EP (collector/wideep/sglang/
collect_deepep_moe.py); EP 8 is not collected: read between EP 4 and EP 16, which hold the
same expert rows per GPU at the same tokens per rank), moe/sglang/0.5.10/moe_perf (the
non-DeepEP path: fused Triton FP8-block, FlashInfer CuteDSL NVFP4; ``num_tokens`` the tokens
the whole EP group routes), comm/sglang/0.5.12/wideep_deepep_normal_perf (intranode dispatch +
combine at DeepEP's default 20 SMs, ``num_token`` per rank).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SYSTEMS = {"h200": "h200_sxm", "b200": "b200_sxm"}
#: ``--fp8`` (issue 22, fp8ctx15): every TensorRT-LLM system the FP8 rows ran on.
FP8_SYSTEMS = {"h100": "h100_sxm", "h200": "h200_sxm", "b200": "b200_sxm",
               "gb200-nvl72": "gb200"}
TRT = "trtllm/1.3.0rc20"
PROJ = {8: {"q_a": (1536, 7168), "kv_a": (576, 7168), "q_b": (3072, 1536), "kv_b": (4096, 512),
            "o": (7168, 2048)},
        1: {"q_a": (1536, 7168), "kv_a": (576, 7168), "q_b": (24576, 1536),
            "kv_b": (32768, 512), "o": (7168, 16384)}}


def dump(root: Path, out: Path) -> None:
    import pyarrow.parquet as pq

    data: dict = {}
    for hw, system in SYSTEMS.items():
        ctx = pq.read_table(root / system / "mla" / TRT / "context_mla_perf.parquet").to_pydict()
        mla = {f"{k}|{h}|{b}|{i}": t for k, h, b, i, t in zip(
            ctx["kv_cache_dtype"], ctx["num_heads"], ctx["batch_size"], ctx["isl"],
            ctx["latency"])}
        g = pq.read_table(root / system / "gemm" / TRT / "gemm_perf.parquet").to_pydict()
        gemm: dict = {}
        for dt, m, n, k, t in zip(g["gemm_dtype"], g["m"], g["n"], g["k"], g["latency"]):
            if dt == "fp8_block":
                key = f"{m}|{n}|{k}"
                gemm[key] = min(t, gemm.get(key, t))
        mo = pq.read_table(root / system / "moe" / TRT / "moe_perf.parquet").to_pydict()
        moe: dict = {}
        for i in range(len(mo["latency"])):
            if (mo["moe_dtype"][i], mo["hidden_size"][i], mo["inter_size"][i],
                    mo["num_experts"][i], mo["topk"][i]) != ("fp8_block", 7168, 2048, 256, 8):
                continue
            key = (f"{mo['num_tokens'][i]}|{mo['moe_tp_size'][i]}|{mo['moe_ep_size'][i]}|"
                   f"{mo['distribution'][i]}")
            moe[key] = min(mo["latency"][i], moe.get(key, mo["latency"][i]))
        data[hw] = dict(mla=mla, gemm=gemm, moe=moe)
    out.write_text(json.dumps(data))


@contextlib.contextmanager
def recorded_buckets():
    """While the block runs, record the time (the largest element) of every roof, link and
    measured-kernel bucket ``workload_step`` adds, in order: yields the lists ``calls``,
    ``links`` and ``kernels``; the buckets are restored after."""
    import numpy as np

    from planner.calc.serving import workload_step as ws

    rec: dict[str, list] = {"calls": [], "links": [], "kernels": []}
    roof, link, kernel = ws._Buckets.roof, ws._Buckets.link, ws._Buckets.kernel

    def recording(self, *a, **k):
        t = roof(self, *a, **k)
        rec["calls"].append(float(np.max(t)))
        return t

    def linking(self, t):
        rec["links"].append(float(np.max(t)))
        return link(self, t)

    def timing(self, t, count, **k):
        rec["kernels"].append(float(np.max(t)))
        return kernel(self, t, count, **k)

    ws._Buckets.roof, ws._Buckets.link, ws._Buckets.kernel = recording, linking, timing
    try:
        yield rec
    finally:
        ws._Buckets.roof, ws._Buckets.link, ws._Buckets.kernel = roof, link, kernel


def _parts(model, hardware, *, tp: int, adp: int, ep: int, isl: int, prompts: int,
           lone: bool = True, weights: str = "fp8") -> dict:
    """The planner's per-layer ms of each part of the pass (one rank's ``prompts`` prompts of
    ``isl`` tokens, FP8 KV; ``lone``: only this rank prefills, else every attention-DP rank
    does, as a disaggregated prefill worker's batch) and the whole pass (ms)."""
    import dataclasses

    import numpy as np

    from planner.calc.serving import workload_step as ws

    fig = ws.model_figures(model, weights_dtype=weights, moe_weights_dtype=weights,
                           kv_dtype="fp8")
    lay = ws.Layout(tp=np.array(tp), pp=np.array(1), adp=np.array(adp), moe_tp=np.array(
        tp * adp // ep), moe_ep=np.array(ep), tile=None)
    rates = dataclasses.replace(ws._rates(hardware, phase="prefill", weights_dtype=weights),
                                prefill_prompt_tokens=np.array(float(isl)))
    with recorded_buckets() as rec:
        total, _ = ws.forward_pass(
            model, hardware, fig, rates, lay, decode_seqs=np.array(0.0),
            prefill_tokens=np.array(float(isl * prompts)), decode_context=np.array(1.0),
            prefill_context=np.array(isl / 2), prompts=np.array(float(prompts)),
            lone_prefill=lone)
    calls, links = rec["calls"], rec["links"]
    # roofs, each over its layers: attention [projections, prefill core, activations] (the
    # MLA decode core is a measured kernel, not a roof), dense FFN [GEMM, activations], MoE
    # [router, shared, routed, activations], the head; links: attention all-reduces, the MoE
    # all-to-all, PP transfers, per-peer time
    assert len(calls) == 10 and len(links) == 4, (calls, links)
    att, moe = fig.layers / 1e3, fig.moe_layers / 1e3
    return dict(proj=calls[0] / att, core=calls[1] / att, att_other=calls[2] / att,
                router=calls[5] / moe, shared=calls[6] / moe, routed=calls[7] / moe,
                moe_other=calls[8] / moe, a2a=links[1] / moe, pass_ms=float(total) * 1e3)


def _proj_table(gemm: dict, *, tp: int, rows: int) -> float:
    total = 0.0
    shapes = sorted({tuple(map(int, k.split("|")[1:])) for k in gemm
                     if int(k.split("|")[0]) == rows})
    for n, k in PROJ[tp].values():
        nn, kk = min(shapes, key=lambda s: abs(s[0] - n) / n + abs(s[1] - k) / k)
        total += gemm[f"{rows}|{nn}|{kk}"] * n * k / (nn * kk)
    return total


def report(path: Path) -> None:
    sys.path.insert(0, str(REPO))
    import dataclasses

    from planner import catalog

    data = json.loads(path.read_text())
    model = catalog.load_model("deepseek-v3")
    print("per layer, ms: planner (MHA core rate before mla11) / AIConfigurator")
    for hw, tab in data.items():
        hardware = catalog.load_hardware(hw)
        before = dataclasses.replace(hardware, efficiency=dataclasses.replace(
            hardware.efficiency, mla_prefill=None))
        for tp, adp, ep in ((8, 1, 1), (1, 8, 8)):
            heads = 128 // tp
            for isl in (1024, 8192):
                for prompts in (1, 2, 4, 8):
                    now = _parts(model, hardware, tp=tp, adp=adp, ep=ep, isl=isl,
                                 prompts=prompts)
                    old = _parts(model, before, tp=tp, adp=adp, ep=ep, isl=isl,
                                 prompts=prompts)
                    core = tab["mla"][f"fp8|{heads}|{prompts}|{isl}"]
                    tokens = isl * prompts
                    proj = _proj_table(tab["gemm"], tp=tp, rows=tokens) if any(
                        k.startswith(f"{tokens}|") for k in tab["gemm"]) else float("nan")
                    moe_tp = tp * adp // ep
                    bal = tab["moe"].get(f"{tokens}|{moe_tp}|{ep}|balanced", float("nan"))
                    pl = tab["moe"].get(f"{tokens}|{moe_tp}|{ep}|power_law_1.01", float("nan"))
                    print(f"{hw} TP {tp} DP {adp} EP {ep} ISL {isl} x{prompts}: core "
                          f"{old['core']:.3f} -> {now['core']:.3f} / {core:.3f}; projections "
                          f"{now['proj']:.3f} / {proj:.3f}; routed experts {now['routed']:.3f}"
                          f" / {bal:.3f} (power law {pl:.3f})")


#: ``--fp8``: the representative prefill workers of issue 22's FP8 and NVFP4 TensorRT-LLM rows
#: (the layouts ``disagg_recipes`` fills): (hardware, weights, TP, attention DP, EP, ISL,
#: prompts per rank); one prompt per rank is the unloaded pass, the larger counts the loaded
#: pass at the recipes' ``max_num_tokens`` / ``max_batch_size``.
FP8_CASES = (
    ("b200", "fp8", 1, 8, 8, 1024, 1), ("b200", "fp8", 1, 8, 8, 1024, 16),
    ("b200", "fp8", 1, 8, 8, 8192, 1), ("b200", "fp8", 1, 8, 1, 8192, 1),
    ("b200", "fp8", 8, 1, 1, 8192, 1),
    ("b200", "fp8", 8, 1, 8, 1024, 1),
    ("b200", "nvfp4", 1, 4, 4, 1024, 1), ("b200", "nvfp4", 1, 4, 4, 1024, 8),
    ("b200", "nvfp4", 1, 4, 4, 8192, 1), ("b200", "nvfp4", 1, 4, 4, 8192, 2),
    ("gb200-nvl72", "fp8", 1, 8, 8, 1024, 1), ("gb200-nvl72", "fp8", 1, 8, 8, 1024, 16),
    ("gb200-nvl72", "fp8", 1, 8, 8, 8192, 1), ("gb200-nvl72", "fp8", 1, 8, 8, 8192, 2),
    ("gb200-nvl72", "nvfp4", 1, 4, 4, 1024, 1), ("gb200-nvl72", "nvfp4", 1, 4, 4, 1024, 16),
    ("gb200-nvl72", "nvfp4", 1, 4, 4, 8192, 1), ("gb200-nvl72", "nvfp4", 1, 4, 4, 8192, 2),
    ("h200", "fp8", 1, 8, 8, 1024, 1), ("h200", "fp8", 1, 8, 8, 1024, 8),
    ("h200", "fp8", 1, 8, 8, 8192, 1), ("h200", "fp8", 1, 8, 8, 8192, 2),
    ("h200", "fp8", 8, 1, 8, 1024, 1), ("h200", "fp8", 8, 1, 8, 8192, 1),
    ("h100", "fp8", 1, 16, 16, 1024, 1), ("h100", "fp8", 1, 16, 16, 8192, 1),
)
#: The tables' dtype of each weight format (gemm_perf ``gemm_dtype``, moe_perf ``moe_dtype``).
TABLE_DTYPE = {"fp8": "fp8_block", "nvfp4": "nvfp4"}
#: DeepSeek-V3's shared expert per attention rank (whole on every rank): gate + up, down (N, K).
SHARED = ((4096, 7168), (7168, 2048))


def dump_fp8(root: Path, out: Path) -> None:
    """``--fp8 --dump``: per system of :data:`FP8_SYSTEMS`, the context MLA (by KV dtype), the
    fp8_block and nvfp4 GEMMs (fastest per shape) and DeepSeek-V3's MoE (h 7168, i 2048, E 256,
    k 8; fastest kernel per run) in both formats."""
    import pyarrow.parquet as pq

    data: dict = {}
    for hw, system in FP8_SYSTEMS.items():
        base = root / system
        ctx = pq.read_table(base / "mla" / TRT / "context_mla_perf.parquet").to_pydict()
        mla = {f"{k}|{h}|{b}|{i}": t for k, h, b, i, t in zip(
            ctx["kv_cache_dtype"], ctx["num_heads"], ctx["batch_size"], ctx["isl"],
            ctx["latency"])}
        g = pq.read_table(base / "gemm" / TRT / "gemm_perf.parquet").to_pydict()
        gemm: dict = {d: {} for d in TABLE_DTYPE.values()}
        for dt, m, n, k, t in zip(g["gemm_dtype"], g["m"], g["n"], g["k"], g["latency"]):
            if dt in gemm:
                key = f"{m}|{n}|{k}"
                gemm[dt][key] = min(t, gemm[dt].get(key, t))
        mo = pq.read_table(base / "moe" / TRT / "moe_perf.parquet").to_pydict()
        moe: dict = {d: {} for d in TABLE_DTYPE.values()}
        for i in range(len(mo["latency"])):
            dt = mo["moe_dtype"][i]
            if dt not in moe or (mo["hidden_size"][i], mo["inter_size"][i],
                                 mo["num_experts"][i], mo["topk"][i]) != (7168, 2048, 256, 8):
                continue
            key = (f"{mo['num_tokens'][i]}|{mo['moe_tp_size'][i]}|{mo['moe_ep_size'][i]}|"
                   f"{mo['distribution'][i]}")
            moe[dt][key] = min(mo["latency"][i], moe[dt].get(key, mo["latency"][i]))
        data[hw] = dict(mla=mla, gemm=gemm, moe=moe)
    out.write_text(json.dumps(data))


def _gemm_table(gemm: dict, shapes, *, rows: int) -> float:
    """Table ms of the GEMMs ``shapes`` ((N, K) each) at M = ``rows``: the nearest (N, K) the
    table holds at that M, latency scaled by N·K; NaN where it holds no run at M."""
    have = sorted({tuple(map(int, k.split("|")[1:])) for k in gemm
                   if int(k.split("|")[0]) == rows})
    if not have:
        return float("nan")
    total = 0.0
    for n, k in shapes:
        nn, kk = min(have, key=lambda s: abs(s[0] - n) / n + abs(s[1] - k) / k)
        total += gemm[f"{rows}|{nn}|{kk}"] * n * k / (nn * kk)
    return total


def _moe_table(moe: dict, *, tokens: int, moe_tp: int, ep: int, dist: str) -> float:
    """Table ms of the routed experts at ``tokens`` routed through the EP group (AIConfigurator
    reads moe_perf at tokens per rank x attention DP); past the table's largest count, that
    run's time scaled by the tokens (rows per expert are large there: rate constant)."""
    runs = {int(k.split("|")[0]): t for k, t in moe.items()
            if k.split("|")[1:] == [str(moe_tp), str(ep), dist]}
    if not runs:
        return float("nan")
    if tokens in runs:
        return runs[tokens]
    top = max(runs)
    return runs[top] * tokens / top if tokens > top else float("nan")


def report_fp8(path: Path) -> None:
    """``--fp8``: per case of :data:`FP8_CASES`, each part of the planner's context pass per
    layer (every attention-DP rank prefilling, as a loaded prefill worker does) beside the
    tables at the same shape and dtype, and the pass with the tables' parts in place of the
    planner's (the other parts the planner's)."""
    sys.path.insert(0, str(REPO))
    from planner import catalog

    data = json.loads(path.read_text())
    model = catalog.load_model("deepseek-v3")
    att, moe_layers = model.num_layers, model.num_moe_layers
    print("per layer, ms, planner / table; pass ms: planner -> with the tables' parts (ratio)")
    print("| hw | w | TP/DP/EP | ISL x b | MLA core | projections | shared | routed (bal / pl) "
          "| pass |")
    for hw, w, tp, adp, ep, isl, b in FP8_CASES:
        tab, dt = data[hw], TABLE_DTYPE[w]
        now = _parts(model, catalog.load_hardware(hw), tp=tp, adp=adp, ep=ep, isl=isl,
                     prompts=b, lone=adp == 1, weights=w)
        tokens, moe_tp = isl * b, tp * adp // ep
        core = tab["mla"].get(f"fp8|{128 // tp}|{b}|{isl}", float("nan"))
        proj = _gemm_table(tab["gemm"][dt], PROJ[8 if tp == 8 else 1].values(), rows=tokens)
        shared = _gemm_table(tab["gemm"][dt], ((n // tp, k) if i == 0 else (n, k // tp)
                                               for i, (n, k) in enumerate(SHARED)), rows=tokens)
        bal = _moe_table(tab["moe"][dt], tokens=tokens * adp, moe_tp=moe_tp, ep=ep,
                         dist="balanced")
        pl = _moe_table(tab["moe"][dt], tokens=tokens * adp, moe_tp=moe_tp, ep=ep,
                        dist="power_law_1.01")
        delta = att * ((core - now["core"]) + (proj - now["proj"])) + moe_layers * (
            (shared - now["shared"]) + (bal - now["routed"]))
        table_pass = now["pass_ms"] + delta
        print(f"| {hw} | {w} | {tp}/{adp}/{ep} | {isl} x {b} | {now['core']:.3f} / {core:.3f} "
              f"| {now['proj']:.3f} / {proj:.3f} | {now['shared']:.3f} / {shared:.3f} "
              f"| {now['routed']:.3f} / {bal:.3f} / {pl:.3f} | {now['pass_ms']:.1f} -> "
              f"{table_pass:.1f} ({table_pass / now['pass_ms']:.2f}) |")
    print("\nrouted experts per MoE layer, ms, at tokens the table holds (through the EP group):"
          " planner / table balanced / power_law_1.01")
    for hw, w, adp, ep in dict.fromkeys((c[0], c[1], c[3], c[4]) for c in FP8_CASES
                                        if c[3] > 1):
        tab, dt = data[hw], TABLE_DTYPE[w]
        cells = []
        for tokens in (1024, 4096, 16384):
            now = _parts(model, catalog.load_hardware(hw), tp=1, adp=adp, ep=ep,
                         isl=tokens // adp, prompts=1, lone=False, weights=w)
            bal, pl = (_moe_table(tab["moe"][dt], tokens=tokens, moe_tp=adp // ep, ep=ep,
                                  dist=d) for d in ("balanced", "power_law_1.01"))
            cells.append(f"{tokens}: {now['routed']:.3f} / {bal:.3f} / {pl:.3f}")
        print(f"| {hw} | {w} | MoE-TP {adp // ep} x EP {ep} | " + " | ".join(cells) + " |")


def dump_or_report(doc: str, dump, report) -> None:
    """The command line of a two-step kernel-table script: ``--dump AIC_ROOT OUT_JSON`` reads
    the tables (pyarrow), else ``report(JSON)`` sets the planner beside them."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--dump", nargs=2, type=Path, metavar=("AIC_ROOT", "OUT_JSON"))
    ap.add_argument("json", nargs="?", type=Path)
    args = ap.parse_args()
    if args.dump:
        dump(*args.dump)
    else:
        report(args.json)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dump", nargs=2, type=Path, metavar=("AIC_ROOT", "OUT_JSON"))
    ap.add_argument("--engine", choices=("trtllm", "sglang"), default="trtllm")
    ap.add_argument("--what-if", choices=("uniform", "power-law"),
                    help="sglang: validate-disagg's SGLang TTFT with the tables' prefill pass")
    ap.add_argument("--decode", action="store_true", help="sglang: the wide-EP decode step")
    ap.add_argument("--fp8", action="store_true",
                    help="trtllm: FP8 and NVFP4 prefill workers on H100/H200/B200/GB200")
    ap.add_argument("json", nargs="?", type=Path)
    args = ap.parse_args()
    if args.engine == "sglang":
        from deepseek_prefill_sglang import (dump_sglang, report_sglang, report_sglang_decode,
                                             what_if)

        if args.dump:
            dump_sglang(*args.dump)
        elif args.decode:
            report_sglang_decode(args.json)
        elif args.what_if:
            what_if(args.json, skew=args.what_if == "power-law")
        else:
            report_sglang(args.json)
    elif args.fp8:
        if args.dump:
            dump_fp8(*args.dump)
        else:
            report_fp8(args.json)
    elif args.dump:
        dump(*args.dump)
    else:
        report(args.json)


if __name__ == "__main__":
    main()
