"""planner: closed-form cost and capacity planning for LLM hardware co-design.

The calculators live in :mod:`planner.calc` (pure functions, base units); the specs in
:mod:`planner.specs`; the built-in catalog is loaded with :func:`planner.catalog.load_model`
and :func:`planner.catalog.load_hardware`; :func:`planner.check` checks the budgets of scenario
files and :func:`planner.evaluate` computes a scenario's metrics. Importing this package is cheap:
numpy, pydantic and rich are imported only by the code that needs them.
"""

from planner._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "check": "budget",
    "evaluate": "budget",
    "CheckReport": "budget",
    "Evaluation": "budget",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
