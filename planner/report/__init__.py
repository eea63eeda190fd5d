"""Rendering: results -> tables (rich), JSON, CSV or Markdown. The only package that formats.

Every command builds a list of :class:`~planner.report.table.Table` s: display rows (strings,
human units) for the terminal and Markdown, and records (base-unit numbers, metric names of the
design vocabulary) for JSON and CSV; a builder makes each record once and derives the row's
cells from it. Modules:

- :mod:`~planner.report.formats`: number formats (a base-unit value -> text);
- :mod:`~planner.report.table`: the Table type, its renderers (rich, JSON, CSV, Markdown) and
  the ``--explain`` table;
- :mod:`~planner.report.ci`: JUnit XML, GitHub annotations and violation messages;
- one table-builder module per command group: :mod:`~planner.report.catalog` (models,
  hardware, show), :mod:`~planner.report.model` (kv-cache, flops, ep, paper),
  :mod:`~planner.report.serving` (serve, validate, fit), :mod:`~planner.report.cluster`
  (network, pipeline, train, routing, collective, numerics), :mod:`~planner.report.training`
  (train from a layout), :mod:`~planner.report.explore`
  (compare, sweep), :mod:`~planner.report.budget` (evaluate, check).

Every name is importable from here (``report.serve_tables(...)``); each is imported from its
module on first use, so importing the package imports no submodule and never rich (the CLI's cold
start depends on it).
"""

from planner._lazy import lazy_exports

_MODULES = {
    "formats": ("fmt_int", "fmt_count_si", "fmt_bytes", "fmt_seconds", "fmt_rate_bytes",
                "fmt_gflop", "fmt_tokens_per_s", "fmt_ratio", "fmt_frac_pct", "fmt_pct",
                "fmt_tflop_per_s", "fmt_value", "UNIT_FORMATS"),
    "table": ("PIPE_WIDTH", "Table", "clean", "render", "explain_table"),
    "ci": ("violation_message", "github_annotations", "junit_xml"),
    "catalog": ("catalog_models_table", "catalog_hardware_table", "catalog_engines_table", "hardware_record",
                "model_detail_tables", "hardware_detail_tables"),
    "model": ("kv_cache_table", "flops_table", "flops_parts_table", "EP_METRICS", "ep_table",
              "paper_tables"),
    "serving": ("OVERLAP_LABELS", "serve_tables", "validation_table", "ablation_table",
                "fit_table", "workload_tables", "workload_refusal", "workload_record"),
    "cluster": ("network_table", "pipeline_table", "TRAIN_FIELDS", "train_table",
                "routing_table", "collective_table", "numerics_tables"),
    "training": ("LAYOUT_KEYS", "train_layout_tables", "train_search_table",
                 "train_search_violation"),
    "explore": ("compare_tables", "context_tables", "SWEEP_TABLE_ROWS", "sweep_table"),
    "budget": ("evaluation_tables", "check_table"),
    "error_bands": ("regime_label", "error_band_text", "error_band_record"),
    "calibrate": ("calibration_tables",),
}
_EXPORTS = {name: module for module, names in _MODULES.items() for name in names}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
