"""What serving a token costs: dollars per million output tokens from a price per GPU-hour, and
joules per output token from the board power.

Ref: the hardware specs' ``cost:`` blocks (price, what it includes, source, date) and
``gpu.tdp_w`` (the board power of the datasheet).
"""

from __future__ import annotations

#: Seconds in one hour.
SECONDS_PER_HOUR = 3600.0
#: Tokens in one million (the unit prices are quoted in).
TOKENS_PER_MILLION = 1e6


def usd_per_million_tokens(*, usd_per_gpu_hour, tokens_per_s_per_gpu):
    """Dollars per million output tokens (USD) of a deployment that makes ``tokens_per_s_per_gpu``
    output tokens per second on each of its GPUs, each rented at ``usd_per_gpu_hour``.

    Formula: c = P / 3600 / X · 10^6, P the price of one GPU-hour, X output tokens/s per GPU.
    Ref: the ``cost:`` block of the hardware spec (its ``includes`` says what P covers).
    Convention: every GPU of the deployment is paid for all the time (idle or not); input
    (prompt) tokens are not counted as output; numpy arrays broadcast.
    Example: P = $4.54 per GPU-hour, X = 1,000 tokens/s per GPU: 4.54 / 3600 / 1000 · 10^6 =
    $1.261 per million output tokens.
    """
    return usd_per_gpu_hour / SECONDS_PER_HOUR / tokens_per_s_per_gpu * TOKENS_PER_MILLION


def joules_per_token(*, board_power_w, tokens_per_s_per_gpu):
    """Energy per output token (J) of a GPU drawing ``board_power_w`` watts while it makes
    ``tokens_per_s_per_gpu`` output tokens per second.

    Formula: E = W / X, W the board power (J/s), X output tokens/s per GPU.
    Ref: the hardware spec's ``gpu.tdp_w`` (the datasheet's maximum board power).
    Convention: the GPU board at its TDP (an upper bound of what it draws; host CPUs, NICs,
    switches and cooling are not counted); input tokens are not counted as output.
    Example: W = 700 W (H200 SXM), X = 1,000 tokens/s per GPU: 0.7 J per output token.
    """
    return board_power_w / tokens_per_s_per_gpu
