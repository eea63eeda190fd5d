"""The metric vocabulary: one name per quantity, the same in the Python API, in ``--format json``,
in CSV headers and in the ``budgets:`` of scenario files (the README's "Metrics" table). Values
are in base units; ``dimension`` names the base unit and selects the units a budget bound may be
written in (:data:`planner.units.UNITS`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str
    #: Base unit, a key of :data:`planner.units.UNITS`.
    dimension: str
    description: str


_METRICS = (
    Metric("params_total", "count", "parameters, all (embedding and output head included)"),
    Metric("params_activated", "count",
           "parameters activated per token: input embedding excluded (a lookup), output head "
           "included, tied or not (DeepSeek's and OpenAI's convention)"),
    Metric("params_activated_with_embedding", "count",
           "params_activated + the input embedding (Qwen's and Mistral's convention)"),
    Metric("kv_cache_bytes_per_token", "bytes",
           "KV cache one token adds, all layers, at deployment.kv_cache_dtype"),
    Metric("kv_cache_bytes", "bytes",
           "KV cache of deployment.batch sequences of deployment.context_tokens tokens, "
           "whole deployment"),
    Metric("forward_flops_per_token", "FLOPs",
           "one forward pass per token at deployment.seq_len (deployment.flops_convention)"),
    Metric("train_flops_per_token", "FLOPs",
           "forward + backward per token at deployment.seq_len (deployment.flops_convention)"),
    Metric("weight_bytes", "bytes",
           "all parameters at deployment.weight_dtype (quantization scales not counted)"),
    Metric("weight_bytes_per_gpu", "bytes",
           "weight_bytes / deployment.num_gpus: an even split, the least any sharding can "
           "put on one GPU"),
    Metric("ep_comm_time_per_layer_s", "s",
           "expert-parallel dispatch + combine of one micro-batch, one layer (paper §2.3.2)"),
    Metric("time_per_layer_s", "s",
           "paper's EP ceiling: decode time of one layer = micro-batches × EP communication, "
           "computation hidden"),
    Metric("ep_ceiling_tpot_s", "s",
           "paper's EP ceiling (communication only): layers × time_per_layer_s"),
    Metric("ep_ceiling_tokens_per_s", "tokens/s",
           "paper's EP ceiling: decode tokens/s per sequence, 1 / ep_ceiling_tpot_s"),
    Metric("tpot_s", "s",
           "serving roofline: time per output token after the first, decode at "
           "deployment.batch_per_gpu (planner serve)"),
    Metric("decode_tokens_per_s", "tokens/s",
           "serving roofline: decode tokens/s per sequence (per user)"),
    Metric("memory_bytes_per_gpu", "bytes",
           "serving: weights + KV cache of deployment.batch_per_gpu sequences of "
           "context_tokens + 10% workspace, on one GPU (planner serve)"),
    Metric("tokens_per_s_per_gpu", "tokens/s",
           "serving roofline: output tokens/s per GPU in decode (planner serve)"),
    Metric("tokens_per_s_per_node", "tokens/s",
           "serving roofline: output tokens/s per node (scale-up domain) in decode"),
    Metric("ttft_s", "s",
           "serving roofline: time of a prefill batch of deployment.prefill_tokens_per_gpu "
           "tokens per GPU in prompts of context_tokens"),
    Metric("train_gpu_hours", "h",
           "GPU-hours of the scenario's training run (every GPU, the whole run)"),
    Metric("train_cost_usd", "USD", "train_gpu_hours × price per GPU-hour"),
    Metric("mfu_frac", "fraction",
           "model FLOPs utilization of the training run, against the dense BF16 peak"),
)

#: name -> :class:`Metric`, in display order.
METRICS: dict[str, Metric] = {m.name: m for m in _METRICS}


def metric(name: str) -> Metric:
    """The metric called ``name``; ``KeyError`` with a suggestion otherwise."""
    try:
        return METRICS[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, list(METRICS), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(METRICS)}"
        raise KeyError(f"unknown metric {name!r}; {hint}") from None
