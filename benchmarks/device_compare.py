"""The README's devices-side-by-side table: one MoE and one dense model served at equal settings
on each device, achievable figures (each device's measured kernel factors, or its named
sibling's, assumed). Prints Markdown.

    python benchmarks/device_compare.py
"""

from __future__ import annotations

from planner import catalog
from planner.calc.serving import serve
from planner.specs.deployment import ServeConfig

DEVICES = ("h100", "h200", "b200", "gb200-nvl72", "b300", "mi300x", "mi355x")
MODELS = ("qwen3-30b-a3b", "llama-3.3-70b")
#: Equal settings everywhere: one 8-GPU group, FP8 weights, decode at 32 sequences per GPU of
#: 4,096 tokens each.
CONFIG = ServeConfig(gpus=8, batch_per_gpu=32, context_tokens=4096, weights_dtype="fp8")


def rows() -> list[str]:
    out = ["| model | device | TPOT (ms) | tokens/s per GPU | binding resource | factors |",
           "|---|---|---:|---:|---|---|"]
    for model_name in MODELS:
        model = catalog.load_model(model_name)
        for name in DEVICES:
            hw = catalog.load_hardware(name)
            r = serve(model, hw, CONFIG)
            own_tables = hw.efficiency.gemm and "gemm" not in hw.efficiency_inherited
            factors = ("measured (kernel tables)" if own_tables
                       else f"assumed (from {hw.efficiency_from})")
            binding = (r.bottleneck.resource if r.bottleneck.resource == "network"
                       else f"{r.bottleneck.resource} in {r.bottleneck.part}")
            out.append(f"| {model_name} | {name} | {r.tpot_s * 1e3:.2f} | "
                       f"{r.tokens_per_s_per_gpu:,.0f} | {binding} | {factors} |")
    return out


if __name__ == "__main__":
    print("\n".join(rows()))
