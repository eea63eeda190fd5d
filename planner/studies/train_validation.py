"""Training step times predicted for the published runs of validation/training.yaml (with
its validation-local A100 and GPT specs), beside the measured ones: error = predicted /
measured - 1. Kernel efficiencies come from the hardware specs, never fitted to these runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: The hardware a run names, where the catalog has none (validation-local specs).
LOCAL_HARDWARE = {"a100": "a100-sxm4-80gb"}


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


def validate_training(path: Path | None = None) -> list[TrainValidationRow]:
    """Every run of the validation file, predicted."""
    from planner import catalog
    from planner.calc.train.layout import train_layout
    from planner.specs.yaml_reader import read_yaml_file

    path = path or catalog.validation_dir() / "training.yaml"
    local = path.parent / "training-specs"
    rows = []
    for run in read_yaml_file(path)[0]["runs"]:
        r = dict(run)
        name = r.pop("model")
        model = catalog.load_model(str(local / f"{name}.yaml")
                                   if (local / f"{name}.yaml").exists() else name)
        hw = r.pop("hardware")
        hardware = catalog.load_hardware(str(local / f"{LOCAL_HARDWARE[hw]}.yaml")
                                         if hw in LOCAL_HARDWARE else hw)
        measured = r.pop("measured_step_time_s")
        rid, source = r.pop("id"), r.pop("source")
        old = hw in LOCAL_HARDWARE    # 2022 Megatron-LM: no fused attention, dropout on
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
