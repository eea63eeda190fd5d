"""The serving model beside measured deployment runs (issue 4's validation table).

Every run (data: ``validation/runs.yaml``) is a published, deployment-level measurement with its
setup; the planner's prediction comes from :func:`planner.calc.serving.serve` with the catalog's
default efficiency factors (derived from kernel-level measurements only: DeepGEMM, FlashMLA,
DeepEP). Nothing here is fitted to these runs: a run's ``deployment`` (a
:class:`~planner.specs.deployment.ServeConfig`) restates its published setup, and where the
source leaves a setting open, ``assumed`` says what was taken and why. Each run's expert balance
restates its setup: ``eplb`` where it ran EPLB on real routing, ``uniform`` for routing simulated
at random, ``exact`` for DeepSeek's profiles, which simulate absolutely balanced routing; the skew
behind ``eplb`` is measured routing statistics (TensorRT-LLM), not these runs.

Error = predicted / measured - 1 (positive: the planner is optimistic).
"""

from __future__ import annotations

import functools
import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from planner.calc.serving.result import Bottleneck
    from planner.specs.deployment import ServeConfig

#: The error bands issue 4 asks for.
MEDIAN_TARGET, CASE_LIMIT = 0.15, 0.30


@dataclass(frozen=True)
class MeasuredRun:
    id: str
    source: str
    setup: str                    # the published setup, in words
    model: str
    hardware: str
    measured: float               # tokens/s per node (output in decode, input in prefill)
    deployment: ServeConfig       # the published setup, restated
    assumed: str = ""             # settings the source leaves open, and what was taken
    note: str = ""                # what the planner does not model that bears on this run


@dataclass(frozen=True)
class MeasuredAblation:
    """A source's own measurement of what one engine feature gains: the throughput with the
    change over the throughput without it, on one deployment."""

    id: str
    source: str
    setup: str                    # the published ablation, in words
    model: str
    hardware: str
    measured: tuple[float, float]  # gain (after / before - 1); a range where the source gives one
    before: ServeConfig           # the deployment without the feature
    after: ServeConfig            # ... with it
    assumed: str = ""


@functools.lru_cache(maxsize=None)
def _measurements() -> tuple[tuple[MeasuredRun, ...], tuple[MeasuredAblation, ...]]:
    """The runs and ablations of ``validation/runs.yaml``, in the file's order. An ablation
    between two runs takes their deployments and, unless the source gives its own figure, their
    measured ratio as its gain."""
    from planner.catalog import load_runs

    data = load_runs()
    runs = {key: MeasuredRun(key, data.citation(e), e.setup, e.model, e.hardware,
                             e.measured_tokens_per_s_per_node, e.deployment, e.assumed, e.note)
            for key, e in data.runs.items()}
    ablations = []
    for key, a in data.ablations.items():
        lo, hi = runs.get(a.before_run or ""), runs.get(a.after_run or "")
        gain = a.measured_gain
        if gain is None:
            gain = _named(hi).measured / _named(lo).measured - 1
        measured = gain if isinstance(gain, tuple) else (gain, gain)
        ablations.append(MeasuredAblation(
            key, data.citation(a), a.setup, a.model, a.hardware, measured,
            a.before or _named(lo).deployment, a.after or _named(hi).deployment, a.assumed))
    return tuple(runs.values()), tuple(ablations)


def _named(run: MeasuredRun | None) -> MeasuredRun:
    """The run an ablation side names where the side needs one: the specs guarantee it
    (:class:`~planner.specs.validation.AblationEntry`: a side without a deployment, and both
    sides without ``measured_gain``, name a run; ``RunsFile``: every run named exists)."""
    assert run is not None
    return run


def measured_runs() -> tuple[MeasuredRun, ...]:
    """The shipped measured runs (``validation/runs.yaml``)."""
    return _measurements()[0]


def measured_ablations() -> tuple[MeasuredAblation, ...]:
    """The sources' own ablations (``validation/runs.yaml``)."""
    return _measurements()[1]


def __getattr__(name: str) -> Any:
    """``RUNS`` and ``ABLATIONS``: the shipped runs and ablations, read on first use."""
    if name == "RUNS":
        return measured_runs()
    if name == "ABLATIONS":
        return measured_ablations()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class AblationRow:
    ablation: MeasuredAblation
    predicted: float              # the planner's gain (after / before - 1)

    @property
    def difference(self) -> float:
        """Planner minus measured gain, from the nearer end of a measured range (0 inside)."""
        lo, hi = self.ablation.measured
        return max(self.predicted - hi, 0.0) + min(self.predicted - lo, 0.0)


def ablations(items: tuple[MeasuredAblation, ...] | None = None) -> tuple[AblationRow, ...]:
    """The planner's gain for each of the sources' own ablations (default: the shipped ones),
    with the default efficiencies."""
    from planner import catalog
    from planner.calc.serving import serve

    rows = []
    for a in measured_ablations() if items is None else items:
        model, hw = catalog.load_model(a.model), catalog.load_hardware(a.hardware)
        before, after = (serve(model, hw, config).tokens_per_s_per_gpu
                         for config in (a.before, a.after))
        rows.append(AblationRow(a, after / before - 1))
    return tuple(rows)


@dataclass(frozen=True)
class ValidationRow:
    run: MeasuredRun
    predicted: float
    error: float                  # predicted / measured - 1
    bottleneck: Bottleneck        # what binds the planner's step (report: its text)
    basis: str
    expert_balance: str           # the balance the prediction used (the run's, else serve's)
    step_s: float                 # the planner's step (decode) or batch (prefill) time

    @property
    def measured_step_s(self) -> float:
        """The step time the measured throughput implies: the same tokens per step at the
        measured rate, step × predicted / measured."""
        return self.step_s * (1 + self.error)

    @property
    def step_gap_s(self) -> float:
        """Measured minus predicted step time (s); positive where the planner is optimistic."""
        return self.measured_step_s - self.step_s


@dataclass(frozen=True)
class ValidationReport:
    rows: tuple[ValidationRow, ...]
    median_abs_error: float
    max_abs_error: float
    beyond_limit: tuple[str, ...] = field(default_factory=tuple)
    ablations: tuple[AblationRow, ...] = field(default_factory=tuple)

    @property
    def meets_targets(self) -> bool:
        return self.median_abs_error <= MEDIAN_TARGET and not self.beyond_limit


def validation_report(runs: tuple[MeasuredRun, ...] | None = None,
                      ablation_items: tuple[MeasuredAblation, ...] | None = None
                      ) -> ValidationReport:
    """Predict every run (default: the shipped ones) with the default efficiency factors; the
    error statistics; and the planner's gain for each of the sources' own ablations."""
    from planner import catalog
    from planner.calc.serving import serve

    rows = []
    for run in measured_runs() if runs is None else runs:
        r = serve(catalog.load_model(run.model), catalog.load_hardware(run.hardware),
                  run.deployment)
        rows.append(ValidationRow(run, r.tokens_per_s_per_node,
                                  r.tokens_per_s_per_node / run.measured - 1, r.bottleneck,
                                  r.basis, r.expert_balance, r.step_s))
    errors = [abs(row.error) for row in rows]
    return ValidationReport(tuple(rows), statistics.median(errors), max(errors),
                            tuple(row.run.id for row in rows if abs(row.error) > CASE_LIMIT),
                            ablations(ablation_items))
