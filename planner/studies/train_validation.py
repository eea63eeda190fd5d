"""Training step times predicted for the published runs of validation/training.yaml (with
its validation-local GPT specs; hardware from the catalog), beside the measured ones: error =
predicted / measured - 1. Kernel efficiencies come from the hardware specs, never fitted to
these runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Runs on this hardware are Megatron-LM 2020-2022 runs: no fused (flash) attention, dropout on.
MEGATRON_2022_HARDWARE = ("a100",)


@dataclass(frozen=True)
class TrainValidationRow:
    id: str
    source: str
    layout: str
    measured_step_time_s: float
    step_time_s: float
    error_frac: float
    memory_bytes_per_gpu: float
    fits: bool
    binding_part: str


def _specs(path: Path, model: str, hardware: str):
    """The model a run names (validation-local specs first, else the catalog) and its hardware
    (the catalog's)."""
    from planner import catalog

    local = path.parent / "training-specs"
    m = catalog.load_model(str(local / f"{model}.yaml")
                           if (local / f"{model}.yaml").exists() else model)
    h = catalog.load_hardware(hardware)
    return m, h


def _path(path: Path | None) -> Path:
    from planner import catalog

    return path or catalog.validation_dir() / "training.yaml"


def _measured_step_s(model, run: dict) -> float:
    """The run's measured step time: given, or from the achieved TFLOP/s per GPU a Megatron-LM
    paper reports (its eq. 3 FLOPs over the step and the GPUs); pops the measured field."""
    from planner.calc.train.layout import megatron_iteration_flops

    if "measured_step_time_s" in run:
        return float(run.pop("measured_step_time_s"))
    achieved = float(run.pop("measured_tflop_per_gpu")) * 1e12
    flops = megatron_iteration_flops(num_layers=model.num_layers, hidden_size=model.hidden_size,
                                     vocab_size=model.vocab_size,
                                     global_batch=run["global_batch"], seq_len=run["seq_len"])
    return flops / (achieved * run["gpus"])


def validate_training(path: Path | None = None) -> list[TrainValidationRow]:
    """Every run of the validation file, predicted."""
    from planner.calc.train.layout import train_layout
    from planner.specs.yaml_reader import read_yaml_file

    path = _path(path)
    rows = []
    for run in read_yaml_file(path)[0]["runs"]:
        r = dict(run)
        hw = r.pop("hardware")
        model, hardware = _specs(path, r.pop("model"), hw)
        rid, source = r.pop("id"), r.pop("source")
        measured = _measured_step_s(model, r)
        old = hw in MEGATRON_2022_HARDWARE    # no fused attention, dropout on
        r.setdefault("flash_attention", not old)
        r.setdefault("dropout", old)
        r.setdefault("zero", 0)
        res = train_layout(model, hardware, tokens=1e12, **r)
        rows.append(TrainValidationRow(
            id=rid, source=source, layout=" ".join(f"{k}={v}" for k, v in res.layout.items()),
            measured_step_time_s=measured, step_time_s=res.step_time_s,
            error_frac=res.step_time_s / measured - 1,
            memory_bytes_per_gpu=res.memory_bytes_per_gpu, fits=res.fits,
            binding_part=res.binding_part))
    return rows


@dataclass(frozen=True)
class TrainMemoryRow:
    id: str
    recompute: str
    par_opt_gib: float          # published
    predicted_par_opt_gib: float
    act_gib: float              # published
    predicted_act_gib: float


def validate_training_memory(path: Path | None = None) -> list[TrainMemoryRow]:
    """Korthikanti et al. Figure 1's memory per GPU beside the planner's (GiB)."""
    from planner.calc.train.layout import evaluate_layouts, grid_of
    from planner.specs.yaml_reader import read_yaml_file
    from planner.units import GIB

    path = _path(path)
    rows = []
    for run in read_yaml_file(path)[0]["memory"]:
        model, hardware = _specs(path, run["model"], "a100")
        for mode, sp in (("none", False), ("selective", True)):
            grid = grid_of(tp=run["tp"], pp=run["pp"], dp=1, cp=1, ep=1, vpp=run["vpp"],
                           micro_batch=run["micro_batch"], zero=0, recompute=mode,
                           schedule="interleaved" if run["vpp"] > 1 else "1f1b")
            e = evaluate_layouts(model, hardware, grid, gpus=run["gpus"],
                                 global_batch=run["global_batch"], seq_len=2048,
                                 sequence_parallel=sp, flash_attention=False, dropout=True)
            par = sum(float(e.memory_parts[k]) for k in ("weights", "gradients", "optimizer"))
            rows.append(TrainMemoryRow(
                id=run["id"], recompute=mode, par_opt_gib=run["par_opt_gib"],
                predicted_par_opt_gib=par / GIB, act_gib=run[f"act_{mode}_gib"],
                predicted_act_gib=float(e.memory_parts["activations"]) / GIB))
    return rows


@dataclass(frozen=True)
class WholeRunRow:
    id: str
    source: str
    tokens: float
    measured_gpu_hours: float
    gpu_hours: float                # predicted over the whole run, the batch ramp included
    gpu_hours_final_batch: float    # the same tokens all at the final batch
    error_frac: float


def _run_gpu_hours(model, hardware, run: dict, *, batch: int, tokens: float) -> float:
    """GPU-hours of ``tokens`` at global batch ``batch`` on the run's layout (h)."""
    from planner.calc.train.layout import train_layout

    r = {k: v for k, v in run.items() if k not in ("id", "source", "model", "hardware",
                                                    "measured_step_time_s")}
    r.update(global_batch=batch, flash_attention=True, dropout=False)
    return train_layout(model, hardware, tokens=tokens, **r).train_gpu_hours


def validate_whole_runs(path: Path | None = None) -> list[WholeRunRow]:
    """The whole runs of the validation file (``whole_runs``): the GPU-hours the paper gives
    for all its tokens beside the planner's over the same tokens, with the global batch
    ramped as the paper ramps it (linearly in tokens, in ``ramp_steps`` equal slices, each at
    its mid batch rounded down to whole micro-batches per data-parallel rank, then to a count
    the schedule's ``step()`` runs: DualPipe's m even and >= 2p, so DeepSeek-V3's slices below
    4,096 sequences run at 32 micro-batches; see docs/training.md) and then the final batch
    (h)."""
    from planner.calc.train.layout import dualpipe_runnable_micro_batches
    from planner.calc.train.recipe import TRAIN_SCHEDULES
    from planner.specs.yaml_reader import read_yaml_file

    path = _path(path)
    doc = read_yaml_file(path)[0]
    runs = {r["id"]: r for r in doc["runs"]}
    rows = []
    for w in doc.get("whole_runs", []):
        run = runs[w["run"]]
        model, hardware = _specs(path, run["model"], run["hardware"])
        step = run["micro_batch"] * run["gpus"] // (run["tp"] * run["pp"] * run.get("cp", 1))
        lo, hi, ramp = w["ramp_from_batch"], run["global_batch"], float(w["ramp_tokens"])
        n = w["ramp_steps"]
        hours = 0.0
        for i in range(n):
            m = int(dualpipe_runnable_micro_batches(
                int((lo + (hi - lo) * (i + 0.5) / n) // step), pp=run["pp"],
                schedule=TRAIN_SCHEDULES.index(run.get("schedule", "1f1b"))))
            hours += _run_gpu_hours(model, hardware, run, batch=m * step, tokens=ramp / n)
        total = float(w["tokens"])
        hours += _run_gpu_hours(model, hardware, run, batch=hi, tokens=total - ramp)
        final = _run_gpu_hours(model, hardware, run, batch=hi, tokens=total)
        rows.append(WholeRunRow(id=w["run"], source=w["source"], tokens=total,
                                measured_gpu_hours=float(w["gpu_hours"]), gpu_hours=hours,
                                gpu_hours_final_batch=final,
                                error_frac=hours / float(w["gpu_hours"]) - 1))
    return rows
