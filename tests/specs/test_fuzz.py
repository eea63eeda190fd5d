"""Fuzzing every file input through the CLI: generated malformed model, hardware and scenario files
(wrong types, missing and extra fields, huge numbers, NaN and infinity, zero and negative values,
deep nesting, alias bombs, Python tags, duplicate keys, non-UTF-8 bytes, empty files, directories,
symlink loops, oversized files). Every case must end with exit code 2, exactly one line on stderr
naming the file, and nothing on stdout: a malformed input never passes and never crashes."""

from __future__ import annotations

import copy
import dataclasses
import random
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from typer.testing import CliRunner

from planner.cli import app
from planner.specs.hardware import Accelerator, Factor, Hardware, PeakDenseTflops, ScaleOut, ScaleUp
from planner.specs.load import MAX_SPEC_FILE_BYTES, MAX_YAML_DEPTH
from planner.specs.model import MLAttention, Model, MoEFFN
from planner.specs.network import NetworkPrices
from planner.specs.scenario import Bound, Deployment, Scenario
from tests_support import REPO

runner = CliRunner()

# kind -> (base file, commands that read such a file, class of each mapping by path)
Command = Callable[[str], list[str]]
KINDS: dict[str, tuple[Path, list[Command], dict[tuple[str, ...], type]]] = {
    "model": (REPO / "models" / "deepseek-v3.yaml",
              [lambda p: ["kv-cache", p], lambda p: ["flops", p, "--format", "json"]],
              {(): Model, ("attention",): MLAttention, ("ffn",): MoEFFN}),
    "hardware": (REPO / "hardware" / "h800.yaml",
                 [lambda p: ["ep", "deepseek-v3", "--hardware", p], lambda p: ["show", p]],
                 {(): Hardware, ("gpu",): Accelerator,
                  ("gpu", "peak_dense_tflop_per_s"): PeakDenseTflops, ("scale_up",): ScaleUp,
                  ("scale_out",): ScaleOut, **{("efficiency", f): Factor for f in (
                      "scale_up_bandwidth", "scale_out_bandwidth", "hbm_bandwidth",
                      "matmul_flops")}}),
    "prices": (REPO / "hardware" / "network" / "ib-ndr-400g.yaml",
               [lambda p: ["network", "--prices", p]], {(): NetworkPrices}),
    "scenario": (REPO / "specs" / "deepseek-v3-h800-ep-decode.yaml",
                 [lambda p: ["check", p], lambda p: ["evaluate", p, "--format", "csv"]],
                 {(): Scenario, ("deployment",): Deployment,
                  **{("budgets", m): Bound for m in (
                      "kv_cache_bytes_per_token", "ep_comm_time_per_layer_s", "tpot_s",
                      "decode_tokens_per_s", "params_activated")}}),
}

BAD_NUMBERS = ["80", True, [1], {"a": 1}, -1, float("inf"), float("nan"), 10**30]
BAD_STRINGS = [5, [1], {"a": 1}, "", True]
BAD_BOOLS = ["yes", 1, [1], None]
#: A bound is a number or a "<number> <unit>" string: these are not.
BAD_BOUNDS = ["80 parsecs", True, [1], {"a": 1}, "", "-5", "1e999", "fast", "80 Gbps"]


def _leaves(node: Any, path: tuple[str, ...] = ()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, (*path, k))
    else:
        yield path, node


def _mappings(node: Any, path: tuple[str, ...] = ()):
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _mappings(v, (*path, k))


def _set(data: dict, path: tuple[str, ...], value: Any) -> dict:
    out = copy.deepcopy(data)
    node = out
    for k in path[:-1]:
        node = node[k]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


_DELETE = object()


def _required(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}


def _dump(data: Any) -> bytes:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode()


def generated_cases() -> list[tuple[str, str, bytes]]:
    """(kind, case id, file bytes) of malformed files."""
    cases: list[tuple[str, str, bytes]] = []
    rng = random.Random(0)
    for kind, (base, _, classes) in KINDS.items():
        raw = base.read_bytes()
        data = yaml.safe_load(raw)
        # 1. every leaf replaced by values of the wrong type or out of range
        for path, value in _leaves(data):
            if path[0] == "budgets":
                bad = BAD_BOUNDS
            elif isinstance(value, bool):
                bad = BAD_BOOLS
            elif isinstance(value, (int, float)):
                bad = BAD_NUMBERS
            else:
                bad = BAD_STRINGS
            for i, b in enumerate(bad):
                cases.append((kind, f"{'.'.join(path)}={b!r}"[:60] + f"#{i}",
                              _dump(_set(data, path, b))))
        # 2. an unknown field in every mapping; 3. every required field removed
        for path, node in _mappings(data):
            cases.append((kind, f"{'.'.join(path) or 'top'}+unknown",
                          _dump(_set(data, (*path, "bogus_field"), 1))))
            cls = classes.get(path)
            for name in sorted(_required(cls) & set(node)) if cls else []:
                cases.append((kind, f"{'.'.join((*path, name))}-missing",
                              _dump(_set(data, (*path, name), _DELETE))))
        # every mapping replaced by a scalar, a list, null (where null is not allowed)
        for path, _ in _mappings(data):
            if path:
                optional = ((path[0] == "efficiency" and len(path) == 2)
                            or path in (("scale_up",), ("gpu", "peak_dense_tflop_per_s")))
                for b in (7, ["a"]) if optional else (7, ["a"], None):
                    cases.append((kind, f"{'.'.join(path)}={b!r}", _dump(_set(data, path, b))))
        # 4. bytes: an invalid UTF-8 byte at 30 places; control characters; truncated in a string
        for i in range(30):
            at = rng.randrange(len(raw))
            cases.append((kind, f"xff@{at}", raw[:at] + b"\xff" + raw[at:]))
        for ch in (b"\x00", b"\x07", b"\x1b"):
            cases.append((kind, f"control{ch!r}", raw.replace(b"\n", b"\n" + ch, 1)))
        cases.append((kind, "unclosed-flow", raw + b"\nextra: [1, 2\n"))
        cases.append((kind, "tab-indent", raw.replace(b"\n  ", b"\n\t", 1)))
        first = raw.splitlines(keepends=True)
        key_line = next(line for line in first if line[:1].isalpha())
        cases.append((kind, "duplicate-key", raw + key_line))
        cases.append((kind, "python-tag", raw + b"\nextra: !!python/object/apply:os.system [id]\n"))
        cases.append((kind, "python-name", b"!!python/name:os.system\n"))
        cases.append((kind, "top-list", b"- 1\n- 2\n"))
        cases.append((kind, "top-scalar", b"42\n"))
        cases.append((kind, "top-string", b"just some text\n"))
        cases.append((kind, "empty", b""))
        cases.append((kind, "comments-only", b"# nothing here\n\n"))
        cases.append((kind, "null-doc", b"~\n"))
        cases.append((kind, "two-docs", raw + b"\n---\n" + raw))
        cases.append((kind, "deep-flow", b"a: " + b"[" * 100_000 + b"]" * 100_000))
        cases.append((kind, "deep-block", b"".join(
            b"  " * i + b"k:\n" for i in range(MAX_YAML_DEPTH + 5)) + b"  " * 70 + b"v\n"))
        cases.append((kind, "alias-bomb", ALIAS_BOMB))
        cases.append((kind, "oversized", raw + b"#" * (MAX_SPEC_FILE_BYTES + 1)))
        cases.append((kind, "random-bytes", random.Random(kind).randbytes(4096)))
        cases.append((kind, "non-string-keys", b"1: 2\n[a]: 3\n"))
    return cases


ALIAS_BOMB = (b'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
              + b"".join(f"{chr(98 + i)}: &{chr(98 + i)} [".encode()
                         + b",".join([f"*{chr(97 + i)}".encode()] * 9) + b"]\n"
                         for i in range(9)))

CASES = generated_cases()
RUNS = [(kind, cid, raw, j) for kind, cid, raw in CASES for j in range(len(KINDS[kind][1]))]


def test_there_are_more_than_a_thousand_fuzz_cases():
    assert len(RUNS) + len(SPECIAL) * 2 >= 1000, len(RUNS)


def _assert_rejected(args: list[str], file: str) -> None:
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 2, (args, result.stdout[-500:], result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and file in lines[0], lines[0]


@pytest.mark.parametrize("kind, cid, raw, j", RUNS,
                         ids=[f"{k}-{c}-cmd{j}" for k, c, _, j in RUNS])
def test_malformed_file_exits_2_with_one_line(tmp_path, kind, cid, raw, j):
    path = tmp_path / f"{kind}.yaml"
    path.write_bytes(raw)
    _assert_rejected(KINDS[kind][1][j](str(path)), str(path))


def _special(tmp_path: Path, name: str) -> Path:
    if name == "directory":
        p = tmp_path / "dir.yaml"
        p.mkdir()
    elif name == "missing":
        p = tmp_path / "missing.yaml"
    elif name == "symlink-loop":
        p = tmp_path / "loop.yaml"
        p.symlink_to(tmp_path / "loop2.yaml")
        (tmp_path / "loop2.yaml").symlink_to(p)
    elif name == "dangling-symlink":
        p = tmp_path / "dangling.yaml"
        p.symlink_to(tmp_path / "nowhere.yaml")
    elif name == "fifo":
        import os

        p = tmp_path / "fifo.yaml"
        os.mkfifo(p)
    else:
        raise AssertionError(name)
    return p


SPECIAL = ["directory", "missing", "symlink-loop", "dangling-symlink", "fifo"]


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("name", SPECIAL)
def test_unreadable_paths_exit_2_with_one_line(tmp_path, kind, name):
    path = _special(tmp_path, name)
    for command in KINDS[kind][1]:
        args = command(str(path))
        if name == "directory" and args[0] in ("check", "evaluate"):
            continue   # a directory of scenarios is valid input; an empty one is tested below
        _assert_rejected(args, str(path))


def test_an_empty_directory_of_scenarios_is_an_error(tmp_path):
    for cmd in ("check", "evaluate"):
        _assert_rejected([cmd, str(tmp_path)], str(tmp_path))


# ----------------------------------------------------------------------------- hostile YAML
@pytest.mark.parametrize("name, raw", [
    ("alias bomb", ALIAS_BOMB),
    ("100 MB file", None),
    ("python tag", b"a: !!python/object/apply:os.system ['echo pwned']\n"),
    ("deep nesting", b"[" * 400_000 + b"]" * 400_000),
])
def test_hostile_yaml_is_rejected_with_bounded_memory(tmp_path, name, raw):
    """Rejected with one line and little memory; benchmarks/bench_hostile.py times them."""
    import tracemalloc

    path = tmp_path / "hostile.yaml"
    if raw is None:
        with open(path, "wb") as fh:
            fh.truncate(100_000_000)           # a sparse 100 MB file
    else:
        path.write_bytes(raw)
    tracemalloc.start()
    _assert_rejected(["kv-cache", str(path)], str(path))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20_000_000, peak


# ----------------------------------------------------------------------------- config.json
from tests_support import DEEPSEEK_V3  # noqa: E402

#: Fields the converter reads from a DeepSeek-V3 config.json.
_HF_READ = ("hidden_size", "intermediate_size", "kv_lora_rank", "moe_intermediate_size",
            "moe_layer_freq", "n_group", "n_routed_experts", "n_shared_experts",
            "num_attention_heads", "num_experts_per_tok", "num_hidden_layers",
            "num_nextn_predict_layers", "q_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim",
            "v_head_dim", "first_k_dense_replace", "topk_group", "tie_word_embeddings",
            "vocab_size")
_HF_BAD = ["80", True, [1], {"a": 1}, -1, float("inf"), 10**30, 0.5]
HF_CASES = [(f"{k}={b!r}", {**DEEPSEEK_V3, k: b}) for k in _HF_READ for b in _HF_BAD
            if not (k == "tie_word_embeddings" and b is True)]
HF_CASES += [(f"{k}-missing", {x: v for x, v in DEEPSEEK_V3.items() if x != k})
             for k in ("hidden_size", "num_hidden_layers", "vocab_size", "kv_lora_rank",
                       "n_routed_experts", "num_attention_heads", "moe_intermediate_size")]


@pytest.mark.parametrize("cid, data", HF_CASES, ids=[c for c, _ in HF_CASES])
def test_malformed_config_json_exits_2_with_one_line(tmp_path, cid, data):
    import json

    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    _assert_rejected(["kv-cache", str(path)], str(path))


# Every other converter of planner/specs/hf.py: a small valid config.json of each architecture,
# then every field its converter reads (recorded, not listed by hand) given a bad value.
from tests_support import LLAMA_31_8B  # noqa: E402

_GQA = {"hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2,
        "num_hidden_layers": 2, "vocab_size": 10}
_QWEN_NEXT = {**_GQA, "head_dim": 16, "linear_num_key_heads": 2, "linear_num_value_heads": 4,
              "linear_key_head_dim": 8, "linear_value_head_dim": 8, "num_experts": 8,
              "num_experts_per_tok": 2, "moe_intermediate_size": 16,
              "shared_expert_intermediate_size": 16}
#: A valid config.json of each architecture (``architectures[0]``) planner/specs/hf.py reads.
HF_BASES: dict[str, dict] = {
    "DeepseekV3ForCausalLM": DEEPSEEK_V3,
    "DeepseekV2ForCausalLM": {
        **_GQA, "kv_lora_rank": 16, "qk_nope_head_dim": 8, "qk_rope_head_dim": 4,
        "v_head_dim": 8, "n_routed_experts": 4, "num_experts_per_tok": 2,
        "moe_intermediate_size": 16, "n_shared_experts": 1, "first_k_dense_replace": 1,
        "intermediate_size": 32, "n_group": 2, "topk_group": 1},
    "Qwen2ForCausalLM": {**_GQA, "intermediate_size": 128, "attention_bias": True},
    "Qwen3ForCausalLM": {**_GQA, "head_dim": 16, "intermediate_size": 128},
    "Qwen3MoeForCausalLM": {**_GQA, "head_dim": 16, "num_experts": 8, "num_experts_per_tok": 2,
                            "moe_intermediate_size": 32, "decoder_sparse_step": 1,
                            "mlp_only_layers": []},
    "LlamaForCausalLM": LLAMA_31_8B,
    "MistralForCausalLM": {**_GQA, "intermediate_size": 128},
    "MixtralForCausalLM": {**_GQA, "intermediate_size": 128, "num_local_experts": 8,
                           "num_experts_per_tok": 2},
    "GptOssForCausalLM": {**_GQA, "head_dim": 16, "intermediate_size": 64,
                          "num_local_experts": 8, "experts_per_token": 2,
                          "attention_bias": True, "tie_word_embeddings": False},
    # issue 21: DSA, Gated DeltaNet hybrids, Qwen2-MoE, MiniMax-M2, Kimi-K2.5's text tower
    "DeepseekV32ForCausalLM": {**DEEPSEEK_V3, "index_topk": 8, "index_n_heads": 2,
                               "index_head_dim": 16},
    "GlmMoeDsaForCausalLM": {**DEEPSEEK_V3, "index_topk": 8, "index_n_heads": 2,
                             "index_head_dim": 16},
    "Qwen2MoeForCausalLM": {**_GQA, "num_experts": 8, "num_experts_per_tok": 2,
                            "moe_intermediate_size": 32, "shared_expert_intermediate_size": 64},
    "Qwen3NextForCausalLM": {**_QWEN_NEXT, "full_attention_interval": 2},
    "Qwen3_5MoeForConditionalGeneration": {**_QWEN_NEXT, "mamba_ssm_dtype": "float32",
                                           "layer_types": ["linear_attention",
                                                           "full_attention"]},
    "Qwen3_5MoeForCausalLM": {**_QWEN_NEXT, "layer_types": ["linear_attention",
                                                             "full_attention"]},
    "MiniMaxM2ForCausalLM": {**_GQA, "head_dim": 16, "intermediate_size": 64,
                             "num_local_experts": 8, "num_experts_per_tok": 2,
                             "attn_type_list": [1, 1]},
    "KimiK25ForConditionalGeneration": DEEPSEEK_V3,
}
HF_BASES = {a: {**{k: v for k, v in d.items() if k not in ("architectures", "model_type")},
                "architectures": [a]} for a, d in HF_BASES.items()}


def _fields_read(data: dict) -> list[str]:
    """The config.json fields the converter of ``data`` looks at, in the order it does."""
    from planner.specs.hf import spec_from_hf_config

    seen: list[str] = []

    class Recording(dict):
        def __contains__(self, key):
            if key not in seen:
                seen.append(key)
            return super().__contains__(key)

        def get(self, key, default=None):
            if key not in seen:
                seen.append(key)
            return super().get(key, default)

    spec_from_hf_config(Recording(data), file="config.json", name="x")
    return [k for k in seen if k not in ("architectures", "model_type")]


#: Fields that only choose a note (sliding_window) are read but never computed with.
_HF_NOTE_ONLY = {"sliding_window", "use_sliding_window"}
_HF_BOOLEANS = {"tie_word_embeddings", "attention_bias", "attn_output_gate"}
HF_ARCH_CASES = [
    (f"{arch}:{k}={b!r}", {**base, k: b})
    for arch, base in HF_BASES.items() if arch != "DeepseekV3ForCausalLM"   # cases above
    for k in _fields_read(base) if k not in _HF_NOTE_ONLY
    for b in _HF_BAD if not (k in _HF_BOOLEANS and b is True)]
HF_ARCH_CASES += [(f"{arch}:{k}-missing", {x: v for x, v in base.items() if x != k})
                  for arch, base in HF_BASES.items()
                  for k in ("hidden_size", "num_hidden_layers", "vocab_size",
                            "num_attention_heads")]


def test_every_architecture_has_a_valid_base_that_converts(tmp_path):
    """Each key of ARCHITECTURES (a class name or a model_type) reaches a converter with a base
    here, and each base runs through the CLI."""
    import json

    from planner.specs.hf import ARCHITECTURES

    classes = {k for k in ARCHITECTURES if k[0].isupper()}
    assert set(HF_BASES) == classes
    converters = {ARCHITECTURES[a] for a in HF_BASES}
    assert {ARCHITECTURES[k] for k in ARCHITECTURES} <= converters
    for arch, base in HF_BASES.items():
        path = tmp_path / f"{arch}.json"
        path.write_text(json.dumps(base))
        result = runner.invoke(app, ["kv-cache", str(path), "--format", "json"],
                               catch_exceptions=False)
        assert result.exit_code == 0, (arch, result.stderr)
        assert len(_fields_read(base)) >= 6, arch
    for key in ARCHITECTURES:
        if not key[0].isupper():     # a model_type alone selects the same converter
            arch = next(a for a in HF_BASES if ARCHITECTURES[a] is ARCHITECTURES[key])
            data = {k: v for k, v in HF_BASES[arch].items() if k != "architectures"}
            path = tmp_path / f"{key}.json"
            path.write_text(json.dumps({**data, "model_type": key}))
            result = runner.invoke(app, ["kv-cache", str(path)], catch_exceptions=False)
            assert result.exit_code == 0, (key, result.stderr)


@pytest.mark.parametrize("cid, data", HF_ARCH_CASES, ids=[c for c, _ in HF_ARCH_CASES])
def test_malformed_config_json_of_every_architecture_exits_2(tmp_path, cid, data):
    import json

    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    _assert_rejected(["kv-cache", str(path)], str(path))


# ----------------------------------------------------------------------------- issue 18 corpus
import atexit  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from tests_support import HF_CRASHES, hostile_corpus  # noqa: E402

_CORPUS_DIR = Path(tempfile.mkdtemp(prefix="planner-hostile-"))
atexit.register(shutil.rmtree, _CORPUS_DIR, ignore_errors=True)
CORPUS = hostile_corpus(_CORPUS_DIR)


@pytest.mark.parametrize("name, args, env, codes", CORPUS, ids=[c[0] for c in CORPUS])
def test_hostile_corpus_ends_cleanly_in_bounded_time_and_memory(name, args, env, codes):
    """Every crash, NaN, bound and file case of issue 18: the exit code it should have (never
    3, an internal error), no traceback, under 10 s and 1 GB (Python allocations, numpy's
    included; benchmarks/bench_hostile.py measures the process's resident memory)."""
    import tracemalloc

    tracemalloc.start()
    start = time.perf_counter()
    result = runner.invoke(app, args, env=env, catch_exceptions=False)
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result.exit_code in codes, (result.exit_code, result.stderr[-600:])
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert elapsed < 10 and peak < 2**30, (elapsed, peak)
    if codes == {2}:
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert len(lines[0]) < 600, lines[0]          # a long name or number is cut


@pytest.mark.parametrize("cid", list(HF_CRASHES))
def test_config_json_that_crashed_the_converter_is_one_line(tmp_path, cid):
    import json

    path = tmp_path / "config.json"
    path.write_text(json.dumps(HF_CRASHES[cid]))
    _assert_rejected(["kv-cache", str(path)], str(path))
    _assert_rejected(["import-hf", str(path)], str(path))
