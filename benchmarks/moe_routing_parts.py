"""Routed experts in decode, the planner's time per MoE layer beside AIConfigurator's measured
MoE kernel at the same shape, balanced and power-law routing (issue 22, round 14, exp14).
Two steps (the planner never imports pyarrow):
    /tmp/train-venv/bin/python benchmarks/moe_routing_parts.py --dump /tmp/aic /tmp/moe.json
    python benchmarks/moe_routing_parts.py /tmp/moe.json
Table: ``<root>/<system>/moe/trtllm/1.3.0rc20/moe_perf.parquet`` (ai-dynamo/aiconfigurator,
TensorRT-LLM 1.3.0rc20), the fastest kernel per (dtype, tokens, MoE-TP, EP, distribution) at
each case's (hidden, expert inter, experts, top-k); ``num_tokens`` is the tokens the EP group
routes (an attention-TP decode worker's batch). The planner's part is the forward pass's
routed-expert roof (``workload_step._moe_layers``) per MoE layer, attention TP = EP, MoE-TP 1,
1,500 context tokens, no tile padding (TensorRT-LLM); "all hit" is the rate read at the mean
rows per expert (before round 14), "random" ``efficiency.routed_grouped_gemm_flops_frac``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: case: (system dir, hardware, model, weights, table dtype, hidden, inter, experts, top-k)
CASES = {"kimi-gb200": ("gb200", "gb200-nvl72", "kimi-k2.5", "nvfp4", "nvfp4", 7168, 2048, 384, 8),
         "glm5-gb200": ("gb200", "gb200-nvl72", "glm-5", "nvfp4", "nvfp4", 6144, 2048, 256, 8),
         "ds-h200": ("h200_sxm", "h200", "deepseek-v3", "fp8", "fp8_block", 7168, 2048, 256, 8),
         "ds-b200": ("b200_sxm", "b200", "deepseek-v3", "fp8", "fp8_block", 7168, 2048, 256, 8)}
TOKENS = (1, 8, 16, 32, 48, 64, 96, 128, 256)
EPS = (4, 8)


def dump(root: Path, out: Path) -> None:
    import pyarrow.parquet as pq

    data: dict = {}
    for case, (system, _, _, _, dtype, h, i, e, k) in CASES.items():
        mo = pq.read_table(root / system / "moe" / "trtllm" / "1.3.0rc20" /
                           "moe_perf.parquet").to_pydict()
        tab: dict = {}
        for j in range(len(mo["latency"])):
            if (mo["moe_dtype"][j], mo["hidden_size"][j], mo["inter_size"][j],
                    mo["num_experts"][j], mo["topk"][j]) != (dtype, h, i, e, k):
                continue
            key = (f"{mo['num_tokens'][j]}|{mo['moe_tp_size'][j]}|{mo['moe_ep_size'][j]}|"
                   f"{mo['distribution'][j]}")
            tab[key] = min(mo["latency"][j], tab.get(key, mo["latency"][j]))
        data[case] = tab
    out.write_text(json.dumps(data))


def routed_us(model, hardware, *, weights: str, ep: int, batch: int, all_hit: bool) -> float:
    """The planner's routed-expert time per MoE layer (µs) of one decode pass."""
    import numpy as np

    from planner.calc.serving import efficiency as eff
    from planner.calc.serving import workload_step as ws

    sys.path.insert(0, str(REPO / "benchmarks"))
    from deepseek_prefill_parts import recorded_buckets

    fig = ws.model_figures(model, weights_dtype=weights, moe_weights_dtype=weights,
                           kv_dtype="fp8")
    lay = ws.Layout(tp=np.array(ep), pp=np.array(1), adp=np.array(1), moe_tp=np.array(1),
                    moe_ep=np.array(ep), tile=None)
    rates = ws._rates(hardware, phase="decode", weights_dtype=weights)
    routed = eff.routed_grouped_gemm_flops_frac
    if all_hit:
        eff.routed_grouped_gemm_flops_frac = eff.grouped_gemm_flops_frac
    try:
        with recorded_buckets() as rec:
            ws.forward_pass(model, hardware, fig, rates, lay, decode_seqs=np.array(float(batch)),
                            prefill_tokens=np.array(0.0), decode_context=np.array(1500.0),
                            prefill_context=np.array(1.0), prompts=np.array(0.0))
    finally:
        eff.routed_grouped_gemm_flops_frac = routed
    # roofs: attention [projections, prefill core, activations], dense FFN [GEMM, activations],
    # MoE [router, shared, routed, activations], the head
    assert len(rec["calls"]) == 10, rec["calls"]
    return rec["calls"][7] / fig.moe_layers * 1e6


def report(path: Path) -> None:
    sys.path.insert(0, str(REPO))
    from planner import catalog

    data = json.loads(path.read_text())
    print("routed experts per MoE layer, µs: planner all hit -> random / AIConfigurator "
          "balanced, power_law_1.01")
    for case, (_, hw, name, weights, _, _, _, e, k) in CASES.items():
        model, hardware = catalog.load_model(name), catalog.load_hardware(hw)
        for ep in EPS:
            for t in TOKENS:
                old = routed_us(model, hardware, weights=weights, ep=ep, batch=t, all_hit=True)
                new = routed_us(model, hardware, weights=weights, ep=ep, batch=t, all_hit=False)
                bal = data[case].get(f"{t}|1|{ep}|balanced", float("nan")) * 1e3
                pl = data[case].get(f"{t}|1|{ep}|power_law_1.01", float("nan")) * 1e3
                hit = 1 - (1 - k / e) ** t
                print(f"{case} EP {ep} T {t:3d} (r {t * k / e:.3f}, hit {hit:.3f}): {old:6.1f} -> "
                      f"{new:6.1f} / {bal:6.1f}, {pl:6.1f}")


def main() -> None:
    from deepseek_prefill_parts import dump_or_report

    dump_or_report(__doc__, dump, report)


if __name__ == "__main__":
    main()
