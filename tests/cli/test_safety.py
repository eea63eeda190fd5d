"""Safe failures (issue 18, items 9, 12, 13): a crash has its own exit code, numbers are finite,
files are written whole."""

from __future__ import annotations

import inspect
import os
import stat
import typing
import xml.etree.ElementTree as ET

import pytest
from typer.testing import CliRunner

from planner.cli import app
from planner.errors import EXIT_INTERNAL, EXIT_INVALID, EXIT_OK, EXIT_VIOLATION
from tests_support import LLAMA_31_8B, SCENARIO_CONTROL_NAME, write_config

runner = CliRunner()


def run(*args: str, **kw):
    return runner.invoke(app, list(args), catch_exceptions=False, **kw)


# ----------------------------------------------------------------------------- item 9: crashes
def test_the_internal_error_code_is_its_own():
    assert EXIT_INTERNAL not in (EXIT_OK, EXIT_VIOLATION, EXIT_INVALID) and EXIT_INTERNAL == 3


def _explode(*_a, **_k):
    raise ZeroDivisionError("float division by zero")


def test_an_unexpected_exception_is_one_line_and_exit_3(monkeypatch):
    import planner.calc.kv_cache as kv

    monkeypatch.setattr(kv, "kv_cache_for_models", _explode)
    result = run("kv-cache", "deepseek-v3")
    assert result.exit_code == EXIT_INTERNAL
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: internal error in `planner kv-cache`: ZeroDivisionError: float division by zero "
        "(a bug in the planner, not in your input; PLANNER_TRACEBACK=1 shows where)"]


def test_planner_traceback_shows_where(monkeypatch):
    import planner.calc.kv_cache as kv

    monkeypatch.setattr(kv, "kv_cache_for_models", _explode)
    result = run("kv-cache", "deepseek-v3", env={"PLANNER_TRACEBACK": "1"})
    assert result.exit_code == EXIT_INTERNAL
    assert "Traceback" in result.stderr and "_explode" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: internal error in")


def test_a_crash_in_check_is_not_a_violated_budget(monkeypatch, tmp_path):
    """CI must tell a crash (3) from a failing design (1)."""
    import planner.budget.checking as checking

    monkeypatch.setattr(checking, "evaluate", _explode)
    result = run("check", "specs/deepseek-v3-h800-ep-decode.yaml")
    assert result.exit_code == EXIT_INTERNAL, result.stderr
    assert "internal error in `planner check`" in result.stderr


def test_an_interrupt_exits_130_not_1(monkeypatch):
    import planner.calc.kv_cache as kv

    def interrupt(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(kv, "kv_cache_for_models", interrupt)
    result = run("kv-cache", "deepseek-v3")
    assert result.exit_code == 130 and result.stderr == "interrupted\n"


def test_a_long_exception_text_is_cut(monkeypatch):
    import planner.calc.kv_cache as kv

    def long(*_a, **_k):
        raise ValueError("x" * 10_000 + "\nsecond line")

    monkeypatch.setattr(kv, "kv_cache_for_models", long)
    lines = run("kv-cache", "deepseek-v3").stderr.splitlines()
    assert len(lines) == 1 and len(lines[0]) < 500


def test_routing_with_more_nodes_than_a_limit_can_hold_is_refused():
    result = run("routing", "deepseek-v3", "-H", "h800", "--ep", "64", "--nodes", "64",
                 "--node-limit", "1")
    assert result.exit_code == EXIT_INVALID
    assert "node limit of 1 node(s) x 4 experts per node holds fewer than the 8" in result.stderr


def test_expected_distinct_nodes_when_the_nodes_hold_fewer_than_k_experts():
    from planner.calc.routing import expected_distinct_nodes

    # 4 nodes of 1 expert each cannot hold 8 distinct experts: every node is reached.
    assert expected_distinct_nodes(experts_per_token=8, experts_per_node=1, num_nodes=4) == 4
    assert expected_distinct_nodes(experts_per_token=8, experts_per_node=0, num_nodes=4) == 4
    # 8 experts on 8 nodes of 1: all 8 (C(7, 8) = 0), the formula's own edge.
    assert expected_distinct_nodes(experts_per_token=8, experts_per_node=1, num_nodes=8) == 8


def test_serve_prefill_on_1032_gpus_runs():
    """P §4.3 node-limited routing with 129 nodes of 256 // 129 = 1 expert: was 0 / 0."""
    result = run("serve", "deepseek-v3", "-H", "h800", "--gpus", "1032", "--phase", "prefill",
                 "-f", "json")
    assert result.exit_code == 0, result.stderr


# ----------------------------------------------------------------------------- item 12: numbers
_BASE = {
    "ep": ["ep", "deepseek-v3", "-H", "h800"],
    "serve": ["serve", "deepseek-v3", "-H", "h800"],
    "serve-disagg": ["serve-disagg", "deepseek-v3", "-H", "h800", "--isl", "1024", "--osl",
                     "128"],
    "train": ["train", "deepseek-v3", "-H", "h800", "--tokens", "1T", "--gpus", "8", "--mfu",
              "0.4"],
    "pipeline": ["pipeline"],
    "routing": ["routing", "deepseek-v3", "-H", "h800"],
    "collective": ["collective", "all-reduce", "-H", "h800", "--size", "1GB", "--ranks", "8"],
    "plan": ["plan", "deepseek-v3", "-H", "h200", "--isl", "1024", "--osl", "1024",
             "--concurrency", "8"],
}


def _float_options() -> list[tuple[str, str]]:
    """(command, --option) of every float option of every command."""
    out = []
    for cmd in app.registered_commands:
        hints = typing.get_type_hints(cmd.callback)
        for name, param in inspect.signature(cmd.callback).parameters.items():
            tp = hints.get(name)
            if float in (tp, *typing.get_args(tp)):
                decls = [d for d in param.default.param_decls if d.startswith("--")]
                out.append((cmd.name, decls[0]))
    return out


FLOAT_OPTIONS = _float_options()


def test_every_float_option_is_covered():
    assert len(FLOAT_OPTIONS) >= 16 and {c for c, _ in FLOAT_OPTIONS} <= set(_BASE)


@pytest.mark.parametrize("command, option", FLOAT_OPTIONS,
                         ids=[f"{c}{o}" for c, o in FLOAT_OPTIONS])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e16"])
def test_nan_inf_and_huge_values_are_refused_naming_the_option(command, option, value):
    result = run(*_BASE[command], option, value)
    assert result.exit_code == EXIT_INVALID, (result.stdout[-300:], result.stderr)
    assert result.stdout == "" and option in result.stderr
    if "Usage:" not in result.stderr:   # not refused by the option's own range (min, max)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {option}: "), lines


def test_an_integer_beyond_the_spec_bound_is_refused():
    result = run("serve", "deepseek-v3", "-H", "h800", "--gpus", str(2**63))
    assert result.exit_code == EXIT_INVALID
    assert result.stderr == ("error: --gpus: 9,223,372,036,854,775,808 is above the largest "
                             "number accepted, 1e15\n")


@pytest.mark.parametrize("args, message", [
    (["ep", "deepseek-v3", "-H", "h800", "--tokens-per-device", "0"],
     "the EP time per token comes out as 0 s"),
    (["ep", "deepseek-v3", "-H", "h800", "--tokens-per-device", "1e-320"],
     "the EP time per token comes out as 0 s"),
    (["ep", "deepseek-v3", "-H", "h800", "--bandwidth-gb-per-s", "0"],
     "the link bandwidth must be > 0 bytes/s"),
    (["ep", "deepseek-v3", "-H", "h800", "--bandwidth-gb-per-s", "1e-320"],
     "the EP time per token comes out as inf s"),
    (["train", "deepseek-v3", "-H", "h800", "--tokens", "1T", "--gpus", "8", "--mfu", "0"],
     "mfu (0) must be > 0"),
    (["train", "deepseek-v3", "-H", "h800", "--tokens", "1T", "--gpus", "8", "--mfu", "1e-320"],
     "GPU-hours"),
    (["train", "deepseek-v3", "-H", "h800", "--tokens", "1T", "--gpus", "8", "--gpu-hours",
      "0"], "gpu_hours (0) must be > 0"),
    (["train", "deepseek-v3", "-H", "h800", "--tokens", "1T", "--gpus", "8",
      "--tokens-per-day", "1e-320"], "the training speed comes out as 0 tokens/s"),
    # Layout mode (review of issues 19-25): 0 tokens printed 0 GPU-hours, 1e300 printed
    # 8e293 GPU-hours, --gpus 1e9 --search ran a minute to find nothing.
    (["train", "deepseek-v3", "-H", "h800", "--tokens", "0", "--gpus", "2048",
      "--global-batch", "1536", "--pp", "16", "--ep", "64"], "--tokens: expected a count above 0"),
    (["train", "deepseek-v3", "-H", "h800", "--tokens", "1e300", "--gpus", "2048",
      "--global-batch", "1536", "--pp", "16", "--ep", "64"], "at most 1e+15 (got 1e+300)"),
    (["train", "deepseek-v3", "-H", "h800", "--tokens", "1T", "--gpus", "1000000000",
      "--global-batch", "1536", "--search"], "--gpus: at most 1,048,576"),
])
def test_zero_and_subnormal_inputs_are_refused(args, message):
    result = run(*args)
    assert result.exit_code == EXIT_INVALID, result.stderr
    assert message in result.stderr and len(result.stderr.splitlines()) == 1


def test_pipeline_w_past_the_bubble_is_refused():
    result = run("pipeline", "--w", "1.9")
    assert result.exit_code == EXIT_INVALID
    assert result.stderr == (
        "error: W = 1.9 s is more weight-backward time than the bubbles can absorb: the formulas "
        "need 2W <= F + B (3.12 s) and 3W <= F&B + B (5.11 s), so W <= 1.56 s\n")


def test_pipeline_bubbles_stay_between_0_and_100_percent():
    from planner.calc.pipeline import pipeline_schedules
    from planner.errors import UsageError

    for w in (0.0, 0.48, 1.0, 1.56):      # up to (F + B) / 2 = 1.56 s
        for m in (4, 32):                  # DualPipe(V) runs from m = 2 x PP = 32 on
            for r in pipeline_schedules(pp=16, f_s=1.13, b_s=1.99, w_s=w, num_micro_batches=m):
                assert r.bubble_s >= -1e-12, (w, m, r)
                if r.note:                 # not runnable: no share, and only DualPipe(V) at m < 32
                    assert r.bubble_frac is None and m == 4 and "dualpipe" in r.schedule
                else:
                    assert 0 <= r.bubble_frac < 1, (w, m, r)
    with pytest.raises(UsageError, match="W <= 1.56 s"):
        pipeline_schedules(pp=16, f_s=1.13, b_s=1.99, w_s=1.57)
    with pytest.raises(UsageError, match="W <= 0.6633 s"):     # F&B = 0: 3W <= B = 1.99
        pipeline_schedules(pp=16, f_s=1.13, b_s=1.99, w_s=0.7, fb_s=0)
    with pytest.raises(UsageError, match="F \\+ B must be > 0"):
        pipeline_schedules(pp=16, f_s=0, b_s=0, w_s=0, num_micro_batches=4)


# ----------------------------------------------------------------------------- item 13: files
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    out = tmp_path / "schema.json"
    out.write_text("old")

    def fail(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    result = run("schema", "model", "-o", str(out))
    assert result.exit_code == EXIT_INVALID
    assert result.stderr == f"error: {out}: cannot write the schema (No space left on device)\n"
    assert out.read_text() == "old" and os.listdir(tmp_path) == ["schema.json"]


def test_output_replaces_a_symlink_and_leaves_its_target(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    link = tmp_path / "schema.json"
    link.symlink_to(target)
    assert run("schema", "model", "-o", str(link)).exit_code == 0
    assert not link.is_symlink() and link.read_text().startswith("{")
    assert target.read_text() == "keep me"


def test_junit_replaces_a_symlink_and_keeps_permissions(tmp_path):
    target = tmp_path / "target.xml"
    target.write_text("keep me")
    link = tmp_path / "junit.xml"
    link.symlink_to(target)
    result = run("check", "specs/deepseek-v3-h800-ep-decode.yaml", "--junit", str(link))
    assert result.exit_code == 0, result.stderr
    assert not link.is_symlink() and target.read_text() == "keep me"
    ET.parse(link)
    plain = tmp_path / "plain.xml"
    plain.write_text("")
    plain.chmod(0o640)
    run("check", "specs/deepseek-v3-h800-ep-decode.yaml", "--junit", str(plain))
    assert stat.S_IMODE(plain.stat().st_mode) == 0o640 and plain.read_text().startswith("<?xml")


def test_output_into_a_directory_is_one_line(tmp_path):
    result = run("schema", "model", "-o", str(tmp_path))
    assert result.exit_code == EXIT_INVALID
    assert result.stderr == f"error: {tmp_path}: is a directory, cannot write the schema here\n"


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="no /dev/null")
def test_output_to_a_device_is_written_in_place():
    assert run("schema", "model", "-o", "/dev/null").exit_code == 0
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_plot_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    import planner.studies.sweep as sw

    out = tmp_path / "sweep.png"
    out.write_bytes(b"old plot")

    def half(result, path):
        with open(path, "wb") as fh:
            fh.write(b"\x89PNG partial")
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(sw, "plot", half)
    result = run("sweep", "deepseek-v3", "--vary", "tokens_per_device=8,16", "--plot", str(out))
    assert result.exit_code == EXIT_INVALID
    assert result.stderr == f"error: {out}: cannot write the plot (Input/output error)\n"
    assert out.read_bytes() == b"old plot" and os.listdir(tmp_path) == ["sweep.png"]


def test_plot_suffix_is_checked_before_the_sweep(tmp_path):
    result = run("sweep", "deepseek-v3", "--vary", "tokens_per_device=8,16", "--plot",
                 str(tmp_path / "a.jpg"))
    assert result.exit_code == EXIT_INVALID and "a.jpg': expected a .png or .svg" in result.stderr
    assert os.listdir(tmp_path) == []


def test_import_hf_refuses_to_overwrite_its_input(tmp_path):
    cfg = write_config(tmp_path, LLAMA_31_8B)
    before = cfg.read_bytes()
    result = run("import-hf", str(cfg), "-o", str(cfg))
    assert result.exit_code == EXIT_INVALID
    assert result.stderr == (f"error: -o {cfg} is the config.json being read: give another file "
                             "for the YAML spec\n")
    assert cfg.read_bytes() == before
    link = tmp_path / "link.yaml"
    link.symlink_to(cfg)
    assert run("import-hf", str(cfg), "-o", str(link)).exit_code == EXIT_INVALID
    assert run("import-hf", str(cfg), "-o", str(tmp_path / "m.yaml")).exit_code == 0


def test_junit_is_valid_xml_with_control_characters_in_a_name(tmp_path):
    scenario = tmp_path / "control.yaml"
    scenario.write_text(SCENARIO_CONTROL_NAME)
    junit = tmp_path / "junit.xml"
    result = run("check", str(scenario), "--junit", str(junit))
    assert result.exit_code == EXIT_VIOLATION
    case = ET.parse(junit).find(".//testcase")
    assert case is not None and case.get("classname") == "planner.bad\\x07name\\x1b[31m"
    assert "\x07" not in result.stderr and "\x1b" not in result.stderr      # nor on a terminal
    assert "violated: bad\\x07name\\x1b[31m: kv_cache_bytes_per_token" in result.stderr


def test_xml_safe_keeps_what_xml_can_hold():
    from planner.report.ci import xml_safe

    assert xml_safe("tab\tnew\nline é 中 \U0001f600") == "tab\tnew\nline é 中 \U0001f600"
    assert xml_safe("a\x00b\x1fc\udc80d\uffff") == "a\\x00b\\x1fc\\udc80d\\uffff"
