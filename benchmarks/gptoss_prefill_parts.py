"""gpt-oss-120b prefill on one GB200 (TP 1) under TensorRT-LLM: each part of the planner's
forward pass per layer beside AIConfigurator's measured kernel at the same shape (issue 22,
round 13, oss13; the DeepSeek counterpart is benchmarks/deepseek_prefill_parts.py).

Two steps (the planner never imports pyarrow):

    /work/venv-aic/bin/python benchmarks/gptoss_prefill_parts.py --dump /tmp/aic /tmp/oss.json
    python benchmarks/gptoss_prefill_parts.py /tmp/oss.json

Parts, per layer (36 layers, every one MoE): the attention core (context_attention_perf, 64
query / 8 KV heads of 64, BF16 attention over an FP8 cache (``attn_dtype`` bfloat16,
``kv_cache_dtype`` fp8), the mean of a full layer (``window_size`` 0) and a 128-token sliding
one (``window_size`` 128): the model alternates them), the projections (gemm_perf at BF16:
QKV 5,120 x 2,880 and O 2,880 x 4,096, the nearest shapes the table has (N = 5,120 / 3,072,
K = 3,072 / 4,096), latency scaled by N K), the routed experts (moe_perf, h = i = 2,880, E 128,
k 4, TP 1 EP 1, the fastest kernel per row; ``w4a8_mxfp4_mxfp8``, MXFP4 weights with MXFP8
activations, and ``w4a16_mxfp4``; the table has no ``nvfp4`` row at this shape), linear in
tokens between the table's token counts. Planner parts are the forward pass's own roofline
terms (recorded per call) at the measured rows' weights (NVFP4 labels, the model's
``part_weight_dtypes``: attention BF16) and FP8 cache.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SYSTEM = "gb200"
TRT = "trtllm/1.3.0rc20"
#: (N, K) of the attention projections per GPU at TP 1: QKV (64 + 2 x 8) x 64 out of 2,880;
#: O 2,880 out of 64 x 64.
PROJ = {"qkv": (5120, 2880), "o": (2880, 4096)}
MOE_SHAPE = (2880, 2880, 128, 4, 1, 1)   # hidden, inter, experts, top-k, moe TP, moe EP
MOE_DTYPES = ("w4a8_mxfp4_mxfp8", "w4a16_mxfp4")
#: (mean prompt tokens, prompts per pass): the client's mean drawn 1K and 8K prompts (ratio
#: 0.8), and the 19 / 2 prompts a recipe step holds (max_batch_size 32, max_num_tokens 20,000).
CASES = ((922, 1), (922, 4), (922, 19), (7372, 1), (7372, 2))


def dump(root: Path, out: Path) -> None:
    import pyarrow.parquet as pq

    base = root / SYSTEM
    at = pq.read_table(base / "attention" / TRT / "context_attention_perf.parquet").to_pydict()
    att = {}
    for i in range(len(at["latency"])):
        if ((at["num_heads"][i], at["num_key_value_heads"][i], at["head_dim"][i])
                == (64, 8, 64) and at["attn_dtype"][i] == "bfloat16"
                and at["kv_cache_dtype"][i] == "fp8"):
            key = f"{at['window_size'][i]}|{at['batch_size'][i]}|{at['isl'][i]}"
            att[key] = min(at["latency"][i], att.get(key, at["latency"][i]))
    g = pq.read_table(base / "gemm" / TRT / "gemm_perf.parquet").to_pydict()
    gemm: dict = {}
    for dt, m, n, k, t in zip(g["gemm_dtype"], g["m"], g["n"], g["k"], g["latency"]):
        if dt == "bfloat16":
            key = f"{m}|{n}|{k}"
            gemm[key] = min(t, gemm.get(key, t))
    mo = pq.read_table(base / "moe" / TRT / "moe_perf.parquet").to_pydict()
    moe: dict = {}
    for i in range(len(mo["latency"])):
        if (mo["hidden_size"][i], mo["inter_size"][i], mo["num_experts"][i], mo["topk"][i],
                mo["moe_tp_size"][i], mo["moe_ep_size"][i]) != MOE_SHAPE:
            continue
        key = f"{mo['moe_dtype'][i]}|{mo['distribution'][i]}|{mo['num_tokens'][i]}"
        moe[key] = min(mo["latency"][i], moe.get(key, mo["latency"][i]))
    out.write_text(json.dumps(dict(attention=att, gemm=gemm, moe=moe)))


def _parts(model, hardware, *, isl: int, prompts: int) -> dict:
    """The planner's per-layer ms of the projections, the prefill core and the routed experts
    (``prompts`` prompts of ``isl`` tokens on one GPU), and the whole pass (ms)."""
    import numpy as np

    from dataclasses import replace

    sys.path.insert(0, str(REPO / "benchmarks"))
    from deepseek_prefill_parts import recorded_buckets

    from planner.calc.serving import workload_step as ws

    fig = ws.model_figures(model, weights_dtype="nvfp4", moe_weights_dtype="nvfp4",
                           kv_dtype="fp8")
    lay = ws.Layout(tp=np.array(1), pp=np.array(1), adp=np.array(1), moe_tp=np.array(1),
                    moe_ep=np.array(1), tile=ws._padded_tile(hardware))
    rates = replace(ws._rates(hardware, phase="prefill", weights_dtype="nvfp4"),
                    prefill_prompt_tokens=np.array(float(isl)))
    with recorded_buckets() as rec:
        total, _ = ws.forward_pass(model, hardware, fig, rates, lay, decode_seqs=np.array(0.0),
                                   prefill_tokens=np.array(float(isl * prompts)),
                                   decode_context=np.array(float(isl)),
                                   prefill_context=np.array(isl / 2),
                                   prompts=np.array(float(prompts)))
    calls, layers = rec["calls"], model.num_layers
    # roofs: attention [projections, decode core, prefill core, activations], MoE [router,
    # routed, activations], the head
    assert len(calls) == 8, calls
    return dict(proj=calls[0] / layers * 1e3, core=calls[2] / layers * 1e3,
                routed=calls[5] / layers * 1e3, other=(calls[3] + calls[4] + calls[6])
                / layers * 1e3, head=calls[7] * 1e3, total=float(total) * 1e3)


def _interp(table: dict, prefix: str, x: float, axis: list[int]) -> float:
    """The table's latency at ``x`` along ``axis`` (linear between neighbours)."""
    pts = sorted(v for v in axis if f"{prefix}|{v}" in table)
    lo = max([v for v in pts if v <= x], default=pts[0])
    hi = min([v for v in pts if v >= x], default=pts[-1])
    if hi == lo:             # past either end: the last two points' line
        lo, hi = (pts[-2], pts[-1]) if x >= pts[-1] else (pts[0], pts[1])
        if x == lo or x == hi:
            return table[f"{prefix}|{x}"]
    a, b = table[f"{prefix}|{lo}"], table[f"{prefix}|{hi}"]
    return a + (b - a) * (x - lo) / (hi - lo)


def _attention(tab: dict, *, isl: int, prompts: int) -> float:
    """Mean per layer of a full and a 128-window layer, ms (by ISL, at the batch)."""
    isls = sorted({int(k.split("|")[2]) for k in tab})
    batches = sorted({int(k.split("|")[1]) for k in tab})
    out = []
    for window in (0, 128):
        by_batch = {f"b|{b}": _interp(tab, f"{window}|{b}", isl, isls) for b in batches
                    if f"{window}|{b}|1024" in tab}
        out.append(_interp(by_batch, "b", prompts, batches))
    return sum(out) / 2


def _proj(gemm: dict, *, rows: int) -> float:
    ms = sorted({int(k.split("|")[0]) for k in gemm})
    total = 0.0
    for n, k in PROJ.values():
        shapes = sorted({tuple(map(int, key.split("|")[1:])) for key in gemm})
        nn, kk = min(shapes, key=lambda s: abs(s[0] - n) / n + abs(s[1] - k) / k)
        sub = {f"x|{m}": gemm[f"{m}|{nn}|{kk}"] for m in ms if f"{m}|{nn}|{kk}" in gemm}
        total += _interp(sub, "x", rows, ms) * n * k / (nn * kk)
    return total


def report(path: Path) -> None:
    sys.path.insert(0, str(REPO))
    from planner import catalog

    data = json.loads(path.read_text())
    model = catalog.load_model("gpt-oss-120b")
    hardware = catalog.load_hardware("gb200-nvl72")
    tokens_axis = sorted({int(k.split("|")[2]) for k in data["moe"]})
    print("gpt-oss-120b, one GB200 (TP 1), per layer ms: planner / AIConfigurator")
    for isl, prompts in CASES:
        now = _parts(model, hardware, isl=isl, prompts=prompts)
        rows = isl * prompts
        moe = {f"{d} {dist}": _interp(data["moe"], f"{d}|{dist}", rows, tokens_axis)
               for d in MOE_DTYPES for dist in ("balanced", "power_law_1.01")}
        att = _attention(data["attention"], isl=isl, prompts=prompts)
        proj = _proj(data["gemm"], rows=rows)
        table_pass = model.num_layers * (att + proj + moe["w4a8_mxfp4_mxfp8 balanced"])
        print(f"ISL {isl} x{prompts} ({rows} tokens): attention core {now['core']:.3f} / "
              f"{att:.3f}; projections {now['proj']:.3f} / {proj:.3f}; routed experts "
              f"{now['routed']:.3f} / " + ", ".join(f"{k} {v:.3f}" for k, v in moe.items())
              + f"; planner's other kernels {now['other']:.3f}, head {now['head']:.2f} ms; "
              f"pass {now['total']:.1f} ms (the table's three parts x {model.num_layers}: "
              f"{table_pass:.1f} ms)")


def main() -> None:
    from deepseek_prefill_parts import dump_or_report

    dump_or_report(__doc__, dump, report)


if __name__ == "__main__":
    main()
