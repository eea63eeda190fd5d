"""The closed sets a training layout names, and the constants each value carries: precision
recipes (bytes per parameter of weights, gradients and optimizer states), pipeline schedules
(in-flight micro-batches, parameter copies, the overlap the framework achieves), recompute modes
and ZeRO stages.

Ref: Megatron-LM ``theoretical_memory_usage.py`` (18 bytes per parameter: BF16 weight, FP32
gradient, FP32 master weight and two FP32 Adam moments); V3R §3.3.3 (FP8 GEMMs, BF16 Adam
moments, FP32 master weights and gradients); V3R §3.2.1 and the DualPipe README (DualPipe hides
the EP all-to-all and PP communication under computation); Narayanan et al. SC'21 §2.2
(interleaved 1F1B); Rajbhandari et al. (ZeRO stages 1-3).
Convention: a stage of ZeRO shards what the lower stages shard and more: 1 the optimizer states,
2 and the gradients, 3 (FSDP) and the weights, over the data-parallel ranks.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    """Bytes per parameter a precision recipe keeps, and the GEMM precision it computes in."""

    weight_bytes: float        # the working copy the GEMMs read (BF16)
    grad_bytes: float          # accumulated gradient (FP32)
    master_bytes: float        # FP32 master weight
    moment_bytes: float        # both Adam moments together
    gemm_dtype: str            # the precision the linear layers compute in
    activation_gemm_input_bytes: float   # bytes per element of a cached GEMM input


#: Mixed-precision recipes. ``bf16``: Megatron-LM's default (2 + 4 + 4 + 8 = 18 bytes per
#: parameter; FP16 runs keep the same bytes). ``fp8``: DeepSeek-V3's (V3R §3.3: FP8 GEMMs on
#: BF16 weights, FP32 master weights and gradients, BF16 moments; GEMM inputs cached in FP8).
RECIPES = {
    "bf16": Recipe(weight_bytes=2, grad_bytes=4, master_bytes=4, moment_bytes=8,
                   gemm_dtype="bf16", activation_gemm_input_bytes=2),
    "fp8": Recipe(weight_bytes=2, grad_bytes=4, master_bytes=4, moment_bytes=4,
                  gemm_dtype="fp8", activation_gemm_input_bytes=1 + 4 / 128),
}
#: The FP8 recipe's cached GEMM inputs above: one byte per element plus an FP32 scale per
#: 1x128 tile (V3R §3.3.2 fine-grained quantization, §3.3.3 FP8 caching): 1 + 4/128 bytes.

#: Pipeline schedules; ``interleaved`` is 1F1B with ``vpp`` model chunks per device.
TRAIN_SCHEDULES = ("1f1b", "interleaved", "zb1p", "dualpipe", "dualpipev")
#: Activation recomputation: none, selective (the core attention; for MLA also the
#: up-projected queries, keys and values, V3R §3.3.2), full (every layer from its input).
RECOMPUTE_MODES = ("none", "selective", "full")
SELECTIVE_RECOMPUTE = RECOMPUTE_MODES.index("selective")
FULL_RECOMPUTE = RECOMPUTE_MODES.index("full")
#: Expert-parallel all-to-all passes per micro-batch: forward and backward, and the forward
#: again under full recompute.
EP_PASSES = 2
EP_PASSES_FULL_RECOMPUTE = 3
#: A gradient-accumulation kernel reads and writes the accumulator once (after reading the
#: new gradient).
ACCUMULATOR_PASSES = 2
ZERO_STAGES = (0, 1, 2, 3)

#: Copies of a device's stage parameters each schedule keeps: DualPipe holds a stage of each of
#: its two directions (V3R §3.2.1: "two copies of the model parameters"); DualPipeV folds the
#: pipeline so that a device's two chunks are halves of one stage's layers.
PARAM_COPIES = {"1f1b": 1, "interleaved": 1, "zb1p": 1, "dualpipe": 2, "dualpipev": 1}

#: Schedules whose stage split counts the input embedding and the output head as one block
#: each (Megatron-LM's account_for_embedding_in_pipeline_split and
#: account_for_loss_in_pipeline_split options): DualPipe places both ends on one rank
#: (V3R §3.2.3), and DeepSeek's training profile has 4 layers per chunk
#: (deepseek-ai/profile-data README: 61 layers + 1 MTP module + 2 ends = 64 blocks = 16 x 4). The others split the layers
#: evenly and add the ends to the first and last stage (Megatron-LM's default, as in
#: Narayanan et al. 2021 and Korthikanti et al. 2022).
ENDS_AS_BLOCKS = {"1f1b": 0, "interleaved": 0, "zb1p": 0, "dualpipe": 1, "dualpipev": 1}
#: Where the ends count as blocks: the embedding and the head take two blocks' place; the
#: first-stage device of DualPipe holds the embedding's (one), DualPipeV's folded one both.
END_BLOCKS = 2
FIRST_DEVICE_END_BLOCKS = 1

#: The overlap each framework achieves, stated (1 = hidden under computation, 0 = exposed):
#: Megatron-LM as in Narayanan et al. 2021 and Korthikanti et al. 2022 exposes the tensor-,
#: pipeline- and expert-parallel communication and the data-parallel gradient reduction;
#: DualPipe (V3R §3.2.1) hides the EP all-to-all and the PP send/receive behind the other
#: direction's computation, and overlaps the data-parallel reduction with the backward.
EP_OVERLAP = {"1f1b": 0, "interleaved": 0, "zb1p": 0, "dualpipe": 1, "dualpipev": 1}
#: SMs DualPipe's overlapped all-to-all kernels hold in DeepSeek-V3's training (V3R §3.2.2:
#: "only 20 SMs" suffice to use the IB and NVLink bandwidths fully), against the 24 of
#: DeepEP's normal kernels that the hardware specs' ``overlap_compute_share`` counts (DeepEP
#: README, ``Buffer.set_num_sms(24)``): in training the kernels take 20/24 of that SM share.
TRAINING_COMM_SMS = 20
DEEPEP_NORMAL_COMM_SMS = 24
PP_OVERLAP = EP_OVERLAP
DP_OVERLAP = EP_OVERLAP

#: Fixed allowance per GPU for the CUDA context, cuBLAS workspaces and NCCL buffers (bytes):
#: an assumed 2 GiB, not measured; stated so that a fit is not claimed to the last byte.
WORKSPACE_BYTES = 2 * 2**30
#: Allowance for the caching allocator's fragmentation, as a share of the tensors held: an
#: assumed 5%, not measured (Megatron's estimator counts none).
FRAGMENTATION_FRAC = 0.05
