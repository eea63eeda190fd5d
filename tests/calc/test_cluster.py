"""Issue 5: network topologies (P Table 3), node-limited routing (P §4.3), collectives (P Table 5
latencies), pipeline schedules (V3R Table 2) and training cost (P Table 4, V3R Table 1)."""

from __future__ import annotations


import pytest
from typer.testing import CliRunner

from planner.calc import collectives, network, pipeline, routing, training
from planner.catalog import load_paper
from planner.cli import app
from planner.studies.paper import (PAPER_TABLE3, default_network_prices, routing_figures,
                                   table3_network, training_cost)
from tests_support import cli_json as run_json

#: The paper's printed figures (validation/paper.yaml).
FIG = load_paper().figures

runner = CliRunner()




# ----------------------------------------------------------------------------- P Table 3
@pytest.mark.parametrize("kind", list(PAPER_TABLE3))
def test_table3_counts_exactly(kind):
    ends, switches, links, _, _ = PAPER_TABLE3[kind]
    t = network.topology(kind)
    assert (t.num_endpoints, t.num_switches, t.num_links) == (ends, switches, links)
    assert sum(n for _, n in t.links_by_kind) == t.num_links


@pytest.mark.parametrize("kind", list(PAPER_TABLE3))
def test_table3_cost_per_endpoint_within_10_percent(kind):
    printed_k = float(PAPER_TABLE3[kind][4])
    c = network.topology_cost(network.topology(kind), default_network_prices())
    assert abs(c.cost_per_endpoint_usd / (printed_k * 1e3) - 1) < 0.10
    assert c.cost_parts.total == pytest.approx(c.cost_usd)


def test_mpft_is_41_percent_cheaper_per_endpoint_than_ft3():
    prices = default_network_prices()
    mpft, ft3 = (network.topology_cost(network.topology(k), prices) for k in ("mpft", "ft3"))
    # P: 1 − 4.39 / 7.5 = 41.5%.
    assert 1 - mpft.cost_per_endpoint_usd / ft3.cost_per_endpoint_usd == pytest.approx(
        0.415, abs=0.01)


def test_hand_worked_small_topologies():
    # k = 4 fat tree: 8 endpoints, 6 switches (4 leaves + 2 spines), 8 links.
    assert network.fat_tree_2_counts(radix=4) == (8, 6, 8)
    # k = 4 three-layer: 16 endpoints, 20 switches, 32 links.
    assert network.fat_tree_3_counts(radix=4) == (16, 20, 32)
    # Slim Fly q = 5 (δ = 1): 50 routers, k' = 7, p = 4, 200 endpoints, 175 links.
    assert network.slim_fly_counts(q=5) == (200, 50, 175, 7)
    # Dragonfly p = h = 2, a = 4, g = 9: 72 endpoints, 36 routers, 54 local + 36 global links.
    assert network.dragonfly_counts(p=2, a=4, h=2, g=9) == (72, 36, 54, 36)
    with pytest.raises(ValueError):
        network.slim_fly_counts(q=6)


def test_network_command_json_and_other_radix():
    records = run_json("network")
    assert [r["topology"] for r in records] == ["FT2", "MPFT", "FT3", "SF", "DF"]
    assert records[0]["paper_cost_per_endpoint_usd"] == 4390.0
    small = run_json("network", "ft2", "--radix", "32")
    assert small[0]["num_endpoints"] == 512 and small[0]["paper_cost_per_endpoint_usd"] is None


def test_network_prices_file_is_validated(write_yaml):
    bad = write_yaml("source: x\nswitch_radix: 64\nlink_gbit_per_s: 400\nswitch_usd: -1\n"
                     "endpoint_link_usd: 1\nelectrical_link_usd: 1\noptical_link_usd: 1\n"
                     "optical_long_link_usd: 1\n")
    result = runner.invoke(app, ["network", "--prices", str(bad)])
    assert result.exit_code == 2 and result.stdout == ""
    assert f"{bad}: switch_usd: Input should be greater than or equal to 0" in result.stderr


def test_paper_table3_rows():
    rows = table3_network()
    counts = [r for r in rows if r.metric in ("num_endpoints", "num_switches", "num_links")]
    assert len(counts) == 15 and all(r.agrees for r in counts)


# ----------------------------------------------------------------------------- P §4.3
def test_routing_figures_of_the_paper():
    by = {r.figure: r for r in routing_figures()}
    free = FIG["routing.free_experts_per_node"]
    assert free.rounding.digits == 1 and free.agrees(by["routing.free_experts_per_node"].value)
    assert round(by["routing.max_experts_same_ib_cost"].value) == FIG[
        "routing.max_experts_same_ib_cost"].value
    assert by["routing.ib_copies_worst"].value == FIG["routing.ib_copies_worst"].value
    assert by["routing.ib_copies_forwarded"].value == FIG["routing.ib_copies_forwarded"].value


def test_expected_distinct_nodes_hand_worked():
    # k = 2 experts from 2 nodes of 2 experts: P(both on one node) = 2 · C(2,2)/C(4,2) = 1/3,
    # so E[M] = 1/3 · 1 + 2/3 · 2 = 5/3.
    assert routing.expected_distinct_nodes(experts_per_token=2, experts_per_node=2,
                                           num_nodes=2) == pytest.approx(5 / 3)
    assert routing.expected_distinct_nodes(experts_per_token=8, experts_per_node=32,
                                           num_nodes=4) == pytest.approx(3.629, abs=1e-3)


def test_routing_command_names_the_bottleneck():
    (r,) = run_json("routing", "deepseek-v3", "--hardware", "h800", "--ep", "64", "--nodes", "8")
    assert r["bottleneck"] == "scale_out (IB)"
    # 4096 tokens × 3.1754 IB copies × 7168 × 3 B / 50 GB/s = 5.594 ms.
    assert r["ib_time_per_layer_s"] == pytest.approx(4096 * 3.175385 * 7168 * 3 / 50e9, rel=1e-5)


# ----------------------------------------------------------------------------- collectives
def test_collectives_hand_worked():
    kw = dict(num_ranks=8, bytes_total=1e9, latency_s=3.33e-6, bandwidth_bytes_per_s=200e9)
    # 7 × 3.33 µs + 7/8 × 1e9 / 2e11 = 23.31 µs + 4.375 ms.
    assert collectives.ring_all_gather_time_s(**kw) == pytest.approx(23.31e-6 + 4.375e-3)
    assert collectives.ring_all_reduce_time_s(**kw) == pytest.approx(2 * (23.31e-6 + 4.375e-3))
    # tree: 2 × 3 steps × (3.7 µs + 1 MB / 50 GB/s) = 142.2 µs.
    assert collectives.tree_all_reduce_time_s(
        num_ranks=8, bytes_total=1e6, latency_s=3.7e-6,
        bandwidth_bytes_per_s=50e9) == pytest.approx(142.2e-6)
    # two-shot: 2 × (3.33 µs + 7/8 × 1e9 / 2e11) = 6.66 µs + 8.75 ms; one latency per phase
    # where the ring pays 7.
    two = collectives.two_shot_all_reduce_time_s(**kw)
    assert two == pytest.approx(6.66e-6 + 8.75e-3)
    assert two < collectives.ring_all_reduce_time_s(**kw)


def test_collective_command_uses_table5_latency():
    (r,) = run_json("collective", "all-to-all", "--hardware", "h800", "--size", "64 MB",
                    "--ranks", "64", "--link", "scale-out-cross-leaf")
    assert r["latency_s"] == pytest.approx(3.7e-6)          # P Table 5, IB cross leaf
    assert r["time_s"] == pytest.approx(63 * 3.7e-6 + 63 / 64 * 64e6 / 50e9)
    bad = runner.invoke(app, ["collective", "all-reduce", "--hardware", "h800", "--size", "1 GB",
                              "--ranks", "16", "--link", "scale-up"])
    assert bad.exit_code == 2 and "exceed the 8-GPU scale-up domain" in bad.stderr


# ----------------------------------------------------------------------------- pipeline
def test_dualpipe_against_1f1b_and_zb1p_for_pp16():
    res = {r.schedule: r for r in pipeline.pipeline_schedules(pp=16, f_s=1.13, b_s=1.99,
                                                              w_s=0.48)}
    assert res["1f1b"].bubble_s == pytest.approx(15 * 3.12)             # 46.80 s
    assert res["zb1p"].bubble_s == pytest.approx(15 * (3.12 - 0.96))    # 32.40 s
    assert res["dualpipe"].bubble_s == pytest.approx(7 * (3.12 + 1.99 - 1.44))   # 25.69 s
    assert (res["dualpipe"].param_copies, res["dualpipe"].activation_micro_batches) == (2, 17)
    assert (res["1f1b"].param_copies, res["1f1b"].activation_micro_batches) == (1, 16)
    assert res["dualpipev"].num_devices == 8


def test_pipeline_schedules_read_the_micro_batch_count():
    # With m < PP micro-batches ZB1P's drain has only m - 1 delayed W passes (the training
    # model's bubble), a stage holds at most m micro-batches, and DualPipe(V) cannot run below
    # 2 x PP (odd m: DualPipe); `planner pipeline --micro-batches` had ignored m for all three.
    few = {r.schedule: r for r in pipeline.pipeline_schedules(pp=16, f_s=1.13, b_s=1.99,
                                                              w_s=0.48, num_micro_batches=4)}
    assert few["zb1p"].bubble_s == pytest.approx(15 * (3.12 - 0.48) - 3 * 0.48)   # 38.16 s
    assert few["1f1b"].bubble_s == pytest.approx(15 * 3.12)
    assert {r.activation_micro_batches for r in few.values()} == {4}
    assert few["dualpipe"].bubble_frac is None and "m >= 2 x PP = 32" in few["dualpipe"].note
    assert few["1f1b"].note == few["zb1p"].note == "" and few["zb1p"].bubble_frac is not None
    odd = {r.schedule: r for r in pipeline.pipeline_schedules(pp=16, f_s=1.13, b_s=1.99,
                                                              w_s=0.48, num_micro_batches=33)}
    assert "even m" in odd["dualpipe"].note and odd["dualpipev"].note == ""
    assert odd["zb1p"].bubble_s == pytest.approx(15 * (3.12 - 0.96))
    assert odd["dualpipe"].activation_micro_batches == 17
    from planner.calc.train.overlap import bubble_s
    from planner.calc.train.recipe import TRAIN_SCHEDULES
    for m in (2, 4, 8, 15, 16, 64):   # the same ZB1P bubble as the training model's
        trained = bubble_s(TRAIN_SCHEDULES.index("zb1p"), pp=16, vpp=1, f_s=1.13, b_s=1.99,
                           w_s=0.48, m=m)
        assert float(trained) == pytest.approx(pipeline.bubble_zb1p_s(
            pp=16, f_s=1.13, b_s=1.99, w_s=0.48, num_micro_batches=m))
    table = runner.invoke(app, ["pipeline", "--pp", "16", "--micro-batches", "4"])
    assert table.exit_code == 0 and "not runnable" in table.stdout


def test_pipeline_rejects_odd_pp_and_w_above_b():
    for args in (["--pp", "15"], ["--w", "3"]):
        result = runner.invoke(app, ["pipeline", *args])
        assert result.exit_code == 2 and result.stdout == ""


# ----------------------------------------------------------------------------- training
def test_training_figures_of_the_paper():
    by = {r.figure: r for r in training_cost()}
    for key, digits in (("gpu_hours_per_trillion", -3), ("days_per_trillion", 1)):
        fig = FIG[f"training.{key}"]
        assert fig.rounding.digits == digits and fig.agrees(by[f"training.{key}"].value), key
    # The totals are the planner's own (its 2,666,604 pre-training GPU-hours + V3R's 119K
    # context extension + 5K post-training), not V3R's 14.8 × its rounded 180K (2,788K):
    # 2,790,604 GPU-hours and $5,581,208 at $2, 0.09% above V3R's.
    assert by["training.total_gpu_hours"].value == pytest.approx(2_790_604, abs=1)
    assert by["training.total_cost"].value == pytest.approx(5_581_208, abs=2)
    for key in ("total_gpu_hours", "total_cost"):
        assert abs(by[f"training.{key}"].value / FIG[f"training.{key}"].value - 1) < 0.001
    for key in ("tflops.causal", "mfu.causal", "tflops.non-causal", "mfu.non-causal",
                "pretraining_gpu_hours"):
        assert abs(by[f"training.{key}"].value / FIG[f"training.{key}"].value - 1) < 0.005, key


def test_train_command_inverse_directions_agree():
    (fwd,) = run_json("train", "deepseek-v3", "--hardware", "h800", "--tokens", "14.8T",
                      "--gpus", "2048", "--mfu", "0.3904")
    (inv,) = run_json("train", "deepseek-v3", "--hardware", "h800", "--tokens", "14.8T",
                      "--gpus", "2048", "--gpu-hours", str(fwd["train_gpu_hours"]))
    assert inv["mfu_frac"] == pytest.approx(0.3904)
    assert fwd["train_cost_usd"] == pytest.approx(2 * fwd["train_gpu_hours"])
    both = runner.invoke(app, ["train", "deepseek-v3", "-H", "h800", "--tokens", "1T",
                               "--gpus", "8", "--mfu", "0.4", "--gpu-hours", "100"])
    assert both.exit_code == 2 and "exactly one of" in both.stderr


def test_train_hand_worked():
    # τ = 385e12 / 250e9 = 1,540 tokens/s; 1e12 tokens: 1e12 / (1540 × 3600) = 180,375.2 h.
    tps = training.train_tokens_per_s_per_gpu(achieved_flop_per_s_per_gpu=385e12,
                                              train_flops_per_token=250e9)
    assert tps == pytest.approx(1540)
    assert training.train_gpu_hours(tokens=1e12, tokens_per_s_per_gpu=tps) == pytest.approx(
        1e12 / (1540 * 3600))


def test_pipeline_chunk_times_derived_from_flops():
    # f = 83.48e9 FLOPs/token (DeepSeek-V3 forward at s = 4096), T = 4096, PP = 16,
    # R = 989e12 × 0.526: F = f·T/PP/R = 29.6 ms; B = 2F; W = F.
    from planner.catalog import load_hardware, load_model

    f, b, w, origin = pipeline.pipeline_chunk_times(model=load_model("deepseek-v3"),
                                                    hardware=load_hardware("h800"), pp=16,
                                                    tokens_per_micro_batch=4096)
    assert f == pytest.approx(83.483e9 * 4096 / 16 / (989e12 * 0.526), rel=1e-3)
    assert (b, w) == (2 * f, f) and "derived" in origin
    assert pipeline.pipeline_chunk_times(f_s=1.0)[:3] == (1.0, 1.99, 0.48)
    records = run_json("pipeline", "--model", "deepseek-v3", "--hardware", "h800", "--b", "0.1")
    assert records[0]["b_s"] == 0.1 and records[0]["f_s"] == pytest.approx(f)


def test_table5_latencies_of_ib_roce_and_nvlink():
    def alpha(hw, link):
        (r,) = run_json("collective", "all-reduce", "--hardware", hw, "--size", "1 MB",
                        "--ranks", "8", "--link", link)
        return r["latency_s"]

    assert alpha("h800", "scale-out-same-leaf") == pytest.approx(2.8e-6)
    assert alpha("h800", "scale-out-cross-leaf") == pytest.approx(3.7e-6)
    assert alpha("h800-roce", "scale-out-same-leaf") == pytest.approx(3.6e-6)
    assert alpha("h800-roce", "scale-out-cross-leaf") == pytest.approx(5.6e-6)
    assert alpha("h800", "scale-up") == pytest.approx(3.33e-6)


def test_a_group_spanning_several_nodes_makes_each_of_them_eligible():
    """DeepSeek-V3 routes a token to at most 4 of 8 expert groups. At EP 128 (16 nodes) a group
    spans 2 nodes, so 8 nodes are eligible, not 4: 5.339 distinct target nodes, not 3.659
    (1.46x the IB copies; EP 256: 6.597 vs 3.720, 1.77x)."""
    from planner import catalog
    from planner.calc.routing import eligible_nodes, expected_distinct_nodes, node_limited_routing
    from planner.calc.serving import ep_layer_comm_s

    v3, h800 = catalog.load_model("deepseek-v3"), catalog.load_hardware("h800")
    assert [eligible_nodes(v3.ffn, nodes=n) for n in (4, 8, 16, 32)] == [4, 4, 8, 16]
    r = node_limited_routing(v3, h800, ep_size=128, num_nodes=16)
    assert r.node_limit == 8
    assert r.expected_distinct_nodes_limited == pytest.approx(5.3394, abs=1e-4)
    # The serving model's prefill NIC legs (NVLink forwarding) use the same eligible nodes.
    distinct = expected_distinct_nodes(experts_per_token=8, experts_per_node=16, num_nodes=8)
    ib = distinct * 15 / 16
    dispatch, _, link = ep_layer_comm_s(v3, h800, ep=128, tokens=1000, copies=8, forwarding=True,
                                        up_bytes_per_s=1e15, out_bytes_per_s=50e9)
    assert link == "scale_out + NVLink forwarding"
    assert dispatch == pytest.approx(1000 * ib * 7408 / 50e9)
