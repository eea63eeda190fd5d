"""Network topologies (paper Table 3): endpoints, switches and links, and their cost.

Ref: P §5.1, Table 3 (arXiv 2505.09343). Topologies: two-layer fat tree (FT2),
multi-plane two-layer fat tree (MPFT), three-layer fat tree (FT3), Slim Fly (SF, MMS graph) and
Dragonfly (DF, canonical).

Convention (P's): ``links`` counts switch-to-switch links only; every endpoint also has one link
to its switch (per plane), counted apart as ``endpoint_links``. Costs follow the Slim Fly cost
methodology P cites (switches priced per unit, cables by kind and length class), with the prices
of a :class:`~planner.specs.network.NetworkPrices` spec (``hardware/network/*.yaml``); P does not
print its prices, so the defaults are assumptions calibrated to P's printed costs (see that file).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner import vocab
from planner.calc.common import Parts

#: A fat-tree switch uses half its ports down, half up (non-blocking).
FAT_TREE_DOWN_FRAC = 0.5
#: Slim Fly: endpoints per router = ceil(network radix k' / 2) (Besta & Hoefler, SC'14 §3).
SLIM_FLY_ENDPOINT_FRAC = 0.5
#: Link kinds, in the order costs are shown.
LINK_KINDS = ("endpoint", "electrical", "optical", "optical_long")


@dataclass(frozen=True)
class Topology:
    """Counts of one network and its switch-to-switch links by kind (electrical inside a rack,
    optical between racks, optical_long across rows)."""

    name: str
    kind: str
    params: str
    num_endpoints: int
    num_switches: int
    num_links: int
    #: Switch-to-switch links by kind; they sum to ``num_links``.
    links_by_kind: tuple[tuple[str, int], ...]
    #: Endpoint-to-switch links (one per endpoint and plane).
    num_endpoint_links: int
    layout: str


def fat_tree_2_counts(*, radix):
    """(endpoints, switches, switch-to-switch links) of a two-layer fat tree of radix-k switches.

    Formula: endpoints k²/2; switches 3k/2 (k leaves + k/2 spines); links k²/2.
    Ref: P Table 3, FT2; paper.md §7.
    Convention: non-blocking, every leaf uses k/2 ports down and k/2 up.
    Example: k = 64: 2,048 endpoints, 96 switches, 2,048 links.
    """
    return radix * radix // 2, 3 * radix // 2, radix * radix // 2


def fat_tree_3_counts(*, radix):
    """(endpoints, switches, switch-to-switch links) of a three-layer fat tree.

    Formula: endpoints k³/4; switches 5k²/4 (k²/2 edge + k²/2 aggregation + k²/4 core);
    links k³/2 (k³/4 edge-aggregation + k³/4 aggregation-core).
    Ref: P Table 3, FT3; paper.md §7.
    Convention: non-blocking k-ary fat tree.
    Example: k = 64: 65,536 endpoints, 5,120 switches, 131,072 links.
    """
    return radix**3 // 4, 5 * radix * radix // 4, radix**3 // 2


def slim_fly_counts(*, q):
    """(endpoints, routers, router-to-router links, network radix k') of a Slim Fly (MMS graph).

    Formula: q = 4w + δ, δ ∈ {-1, 0, 1}; routers 2q²; k' = (3q − δ)/2; endpoints per router
    p = ⌈k'/2⌉; endpoints 2q²·p; links 2q²·k'/2.
    Ref: Besta & Hoefler, "Slim Fly", SC'14 §3; P Table 3, SF; paper.md §7.
    Convention: q a prime power with δ defined (q mod 4 ∈ {0, 1, 3}).
    Example: q = 28 (δ = 0): 1,568 routers, k' = 42, p = 21, 32,928 endpoints, 32,928 links.
    """
    delta = {0: 0, 1: 1, 3: -1}.get(q % 4)
    if delta is None:
        raise ValueError(f"Slim Fly needs q = 4w + δ with δ in -1, 0, 1 (got q = {q})")
    routers = 2 * q * q
    network_radix = (3 * q - delta) // 2
    per_router = math.ceil(network_radix * SLIM_FLY_ENDPOINT_FRAC)
    return routers * per_router, routers, routers * network_radix // 2, network_radix


def dragonfly_counts(*, p, a, h, g):
    """(endpoints, routers, local links, global links) of a canonical Dragonfly.

    Formula: endpoints p·a·g; routers a·g; local links g·a(a−1)/2 (all-to-all inside a
    group); global links g·a·h/2.
    Ref: Kim et al., ISCA'08; P Table 3, DF; paper.md §7 (only g = 511 reproduces P's counts).
    Convention: p endpoints and h global links per router, a routers per group, g groups.
    Example: p = h = 16, a = 32, g = 511: 261,632 endpoints, 16,352 routers,
    253,456 + 130,816 = 384,272 links.
    """
    return p * a * g, a * g, g * a * (a - 1) // 2, g * a * h // 2


def topology(kind: str, *, radix: int = 64, planes: int = 8, q: int = 28, p: int = 16,
             a: int = 32, h: int = 16, g: int = 511) -> Topology:
    """One topology of P Table 3 by kind (ft2, mpft, ft3, sf, df), with its links by kind.

    Layout (the link kinds priced): FT2/MPFT leaf-spine links run between racks (optical); FT3
    edge-aggregation links stay inside a pod (optical) and aggregation-core links cross rows
    (optical_long); Slim Fly places each of its 2q subgraphs of q routers in one rack group, so a
    router's (q − δ)/2 intra-subgraph links are electrical and its q inter-subgraph links are
    optical_long; Dragonfly groups are racks: local links electrical, global links optical_long.

    Formula: the counts of :func:`fat_tree_2_counts` (MPFT: × planes), :func:`fat_tree_3_counts`,
    :func:`slim_fly_counts`, :func:`dragonfly_counts`.
    Ref: P §5.1, Table 3; paper.md §7.
    Convention: ``num_links`` counts switch-to-switch links; endpoint links apart.
    Example: ``topology("mpft")`` (k = 64, 8 planes): 8 × 2,048 = 16,384 endpoints, 8 × 96 = 768
    switches, 16,384 optical links; ``topology("sf")`` (q = 28): 32,928 endpoints, 1,568
    switches, 10,976 electrical + 21,952 optical_long = 32,928 links.
    """
    if kind == "ft2":
        e, s, links = fat_tree_2_counts(radix=radix)
        return Topology("FT2", kind, f"k = {radix}", e, s, links, (("optical", links),), e,
                        "leaf-spine links between racks")
    if kind == "mpft":
        e, s, links = fat_tree_2_counts(radix=radix)
        return Topology("MPFT", kind, f"k = {radix}, {planes} planes", planes * e, planes * s,
                        planes * links, (("optical", planes * links),), planes * e,
                        f"{planes} independent FT2 planes, one NIC per plane")
    if kind == "ft3":
        e, s, links = fat_tree_3_counts(radix=radix)
        return Topology("FT3", kind, f"k = {radix}", e, s, links,
                        (("optical", links // 2), ("optical_long", links // 2)), e,
                        "edge-aggregation inside pods, aggregation-core across rows")
    if kind == "sf":
        e, s, links, k_net = slim_fly_counts(q=q)
        delta = k_net * 2 - 3 * q
        local = s * ((q + delta) // 2) // 2
        return Topology("SF", kind, f"q = {q}, k' = {k_net}", e, s, links,
                        (("electrical", local), ("optical_long", links - local)), e,
                        "intra-subgraph links in a rack group, inter-subgraph across rows")
    if kind == "df":
        e, s, local, glob = dragonfly_counts(p=p, a=a, h=h, g=g)
        return Topology("DF", kind, f"p = {p}, a = {a}, h = {h}, g = {g}", e, s, local + glob,
                        (("electrical", local), ("optical_long", glob)), e,
                        "groups are racks: local links electrical, global links across rows")
    raise ValueError(f"unknown topology {kind!r}; expected ft2, mpft, ft3, sf or df")


#: P Table 3's five networks, in its order.
TABLE3_KINDS = vocab.TOPOLOGIES


def network_cost_usd(*, num_switches, switch_usd, links_by_kind, link_usd):
    """Cost of a network (USD): switches plus links priced by kind.

    Formula: C = S·c_switch + Σ_kind L_kind·c_kind (endpoint links included as a kind).
    Ref: P §5.1 (the Slim Fly cost methodology: switches per unit, cables by kind and length).
    Convention: NICs and GPUs are not counted; a switch price includes its port optics.
    Example: FT2 with c_switch = 60,000, 2,048 endpoint links at 700 and 2,048 optical at 900:
    96·60,000 + 2,048·700 + 2,048·900 = 9,036,800 USD.
    """
    return num_switches * switch_usd + sum(n * link_usd[k] for k, n in links_by_kind)


@dataclass(frozen=True)
class NetworkCost:
    topology: Topology
    cost_parts: Parts          # USD: switches and links by kind
    cost_usd: float
    cost_per_endpoint_usd: float
    prices: str                # which price set was used


def topology_cost(topo: Topology, prices) -> NetworkCost:
    """The cost of ``topo`` under ``prices`` (a :class:`~planner.specs.network.NetworkPrices`),
    with its parts: switches, endpoint links, and switch links by kind (USD).

    Formula: C = S · c_switch + Σ_kind n_kind · c_kind (:func:`network_cost_usd`); per endpoint
    C / E.
    Ref: P Table 3 (cost columns); Besta & Hoefler, SC'14 (cost methodology).
    Convention: NICs and GPUs not counted; the prices are assumptions calibrated to P's costs.
    Example: FT2 (k = 64) at the ib-ndr-400g prices: switches 96 × 60,000 = 5,760,000; endpoint
    links 2,048 × 700 = 1,433,600; optical 2,048 × 900 = 1,843,200; total 9,036,800 USD, 4,412.5
    USD per endpoint (P: 4.39 k$).
    """
    link_usd = prices.link_usd()
    kinds = (("endpoint", topo.num_endpoint_links),) + topo.links_by_kind
    parts = [("switches", topo.num_switches * prices.switch_usd)]
    parts += [(f"{k} links", n * link_usd[k]) for k, n in kinds]
    total = network_cost_usd(num_switches=topo.num_switches, switch_usd=prices.switch_usd,
                             links_by_kind=kinds, link_usd=link_usd)
    return NetworkCost(topo, Parts(tuple(parts)), total, total / topo.num_endpoints,
                       prices.name or "prices")
