"""Weight memory: the bytes a model's parameters take at a precision, and their even share per GPU.

Ref: ../shared/reference/paper.md §2 (parameter counts); the paper §3.1 (FP8 weights).
Convention: every parameter at one element type; quantization scales (FP8's 128x128 block scales,
4 bytes per 16,384 weights, +0.02%) and the MTP module are not counted. The even split is the
least any sharding can put on one GPU (real engines replicate attention under DP-attention).
"""

from __future__ import annotations


def weight_bytes(*, num_params, bytes_per_param):
    """Bytes of all weights (bytes).

    Formula: W = P × b, with P parameters and b bytes per parameter.
    Ref: paper.md §2 (P = 671.03e9 for DeepSeek-V3).
    Convention: one element type for every parameter; scales excluded.
    Example: P = 671.03e9 at FP8 (b = 1): W = 671.03e9 bytes = 671.03 GB.
    """
    return num_params * bytes_per_param


def bytes_per_gpu_even_split(*, total_bytes, num_gpus):
    """Bytes per GPU when ``total_bytes`` are split evenly over ``num_gpus`` (bytes).

    Formula: total / N.
    Ref: arithmetic; the lower bound of any sharding (no replication).
    Convention: no replication, no activations, no KV cache, no workspace.
    Example: 671.03 GB over N = 8 GPUs: 83.88 GB per GPU (more than an 80 GB H800 holds).
    """
    return total_bytes / num_gpus
