"""Issue 18 items 10-11: sweep caps its grid before building it and writes CSV and JSON record
by record (memory does not grow with the grid); numerics caps its rows."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc

import pytest
from typer.testing import CliRunner

from planner import catalog
from planner.cli import app
from planner.report import render, sweep_table
from planner.report.table import Table
from planner.studies import numerics as numerics_study
from planner.studies import sweep as sw

runner = CliRunner()


def run(*args):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.mark.parametrize("varies, message", [
    (["tokens_per_device=1:1000:lin100000", "nic_bandwidth_gb_per_s=10:1000:log10000"],
     "the grid has 1,000,000,000 points (100,000 x 10,000); at most 10,000,000"),
    (["tokens_per_device=1:1000:lin3163", "micro_batches=1:4:lin3163"], "at most 10,000,000"),
    (["tokens_per_device=1:1000:lin10000001"], "at most 10,000,000"),
])
def test_a_grid_past_the_cap_is_refused_before_it_is_built(varies, message):
    # 3,000 x 3,000 took 12.9 GB; a 1e9 grid tried to allocate 7.45 GiB.
    tracemalloc.start()
    result = run("sweep", "deepseek-v3", *[a for v in varies for a in ("--vary", v)])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert peak < 20_000_000, peak


def _sweep(rows: int, cols: int) -> sw.SweepResult:
    return sw.run_sweep(catalog.load_model("deepseek-v3"), catalog.load_hardware("h800"),
                        "ep_comm_time_per_layer_s", [f"tokens_per_device=1:1000:lin{rows}",
                                                f"nic_bandwidth_gb_per_s=10:1000:log{cols}"])


def test_streamed_records_are_the_records_of_every_point():
    result = _sweep(7, 5)
    records = sw.records(result)
    assert len(records) == 35
    listed = list(records)
    assert listed[5 + 2] == records[7] == {"tokens_per_device": result.axes[0][1],
                                          "nic_bandwidth_gb_per_s": result.axes[1][2],
                                          "ep_comm_time_per_layer_s": result.values[1, 2]}
    assert records[-1] == listed[-1] and records[::10] == listed[::10]
    assert all(type(v) is float for r in listed for v in r.values())
    with pytest.raises(IndexError):
        records[35]


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_streamed_output_is_byte_for_byte_the_listed_output(fmt):
    result = _sweep(30, 20)
    unit = sw.SWEEP_METRICS[result.metric][0]
    streamed, listed = io.StringIO(), io.StringIO()
    render([sweep_table(result, sw.records(result), unit)], fmt, streamed)
    table = Table("t", ["a"], records=list(sw.records(result)))
    render([table], fmt, listed)
    assert streamed.getvalue() == listed.getvalue()
    if fmt == "json":
        assert json.loads(streamed.getvalue()) == list(sw.records(result))
        assert streamed.getvalue() == json.dumps(list(sw.records(result)), indent=2) + "\n"
    else:
        rows = list(csv.reader(io.StringIO(streamed.getvalue())))
        assert rows[0] == ["tokens_per_device", "nic_bandwidth_gb_per_s",
                           "ep_comm_time_per_layer_s"]
        assert len(rows) == 1 + 600
    empty = io.StringIO()
    render([Table("t", ["a"])], "json", empty)
    assert empty.getvalue() == "[]\n"


class _Sink(io.TextIOBase):
    """Counts what is written and keeps none of it."""

    def __init__(self) -> None:
        self.chars = 0

    def write(self, text: str) -> int:
        self.chars += len(text)
        return len(text)


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_writing_a_large_sweep_holds_no_record_per_point(fmt):
    # 200,000 points: about 321 bytes per point were held before (64 MB); now one chunk of
    # records at a time, whatever the grid.
    result = _sweep(500, 400)
    sink = _Sink()
    tracemalloc.start()
    table = sweep_table(result, sw.records(result), sw.SWEEP_METRICS[result.metric][0])
    render([table], fmt, sink)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert sink.chars > 200_000 * 40
    assert peak < 30_000_000, peak


def test_numerics_rows_are_capped():
    result = run("numerics", "--rows", str(10**11))
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip() == ("error: --rows must be 1 .. 1,024 "
                                     "(got 100,000,000,000)")
    with pytest.raises(ValueError, match="1 .. 1,024"):
        numerics_study.numerics_study(["e4m3"], tile=128, seed=0, rows=1025, pow2_scale=False)


def test_a_plot_draws_at_most_ten_thousand_points_a_line(tmp_path, monkeypatch):
    # A 10-million-point line took 1 GB to draw; a figure has fewer pixels than 10,000 points.
    pytest.importorskip("matplotlib")
    from matplotlib.axes import Axes

    drawn: list[tuple[float, float, int]] = []
    real = Axes.plot

    def record(self, x, y, *args, **kwargs):
        drawn.append((x[0], x[-1], len(x)))
        return real(self, x, y, *args, **kwargs)

    monkeypatch.setattr(Axes, "plot", record)
    result = sw.run_sweep(catalog.load_model("deepseek-v3"), catalog.load_hardware("h800"),
                          "ep_comm_time_per_layer_s", ["tokens_per_device=1:1000:lin100001",
                                     "micro_batches=1,2"])
    sw.plot(result, str(tmp_path / "p.png"))
    assert drawn == [(1.0, 1000.0, sw.PLOT_POINTS_PER_LINE)] * 2
    drawn.clear()
    sw.plot(_sweep(30, 2), str(tmp_path / "q.png"))
    assert [n for *_, n in drawn] == [30, 30]
