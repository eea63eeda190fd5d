"""The paper's closed-form figures, recomputed from the catalog specs, beside what the paper prints.

The printed figures, the precision each is printed at, the paper's sections and the inputs it
states are data (``validation/paper.yaml``, :func:`planner.catalog.load_paper`). Each
:class:`PaperRow` holds the planner's value beside the printed one in base units (so "agrees"
means: the planner's value, rounded as the paper rounds it, is the printed figure), and a note
wherever the paper rounds an input (hidden "7K") or contradicts itself (Table 1 prints 7.28x
where its own values give 7.34x).

Ref: Zhao et al., "Insights into DeepSeek-V3", ISCA 2025, arXiv 2505.09343 (P): its printed
figures, as validation/paper.yaml records them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from planner.calc.ep import ep_decode_limit
from planner.calc.flops import model_flops_per_token
from planner.calc.kv_cache import model_kv_cache
from planner.catalog import load_hardware, load_model, load_paper

if TYPE_CHECKING:
    from planner.specs.validation import PaperFigure


@dataclass(frozen=True)
class PaperRow:
    """One figure: the planner's value beside the paper's printed one (base units)."""

    section: str
    quantity: str
    metric: str
    model: str
    hardware: str | None
    unit: str
    value: float
    paper_value: float | None
    paper_printed: str | None
    rounding: tuple[str, int] | None
    note: str = ""
    figure: str | None = None     # its key in validation/paper.yaml

    @property
    def diff_frac(self) -> float | None:
        """value / paper − 1, or None when the paper prints no value."""
        if self.paper_value is None:
            return None
        return self.value / self.paper_value - 1

    @property
    def agrees(self) -> bool | None:
        """Whether the value, rounded as the paper rounds it, is the printed figure."""
        if self.paper_value is None or self.rounding is None:
            return None
        from planner.specs.validation import Rounding

        mode, digits = self.rounding
        if mode not in ("round", "truncate", "sig"):
            raise ValueError(f"unknown rounding mode {mode!r}")
        return Rounding(mode=mode, digits=digits).agrees(self.value, self.paper_value)


def _row(key: str, value: float, note: str | None = None, *, model: str | None = None,
         quantity: str | None = None, rounded: bool = True) -> PaperRow:
    """The row of figure ``key``: the planner's ``value`` beside the printed one; ``note``,
    ``model`` and ``quantity`` default to the figure's; without ``rounded`` no agreement is
    claimed."""
    fig = load_paper().figure(key)
    rounding = (fig.rounding.mode, fig.rounding.digits) if fig.rounding and rounded else None
    return PaperRow(_section(fig.section), quantity or fig.quantity, fig.metric,
                    model or fig.model or "",
                    fig.hardware, fig.unit, value, fig.value, fig.printed, rounding,
                    fig.note if note is None else note, key)


def _section(key: str) -> str:
    return load_paper().sections[key]


def _figures(section: str, metric: str) -> list[tuple[str, PaperFigure]]:
    """The figures of ``section`` giving ``metric``, in the file's order."""
    return [(k, f) for k, f in load_paper().figures.items()
            if f.section == section and f.metric == metric]


def _input(key: str) -> Any:
    return load_paper().input(key)


def table1_kv_cache() -> list[PaperRow]:
    """P Table 1: KV cache per token in BF16, and the multipliers against its first model."""
    figures = load_paper().figures
    rows: list[PaperRow] = []
    reference = None
    for key, fig in _figures("table1", "kv_cache_bytes_per_token"):
        assert fig.model is not None, key   # Table 1's figures are of a model
        r = model_kv_cache(load_model(fig.model), dtype="bf16")
        reference = reference or r.kv_cache_bytes_per_token
        rows.append(_row(key, r.kv_cache_bytes_per_token,
                         f"{r.attention.upper()}: {r.elements_per_token_per_layer} elements "
                         "per layer x 2 B"))
        mult_key = f"table1.multiplier.{fig.model}"
        if mult_key in figures:
            mult_fig = figures[mult_key]
            mult = r.kv_cache_bytes_per_token / reference
            note = ""
            if not mult_fig.agrees(mult):
                note = (f"ERRATUM: P prints {mult_fig.printed}, but its own values give "
                        f"{r.kv_cache_bytes_per_token:,.0f} / {reference:,.0f} = {mult:.2f}x")
            rows.append(_row(mult_key, mult, note))
    return rows


def table2_train_flops() -> list[PaperRow]:
    """P Table 2: training GFLOP per token at s = 4096, in the convention P evidently used per row,
    and the planner's default convention beside each dense row."""
    seq_len = _input("table2_seq_len")
    rows: list[PaperRow] = []
    for key, fig in _figures("table2", "train_flops_per_token"):
        assert fig.model is not None, key   # Table 2's figures are of a model
        model = load_model(fig.model)
        convention = fig.convention or "exact-causal"
        r = model_flops_per_token(model, seq_len=seq_len, convention=convention)
        note = f"convention {convention}" + (f" ({fig.note})" if fig.note else "")
        rows.append(_row(key, r.train_flops_per_token, note))
        if convention != "exact-causal":
            d = model_flops_per_token(model, seq_len=seq_len, convention="exact-causal")
            rows.append(_row(key, d.train_flops_per_token,
                             "convention exact-causal: exact activated matmul parameters + "
                             "causal attention; P's row does not use it",
                             quantity=fig.quantity + " (default)", rounded=False))
    return rows


def _unprinted(quantity: str, r: Any, note: str) -> PaperRow:
    """A §2.3.2 row the paper does not print: EP time per layer of DeepSeek-V3 on H800."""
    return PaperRow(_section("ep"), quantity, "ep_comm_time_per_layer_s", "deepseek-v3", "h800",
                    "s", r.ep_comm_time_per_layer_s, None, None, None, note)


def ep_speed_limit() -> list[PaperRow]:
    """P §2.3.2: EP communication time and the decode ceiling on H800 (400 Gbit/s IB) and
    GB200 NVL72, with P's rounded inputs, then with the exact hidden size and DeepEP's bytes."""
    v3 = load_model("deepseek-v3")
    paper_inputs = dict(hidden_size=_input("ep_hidden_size"),
                        dispatch_bytes_per_element=_input("ep_dispatch_bytes_per_element"),
                        combine_bytes_per_element=_input("ep_combine_bytes_per_element"))
    h800 = ep_decode_limit(v3, load_hardware("h800"), **paper_inputs)
    gb200 = ep_decode_limit(v3, load_hardware("gb200-nvl72"), ep_size=_input("gb200_ep_size"),
                            **paper_inputs)
    rows = [_row("ep.comm.h800", h800.ep_comm_time_per_layer_s),
            _row("ep.time_per_layer.h800", h800.time_per_layer_s),
            _row("ep.tpot.h800", h800.ep_ceiling_tpot_s),
            _row("ep.tokens_per_s.h800", h800.ep_ceiling_tokens_per_s),
            _row("ep.comm.gb200-nvl72", gb200.ep_comm_time_per_layer_s),
            _row("ep.tpot.gb200-nvl72", gb200.ep_ceiling_tpot_s),
            _row("ep.tokens_per_s.gb200-nvl72", gb200.ep_ceiling_tokens_per_s)]
    exact = ep_decode_limit(v3, load_hardware("h800"), dispatch_bytes_per_element=1,
                            combine_bytes_per_element=2)
    deepep = ep_decode_limit(v3, load_hardware("h800"))
    effective = ep_decode_limit(v3, load_hardware("h800"), achievable=True, **paper_inputs)
    rows += [
        _unprinted("EP comm / layer, hidden 7168", exact,
                   f"TPOT {exact.ep_ceiling_tpot_s * 1e3:.2f} ms, "
                   f"{exact.ep_ceiling_tokens_per_s:.1f} "
                   "tokens/s; not printed by P"),
        _unprinted("EP comm / layer, DeepEP bytes", deepep,
                   f"{deepep.dispatch_bytes_per_token_expert:,.0f} B dispatch (with scales) + "
                   f"{deepep.combine_bytes_per_token_expert:,.0f} B combine; TPOT "
                   f"{deepep.ep_ceiling_tpot_s * 1e3:.2f} ms, "
                   f"{deepep.ep_ceiling_tokens_per_s:.1f} tokens/s "
                   "(planner default)"),
        _unprinted("EP comm / layer, 40 GB/s IB", effective,
                   f"{effective.bandwidth_basis}; TPOT {effective.ep_ceiling_tpot_s * 1e3:.2f} ms, "
                   f"{effective.ep_ceiling_tokens_per_s:.1f} tokens/s"),
    ]
    return rows


#: The figures of each topology in P Table 3 (validation/paper.yaml: table3.<kind>.<figure>).
_TABLE3_METRICS = ("endpoints", "switches", "links", "cost", "cost_per_endpoint")


def paper_table3() -> dict[str, tuple]:
    """P Table 3 as printed, by topology kind: (endpoints, switches, links, cost in M$, the
    printed cost per endpoint in k$ as text)."""
    figures = load_paper().figures
    table = {}
    for _, fig in _figures("table3", "num_endpoints"):
        assert fig.topology is not None   # Table 3's figures are of a topology
        ends, switches, links, cost, per_end = (figures[f"table3.{fig.topology}.{m}"]
                                                for m in _TABLE3_METRICS)
        table[fig.topology] = (ends.value, switches.value, links.value, cost.value / 1e6,
                               per_end.printed.removesuffix(" k$"))
    return table


def __getattr__(name: str) -> Any:
    """``PAPER_TABLE3``: :func:`paper_table3`, read on first use."""
    if name == "PAPER_TABLE3":
        return paper_table3()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_network_prices():
    """The calibrated price set shipped in ``hardware/network/ib-ndr-400g.yaml``."""
    from planner.catalog import catalog_dir
    from planner.specs.load import load_spec_file
    from planner.specs.network import NetworkPrices

    return load_spec_file(NetworkPrices, catalog_dir("hardware") / "network" / "ib-ndr-400g.yaml")


def table3_network() -> list[PaperRow]:
    """P Table 3: endpoints, switches and links of five 64-port topologies (exact), and the cost
    per endpoint under the calibrated price set (hardware/network/ib-ndr-400g.yaml)."""
    from planner.calc.network import topology, topology_cost

    prices = default_network_prices()
    rows: list[PaperRow] = []
    for _, fig in _figures("table3", "num_endpoints"):
        assert fig.topology is not None   # Table 3's figures are of a topology
        c = topology_cost(topology(fig.topology), prices)
        t = c.topology
        keys = [f"table3.{fig.topology}.{m}" for m in _TABLE3_METRICS]
        rows += [_row(key, value, t.params, model=t.name) for key, value in
                 zip(keys, (t.num_endpoints, t.num_switches, t.num_links))]
        rows += [_row(keys[3], c.cost_usd, model=t.name),
                 _row(keys[4], c.cost_per_endpoint_usd, model=t.name)]
    return rows


def training_cost() -> list[PaperRow]:
    """P Table 4 and V3R Table 1: throughput, MFU and GPU-hours of DeepSeek-V3's pre-training
    on 2,048 H800, from the printed 272.80B tokens per day."""
    from planner.calc.training import train_cost_usd, train_run

    v3, h800 = load_model("deepseek-v3"), load_hardware("h800")
    run = dict(num_gpus=_input("train_num_gpus"), tokens_per_day=_input("train_tokens_per_day"))
    figures = load_paper().figures
    rows: list[PaperRow] = []
    for kind in ("causal", "non-causal"):
        tflops = figures[f"training.tflops.{kind}"]
        conv = tflops.convention
        assert conv is not None, kind   # the training figures state their FLOPs convention
        r = train_run(v3, h800, tokens=1e12, convention=conv, **run)
        note = (f"{r.train_tokens_per_s_per_gpu:,.1f} tokens/s/GPU × "
                f"{r.train_flops_per_token / 1e9:.2f} GFLOP ({conv}); P's figure implies "
                f"{tflops.value / r.train_tokens_per_s_per_gpu / 1e9:.1f} GFLOP/token")
        rows.append(_row(f"training.tflops.{kind}", r.achieved_flop_per_s_per_gpu, note))
        rows.append(_row(f"training.mfu.{kind}", r.mfu_frac))
    per_t = train_run(v3, h800, tokens=1e12, **run)
    rows.append(_row("training.gpu_hours_per_trillion", per_t.train_gpu_hours))
    rows.append(_row("training.days_per_trillion", per_t.train_days))
    pretrain_tokens = _input("pretrain_tokens")
    pre = train_run(v3, h800, tokens=pretrain_tokens, **run)
    rows.append(_row("training.pretraining_gpu_hours", pre.train_gpu_hours))
    # The planner's own total, from its pre-training GPU-hours; V3R's is 14.8 × its rounded
    # 180K per trillion tokens (so the two differ at V3R's rounding, as pre-training does).
    later = _input("context_extension_gpu_hours") + _input("post_training_gpu_hours")
    total = pre.train_gpu_hours + later
    v3r_total = (pretrain_tokens / 1e12 * figures["training.gpu_hours_per_trillion"].value
                 + later)
    rows.append(_row("training.total_gpu_hours", total,
                     f"{pre.train_gpu_hours:,.0f} pre-training (272.80B tokens/day) + "
                     f"{later:,.0f} context extension and post-training; V3R's is 14.8 × its "
                     f"rounded 180K + the same = {v3r_total:,.0f}"))
    cost = train_cost_usd(gpu_hours=total, usd_per_gpu_hour=h800.price_usd_per_gpu_hour)
    v3r_cost = train_cost_usd(gpu_hours=v3r_total, usd_per_gpu_hour=h800.price_usd_per_gpu_hour)
    rows.append(_row("training.total_cost", cost,
                     f"the planner's GPU-hours at ${h800.price_usd_per_gpu_hour:g} per GPU-hour "
                     f"(hardware/h800.yaml); V3R's from its rounded 180K: ${v3r_cost / 1e6:.3f}M"))
    return rows


def routing_figures() -> list[PaperRow]:
    """P §4.3 / V3R §3.2.2: experts per node at no extra IB cost, and the most experts a token
    may reach for the IB cost of 4 nodes."""
    from planner.calc.routing import node_limited_routing

    r = node_limited_routing(load_model("deepseek-v3"), load_hardware("h800"),
                             ep_size=_input("routing_ep_size"),
                             num_nodes=_input("routing_num_nodes"))
    return [
        _row("routing.free_experts_per_node", r.free_experts_per_node),
        _row("routing.max_experts_same_ib_cost", r.max_experts_same_ib_cost),
        _row("routing.ib_copies_worst", r.ib_copies_worst_without),
        _row("routing.ib_copies_forwarded", r.ib_copies_worst_with,
             f"expected under uniform routing: {r.ib_copies_per_token_with_forwarding:.2f} "
             f"(without forwarding {r.ib_copies_per_token_without_forwarding:.2f})"),
    ]


def paper_rows() -> list[PaperRow]:
    """Every closed-form figure of P that the planner computes, in the paper's order."""
    return (table1_kv_cache() + table2_train_flops() + ep_speed_limit() + table3_network()
            + routing_figures() + training_cost())
