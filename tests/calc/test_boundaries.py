"""Hand-worked values at the edges a mutation run (benchmarks/mutation.py) found untested: each
test here fails on a single-token change of the calculator it names (issue 18, item 16)."""

from __future__ import annotations

import pytest

from planner.calc import collectives, network, pipeline, routing, training
from planner.catalog import load_hardware, load_model
from planner.errors import UsageError


# ----------------------------------------------------------------------------- training
def test_train_days_and_gpu_hours_of_a_tokens_per_day_run():
    """Days = T / (tokens per day), exactly, whatever the GPU count; GPU-hours = days × 24 × N.
    V3 on 2,048 H800 at 272.80B tokens/day: 1e12 / 272.8e9 = 3.6657 days, 180,176 GPU-hours."""
    v3, h800 = load_model("deepseek-v3"), load_hardware("h800")
    r = training.train_run(v3, h800, tokens=1e12, num_gpus=2048, tokens_per_day=272.8e9)
    assert r.train_days == pytest.approx(1e12 / 272.8e9, rel=1e-12)
    assert r.train_days == pytest.approx(3.66569, abs=1e-5)
    assert r.train_gpu_hours == pytest.approx(1e12 / 272.8e9 * 24 * 2048, rel=1e-12)
    assert r.train_gpu_hours == pytest.approx(180_176, abs=1)
    assert r.num_gpus == 2048
    assert r.tokens_per_day == pytest.approx(272.8e9, rel=1e-12)
    assert r.train_tokens_per_s_per_gpu == pytest.approx(272.8e9 / 86_400 / 2048, rel=1e-12)


def test_train_days_of_an_mfu_run_scale_inversely_with_the_gpus():
    """From an MFU the speed per GPU is fixed: twice the GPUs, half the days, the same
    GPU-hours; days × 24 × N = GPU-hours."""
    v3, h800 = load_model("deepseek-v3"), load_hardware("h800")
    one, two = (training.train_run(v3, h800, tokens=1e12, num_gpus=n, mfu=0.4)
                for n in (1000, 2000))
    assert two.train_gpu_hours == pytest.approx(one.train_gpu_hours, rel=1e-12)
    assert two.train_days == pytest.approx(one.train_days / 2, rel=1e-12)
    for r, n in ((one, 1000), (two, 2000)):
        assert r.train_days * 24 * n == pytest.approx(r.train_gpu_hours, rel=1e-12)
        assert r.tokens_per_day == pytest.approx(r.train_tokens_per_s_per_gpu * 86_400 * n,
                                                 rel=1e-12)
    # Hand-worked: H = 10 GPUs × 48 h = 480 GPU-hours on 10 GPUs is 2 days.
    assert training.train_days(gpu_hours=480, num_gpus=10) == 2


# ----------------------------------------------------------------------------- collectives
@pytest.mark.parametrize("ranks, steps", [(1, 0), (2, 1), (3, 2), (4, 2), (5, 3)])
def test_tree_all_reduce_steps(ranks, steps):
    """2·⌈log₂ p⌉·(α + n/B): a lone rank sends nothing; two ranks take one step each way."""
    t = collectives.tree_all_reduce_time_s(num_ranks=ranks, bytes_total=1e6, latency_s=1e-6,
                                           bandwidth_bytes_per_s=1e9)
    assert t == pytest.approx(2 * steps * (1e-6 + 1e-3), abs=1e-15)


# ----------------------------------------------------------------------------- pipeline
def test_w_equal_to_b_is_accepted_where_the_bubbles_allow_it():
    """W = B (the whole backward is weight gradients) is allowed when 2W <= F + B and
    3W <= F&B + B: F = 2, B = W = 1, PP = 4: 1F1B 3 × 3 = 9 s, ZB1P 3 × (3 − 2) = 3 s,
    DualPipe (2 − 1) × (3 + 1 − 3) = 1 s."""
    res = {r.schedule: r.bubble_s for r in pipeline.pipeline_schedules(pp=4, f_s=2, b_s=1,
                                                                       w_s=1)}
    assert res == pytest.approx({"1f1b": 9, "zb1p": 3, "dualpipe": 1, "dualpipev": 1})
    by = {r.schedule: r for r in pipeline.pipeline_schedules(pp=4, f_s=2, b_s=1, w_s=1)}
    # DualPipeV: PP/2 devices, 2× parameters, PP + 1 micro-batches of activations.
    assert [(by[k].num_devices, by[k].param_copies, by[k].activation_micro_batches)
            for k in ("1f1b", "zb1p", "dualpipe", "dualpipev")] == [
        (4, 1, 4), (4, 1, 4), (4, 2, 5), (2, 2, 5)]
    with pytest.raises(UsageError, match="cannot exceed"):
        pipeline.pipeline_schedules(pp=4, f_s=2, b_s=1, w_s=1.001)


def test_w_at_the_largest_the_bubbles_absorb_gives_a_zero_bubble():
    """F = B = 1, PP = 4: W <= min((F + B)/2, (F&B + B)/3) = min(1, 1) = 1: at W = 1 both ZB1P
    and DualPipe have no bubble; just above, refused."""
    res = {r.schedule: r for r in pipeline.pipeline_schedules(pp=4, f_s=1, b_s=1, w_s=1,
                                                               num_micro_batches=4)}
    assert res["zb1p"].bubble_s == 0 and res["dualpipe"].bubble_s == 0
    assert res["zb1p"].bubble_frac == 0
    assert res["1f1b"].bubble_s == 6 and res["1f1b"].bubble_frac == pytest.approx(6 / 14)
    # F&B given smaller than F + B: 3W <= F&B + B binds first (W <= (0.5 + 1)/3 = 0.5).
    ok = {r.schedule: r.bubble_s for r in pipeline.pipeline_schedules(pp=4, f_s=1, b_s=1,
                                                                      w_s=0.5, fb_s=0.5)}
    assert ok["dualpipe"] == 0 and ok["zb1p"] == 3 * (2 - 1)
    with pytest.raises(UsageError, match="W <= 0.5 s"):
        pipeline.pipeline_schedules(pp=4, f_s=1, b_s=1, w_s=0.51, fb_s=0.5)


# ----------------------------------------------------------------------------- network
@pytest.mark.parametrize("q, want", [
    # q = 3 (δ = -1): 18 routers, k' = (9 + 1)/2 = 5, p = ⌈5/2⌉ = 3: 54 endpoints, 45 links.
    (3, (54, 18, 45, 5)),
    # q = 7 (δ = -1): 98 routers, k' = 11, p = 6: 588 endpoints, 539 links.
    (7, (588, 98, 539, 11)),
    # q = 4 (δ = 0): 32 routers, k' = 6, p = 3: 96 endpoints, 96 links.
    (4, (96, 32, 96, 6)),
    # q = 5 (δ = 1): 50 routers, k' = 7, p = 4: 200 endpoints, 175 links.
    (5, (200, 50, 175, 7)),
])
def test_slim_fly_for_every_residue_of_q_mod_4(q, want):
    assert network.slim_fly_counts(q=q) == want


def test_slim_fly_q_2_mod_4_is_refused():
    with pytest.raises(ValueError, match="q = 6"):
        network.slim_fly_counts(q=6)


@pytest.mark.parametrize("q, electrical", [
    # each router has (q − δ)/2 intra-subgraph links: q = 7 (δ = -1): 4 × 98 / 2 = 196;
    # q = 5 (δ = 1): 2 × 50 / 2 = 50; q = 4 (δ = 0): 2 × 32 / 2 = 32.
    (7, 196), (5, 50), (4, 32),
])
def test_slim_fly_links_split_into_intra_and_inter_subgraph(q, electrical):
    t = network.topology("sf", q=q)
    kinds = dict(t.links_by_kind)
    assert kinds["electrical"] == electrical
    # and each router's q inter-subgraph links: 2q² · q / 2 = q³.
    assert kinds["optical_long"] == q ** 3
    assert all(type(n) is int for _, n in t.links_by_kind)      # counts, never 196.0


@pytest.mark.parametrize("kind", ["ft2", "mpft", "ft3", "sf", "df"])
def test_topology_counts_are_whole_numbers(kind):
    t = network.topology(kind)
    counts = [t.num_endpoints, t.num_switches, t.num_links, *(n for _, n in t.links_by_kind)]
    assert all(type(n) is int for n in counts), counts


# ----------------------------------------------------------------------------- serving
@pytest.mark.parametrize("overlap, decode, batch, tp, communicates, want", [
    ("dual", True, 2, 1, True, ("dual", 2)),       # a sequence per micro-batch: enough
    ("dual", True, 1.99, 1, True, ("none", 1)),    # fewer than 2 sequences: cannot split
    ("dual", True, 1, 2, True, ("dual", 2)),       # TP 2 × 1 = 2 sequences in the TP group
    ("dual", True, 0.5, 2, True, ("none", 1)),
    ("dual", False, 1, 1, True, ("dual", 2)),      # prefill splits a prompt
    ("dual", True, 64, 1, False, ("dual", 1)),     # no EP traffic: nothing to overlap
    ("single", True, 1, 1, True, ("single", 1)),
    ("none", True, 64, 1, True, ("none", 1)),
])
def test_dual_overlap_needs_a_sequence_per_micro_batch(overlap, decode, batch, tp,
                                                       communicates, want):
    from planner.calc.serving.overlap import resolve_overlap

    assert resolve_overlap(overlap, decode=decode, batch_per_gpu=batch, tp=tp,
                           communicates=communicates) == want


# ----------------------------------------------------------------------------- routing
def test_routing_refuses_an_ep_size_that_is_not_a_multiple_of_the_nodes():
    v3, h800 = load_model("deepseek-v3"), load_hardware("h800")
    with pytest.raises(UsageError, match=r"EP size \(60\) must be a multiple of the nodes \(8\)"):
        routing.node_limited_routing(v3, h800, ep_size=60, num_nodes=8)
    # 256 experts do not split over 3 nodes (EP 6 is a multiple of 3).
    with pytest.raises(UsageError, match="do not split evenly over 3 nodes"):
        routing.node_limited_routing(v3, h800, ep_size=6, num_nodes=3)
    # EP 64 on 8 nodes is fine; EP 64 on 16 nodes (4 GPUs a node) too.
    assert routing.node_limited_routing(v3, h800, ep_size=64, num_nodes=8).num_nodes == 8
    assert routing.node_limited_routing(v3, h800, ep_size=64, num_nodes=16).num_nodes == 16


# ----------------------------------------------------------------------------- seeded sample
# The survivors of `python benchmarks/mutation.py --sample 150 --seed 0` that change a result
# (the others are in benchmarks/mutation_equivalent.md).
def test_a_plain_mlp_has_two_matrices():
    from planner.calc import params

    assert params.ffn_params(hidden_size=8, intermediate_size=16, gated=False) == 256  # 2·8·16
    assert params.ffn_params(hidden_size=8, intermediate_size=16) == 384               # 3·8·16


def test_a_moe_model_without_dense_layers_has_no_dense_ffn_parameters():
    from planner.calc import params

    for name in ("mixtral-8x7b", "qwen3-30b-a3b"):
        p = params.model_params(load_model(name))
        assert p.total["dense_ffn"] == 0 and p.activated["dense_ffn"] == 0, name


def test_ep_at_the_scale_up_domain_size_stays_on_it():
    """EP 8 on an 8-GPU NVLink domain runs over NVLink; EP 9 leaves it."""
    from planner.calc.serving import ep_layer_comm_s

    v3, h800 = load_model("deepseek-v3"), load_hardware("h800")
    kw = dict(tokens=100, copies=8, forwarding=False, up_bytes_per_s=160e9,
              out_bytes_per_s=40e9)
    dispatch, combine, link = ep_layer_comm_s(v3, h800, ep=8, **kw)
    assert link == "scale_up"
    assert dispatch == pytest.approx(100 * 8 * 7408 / 160e9)     # FP8 with DeepEP's scales
    assert combine == pytest.approx(100 * 8 * 7168 * 2 / 160e9)  # BF16
    assert ep_layer_comm_s(v3, h800, ep=9, **kw)[2] != "scale_up"


def test_fp8_mla_kv_has_one_scale_per_128_latent_values_rounded_up():
    from planner.calc.memory import mla_fp8_kv_bytes_per_token_per_layer as fp8_kv

    assert fp8_kv(kv_lora_rank=512, qk_rope_head_dim=64) == 512 + 4 * 4 + 64 * 2   # 656
    assert fp8_kv(kv_lora_rank=128, qk_rope_head_dim=64) == 128 + 1 * 4 + 128      # 260
    assert fp8_kv(kv_lora_rank=129, qk_rope_head_dim=64) == 129 + 2 * 4 + 128      # 265


def test_gqa_attention_activation_bytes_hand_worked():
    """d = 64, n_h = 4, n_kv = 2, d_h = 16: norm + quant 3d = 192; RoPE on q and k
    4·(4 + 2)·16 = 384; output quantized 3·4·16 = 192; residual 6d = 384: 1,152 B; at TP 2
    the per-head terms halve: 192 + 288 + 384 = 864 B."""
    from planner.calc.serving.blocks import activation_bytes_per_token_per_layer
    from planner.specs.model import DenseFFN, HeadAttention, Model

    m = Model(source="test", num_layers=2, hidden_size=64, vocab_size=10,
              attention=HeadAttention(kind="gqa", num_heads=4, num_kv_heads=2, head_dim=16),
              ffn=DenseFFN(kind="dense", intermediate_size=128))
    assert activation_bytes_per_token_per_layer(m, block="attention") == 1152
    assert activation_bytes_per_token_per_layer(m, block="attention", tp=2) == 864


def test_a_step_whose_communication_equals_its_compute_is_network_bound():
    from planner.calc.serving.kernels import KernelLedger
    from planner.calc.serving.result import Bottleneck, step_bottleneck

    ledger = KernelLedger()
    # 1e12 FLOPs at 1e15 FLOP/s and 1e9 B at 1e12 B/s: 1 ms each: compute bound (a tie).
    assert ledger.add("gemm", flops=1e12, bytes_moved=1e9, flop_per_s=1e15, bytes_per_s=1e12,
                      count=2) == pytest.approx(1e-3)
    (part,) = ledger.parts()
    assert part.bound == "compute" and part.time_s == pytest.approx(2e-3)
    b = step_bottleneck([part], compute_s=2e-3, ep_communication_s=2e-3, ep_link="scale_up",
                        tp_all_reduce_s=0, tp_link="scale_up")
    assert (b.resource, b.ep_link, b.tp_link) == ("network", "scale_up", None)
    b = step_bottleneck([part], compute_s=2e-3, ep_communication_s=1.9e-3, ep_link="scale_up",
                        tp_all_reduce_s=0, tp_link="scale_up")
    assert b.resource == "compute"
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):     # results are values
        b.resource = "memory"  # type: ignore[misc]
    assert isinstance(b, Bottleneck)


def test_the_node_limit_hint_is_a_whole_number_of_nodes():
    """64 nodes of 4 experts, a limit of 1 node holds 4 < 8 experts: 'node_limit >= 2'."""
    v3, h800 = load_model("deepseek-v3"), load_hardware("h800")
    with pytest.raises(UsageError, match=r"give node_limit >= 2 or fewer nodes"):
        routing.node_limited_routing(v3, h800, ep_size=64, num_nodes=64, node_limit=1)


def test_flops_inputs_name_the_per_head_dims():
    from planner.calc.flops import model_flops_per_token

    f = model_flops_per_token(load_model("deepseek-v3"))
    by = {i.name: i.value for i in f.inputs}
    assert by["d_qk + d_v (per-head dims)"] == 192 + 128
    assert by["c (average context attended)"] == 2048


def test_memory_headroom_is_what_the_gpu_has_left():
    from planner.calc.memory import memory_per_gpu

    fits = memory_per_gpu(load_model("llama-3.1-70b"), load_hardware("h200"))
    assert fits.fits and fits.headroom_bytes > 0
    assert fits.headroom_bytes + fits.memory_bytes_per_gpu == pytest.approx(
        fits.capacity_bytes_per_gpu)
    over = memory_per_gpu(load_model("deepseek-v3"), load_hardware("h100"))
    assert not over.fits and over.headroom_bytes < 0


#: The two accumulators built up in place (a step's kernel sums; a check's report as it goes).
MUTABLE = {"planner.calc.serving.kernels.KernelTotals", "planner.budget.checking.CheckReport"}


def test_every_result_dataclass_is_frozen():
    """Results are values: every dataclass of planner/calc and planner/budget is frozen (a
    cached or shared result cannot be changed under its other users), except the accumulators
    in :data:`MUTABLE`."""
    import dataclasses
    import importlib
    import pkgutil

    import planner.budget
    import planner.calc

    seen = set()
    for pkg in (planner.calc, planner.budget):
        for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            module = importlib.import_module(info.name)
            for cls in vars(module).values():
                if (isinstance(cls, type) and dataclasses.is_dataclass(cls)
                        and cls.__module__ == module.__name__):
                    name = f"{cls.__module__}.{cls.__qualname__}"
                    seen.add(name)
                    assert cls.__dataclass_params__.frozen is (name not in MUTABLE), name
    assert MUTABLE < seen and len(seen) > 30


def test_fit_holds_one_sequence_per_tp_group():
    """Llama-3.1-405B FP8 on H100 needs 8 GPUs at TP 8; each holds 1/8 of one 4,096-token
    sequence's KV: 126 × 2 × 8 × 128 × 2 B / 8 = 64,512 B per token, × 4,096 = 264,241,152 B."""
    from planner.calc.memory import fewest_gpus

    r = fewest_gpus(load_model("llama-3.1-405b"), load_hardware("h100"))
    assert (r.num_gpus, r.memory.tp) == (8, 8)
    assert r.memory.kv_cache_bytes_per_gpu == 264_241_152


def test_training_refuses_a_speed_or_a_run_that_rounds_to_zero():
    """1e-320 tokens a day on 2,048 GPUs is 0 tokens/s per GPU in floating point; 1e-320 tokens
    at 272.8B a day, 0 GPU-hours: both refused, never divided by or returned."""
    v3, h800 = load_model("deepseek-v3"), load_hardware("h800")
    with pytest.raises(UsageError, match="training speed comes out as 0"):
        training.train_run(v3, h800, tokens=1e12, num_gpus=2048, tokens_per_day=1e-320)
    with pytest.raises(UsageError, match="comes out as 0 GPU-hours"):
        training.train_run(v3, h800, tokens=1e-320, num_gpus=2048, tokens_per_day=272.8e9)


def test_a_single_moe_layer_holds_all_the_expert_weights():
    """A part's weight bytes per layer are its bytes over the layers that have it: with one MoE
    layer, all of them (the max(·, 1) only guards the parts a model has none of)."""
    from planner.calc.memory import memory_per_gpu
    from planner.calc.serving.shape import _per_layer_weight_bytes
    from planner.specs.model import HeadAttention, Model, MoEFFN

    m = Model(source="test", num_layers=1, hidden_size=64, vocab_size=10,
              attention=HeadAttention(kind="gqa", num_heads=4, num_kv_heads=2, head_dim=16),
              ffn=MoEFFN(kind="moe", num_routed_experts=8, num_experts_per_token=2,
                         expert_intermediate_size=32, num_shared_experts=1))
    mem = memory_per_gpu(m, load_hardware("h800"))
    held = mem.weights.as_dict()
    per = _per_layer_weight_bytes(mem, num_layers=1, num_dense_layers=0, num_moe_layers=1)
    for part in ("attention", "routed_experts", "shared_experts", "router"):
        assert per[part] == held[part] > 0, part
    assert per["dense_ffn"] == 0
    # One dense layer (DeepSeek-V2's first_k_dense_replace = 1) holds all the dense FFN's.
    m2 = Model(source="test", num_layers=3, hidden_size=64, vocab_size=10,
               attention=HeadAttention(kind="gqa", num_heads=4, num_kv_heads=2, head_dim=16),
               ffn=MoEFFN(kind="moe", num_routed_experts=8, num_experts_per_token=2,
                          expert_intermediate_size=32, num_dense_layers=1,
                          dense_intermediate_size=128))
    mem = memory_per_gpu(m2, load_hardware("h800"))
    held = mem.weights.as_dict()
    per = _per_layer_weight_bytes(mem, num_layers=3, num_dense_layers=1, num_moe_layers=2)
    assert per["dense_ffn"] == held["dense_ffn"] > 0
    assert per["routed_experts"] == held["routed_experts"] / 2


def test_a_tile_of_small_values_is_scaled_too():
    """Per-tile scaling maps the tile's largest |x| onto the format's largest value, however
    small: a tile whose largest |x| is 1e-3 keeps it exactly in E4M3 (without the scale it would
    round to E4M3's 2^-10 subnormal steps); an all-zero tile stays zero."""
    import numpy as np

    from planner.calc.numerics.formats import FLOAT_FORMATS, quantize_scaled

    x = np.zeros((1, 128))
    x[0, 0], x[0, 1] = 1e-3, -1e-3
    q = quantize_scaled(x, FLOAT_FORMATS["e4m3"], tile=128)
    assert q[0, 0] == pytest.approx(1e-3, rel=1e-12) and q[0, 1] == pytest.approx(-1e-3,
                                                                                  rel=1e-12)
    assert not quantize_scaled(np.zeros((1, 128)), FLOAT_FORMATS["e4m3"], tile=128).any()


def test_a_run_slower_than_one_token_per_second_per_gpu_is_still_a_run():
    """0.5 tokens/s per GPU on 2 GPUs is 86,400 tokens a day: 1e6 tokens take 11.57 days."""
    v3, h800 = load_model("deepseek-v3"), load_hardware("h800")
    r = training.train_run(v3, h800, tokens=1e6, num_gpus=2, tokens_per_day=86_400)
    assert r.train_tokens_per_s_per_gpu == pytest.approx(0.5)
    assert r.train_days == pytest.approx(1e6 / 86_400)


def test_intranode_nvlink_sends_the_own_nodes_share_over_nvlink_at_once():
    """EP 16 over two 8-GPU nodes: half the copies stay in the node (NVLink), half leave
    (NIC), both at once: T · k · max(½ b / B_NIC, ½ b / B_NVLink) = 100 × 8 × ½ × 7,408 / 40e9
    = 74.08 µs for the dispatch, the NIC half binding."""
    from planner.calc.serving import ep_layer_comm_s

    v3, h800 = load_model("deepseek-v3"), load_hardware("h800")
    dispatch, combine, link = ep_layer_comm_s(
        v3, h800, ep=16, tokens=100, copies=8, forwarding=False, up_bytes_per_s=160e9,
        out_bytes_per_s=40e9, intranode_nvlink=True)
    assert link == "scale_out + intranode NVLink"
    assert dispatch == pytest.approx(74.08e-6)
    assert combine == pytest.approx(100 * 8 * 0.5 * 7168 * 2 / 40e9)
    # With the NVLink share the slower: B_NVLink 10 GB/s: 100 × 8 × ½ × 7,408 / 10e9.
    dispatch, _, _ = ep_layer_comm_s(
        v3, h800, ep=16, tokens=100, copies=8, forwarding=False, up_bytes_per_s=10e9,
        out_bytes_per_s=40e9, intranode_nvlink=True)
    assert dispatch == pytest.approx(100 * 8 * 0.5 * 7408 / 10e9)


def test_tp_2_all_reduces_the_residual_stream():
    """TP 2 is the smallest TP with all-reduces: Llama-3.1-70B on 2 H100 at TP 2 pays them on
    the scale-up link; at TP 1 there are none."""
    from planner.calc import serving
    from planner.specs.deployment import ServeConfig

    m, h100 = load_model("llama-3.1-70b"), load_hardware("h100")
    tp2 = serving.serve(m, h100, ServeConfig(gpus=2, tp=2, batch_per_gpu=8)).bottleneck
    assert tp2.tp_link == "scale_up" and tp2.communication_s > 0
    tp1 = serving.serve(m, load_hardware("h200"), ServeConfig(gpus=1, tp=1, batch_per_gpu=8))
    assert tp1.bottleneck.tp_link is None and tp1.bottleneck.communication_s == 0


def test_stored_weight_bytes_per_parameter_of_each_format():
    """A routed-expert weight stores as FP8 with a 4 B scale per 128 × 128 block (1 + 1/4,096
    B), as FP4 with a 1 B scale per 32 weights (0.5 + 1/32 = 17/32 B), as BF16 in 2 B."""
    from planner.calc import params
    from planner.calc.memory import weight_bytes_per_gpu_by_part

    v3 = load_model("deepseek-v3")
    p = params.model_params(v3).total["routed_experts"]
    for dtype, per in (("fp8", 1 + 1 / 4096), ("fp4", 17 / 32), ("bf16", 2)):
        held = weight_bytes_per_gpu_by_part(v3, weights_dtype=dtype)["routed_experts"]
        assert held == pytest.approx(p * per, rel=1e-12), dtype
