"""planner: closed-form cost and capacity planning for LLM hardware co-design.

The Python API is a first-class way in; every name below is imported on first use, so
``import planner`` stays cheap (numpy, pydantic and rich are imported only by the code that
needs them)::

    import planner

    v3, h800 = planner.load_model("deepseek-v3"), planner.load_hardware("h800")
    planner.model_kv_cache(v3).kv_cache_bytes_per_token          # 70272.0 bytes
    planner.ep_decode_limit(v3, h800).ep_ceiling_tokens_per_s        # 65.4 tokens/s
    config = planner.ServeConfig(gpus=16, batch_per_gpu=64)
    planner.serve(v3, h800, config).tpot_s                       # seconds per output token

- Specs: :func:`load_model` (a catalog name, a YAML path or a Hugging Face config.json) and
  :func:`load_hardware` (a catalog name or a YAML path) return :class:`Model` and
  :class:`Hardware`; :class:`ServeConfig` is a serving deployment.
- Calculators (:mod:`planner.calc`, base units): :func:`model_params`, :func:`model_kv_cache`,
  :func:`model_flops_per_token`, :func:`ep_decode_limit`, :func:`train_run`, :func:`serve`, and
  :func:`fewest_gpus` (also as :func:`fit`, the CLI command's name).
- Scenarios: :func:`check` checks the budgets of scenario files, :func:`evaluate` computes a
  scenario's metrics.
"""

from planner._lazy import lazy_exports

__version__ = "0.1.0"
#: The distribution's name on the package index (``pip install llm-capacity-planner``); the
#: import package and the command are ``planner``.
__distribution__ = "llm-capacity-planner"

_EXPORTS = {
    # specs
    "load_model": "catalog",
    "load_hardware": "catalog",
    "Model": "specs.model",
    "Hardware": "specs.hardware",
    "ServeConfig": "specs.deployment",
    # calculators and their results
    "model_params": "calc.params",
    "ParamCounts": "calc.params",
    "model_kv_cache": "calc.kv_cache",
    "KVCacheResult": "calc.kv_cache",
    "model_flops_per_token": "calc.flops",
    "FlopsResult": "calc.flops",
    "ep_decode_limit": "calc.ep",
    "EPResult": "calc.ep",
    "train_run": "calc.training",
    "TrainResult": "calc.training",
    "serve": "calc.serving",
    "ServeResult": "calc.serving",
    "fewest_gpus": "calc.serving",
    "fit": "calc.serving:fewest_gpus",
    "FitResult": "calc.serving",
    # scenarios and budgets
    "check": "budget",
    "evaluate": "budget",
    "CheckReport": "budget",
    "Evaluation": "budget",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
