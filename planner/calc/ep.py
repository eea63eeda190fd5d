"""Expert-parallel (EP) decode: communication time per layer and the tokens/s ceiling it implies.

Ref: paper §2.3.2 ("Inference speed limit", arXiv 2505.09343). Each device holds
one expert and decodes about 32 tokens at a time; each token is dispatched to 9 experts
(8 routed + 1 shared) in FP8 and combined back in BF16 over a 400 Gbit/s (50 GB/s) NIC:
(1 + 2) B × 32 × 9 × 7000 / 50 GB/s = 120.96 µs per layer; two micro-batches overlap computation
with communication, so a layer takes 2 × 120.96 µs and 61 layers take 14.76 ms: 67.76 tokens/s.

Convention: computation is fully hidden behind communication (a communication-only ceiling);
network latency is not counted; bandwidth is per GPU, unidirectional. The paper counts one byte
per FP8 element; DeepEP actually sends a 4-byte scale per 128 elements and 16 bytes of
per-token metadata, 7,408 B per token and expert for hidden 7168 (the planner's default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.calc.common import Input, argument_origin
from planner.errors import UsageError
from planner.specs.hardware import Hardware, ScaleOut, ScaleUp
from planner.specs.model import Model, MoEFFN
from planner.units import GB, dtype_bytes

FORMULA = ("ep_comm_time_per_layer_s = (b_dispatch + b_combine) · T · k / B_w;  "
           "time_per_layer_s = m · ep_comm_time_per_layer_s;  "
           "ep_ceiling_tpot_s = L · time_per_layer_s;  "
           "ep_ceiling_tokens_per_s = 1 / ep_ceiling_tpot_s")
REF = "paper §2.3.2 (arXiv 2505.09343); DeepEP (github.com/deepseek-ai/DeepEP) for FP8 bytes"

#: Fine-grained FP8: one scale per 1×128 activation tile (V3R §3.3.1).
FP8_SCALE_BLOCK_ELEMENTS = 128
#: The scale is an FP32 number.
FP8_SCALE_BYTES = 4
#: Per-token routing metadata DeepEP sends with each FP8 dispatch message
#: (github.com/deepseek-ai/DeepEP; at hidden 7168: 7168 + 56 × 4 + 16 = 7,408 B).
DEEPEP_TOKEN_METADATA_BYTES = 16
#: Two micro-batches: the computation of one hides the communication of the other (paper §2.3.2).
DUAL_MICRO_BATCH = 2
#: Tokens each device decodes at a time in the paper's estimate.
PAPER_TOKENS_PER_DEVICE = 32


def fp8_dispatch_bytes_per_token_expert(*, hidden_size,
                                        scale_block_elements=FP8_SCALE_BLOCK_ELEMENTS,
                                        scale_bytes=FP8_SCALE_BYTES,
                                        metadata_bytes=DEEPEP_TOKEN_METADATA_BYTES):
    """Bytes of one token's FP8 dispatch message to one expert, scales included (bytes).

    Formula: h · 1 B + ⌈h / 128⌉ · 4 B + 16 B.
    Ref: V3R §3.3.1 (1×128 tile scales); DeepEP (github.com/deepseek-ai/DeepEP) low-latency
    dispatch layout; hardware.md "FP8 dispatch bytes".
    Convention: E4M3 payload, FP32 scales, DeepEP's 16-byte per-token metadata.
    Example: h = 7168: 7,168 + 56 × 4 + 16 = 7,408 bytes.
    """
    tiles = -(-hidden_size // scale_block_elements)
    return hidden_size * dtype_bytes("fp8") + tiles * scale_bytes + metadata_bytes


def ep_comm_time_per_layer_s(*, dispatch_bytes_per_token_expert, combine_bytes_per_token_expert,
                             tokens_per_device, experts_per_token, bandwidth_bytes_per_s):
    """EP dispatch + combine time of one micro-batch in one layer (s).

    Formula: (b_dispatch + b_combine) · T · k / B_w, with b_* bytes per token and expert, T tokens
    per device, k experts per token, B_w the link bandwidth per GPU per direction.
    Ref: paper §2.3.2; paper.md §3.
    Convention: latency not counted; dispatch and combine do not overlap each other.
    Example: b = 7000 × 1 B + 7000 × 2 B, T = 32, k = 9, B_w = 50e9 B/s:
    21,000 × 32 × 9 / 50e9 = 120.96e-6 s.
    """
    bytes_per_device = (
        (dispatch_bytes_per_token_expert + combine_bytes_per_token_expert)
        * tokens_per_device * experts_per_token
    )
    return bytes_per_device / bandwidth_bytes_per_s


def time_per_layer_s(*, ep_comm_time_per_layer_s, num_micro_batches):
    """Decode time of one layer when computation is hidden under communication (s).

    Formula: m · t_comm (m micro-batches, each communicating once per layer, in turn).
    Ref: paper §2.3.2 ("dual micro-batch overlap ... 2 × 120.96 µs = 241.92 µs").
    Convention: the factor is the micro-batches, not dispatch + combine (already in t_comm).
    Example: m = 2, t_comm = 120.96 µs: 241.92 µs.
    """
    return num_micro_batches * ep_comm_time_per_layer_s


def ep_ceiling_tpot_s(*, time_per_layer_s, num_layers):
    """Time per output token (s).

    Formula: L · t_layer. Ref: paper §2.3.2.
    Convention: TPOT excludes the time to first token; MTP and the output head are not counted.
    Example: L = 61 layers × t_layer = 241.92 µs = 14.757 ms.
    """
    return num_layers * time_per_layer_s


def ep_ceiling_tokens_per_s(*, ep_ceiling_tpot_s):
    """Decode speed of one sequence (tokens/s).

    Formula: 1 / TPOT. Ref: paper §2.3.2.
    Convention: without MTP (one token per step).
    Example: TPOT = 14.757 ms: 1 / 14.757e-3 = 67.76 tokens/s.
    """
    return 1 / ep_ceiling_tpot_s


@dataclass(frozen=True)
class EPResult:
    """The EP decode ceiling of one model on one hardware, with the inputs it used."""

    model: str
    hardware: str
    link: str
    link_technology: str
    bandwidth_bytes_per_s: float
    bandwidth_basis: str
    ep_size: int
    tokens_per_device: float
    experts_per_token: int
    hidden_size: int
    dispatch_bytes_per_token_expert: float
    combine_bytes_per_token_expert: float
    num_micro_batches: int
    num_layers: int
    ep_comm_time_per_layer_s: float
    time_per_layer_s: float
    ep_ceiling_tpot_s: float
    ep_ceiling_tokens_per_s: float
    inputs: tuple[Input, ...]


def _experts_and_ep_size(model: Model, *, experts_per_token: int | None,
                         ep_size: int | None) -> tuple[int, str, int, str]:
    """(k, its origin, EP size, its origin): given values win; otherwise from the MoE spec."""
    ffn = model.ffn
    if experts_per_token is None:
        if not isinstance(ffn, MoEFFN):
            raise UsageError(
                f"{model.label} is a dense model: expert parallelism needs an MoE model "
                "(or give experts_per_token)"
            )
        experts_per_token = ffn.num_experts_per_token + ffn.num_shared_experts
        k_origin = (f"top-k {ffn.num_experts_per_token} + shared {ffn.num_shared_experts} "
                    "(model spec)")
    else:
        k_origin = "given"
    if ep_size is None:
        if not isinstance(ffn, MoEFFN):
            raise UsageError(f"{model.label} is a dense model: give ep_size")
        ep_size = ffn.num_routed_experts
        ep_origin = "one routed expert per device (model spec num_routed_experts)"
    else:
        ep_origin = "given"
    return experts_per_token, k_origin, ep_size, ep_origin


def _message_bytes(*, hidden: int, dispatch_format: str | None,
                   dispatch_bytes_per_element: float | None, combine_format: str | None,
                   combine_bytes_per_element: float | None) -> tuple[float, str, float, str]:
    """(b_dispatch, its origin, b_combine, its origin), bytes per token and expert."""
    if dispatch_format is not None and dispatch_bytes_per_element is not None:
        raise UsageError("give either a dispatch format or dispatch bytes per element, not both")
    if combine_format is not None and combine_bytes_per_element is not None:
        raise UsageError("give either a combine format or combine bytes per element, not both")
    if dispatch_format is not None:
        from planner.calc.numerics import comm_bytes_per_token

        dispatch = (comm_bytes_per_token(dispatch_format, hidden_size=hidden)
                    + DEEPEP_TOKEN_METADATA_BYTES)
        d_origin = (f"{dispatch_format}: payload + per-1x128-tile metadata + "
                    f"{DEEPEP_TOKEN_METADATA_BYTES} B DeepEP metadata")
    elif dispatch_bytes_per_element is None:
        dispatch = fp8_dispatch_bytes_per_token_expert(hidden_size=hidden)
        d_origin = (f"FP8: h + ⌈h/{FP8_SCALE_BLOCK_ELEMENTS}⌉ × {FP8_SCALE_BYTES} B scales + "
                    f"{DEEPEP_TOKEN_METADATA_BYTES} B metadata (DeepEP)")
    else:
        dispatch = hidden * dispatch_bytes_per_element
        d_origin = f"h × {dispatch_bytes_per_element:g} B per element (given; no scales)"
    if combine_format is not None:
        from planner.calc.numerics import comm_bytes_per_token

        combine = comm_bytes_per_token(combine_format, hidden_size=hidden)
        c_origin = f"{combine_format}: payload + per-1x128-tile metadata"
    else:
        if combine_bytes_per_element is None:
            combine_bytes_per_element = dtype_bytes("bf16")
            c_origin = "BF16: h × 2 B"
        else:
            c_origin = f"h × {combine_bytes_per_element:g} B per element (given)"
        combine = hidden * combine_bytes_per_element
    return dispatch, d_origin, combine, c_origin


def _ep_link(hardware: Hardware, *, ep_size: int, bandwidth_bytes_per_s: float | None,
             achievable: bool) -> tuple[str, ScaleUp | ScaleOut, str, float, str, str]:
    """(link, its spec, why that link, B_w, its basis, its origin): the scale-up domain when the
    EP group fits in it, the scale-out NICs otherwise; peak, achievable or given bandwidth."""
    in_domain = hardware.scale_up is not None and ep_size <= hardware.scale_up.domain_gpus
    link = "scale_up" if in_domain else "scale_out"
    link_spec: ScaleUp | ScaleOut = (hardware.require_scale_up() if in_domain
                                     else hardware.scale_out)
    why = (f"EP {ep_size} {'fits in' if in_domain else 'exceeds'} the "
           f"{hardware.scale_up_domain_gpus}-GPU scale-up domain")
    if bandwidth_bytes_per_s is not None:
        if achievable:
            raise UsageError("give either bandwidth_bytes_per_s or achievable, not both")
        bandwidth, basis = bandwidth_bytes_per_s, "given"
        bw_origin = "given"
    else:
        peak = link_spec.bandwidth_bytes_per_s
        if achievable:
            factor = hardware.efficiency_frac(f"{link}_bandwidth")
            bandwidth = peak * factor.frac
            basis = f"achievable ({factor.frac:g} × peak)"
            bw_origin = (f"{peak / GB:g} GB/s peak × {factor.frac:g} "
                         f"(efficiency.{link}_bandwidth: {factor.source})")
        else:
            bandwidth, basis = peak, "peak"
            bw_origin = f"hardware spec {link} peak, per GPU, unidirectional"
    if not bandwidth > 0:
        raise UsageError(f"the link bandwidth must be > 0 bytes/s (got {bandwidth:g})")
    return link, link_spec, why, bandwidth, basis, bw_origin


def _check_time(tpot: float) -> float:
    """``tpot``, or a UsageError unless the time per token is positive and finite (tokens,
    bytes or bandwidth of 0, or too small or large to compute with, give 0 s or infinity)."""
    if not 0 < tpot < math.inf:
        raise UsageError(f"the EP time per token comes out as {tpot:g} s: tokens per device, "
                         "bytes per element and bandwidth must give a positive, finite time")
    return tpot


def ep_decode_limit(
    model: Model, hardware: Hardware, *, ep_size: int | None = None,
    tokens_per_device: float = PAPER_TOKENS_PER_DEVICE, experts_per_token: int | None = None,
    hidden_size: int | None = None, dispatch_bytes_per_element: float | None = None,
    combine_bytes_per_element: float | None = None, bandwidth_bytes_per_s: float | None = None,
    num_micro_batches: int = DUAL_MICRO_BATCH, num_layers: int | None = None,
    achievable: bool = False, dispatch_format: str | None = None,
    combine_format: str | None = None,
) -> EPResult:
    """The paper's EP decode ceiling for ``model`` on ``hardware``; every input defaults from the
    specs and can be overridden.

    Defaults: experts per token = top-k + shared experts; hidden = the model's; EP size = one
    routed expert per device; dispatch = FP8 with DeepEP scales and metadata
    (:func:`fp8_dispatch_bytes_per_token_expert`), or ``hidden × dispatch_bytes_per_element``
    when that is given (the paper's 1 byte); combine = ``hidden × 2`` bytes (BF16); link = the
    scale-up domain when the EP group fits in it, the scale-out NICs otherwise, at peak
    bandwidth, or achievable (peak × the spec's efficiency factor) when ``achievable``.
    ``dispatch_format``/``combine_format`` (``e4m3``, ``e5m2``, ``e5m6``, ``logfmt8``,
    ``logfmt10``, ``bf16``) price a token with :func:`planner.calc.numerics.comm_bytes_per_token`
    (per-1×128-tile metadata included; dispatch also carries DeepEP's 16 B per token).

    Formula: t_comm = (b_dispatch + b_combine) · T · k / B_w; t_layer = m · t_comm;
    TPOT = L · t_layer; tokens/s = 1 / TPOT (:data:`FORMULA`).
    Ref: paper §2.3.2; paper.md §3; DeepEP (github.com/deepseek-ai/DeepEP) for the FP8 bytes.
    Convention: a communication-only ceiling (computation hidden, latency not counted); B_w per
    GPU, unidirectional; every :class:`~planner.calc.common.Input` of the result names its
    origin (a spec field, ``argument <parameter>``, or "given").
    Example: DeepSeek-V3 on H800 as the paper counts (``hidden_size=7000``,
    ``dispatch_bytes_per_element=1``): EP 256 exceeds the 8-GPU NVLink domain, so B_w = 50e9 B/s
    (IB); t_comm = (7,000 + 14,000) B × T = 32 × k = 9 / 50e9 = 120.96 µs; t_layer = m = 2 ×
    120.96 = 241.92 µs; TPOT = L = 61 × 241.92 µs = 14.757 ms; 67.76 tokens/s. With the
    defaults (b_dispatch = 7,408 B FP8 + scales + metadata, b_combine = 7,168 × 2 = 14,336 B,
    h = 7,168): t_comm = 125.25 µs, TPOT = 15.280 ms, 65.45 tokens/s.
    """
    experts_per_token, k_origin, ep_size, ep_origin = _experts_and_ep_size(
        model, experts_per_token=experts_per_token, ep_size=ep_size)
    hidden = model.hidden_size if hidden_size is None else hidden_size
    layers = model.num_layers if num_layers is None else num_layers
    dispatch, d_origin, combine, c_origin = _message_bytes(
        hidden=hidden, dispatch_format=dispatch_format,
        dispatch_bytes_per_element=dispatch_bytes_per_element, combine_format=combine_format,
        combine_bytes_per_element=combine_bytes_per_element)
    link, link_spec, why, bandwidth, basis, bw_origin = _ep_link(
        hardware, ep_size=ep_size, bandwidth_bytes_per_s=bandwidth_bytes_per_s,
        achievable=achievable)
    inputs = (
        Input("k (experts per token)", experts_per_token, "count", k_origin),
        Input("T (tokens per device)", tokens_per_device, "tokens",
              argument_origin("tokens_per_device")),
        Input("h (hidden size)", hidden, "count",
              "model spec hidden_size" if hidden_size is None else "given"),
        Input("b_dispatch (per token and expert)", dispatch, "bytes", d_origin),
        Input("b_combine (per token and expert)", combine, "bytes", c_origin),
        Input("EP size", ep_size, "GPUs", ep_origin),
        Input("link", f"{link} ({link_spec.technology})", "", why),
        Input("B_w (bandwidth)", bandwidth, "bytes/s", bw_origin),
        Input("m (micro-batches)", num_micro_batches, "count",
              argument_origin("num_micro_batches")),
        Input("L (layers)", layers, "count",
              "model spec num_layers" if num_layers is None else "given"),
    )
    comm = ep_comm_time_per_layer_s(
        dispatch_bytes_per_token_expert=dispatch, combine_bytes_per_token_expert=combine,
        tokens_per_device=tokens_per_device, experts_per_token=experts_per_token,
        bandwidth_bytes_per_s=bandwidth,
    )
    layer = time_per_layer_s(ep_comm_time_per_layer_s=comm, num_micro_batches=num_micro_batches)
    tpot = _check_time(ep_ceiling_tpot_s(time_per_layer_s=layer, num_layers=layers))
    return EPResult(
        model=model.name or model.label, hardware=hardware.name or hardware.label, link=link,
        link_technology=link_spec.technology, bandwidth_bytes_per_s=bandwidth,
        bandwidth_basis=basis, ep_size=ep_size, tokens_per_device=tokens_per_device,
        experts_per_token=experts_per_token, hidden_size=hidden,
        dispatch_bytes_per_token_expert=dispatch, combine_bytes_per_token_expert=combine,
        num_micro_batches=num_micro_batches, num_layers=layers, ep_comm_time_per_layer_s=comm,
        time_per_layer_s=layer, ep_ceiling_tpot_s=tpot,
        ep_ceiling_tokens_per_s=ep_ceiling_tokens_per_s(ep_ceiling_tpot_s=tpot),
        inputs=inputs,
    )
