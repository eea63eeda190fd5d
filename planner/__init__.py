"""planner: closed-form cost and capacity planning for LLM hardware co-design.

The calculators live in :mod:`planner.calc` (pure functions, base units); the specs in
:mod:`planner.specs`; the built-in catalog is loaded with :func:`planner.catalog.load_model`
and :func:`planner.catalog.load_hardware`. Importing this package is cheap: numpy, pydantic
and rich are imported only by the code that needs them.
"""

__version__ = "0.1.0"
