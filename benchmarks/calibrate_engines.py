"""Calibrate each serving engine's named overhead fields (engines/*.yaml:
decode_step_overhead_s, prefill_overhead_s, request_overhead_s) on the aggregated rows of the
measured runs the planner can express, and print the in-sample and leave-one-group-out
(a whole model held out, then a whole hardware) median |error| of TTFT and TPOT per engine and
hardware. Kernel efficiencies are never fitted here.

    python benchmarks/calibrate_engines.py                 # print only
    python benchmarks/calibrate_engines.py --write         # and write engines/*.yaml
    python benchmarks/calibrate_engines.py --split h200:sglang   # the half-split check

--write sets each fitted field and its ``overheads.<field>.source``: "calibrated by
benchmarks/calibrate_engines.py on N rows of serving-runs.csv (in-sample X%, LOGO-CV Y% ...)",
for an engine whose model-held-out error is below the spec values' error, or that this script
calibrated before (refreshed); else the spec's values stay and the script says why.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _f(v: float) -> str:
    return "  n/a" if v != v else f"{v:5.1f}"


def main() -> int:
    from planner import catalog
    from planner.specs.runs import read_runs
    from planner.studies import engine_calibration as ec

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", default=str(catalog.SERVING_RUNS_CSV))
    ap.add_argument("--engines", default="trtllm,vllm,sglang")
    ap.add_argument("--write", action="store_true", help="write the fitted values into engines/")
    ap.add_argument("--split", default=None, metavar="HARDWARE:ENGINE",
                    help="also calibrate on half of these runs and predict the other half")
    args = ap.parse_args()
    table = read_runs(args.runs)
    print("median |error| %: before (spec values) / in-sample / LOGO model held out / "
          "LOGO hardware held out")
    print(f"{'engine':8} {'hardware':12} {'runs':>5}  {'TTFT':^27}  {'TPOT':^27}")
    for engine in args.engines.split(","):
        t0 = time.perf_counter()
        cal = ec.calibrate_engine(table, engine)
        if not len(cal.runs):
            print(f"{engine:8} no expressible runs")
            continue
        skipped = int(cal.calibration.not_predicted.sum())
        if skipped:
            print(f"{engine:8} {skipped} runs not predicted (left out): "
                  + "; ".join(sorted(set(cal.failed.values())) or ["no fit in memory"]))
        for rec in [r for r in ec.engine_summary(cal) if r["runs"]]:
            cells = [" ".join(_f(rec[f"{m}_{k}_pct"]) for k in
                              ("before", "in_sample", "logo_model", "logo_hardware"))
                     for m in ("ttft", "tpot")]
            print(f"{engine:8} {rec['hardware']:12} {rec['runs']:5}  {cells[0]}  {cells[1]}")
        c = cal.calibration
        for p in c.parameters:
            state = ("fitted" if p.name in c.fitted
                     else f"kept: {dict(c.unseen).get(p.name, '')}")
            k, unit = (1e3, "ms") if p.seconds else (1.0, "  ")
            print(f"    {p.field:26} {p.default * k:9.4f} {unit} -> "
                  f"{c.values[p.name] * k:9.4f} {unit}  ({state})")
        print(f"    source: {ec.engine_source(cal)}  [{time.perf_counter() - t0:.0f} s]")
        logo, before = c.median_error_pct("logo"), c.median_error_pct("before")
        # an engine this script calibrated before is refreshed (its spec values are a fit)
        refresh = ec.SCRIPT in catalog.resolve("engine", engine).read_text()
        if args.write and c.fitted and not logo < before and not refresh:
            print(f"    not written: the model-held-out error {logo:.1f}% is not below the spec "
                  f"values' {before:.1f}% (the fit does not generalise across models)")
        elif args.write and c.fitted:
            path = catalog.resolve("engine", engine)
            values = {p.field: c.values[p.name] for p in c.parameters if p.name in c.fitted}
            path.write_text(ec.engine_yaml_with(path.read_text(), values, ec.engine_source(cal)))
            print(f"    wrote {path}")
    if args.split:
        hardware, engine = args.split.split(":")
        s = ec.half_split(table, hardware=hardware, engine=engine)
        print(f"half split {hardware} · {engine}: fitted on {s['runs_fitted']} runs "
              f"({', '.join(s['fitted'])}); median |error| of the {s['runs_held_out']} held-out "
              f"runs {s['held_out_before_pct']:.1f}% -> {s['held_out_after_pct']:.1f}% "
              f"(fitted half {s['fitted_before_pct']:.1f}% -> {s['fitted_after_pct']:.1f}%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
