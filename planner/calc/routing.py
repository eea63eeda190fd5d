"""Node-limited routing: scale-out (InfiniBand) traffic per token with and without NVLink
forwarding, the expected number of distinct target nodes, and EP time per layer in training.

Ref: P §4.3 (arXiv 2505.09343) and V3R §3.2.2 (arXiv 2412.19437). Without forwarding a token sends one
copy over IB per selected expert on another node (8 experts on 8 nodes: 8t); with node-limited
routing it sends one copy per distinct target node (M ≤ 4 for DeepSeek-V3), which NVLink then
forwards to the experts inside that node.

Convention: expected values assume the k experts are drawn uniformly, without replacement, from
the experts of the nodes a token may use (real gating is not uniform; worst cases are given too).
Node = expert group (DeepSeek-V3 on 8 nodes: 8 groups of 32 experts); on more nodes than groups
a group spans several nodes, all of them eligible (:func:`eligible_nodes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb
from typing import TYPE_CHECKING

from planner.calc.common import Input
from planner.errors import UsageError

#: The formula and reference that explain node-limited routing.
FORMULA = ("E[M] = N(1 − C((N−1)E_n, k)/C(N·E_n, k)); IB time = T · M_remote "
           "· h · b / B_IB; NVLink time = T · k · h · b / B_NVLink")
REF = "P §4.3; V3R §3.2.2"

if TYPE_CHECKING:
    from planner.specs.hardware import Hardware
    from planner.specs.model import Model, MoEFFN


def expected_distinct_nodes(*, experts_per_token, experts_per_node, num_nodes):
    """Expected number of distinct nodes holding a token's k experts (count).

    Formula: E[M] = N · (1 − C((N − 1)·E_n, k) / C(N·E_n, k)), N the nodes the token may use,
    E_n experts per node.
    Ref: inclusion of each node with probability 1 − P(none of k draws lands on it).
    Convention: k uniform draws without replacement; when the N nodes hold fewer than k experts
    (N·E_n < k: a node limit too tight, or fewer experts than nodes), the token reaches all N.
    Example: k = 8, E_n = 32, N = 4 (DeepSeek-V3's limit): 3.629; N = 8 (no limit): 5.295;
    k = 8, E_n = 1, N = 4: 4 (every node).
    """
    total = num_nodes * experts_per_node
    if total < experts_per_token:
        return num_nodes
    return num_nodes * (1 - comb(total - experts_per_node, experts_per_token)
                        / comb(total, experts_per_token))


def ib_copies_per_token(*, distinct_target_nodes, num_nodes):
    """Copies of a token sent over IB (count): one per distinct target node other than its own.

    Formula: M_remote = M · (N_total − 1) / N_total (a target node is the sender's own node with
    probability 1/N_total).
    Ref: P §4.3. Convention: expected value; worst case is M.
    Example: M = 3.629, 8 nodes: 3.175 copies.
    """
    return distinct_target_nodes * (num_nodes - 1) / num_nodes


def free_experts_per_node(*, scale_up_bytes_per_s, scale_out_bytes_per_s):
    """Experts per node a token may use at no extra cost over one IB copy (count).

    Formula: B_NVLink / B_IB (NVLink forwards to this many experts in the time IB delivers one
    copy).
    Ref: V3R §3.2.2 ("160 vs 50 GB/s ... an average of 3.2 experts per node").
    Convention: V3R divides NVLink's achievable 160 GB/s by IB's nominal 50 GB/s.
    Example: 160e9 / 50e9 = 3.2; with 4 nodes, up to 4 × 3.2 = 12.8 ≈ 13 experts.
    """
    return scale_up_bytes_per_s / scale_out_bytes_per_s


@dataclass(frozen=True)
class RoutingResult:
    model: str
    hardware: str
    num_nodes: int
    experts_per_node: float
    experts_per_token: int
    node_limit: int
    expected_distinct_nodes_limited: float
    expected_distinct_nodes_unlimited: float
    ib_copies_per_token_without_forwarding: float
    ib_copies_per_token_with_forwarding: float
    ib_copies_worst_without: int
    ib_copies_worst_with: int
    free_experts_per_node: float
    max_experts_same_ib_cost: float
    tokens_per_gpu: float
    ib_time_per_layer_s: float
    nvlink_time_per_layer_s: float
    ep_time_per_layer_s: float
    bottleneck: str
    inputs: tuple[Input, ...]


def eligible_nodes(ffn: MoEFFN, *, nodes: int, group_limit: int | None = None) -> int:
    """Nodes a token's experts may lie on under group-limited routing (count).

    Formula: min(N, M·N/G) when the G expert groups span N ≥ G nodes (N/G nodes a group);
    min(N, M) when each node holds whole groups (N < G), M = the groups a token may use
    (``group_limit``, default the model's ``num_limited_groups``).
    Ref: V3R §2.1.2 (node-limited routing: at most M = 4 of G = 8 groups); P §4.3.
    Convention: a group on several nodes makes all of them eligible (EP 128 on 16 nodes:
    4 groups of 2 nodes, 8 eligible nodes, not 4).
    Example: DeepSeek-V3 (G = 8, M = 4) at EP 64 (8 nodes): 4; at EP 128 (16 nodes): 8; at
    EP 256 (32 nodes): 16.
    """
    groups = ffn.num_expert_groups
    limit = group_limit or ffn.num_limited_groups or groups
    if nodes >= groups:
        return min(nodes, limit * nodes // groups)
    return min(nodes, limit)


def _routing_layout(model: Model, *, ep_size: int, num_nodes: int,
                    node_limit: int | None) -> tuple[MoEFFN, int, int, int]:
    """(the MoE FFN, k experts per token, E_n experts per node, M the node limit), or a
    UsageError: a dense model, an EP size or expert count that does not split over the nodes,
    a node limit whose nodes hold fewer than k experts."""
    from planner.specs.model import MoEFFN

    ffn = model.ffn
    if not isinstance(ffn, MoEFFN):
        raise UsageError(f"{model.label} is a dense model: routing needs an MoE model")
    if ep_size % num_nodes:
        raise UsageError(f"the EP size ({ep_size}) must be a multiple of the nodes ({num_nodes})")
    k = ffn.num_experts_per_token
    per_node = ffn.num_routed_experts / num_nodes
    if per_node != int(per_node):
        raise UsageError(f"{ffn.num_routed_experts} routed experts do not split evenly over "
                         f"{num_nodes} nodes")
    # The model's group limit, in nodes (a group may span several nodes); or the given one.
    limit = (eligible_nodes(ffn, nodes=num_nodes) if node_limit is None
             else min(node_limit, num_nodes))
    if limit * per_node < k:
        raise UsageError(f"a node limit of {limit} node(s) x {int(per_node)} experts per node "
                         f"holds fewer than the {k} experts a token picks: give node_limit >= "
                         f"{-(-k // int(per_node))} or fewer nodes")
    return ffn, k, int(per_node), limit


def node_limited_routing(model: Model, hardware: Hardware, *, ep_size: int, num_nodes: int,
                         tokens_per_gpu: float = 4096, node_limit: int | None = None,
                         dispatch_bytes_per_element: float = 1,
                         combine_bytes_per_element: float = 2) -> RoutingResult:
    """IB traffic and EP time per layer for an MoE model trained with EP over ``num_nodes``.

    Bandwidths: NVLink at the spec's achievable figure (peak × efficiency), IB at its nominal
    peak (as V3R compares them); dispatch and combine of one micro-batch of ``tokens_per_gpu``
    tokens per GPU, forwarded over NVLink inside each target node; IB and NVLink run at once, so
    the layer takes the longer of the two.

    Formula: E[M] = :func:`expected_distinct_nodes` over the M node limit; IB copies per token
    M_remote = E[M]·(N − 1)/N (without forwarding k·(N − 1)/N); IB time = T · M_remote · h · b /
    B_IB; NVLink time = T · k · h · b / B_NVLink; layer = max of the two.
    Ref: P §4.3; V3R §3.2.2; paper.md §6.
    Convention: uniform expert draws (module docstring); b = dispatch + combine bytes per element
    (1 + 2); the node limit defaults to the nodes the model's ``num_limited_groups`` groups span
    (:func:`eligible_nodes`).
    Example: DeepSeek-V3 on H800, EP 64 over N = 8 nodes, T = 4,096: k = 8, E_n = 256 / 8 = 32,
    M = 4: E[M] = 3.629 (5.295 unlimited); IB copies 3.175 (7.0 without forwarding); IB time
    4,096 × 3.175 × 7,168 × 3 / 50e9 = 5.594 ms; NVLink 4,096 × 8 × 7,168 × 3 / 160e9 = 4.404 ms:
    IB-bound, 5.594 ms per layer; 160 / 50 = 3.2 free experts per node.
    """
    ffn, k, per_node, limit = _routing_layout(model, ep_size=ep_size, num_nodes=num_nodes,
                                              node_limit=node_limit)
    e_lim = expected_distinct_nodes(experts_per_token=k, experts_per_node=per_node,
                                    num_nodes=limit)
    e_all = expected_distinct_nodes(experts_per_token=k, experts_per_node=per_node,
                                    num_nodes=num_nodes)
    without = k * (num_nodes - 1) / num_nodes
    with_fwd = ib_copies_per_token(distinct_target_nodes=e_lim, num_nodes=num_nodes)
    nvl = hardware.require_scale_up().bandwidth_bytes_per_s * hardware.efficiency_frac(
        "scale_up_bandwidth").frac
    ib = hardware.scale_out.bandwidth_bytes_per_s
    free = free_experts_per_node(scale_up_bytes_per_s=nvl, scale_out_bytes_per_s=ib)
    h = model.hidden_size
    bytes_per_copy = h * (dispatch_bytes_per_element + combine_bytes_per_element)
    ib_time = tokens_per_gpu * with_fwd * bytes_per_copy / ib
    nvl_time = tokens_per_gpu * k * bytes_per_copy / nvl
    inputs = (
        Input("k (routed experts per token)", k, "count", "model spec"),
        Input("E_n (experts per node)", per_node, "count",
              f"{ffn.num_routed_experts} routed / {num_nodes} nodes"),
        Input("M (node limit)", limit, "nodes",
              "model spec num_limited_groups" if node_limit is None else "given"),
        Input("T (tokens per GPU per micro-batch)", tokens_per_gpu, "tokens", "given"),
        Input("b (bytes per element, dispatch + combine)",
              dispatch_bytes_per_element + combine_bytes_per_element, "bytes", "given"),
        Input("B_NVLink (achievable)", nvl, "bytes/s", "scale_up peak × efficiency"),
        Input("B_IB (nominal)", ib, "bytes/s", "scale_out peak"),
    )
    return RoutingResult(
        model=model.name or model.label, hardware=hardware.name or hardware.label,
        num_nodes=num_nodes, experts_per_node=per_node, experts_per_token=k, node_limit=limit,
        expected_distinct_nodes_limited=e_lim, expected_distinct_nodes_unlimited=e_all,
        ib_copies_per_token_without_forwarding=without,
        ib_copies_per_token_with_forwarding=with_fwd,
        ib_copies_worst_without=min(k, num_nodes),   # as P counts: 8 experts on 8 nodes = 8t
        ib_copies_worst_with=limit,
        free_experts_per_node=free, max_experts_same_ib_cost=limit * free,
        tokens_per_gpu=tokens_per_gpu, ib_time_per_layer_s=ib_time,
        nvlink_time_per_layer_s=nvl_time, ep_time_per_layer_s=max(ib_time, nvl_time),
        bottleneck="scale_out (IB)" if ib_time >= nvl_time else "scale_up (NVLink)",
        inputs=inputs,
    )
