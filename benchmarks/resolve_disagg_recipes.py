"""One-off: resolve the disaggregated rows of planner/data/serving-runs.csv that leave worker
counts blank (the SemiAnalysis InferenceMAX sweeps, ids ``2026_03_25_...`` / ``2026_04_06_...``)
against the InferenceMAX benchmark recipes, and write planner/data/disagg-recipes.csv.

Source: github.com/SemiAnalysisAI/InferenceX (formerly InferenceMAX), Apache License 2.0,
file ``.github/configs/nvidia-master.yaml`` at every commit that touched it (git history of the
snapshot at 843c6254ff69b567f772f6a5fd97675af3d04431). Each disaggregated entry
(``<model>-<precision>-<gpu>-dynamo-<trt|sglang>[-mtp]``) lists per ISL/OSL a search space: a
concurrency list, the prefill and decode worker counts, their TP, EP, attention DP
(``dp-attn``) and speculative decoding.

Rule (never a guess): the recipe version is the newest commit at or before the row's
``measured=`` time that holds an entry of the row's model, precision, GPU, engine and ISL/OSL
whose concurrency list holds the row's concurrency and whose layout matches the row's
(TensorRT-LLM: prefill TP, prefill EP and decode TP; SGLang: prefill TP and decode TP, its rows
record EP as 1). The data's decode ``moe_ep`` repeats the prefill EP (the run id carries one
``ep``), so it is not compared. Status per row:
- ``resolved``: every matching search-space entry gives the same workers, layouts and no
  speculative decoding;
- ``mtp``: the same, with MTP speculative decoding, and every match names its draft tokens
  per step k (column ``mtp_k``): the ``mtp<k>`` of the srt-slurm recipe file the entry runs
  (``CONFIG_FILE=.../ctx1_gen2_dep8_batch64_eplb0_mtp2.yaml``) or its ``DECODE_MTP_SIZE=<k>``;
- ``mtp_k_unknown``: ``mtp`` but the entry names no k (an SGLang recipe file not stored
  here), or its matches name different ones;
- ``mtp_unknown``: the entries agree on workers and layouts but one uses MTP and one does not;
- ``ambiguous``: the entries disagree on workers or layouts;
- ``nodes``: the entry sizes its workers by ``PREFILL_NODES`` / ``DECODE_NODES`` (4 GPUs a
  node) and gives ``tp: 1`` (its rows say "tp1" or the total GPU count, e.g. "tp72"): one GPU
  cannot hold DeepSeek-R1, so ``tp`` is not the worker's size and the GPUs per worker are not
  stated;
- ``twin``: (from ``none``, ``ambiguous`` or ``nodes``) a row of the same file that records
  its pools is the same measurement (system, engine, ISL/OSL, concurrency equal, TTFT and
  TPOT equal to 0.1%): its workers and layouts (column ``twin`` names it; every blank row
  with such a row lists it there);
- ``none``: no version at or before the measurement holds a match.
Column ``decode_max_batch``: the decode workers' max_batch_size every match names (see
:data:`DECODE_MAX_BATCH`), blank where they name none or differ.

Run: python benchmarks/resolve_disagg_recipes.py --repo /work/.mirror/SemiAnalysisAI+InferenceX/repo
(needs git and PyYAML; takes a few minutes).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import re
import subprocess
from pathlib import Path

import yaml

CONFIG = ".github/configs/nvidia-master.yaml"
MODEL = {"DeepSeek-R1": "dsr1", "gpt-oss-120b": "gptoss", "Kimi-K2.5": "kimik2.5", "GLM-5": "glm5"}
GPU = {"b200_sxm": "b200", "h100_sxm": "h100", "h200_sxm": "h200", "gb200": "gb200"}
ENGINE = {"trtllm": "dynamo-trt", "sglang": "dynamo-sglang"}
FIELDS = ("id", "status", "prefill_num_workers", "prefill_tp", "prefill_ep", "prefill_dp_attn",
          "decode_num_workers", "decode_tp", "decode_ep", "decode_dp_attn", "spec_decoding",
          "entry", "commit", "twin", "mtp_k", "decode_max_batch")
#: Where an entry names its MTP draft tokens per step: the srt-slurm recipe file's name
#: (``..._mtp3.yaml``, ``..._mtp3_1184.yaml``) or the launch variable.
MTP_K = (re.compile(r"_mtp(\d+)(?:_\d+)?\.yaml"), re.compile(r"DECODE_MTP_SIZE=(\d+)"))
#: Where a TensorRT-LLM entry names its decode workers' max_batch_size (requests per attention
#: rank an iteration runs): the recipe file's ``_batch<N>_`` (the stored srt-slurm recipe
#: ``trtllm/glm5/.../ctx1dep4_gen4tep8_batch1_eplb0_mtp3.yaml`` has decode ``max_batch_size:
#: 1``) or ``DECODE_MAX_BATCH_SIZE=<N>``.
DECODE_MAX_BATCH = (re.compile(r"_batch(\d+)_"), re.compile(r"DECODE_MAX_BATCH_SIZE=(\d+)"))
#: Relative tolerance within which a blank row's TTFT and TPOT equal a recorded row's: the
#: same measurement listed twice (the recorded copy from AIConfigurator's own dump).
TWIN_RTOL = 1e-3
#: Recipe statuses a twin may settle (never mtp / mtp_unknown: a twin does not say MTP).
TWIN_SETTLES = ("none", "ambiguous", "nodes")


def _versions(repo: str) -> list[tuple[str, dt.datetime]]:
    out = subprocess.run(["git", "-C", repo, "log", "--format=%H %cI", "--", CONFIG],
                         capture_output=True, text=True, check=True).stdout.split("\n")
    pairs = [line.split() for line in out if line.strip()]
    return sorted(((h, dt.datetime.fromisoformat(d)) for h, d in pairs), key=lambda p: p[1])


def _entries(repo: str, commit: str, cache: dict[str, dict]) -> dict:
    if commit not in cache:
        text = subprocess.run(["git", "-C", repo, "show", f"{commit}:{CONFIG}"],
                              capture_output=True, text=True).stdout
        y = yaml.load(text, Loader=yaml.CSafeLoader) or {}
        cache[commit] = {k: v for k, v in y.items() if isinstance(v, dict) and v.get("disagg")}
    return cache[commit]


def _signature(ss: dict) -> tuple:
    p, d = ss["prefill"], ss["decode"]
    return (p["num-worker"], p["tp"], p.get("ep", 1), bool(p.get("dp-attn")), d["num-worker"],
            d["tp"], d.get("ep", 1), bool(d.get("dp-attn")), ss.get("spec-decoding", "none"))


def _named(settings: str, patterns: tuple[re.Pattern[str], ...]) -> int | None:
    """The first number ``patterns`` find in an entry's settings (None: none named)."""
    for pattern in patterns:
        if m := pattern.search(settings):
            return int(m.group(1))
    return None


def _matches(row: dict, entries: dict) -> list[tuple[str, tuple, int | None, int | None]]:
    name = "-".join((MODEL[row["model_path"].split("/")[1]], row["precision"], GPU[row["system"]],
                     ENGINE[row["backend"]]))
    conc = int(re.search(r"silicon_concurrency=(\d+)", row["silicon_data_source"]).group(1))
    ptp, pep, dtp = (int(row[k]) for k in ("prefill_tp_size", "prefill_moe_ep_size",
                                            "decode_tp_size"))
    out = []
    for entry, e in entries.items():
        if entry != name and not entry.startswith(name + "-"):
            continue
        for sl in e.get("seq-len-configs") or []:
            if (sl["isl"], sl["osl"]) != (int(row["isl"]), int(row["osl"])):
                continue
            for i, ss in enumerate(sl.get("search-space") or []):
                if conc not in (ss.get("conc-list") or []):
                    continue
                lay = (ss["prefill"]["tp"], ss["prefill"].get("ep", 1), ss["decode"]["tp"])
                want = (ptp, pep, dtp) if row["backend"] == "trtllm" else (ptp, lay[1], dtp)
                if lay == want:
                    settings = " ".join(str(x) for part in (ss["prefill"], ss["decode"])
                                        for x in part.get("additional-settings") or [])
                    nodes = bool(re.search(r"(PREFILL|DECODE)_NODES=", settings))
                    out.append((f"{entry}[isl={sl['isl']},osl={sl['osl']}][{i}]",
                                _signature(ss) + (nodes,), _named(settings, MTP_K),
                                _named(settings, DECODE_MAX_BATCH)))
    return out


def _twin_layout(rec: dict) -> tuple:
    """A recorded row's pools in the recipe's terms (workers, GPUs per worker, EP, dp-attn)."""
    out = []
    for role in ("prefill", "decode"):
        tp, dp = int(rec[f"{role}_tp_size"] or 1), int(rec[f"{role}_attention_dp_size"] or 1)
        out += [int(rec[f"{role}_num_workers"]), tp * dp, int(rec[f"{role}_moe_ep_size"] or 1),
                dp > 1]
    return tuple(out) + ("none",)


def _twins(row: dict, recorded: list[dict]) -> list[dict]:
    """Recorded rows of the same measurement: system, engine, lengths and concurrency equal,
    TTFT and TPOT equal to :data:`TWIN_RTOL`."""
    key = ("system", "backend", "isl", "osl")
    conc = re.search(r"silicon_concurrency=(\d+)", row["silicon_data_source"])
    out = []
    for r in recorded:
        c = re.search(r"silicon_concurrency=(\d+)", r["silicon_data_source"])
        if (all(r[k] == row[k] for k in key) and c and conc and c.group(1) == conc.group(1)
                and all(abs(float(r[m]) / float(row[m]) - 1) < TWIN_RTOL
                        for m in ("silicon_ttft_ms", "silicon_tpot_ms"))):
            out.append(r)
    return out


def resolve(repo: str, runs: str) -> list[dict]:
    versions, cache, out = _versions(repo), {}, []
    with open(runs, newline="") as f:
        every = [r for r in csv.DictReader(f) if r["mode"] == "disagg"]
    rows = [r for r in every if not r["prefill_num_workers"]]
    recorded = [r for r in every if r["prefill_num_workers"]]
    for row in rows:
        if row["model_path"].split("/")[1] not in MODEL or row["backend"] not in ENGINE:
            out.append({"id": row["id"], "status": "none"})
            continue
        when = re.search(r"measured=([0-9T:.\-]+Z?)", row["silicon_data_source"]).group(1)
        measured = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
        if measured.tzinfo is None:
            measured = measured.replace(tzinfo=dt.timezone.utc)
        found = None
        for commit, date in reversed(versions):
            if date <= measured and (m := _matches(row, _entries(repo, commit, cache))):
                found = (commit, m)
                break
        rec = {"id": row["id"], "status": "none"}
        if found:
            commit, m = found
            sigs = {s for _, s, _, _ in m}
            rec.update(commit=commit, entry=" | ".join(e for e, _, _, _ in m))
            batches = {b for *_, b in m}
            if len(batches) == 1 and None not in batches:
                rec["decode_max_batch"] = batches.pop()
            if len({s[:-2] for s in sigs}) > 1:
                rec["status"] = "ambiguous"
            elif any(s[-1] for s in sigs):
                rec["status"] = "nodes"
            elif len(sigs) > 1:
                rec["status"] = "mtp_unknown"
            else:
                s = sigs.pop()
                rec["status"] = "resolved" if s[-2] in ("none", "") else "mtp"
                ks = {k for _, _, k, _ in m}
                if rec["status"] == "mtp":
                    if len(ks) == 1 and None not in ks:
                        rec["mtp_k"] = ks.pop()
                    else:
                        rec["status"] = "mtp_k_unknown"
            s = sorted(sigs or {m[0][1]})[0]
            if rec["status"] != "ambiguous":
                rec.update(zip(FIELDS[2:11], s))
        twins = _twins(row, recorded)
        if twins:
            rec["twin"] = " ".join(t["id"] for t in twins)
            layouts = {_twin_layout(t) for t in twins}
            if rec["status"] in TWIN_SETTLES and len(layouts) == 1:
                for k in FIELDS[2:11]:
                    rec.pop(k, None)
                rec["status"] = "twin"
                rec.update(zip(FIELDS[2:11], layouts.pop()))
        out.append(rec)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repo", required=True, help="git directory of SemiAnalysisAI/InferenceX")
    ap.add_argument("--runs", default="planner/data/serving-runs.csv")
    ap.add_argument("--out", default="planner/data/disagg-recipes.csv")
    args = ap.parse_args()
    recs = resolve(args.repo, args.runs)
    with open(args.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, lineterminator="\n")
        w.writeheader()
        for r in recs:
            w.writerow({k: (int(v) if isinstance(v, bool) else v) for k, v in r.items()})
    counts: dict[str, int] = {}
    for r in recs:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    print(f"{len(recs)} rows: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
