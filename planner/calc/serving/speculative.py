"""Speculative decoding with MTP (multi-token prediction) modules in the decode step, closed
form over arrays: k draft tokens per running request per step, the target model verifying
k + 1 tokens per request in one pass, the draft module's k passes beside it, and the tokens
each step yields.

Ref: DeepSeek-V3 technical report (arXiv:2412.19437) §2.2 (the MTP module: one transformer
block and a projection, the embedding and output head shared with the main model) and §5.4.3
(second-token acceptance 85-90% "across various generation topics", 1.8x TPS); TensorRT-LLM
tech blog 2, "DeepSeek R1 MTP Implementation and Optimization" (nvidia.github.io/TensorRT-LLM/
blogs/tech_blog/blog2_DeepSeek_R1_MTP_Implementation_and_Optimization.html: the target model
verifies the draft tokens appended to the input token in one forward pass and accepts the
longest matching prefix plus its own next token; "MTP Eagle" runs the one MTP module k times in
sequence, one draft token each); SGLang's EAGLE / MTP server arguments (speculative_num_steps:
k draft passes; speculative_num_draft_tokens: k + 1 verified tokens).

Conventions (all functions):
- Acceptance: each draft position is accepted with probability α given that every earlier one
  was (a draft counts only after all before it), independent of the position: the expected
  tokens per step are 1 + α + ... + α^k.
- The draft module's time per draft token: one decoder layer of the model's last layer type
  and the output head over one token per running request (its own KV cache read once); the
  projection M (d x 2d) is left out (0.1e9 parameters in DeepSeek-V3 beside 11.6e9 of the
  module).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from planner.calc.serving.workload_step import ModelFigures

#: Per-draft-token acceptance of DeepSeek's MTP module when the caller gives none: the low
#: end of DeepSeek-V3 §5.4.3's 85-90% second-token acceptance (their evaluation, "various
#: generation topics", k = 1).
DEFAULT_MTP_ACCEPTANCE = 0.85
#: Acceptance length (tokens per decode step) of DeepSeek-R1's MTP on random prompts put in the
#: model's chat template: InferenceX PR #649 (SemiAnalysisAI/InferenceX, 2026-02-05, commit
#: dab13cea0): "Random data with the chat template produces ARs (~2.50) ... closely align with
#: MT-Bench (overall AR ~2.50)"; the same prompts without the template ~3.55
#: (:data:`RAW_PROMPT_ACCEPTANCE_LENGTH`). Which runs used the template:
#: planner.studies.disagg_runs.mtp_acceptance.
CHAT_TEMPLATE_ACCEPTANCE_LENGTH = 2.50
#: The same measurement on random prompts without the chat template (InferenceX PR #649).
RAW_PROMPT_ACCEPTANCE_LENGTH = 3.55
#: Draft tokens per step those two lengths were measured at. PR #649 states none; 3.55
#: exceeds k + 1 = 3, the most a step yields at k = 2, so the run drafted k >= 3; taken as 3,
#: the depth of SGLang's DeepSeek MTP recipe (speculative-num-steps 3, num-draft-tokens 4)
#: and of most TensorRT-LLM recipes here (num_nextn_predict_layers: 3).
ACCEPTANCE_LENGTH_DRAFT_TOKENS = 3
#: Halvings of [0, 1] when solving 1 + α + ... + α^k = L for α (2^-50 below float noise).
ACCEPTANCE_BISECTION_STEPS = 50
#: Decoder layers in one MTP module (DeepSeek-V3 §2.2: one transformer block per depth).
MTP_MODULE_LAYERS = 1


def mtp_tokens_per_step(*, draft_tokens: Any, acceptance: Any) -> Any:
    """Expected tokens a decode step yields per request with ``draft_tokens`` drafts (count).

    Formula: n = Σ_{i=0..k} α^i (= (1 − α^(k+1)) / (1 − α); k + 1 at α = 1): the token the
    target model samples itself, plus each draft accepted after all earlier ones; summed term
    by term (exact at α near 1, where the closed form cancels), one array pass per draft
    position up to the largest k (at most :data:`~planner.specs.deployment.MAX_MTP_DEPTH` in
    a deployment).
    Ref: DeepSeek-V3 §5.4.3; TensorRT-LLM tech blog 2 (verification and acceptance).
    Convention: acceptance independent per position; k = 0 gives 1 (no speculation); plain
    numbers in, a float out (without numpy: the single-step serving path imports none).
    Example: α = 0.85, k = 3: 1 + 0.85 + 0.7225 + 0.614125 = 3.186625; k = 1: 1.85.
    """
    if isinstance(draft_tokens, (int, float)) and isinstance(acceptance, (int, float)):
        return float(sum(acceptance**i for i in range(max(int(draft_tokens), 0) + 1)))  # no numpy
    import numpy as np

    k = np.asarray(draft_tokens, dtype=float)
    a = np.asarray(acceptance, dtype=float)
    n = np.ones(np.broadcast_shapes(k.shape, a.shape))
    for i in range(1, int(np.max(k, initial=0)) + 1):
        n = n + np.where(i <= k, a**i, 0.0)
    return n


def mtp_acceptance_from_length(*, tokens_per_step: Any, draft_tokens: Any) -> Any:
    """Per-draft-token acceptance α (fraction) that yields ``tokens_per_step`` L at k drafts.

    Formula: the root α in [0, 1] of 1 + α + ... + α^k = L (increasing in α), by bisection;
    L >= k + 1 gives 1, L <= 1 gives 0.
    Ref: the convention of :func:`mtp_tokens_per_step`; InferenceX PR #649 (the lengths).
    Convention: the acceptance is the same at every draft position, so one length at one depth
    gives the length at any other depth through α.
    Example: L = 2.50 at k = 3 -> α = 0.6914 (1 + 0.6914 + 0.4781 + 0.3305 = 2.50); at
    k = 2 the same α yields 2.17 tokens per step, at k = 1 1.69.
    """
    import numpy as np

    target = np.asarray(tokens_per_step, dtype=float)
    k = np.asarray(draft_tokens, dtype=float)
    lo = np.zeros(np.broadcast(target, k).shape)
    hi = np.ones_like(lo)
    for _ in range(ACCEPTANCE_BISECTION_STEPS):    # fixed halvings, all elements at once
        mid = (lo + hi) / 2
        low = mtp_tokens_per_step(draft_tokens=k, acceptance=mid) < target
        lo, hi = np.where(low, mid, lo), np.where(low, hi, mid)
    return (lo + hi) / 2


def chat_template_mtp_acceptance() -> float:
    """Per-draft-token acceptance α of DeepSeek-R1's MTP on random prompts in the chat template.

    Formula: α from :data:`CHAT_TEMPLATE_ACCEPTANCE_LENGTH` at
    :data:`ACCEPTANCE_LENGTH_DRAFT_TOKENS` (:func:`mtp_acceptance_from_length`).
    Ref: InferenceX PR #649 (2.50 tokens per step with the template, as on MT-Bench).
    Convention: one α for every depth (the geometric convention of this module).
    Example: L = 2.50 at k = 3 -> 0.6914.
    """
    return float(mtp_acceptance_from_length(tokens_per_step=CHAT_TEMPLATE_ACCEPTANCE_LENGTH,
                                            draft_tokens=ACCEPTANCE_LENGTH_DRAFT_TOKENS))


def speculative_step_s(*, verify_pass_s: Any, draft_pass_s: Any, draft_tokens: Any) -> Any:
    """GPU time (s) of one speculative decode step.

    Formula: T = T_verify + k · T_draft, T_verify the target model's pass over k + 1 tokens
    per running request, T_draft the MTP module's pass over one token per request.
    Ref: TensorRT-LLM tech blog 2 ("MTP Eagle": the draft passes run one after another);
    SGLang's speculative_num_steps server argument.
    Convention: the draft passes do not overlap the verification (they depend on its output).
    Example: verify 30 ms, draft 1.2 ms, k = 3: 33.6 ms.
    """
    import numpy as np

    return np.asarray(verify_pass_s) + np.asarray(draft_tokens) * np.asarray(draft_pass_s)


def speculative_tpot_s(*, step_s: Any, tokens_per_step: Any) -> Any:
    """Time per output token (s) of a speculative decode step.

    Formula: TPOT = T_step / n, n = :func:`mtp_tokens_per_step`.
    Ref: DeepSeek-V3 §5.4.3 (TPS up 1.8x at k = 1).
    Convention: the mean over a request's tokens (every step yields n on average).
    Example: 33.6 ms / 3.186625 = 10.54 ms.
    """
    import numpy as np

    return np.asarray(step_s) / np.asarray(tokens_per_step)


def mtp_module_figures(fig: ModelFigures) -> ModelFigures:
    """The figures of one MTP module for the workload model's forward pass: one decoder layer
    of the model's last type (a MoE layer when the model has any), its KV share, the shared
    output head (embedding not read).

    Formula: layers 1 (MoE: moe 1, dense 0; dense model: dense 1), KV bytes per token and norm
    bytes divided by the model's layers.
    Ref: DeepSeek-V3 §2.2 (the module's block and shared head); see the module docstring.
    Convention: the projection M and the module's two extra norms are left out.
    Example: DeepSeek-V3 FP8: 61 layers (3 dense + 58 MoE) -> 1 MoE layer, KV 70,272 / 61 =
    1,152 B per token in BF16.
    """
    moe = fig.moe_layers > 0
    return replace(fig, layers=MTP_MODULE_LAYERS, dense_layers=0 if moe else MTP_MODULE_LAYERS,
                   moe_layers=MTP_MODULE_LAYERS if moe else 0,
                   kv_bytes_per_token=fig.kv_bytes_per_token / fig.layers,
                   norm_bytes=fig.norm_bytes / fig.layers, embed_bytes=0.0)
