"""Spec loading: validation messages name the file and the field; the catalog; the record of
validated files."""

from __future__ import annotations

import pytest

from planner import catalog
from planner.errors import CatalogError, SpecError
from planner.specs import Hardware, Model, load_hardware_file, load_model_file
from planner.specs import load as load_mod
from tests_support import REPO, V3_TEXT, H800_TEXT


def err_of(path, loader=load_model_file) -> str:
    with pytest.raises(SpecError) as info:
        loader(path)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(str(path))
    return text


@pytest.mark.parametrize("old, new, field, problem", [
    ("hidden_size: 7168", "hidden_size: -1", "hidden_size", "greater than 0"),
    ("hidden_size: 7168", "hidden_size: .nan", "hidden_size", "valid integer"),
    ("hidden_size: 7168", "hidden_size: '7168'", "hidden_size", "valid integer"),
    ("hidden_size: 7168", "hidden_size: true", "hidden_size", "valid integer"),
    ("hidden_size: 7168", "hidden_size: 7168.5", "hidden_size", "valid integer"),
    ("kv_lora_rank: 512", "kv_lora_rank: 0", "attention.kv_lora_rank", "greater than 0"),
    ("kind: mla", "kind: mlx", "attention", "mla"),
    ("num_experts_per_token: 8", "num_experts_per_token: 300", "ffn",
     "num_experts_per_token (300) must be <= num_routed_experts (256)"),
    ("num_limited_groups: 4", "num_limited_groups: 9", "ffn",
     "num_limited_groups (9) must be <= num_expert_groups (8)"),
    ("num_dense_layers: 3", "num_dense_layers: 99", "(top level)",
     "ffn.num_dense_layers (99) must be <= num_layers (61)"),
    ("tie_word_embeddings: false", "tie_word_embeddings: 1", "tie_word_embeddings", "boolean"),
])
def test_model_validation_messages(write_yaml, old, new, field, problem):
    assert old in V3_TEXT
    text = err_of(write_yaml(V3_TEXT.replace(old, new, 1)))
    assert f": {field}: " in text
    assert problem in text


def test_unknown_field_suggests_the_right_one(write_yaml):
    text = err_of(write_yaml(V3_TEXT + "hiden_size: 3\n"))
    assert "hiden_size: unknown field; did you mean 'hidden_size'?" in text
    text = err_of(write_yaml(V3_TEXT.replace("  q_lora_rank: 1536", "  zzz: 1")))
    assert "attention.zzz: unknown field; allowed: kind, num_heads" in text


def test_missing_field(write_yaml):
    text = err_of(write_yaml(V3_TEXT.replace("vocab_size: 129280\n", "")))
    assert "vocab_size: required field is missing" in text


def test_gqa_divisibility(write_yaml):
    text = (REPO / "models" / "qwen2.5-72b.yaml").read_text().replace(
        "num_kv_heads: 8", "num_kv_heads: 7")
    msg = err_of(write_yaml(text))
    assert "attention: num_heads (64) must be divisible by num_kv_heads (7)" in msg


@pytest.mark.parametrize("old, new, field", [
    ("nic_bandwidth_gbit_per_s: 400", "nic_bandwidth_gbit_per_s: -400",
     "scale_out.nic_bandwidth_gbit_per_s"),
    ("bandwidth_gb_per_s_unidirectional: 200", "bandwidth_gb_per_s_unidirectional: 0",
     "scale_up.bandwidth_gb_per_s_unidirectional"),
    ("    frac: 0.8\n", "    frac: 1.5\n", "efficiency.scale_up_bandwidth.frac"),
    ("hbm_capacity_gib: 80", "hbm_capacity_gib: .inf", "gpu.hbm_capacity_gib"),
    ("hbm_usable_mib: 81559", "hbm_usable_mib: 0", "gpu.hbm_usable_mib"),
])
def test_hardware_validation_messages(write_yaml, old, new, field):
    assert old in H800_TEXT
    text = err_of(write_yaml(H800_TEXT.replace(old, new, 1)), load_hardware_file)
    assert f": {field}: " in text


@pytest.mark.parametrize("old, new, problem", [
    ("hbm_capacity_gib: 80", "hbm_capacity_gib: 80\n  hbm_capacity_gb: 80",
     "give exactly one of hbm_capacity_gib"),
    ("  hbm_capacity_gib: 80\n", "", "give exactly one of"),
    ("hbm_usable_mib: 81559", "hbm_usable_mib: 90000", "exceeds the capacity"),
])
def test_hardware_capacity_unit_is_named(write_yaml, old, new, problem):
    """A capacity in exactly one named unit; the usable total no more than the capacity."""
    assert old in H800_TEXT
    msg = err_of(write_yaml(H800_TEXT.replace(old, new, 1)), load_hardware_file)
    assert problem in msg and "\n" not in msg.strip()


@pytest.mark.parametrize("content, problem", [
    ("", "file is empty"),
    ("- 1\n- 2\n", "expected a mapping"),
    ("a: [1, 2\n", "invalid YAML: line 2"),
    ("!!python/object/apply:os.system ['true']\n", "invalid YAML"),
])
def test_malformed_files(write_yaml, content, problem):
    assert problem in err_of(write_yaml(content))


def test_non_utf8_and_missing_and_directory(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"name: \xff\xfe\n")
    assert "not valid UTF-8" in err_of(bad)
    assert "file not found" in err_of(tmp_path / "nope.yaml")
    assert "is a directory" in err_of(tmp_path)


def test_oversized_file(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("a: " + "x" * (load_mod.MAX_SPEC_FILE_BYTES + 10))
    assert "larger than" in err_of(big)


def test_catalog_names_and_unknown_name():
    assert {"deepseek-v3", "deepseek-v2", "qwen2.5-72b", "llama-3.1-405b",
            "llama-3.1-70b"} <= set(catalog.names("model"))
    assert {"h800", "h100", "h200", "gb200-nvl72"} <= set(catalog.names("hardware"))
    with pytest.raises(CatalogError, match="valid names: deepseek-v2, deepseek-v3"):
        catalog.load_model("no-such-model")


def test_every_catalog_spec_loads_and_cites_a_source():
    for name in catalog.names("model"):
        m = catalog.load_model(name)
        assert isinstance(m, Model) and m.name == name and m.source
    for name in catalog.names("hardware"):
        h = catalog.load_hardware(name)
        assert isinstance(h, Hardware) and h.name == name and h.source
        for factor in ("scale_up_bandwidth", "scale_out_bandwidth", "hbm_bandwidth",
                       "matmul_flops"):
            f = getattr(h.efficiency, factor)
            assert f is None or f.source


def test_a_path_is_accepted_wherever_a_name_is(write_yaml):
    path = write_yaml(V3_TEXT, name="my-model.yaml")
    assert catalog.load_model(str(path)).num_layers == 61
    assert isinstance(catalog.load_any(str(path)), Model)
    hw = write_yaml(H800_TEXT, name="my-gpu.yaml")
    assert isinstance(catalog.load_any(str(hw)), Hardware)


def test_validated_record_builds_the_same_object(write_yaml, monkeypatch, tmp_path):
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path / "cache"))
    path = write_yaml(V3_TEXT)
    first = load_model_file(path)                     # validated by pydantic, recorded
    assert list((tmp_path / "cache" / "validated").iterdir())
    calls = []
    monkeypatch.setattr(load_mod, "_validate_with_pydantic",
                        lambda *a, **k: calls.append(a) or pytest.fail("not from the record"))
    second = load_model_file(path)                    # built from the record
    assert second == first and not calls


def test_a_changed_file_is_validated_again(write_yaml, monkeypatch, tmp_path):
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path / "cache"))
    path = write_yaml(V3_TEXT)
    load_model_file(path)
    path.write_text(V3_TEXT.replace("hidden_size: 7168", "hidden_size: -7168"))
    with pytest.raises(SpecError, match="greater than 0"):
        load_model_file(path)


def test_unwritable_cache_is_ignored(write_yaml, monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(blocker))   # a file, not a folder
    assert load_model_file(write_yaml(V3_TEXT)).num_layers == 61
    monkeypatch.setenv("PLANNER_NO_CACHE", "1")
    assert load_model_file(write_yaml(V3_TEXT)).num_layers == 61


def test_cached_construction_builds_the_same_types_as_validation():
    """A spec built from the validation record equals the validated one, field types included
    (pydantic turns 80 into 80.0 for a float field; the fast path must too, or JSON output would
    differ between the first and the second run)."""
    import dataclasses

    import yaml

    from planner.catalog import catalog_dir
    from planner.specs.hardware import Hardware
    from planner.specs.load import _construct, validate
    from planner.specs.model import Model
    from planner.specs.network import NetworkPrices

    def types(obj):
        if dataclasses.is_dataclass(obj):
            return {f.name: types(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        return type(obj).__name__

    files = [(Model, p) for p in catalog_dir("model").glob("*.yaml")]
    files += [(Hardware, p) for p in catalog_dir("hardware").glob("*.yaml")]
    files += [(NetworkPrices, p) for p in (catalog_dir("hardware") / "network").glob("*.yaml")]
    for cls, path in files:
        data = yaml.safe_load(path.read_text())
        fast, slow = _construct(cls, data), validate(cls, data, file=str(path))
        assert fast == slow and types(fast) == types(slow), path
