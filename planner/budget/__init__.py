"""Scenarios and their budgets: the CI check.

A scenario file (``specs/*.yaml``, :class:`planner.specs.scenario.Scenario`) names a model and a
hardware spec, a deployment and budgets. :func:`evaluate` computes every metric the scenario
defines; :func:`check` evaluates the budgets of every scenario under the given paths and returns a
:class:`CheckReport`: exit code 0 when every budget is met, 1 when one is violated, 2 when any
input is invalid.

It fails closed: an unknown metric, an unparseable bound or a unit of the wrong dimension, a
missing file, a directory without scenarios, a scenario without budgets, a metric that does not
apply to the scenario (``n/a``) or that evaluates to NaN or infinity are errors, never a pass.
"""

from planner.budget.checking import (BudgetResult, CheckError, CheckReport, check,
                                  check_scenario)
from planner.budget.evaluating import Evaluation, MetricValue, evaluate, evaluate_scenario
from planner.budget.loading import (SCENARIO_SUFFIXES, LoadedScenario, ParsedBound,
                                    is_scenario_file, load_scenario, scenario_files,
                                    skipped_message)

__all__ = ["SCENARIO_SUFFIXES", "BudgetResult", "CheckError", "CheckReport", "Evaluation",
           "LoadedScenario", "MetricValue", "ParsedBound", "check", "check_scenario", "evaluate",
           "evaluate_scenario", "is_scenario_file", "load_scenario", "scenario_files",
           "skipped_message"]
