"""Training from a parallel layout: memory per GPU by part, step time by part, MFU, GPU-hours.

Modules: ``recipe`` (precision recipes, schedules, recompute modes, the overlap each framework
achieves), ``shape`` (the per-layer quantities of a model that training needs), ``memory``
(bytes per GPU by part), ``step`` (step time by part), ``layout`` (one layout or a grid of them,
and the search for the fastest that fit).

Ref: Narayanan et al., "Efficient Large-Scale Language Model Training on GPU Clusters Using
Megatron-LM", SC'21 (arXiv 2104.04473); Korthikanti et al., "Reducing Activation Recomputation
in Large Transformer Models", arXiv 2205.05198; Rajbhandari et al., ZeRO (arXiv 1910.02054);
DeepSeek-V3 report (V3R, arXiv 2412.19437) §3.2-3.4; Megatron-LM
``theoretical_memory_usage.py``.
"""
