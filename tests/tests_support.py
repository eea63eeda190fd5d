"""Helpers shared by the tests (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
V3_TEXT = (REPO / "models" / "deepseek-v3.yaml").read_text()
H800_TEXT = (REPO / "hardware" / "h800.yaml").read_text()

#: DeepSeek-V3's config.json (the fields the importer reads), for config.json tests.
DEEPSEEK_V3 = {
    "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3",
    "hidden_size": 7168, "intermediate_size": 18432, "kv_lora_rank": 512,
    "moe_intermediate_size": 2048, "moe_layer_freq": 1, "n_group": 8, "n_routed_experts": 256,
    "n_shared_experts": 1, "num_attention_heads": 128, "num_experts_per_tok": 8,
    "num_hidden_layers": 61, "num_key_value_heads": 128, "num_nextn_predict_layers": 1,
    "q_lora_rank": 1536, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
    "first_k_dense_replace": 3, "topk_group": 4, "tie_word_embeddings": False,
    "vocab_size": 129280, "rope_theta": 10000, "torch_dtype": "bfloat16",
}


def write_config(tmp_path, data, folder="Model"):
    """Write ``data`` as ``<tmp_path>/<folder>/config.json`` and return its path."""
    d = tmp_path / folder
    d.mkdir(exist_ok=True)
    p = d / "config.json"
    p.write_text(json.dumps(data))
    return p


#: Llama-3.1-8B's config.json (the fields the importer reads): the GQA converter's base case.
LLAMA_31_8B = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
    "intermediate_size": 14336, "num_attention_heads": 32, "num_key_value_heads": 8,
    "num_hidden_layers": 32, "vocab_size": 128256, "tie_word_embeddings": False,
}

#: config.json inputs that crashed the converter (issue 18, item 9), each a one-line error now.
HF_CRASHES = {
    "num_attention_heads=0": {**LLAMA_31_8B, "num_attention_heads": 0},
    "num_attention_heads='64'": {**LLAMA_31_8B, "num_attention_heads": "64"},
    "num_key_value_heads=0": {**LLAMA_31_8B, "num_key_value_heads": 0},
    "hidden_size=[4096]": {**LLAMA_31_8B, "hidden_size": [4096]},
    "hidden_size={}": {**LLAMA_31_8B, "hidden_size": {"a": 1}},
    "head_dim=true": {**LLAMA_31_8B, "head_dim": True},
    "architectures=[[...]]": {**{k: v for k, v in LLAMA_31_8B.items() if k != "model_type"},
                              "architectures": [["LlamaForCausalLM"]]},
    "model_type=[...]": {**{k: v for k, v in LLAMA_31_8B.items() if k != "architectures"},
                         "model_type": ["llama"]},
    "model_type={}": {**{k: v for k, v in LLAMA_31_8B.items() if k != "architectures"},
                      "model_type": {"a": 1}},
}
#: A config.json whose hidden_size has 5,000 digits (more than Python converts: 4,300).
HF_HUGE_INTEGER = json.dumps(LLAMA_31_8B).replace('"hidden_size": 4096',
                                                    '"hidden_size": ' + "9" * 5000)

#: A scenario that crashed in routing.py: 2,048 GPUs and no ep (EP 2,048 > 256 experts).
SCENARIO_NO_EP = """\
model: deepseek-v3
hardware: h800
deployment: {num_gpus: 2048}
budgets:
  kv_cache_bytes_per_token: {max: 80 KB}
"""
#: A scenario whose name holds control characters (JUnit XML must stay valid).
SCENARIO_CONTROL_NAME = """\
name: "bad\\x07name\\x1b[31m"
model: deepseek-v3
hardware: h800
budgets:
  kv_cache_bytes_per_token: {max: 1 KB}
"""


def hostile_corpus(folder: Path) -> list[tuple[str, list[str], dict[str, str], set[int]]]:
    """The crash, NaN, bound and file cases of issue 18 (items 9, 12, 13), with the files they
    need written under ``folder``: (name, planner arguments, environment, allowed exit codes).
    Each must end without a traceback, within 10 s and 1 GB (tests/specs/test_fuzz.py;
    benchmarks/bench_hostile.py times them)."""
    folder.mkdir(parents=True, exist_ok=True)
    no_ep = folder / "no-ep.yaml"
    no_ep.write_text(SCENARIO_NO_EP)
    control = folder / "control-name.yaml"
    control.write_text(SCENARIO_CONTROL_NAME)
    cfg = folder / "cfg" / "config.json"
    cfg.parent.mkdir(exist_ok=True)
    cfg.write_text(json.dumps(LLAMA_31_8B))
    huge = folder / "huge-int.json"
    huge.write_text(HF_HUGE_INTEGER)
    long_name = "a" * 300
    serve, ep = ["serve", "deepseek-v3", "-H", "h800"], ["ep", "deepseek-v3", "-H", "h800"]
    train = ["train", "deepseek-v3", "-H", "h800", "--tokens", "14.8T", "--gpus", "2048"]
    cases: list[tuple[str, list[str], dict[str, str], set[int]]] = [
        ("scenario: 2048 GPUs, no ep", ["check", str(no_ep)], {}, {0}),
        ("serve --gpus 1032 prefill", [*serve, "--gpus", "1032", "--phase", "prefill"], {}, {0}),
        *[(f"serve --batch-per-gpu {v}", [*serve, "--batch-per-gpu", v], {}, {2})
          for v in ("nan", "inf", "1e308")],
        ("serve --gpus 2**63", [*serve, "--gpus", str(2**63)], {}, {2}),
        *[(f"ep {o} {v}", [*ep, o, v], {}, {2}) for o in ("--tokens-per-device",
                                                          "--bandwidth-gb-per-s")
          for v in ("0", "1e-320", "nan", "inf")],
        ("ep bytes 0", [*ep, "--dispatch-bytes", "0", "--combine-bytes", "0"], {}, {2}),
        *[(f"train {o} {v}", [*train, o, v], {}, {2})
          for o in ("--mfu", "--gpu-hours", "--tokens-per-day") for v in ("0", "1e-320")],
        ("train --mfu nan", [*train, "--mfu", "nan"], {}, {2}),
        ("train --usd-per-gpu-hour inf", [*train, "--mfu", "0.4", "--usd-per-gpu-hour", "inf"],
         {}, {2}),
        ("train --tokens 0", ["train", "deepseek-v3", "-H", "h800", "--tokens", "0", "--gpus",
                              "8", "--mfu", "0.4"], {}, {2}),
        ("kv-cache <300-character name>", ["kv-cache", long_name], {}, {2}),
        ("show <300-character name>", ["show", long_name], {}, {2}),
        ("ep -H <300-character name>", ["ep", "deepseek-v3", "-H", long_name], {}, {2}),
        ("cache dir with a 300-character name", ["kv-cache", "deepseek-v3"],
         {"PLANNER_CACHE_DIR": str(folder / long_name / "cache")}, {0}),
        ("cache dir is a file", ["kv-cache", "deepseek-v3"],
         {"PLANNER_CACHE_DIR": str(cfg / "cache")}, {0}),
        ("routing --node-limit 1", ["routing", "deepseek-v3", "-H", "h800", "--ep", "64",
                                    "--nodes", "64", "--node-limit", "1"], {}, {2}),
        ("routing --tokens-per-gpu nan", ["routing", "deepseek-v3", "-H", "h800",
                                          "--tokens-per-gpu", "nan"], {}, {2}),
        ("pipeline --w 1.9", ["pipeline", "--w", "1.9", "--micro-batches", "4"], {}, {2}),
        ("pipeline F = B = 0", ["pipeline", "--f", "0", "--b", "0", "--w", "0",
                                "--micro-batches", "4"], {}, {2}),
        ("collective --latency-us nan", ["collective", "all-reduce", "-H", "h800", "--size",
                                         "1GB", "--ranks", "8", "--latency-us", "nan"], {}, {2}),
        ("import-hf cfg.json -o cfg.json", ["import-hf", str(cfg), "-o", str(cfg)], {}, {2}),
        ("config.json: a 5,000-digit integer", ["kv-cache", str(huge)], {}, {2}),
        ("check --junit, control characters in the name",
         ["check", str(control), "--junit", str(folder / "junit.xml")], {}, {1}),
        ("check / (walks no other file system, stops at 100,000 entries)", ["check", "/"], {},
         {1, 2}),
    ]
    for name, data in HF_CRASHES.items():
        path = folder / f"hf-{len(cases)}.json"
        path.write_text(json.dumps(data))
        # architectures=[[...]] falls back to model_type when there is one: here there is none
        cases.append((f"config.json: {name}", ["kv-cache", str(path)], {}, {2}))
    return cases


def cli_run(*args: str):
    """``planner ARGS`` through typer's runner (exceptions propagate)."""
    from typer.testing import CliRunner

    from planner.cli import app

    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def cli_json(*args: str):
    """The JSON records ``planner ARGS --format json`` prints; the command must exit 0."""
    result = cli_run(*args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


#: A script that runs the CLI's main with the given argv and writes, on stderr, its exit
#: code, whether numpy was imported and which planner.cli modules were (tests/cli).
MAIN_AND_MODULES = """
import json, sys
sys.argv = ["planner", *sys.argv[1:]]
from planner.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
sys.stderr.write(json.dumps({"code": code, "numpy": "numpy" in sys.modules,
                             "cli": sorted(m for m in sys.modules if m.startswith("planner.cli"))}))
"""


def busiest_stage_forward(s, rates, *, pp, schedule, tokens=4096.0, layer_other_s=0.0,
                          ends_other_s=0.0):
    """(layers' forward, attention part, ends' forward, layers, share of the ends) of one
    micro-batch on the device ``step._busiest_stage`` picks when a layer's time is 3 x its
    forward GEMMs plus ``layer_other_s`` and the ends' 3 x theirs plus ``ends_other_s`` (the
    choice at the model's average layer of rounds one to four), at 4,096-token sequences."""
    from planner.calc.train.step import _busiest_stage, _per_layer_forward_s

    layer, scores, ends, _ = _per_layer_forward_s(s, rates, tokens=tokens, tp=1, flash=True,
                                                  seq_len=4096)
    layers, share = _busiest_stage(s, pp=pp, schedule=schedule,
                                   layer_s=3 * layer + layer_other_s,
                                   ends_s=3 * ends + ends_other_s)
    return layer * layers, scores * layers, ends * share, layers, share
