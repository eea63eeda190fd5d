"""``planner calibrate``: fit an engine's overheads and a hardware's efficiency scales to the
user's measured runs, cross-validated, and write them as an override file."""

from typing import Optional

import typer

from planner.cli import command, show_tables, write_file
from planner.cli.options import FORMAT, Format

RUNS = typer.Option(..., "--runs", metavar="FILE.csv",
                    help="Measured runs in the columns of the shipped serving-runs.csv.")
CAL_MODEL = typer.Option(None, "--model", help="Only the runs of this catalog model.")
CAL_HARDWARE = typer.Option(None, "--hardware", "-H",
                            help="Only the runs of this catalog hardware (h200, b200...).")
CAL_ENGINE = typer.Option(None, "--engine", help="Only the runs of this engine (trtllm, vllm, "
                                                 "sglang).")
OVERRIDES_OUT = typer.Option(None, "--output", "-o", metavar="FILE",
                             help="Write the override file (YAML) here [default: not written].")


@command("calibrate")
def calibrate_cmd(
    runs: str = RUNS,
    model: Optional[str] = CAL_MODEL,
    hardware: Optional[str] = CAL_HARDWARE,
    engine: Optional[str] = CAL_ENGINE,
    output: Optional[str] = OVERRIDES_OUT,
    fmt: Format = FORMAT,
) -> None:
    """Fit the few named, bounded parameters the runs determine (engine overheads, hardware
    efficiency scales) by least squares on log error; print the error per run before and after,
    the fitted values beside the defaults, leave-one-out error, and a warning when the values
    worsen runs not fitted."""
    import datetime
    import sys

    from planner import report
    from planner.specs.overrides import overrides_yaml
    from planner.studies.calibrate_runs import calibrate_runs_file

    result = calibrate_runs_file(runs, model=model, hardware=hardware, engine=engine,
                                 created=datetime.date.today().isoformat())
    show_tables(report.calibration_tables(result.calibration, result.ids, result.checks,
                                          result.warnings), fmt)
    if fmt.value not in ("table", "markdown"):     # else printed under the tables
        for warning in result.warnings:
            sys.stderr.write(f"warning: {warning}\n")
    if output is not None:
        write_file(output, overrides_yaml(result.overrides), "the override file")
        sys.stderr.write(f"wrote {output}\n")
