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
(prefill TP, prefill EP and decode TP, every engine: on the 67 SGLang rows resolved with TP
alone, the row's EP was the recipe's prefill EP on all 67). The data's decode ``moe_ep``
repeats the prefill EP (the run id carries one ``ep``), so it is not compared. A stamp that
records only the day (:data:`DATE_ONLY`) reads that day's versions where none before it
matches. Status per row:
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
  node), its launch script reads them (:func:`_reads_nodes`) and it gives ``tp: 1`` (its rows
  say "tp1" or the total GPU count, e.g. "tp72"), and :func:`_nodes_signature` cannot read it
  (FP4, or a pool without attention DP); an FP8 one it reads is ``resolved`` with
  "(GPUs from nodes)" after its entry;
- ``twin``: (from ``none``, ``ambiguous`` or ``nodes``) a row of the same file that records
  its pools is the same measurement (system, engine, ISL/OSL, concurrency equal, TTFT and
  TPOT equal to 0.1%): its workers and layouts (column ``twin`` names it; every blank row
  with such a row lists it there);
- ``none``: no version at or before the measurement holds a match.
``mtp_unknown`` rows a stored record settles become ``resolved`` / ``mtp`` (column ``spec_from``,
:func:`_settle_mtp`).
Column ``decode_max_batch``: the decode workers' max_batch_size every match names (see
:data:`DECODE_MAX_BATCH`), blank where they name none or differ.

Column ``rule`` names the readings a row needed beyond the entry's layout and ``conc-list``
(round 11), each a function here with its source:
- ``recipe_file_concurrency`` (:func:`_file_concurrencies`): the concurrency an entry that names
  an srt-slurm recipe file ran is the file's ``benchmark.concurrencies`` (NVIDIA/srt-slurm);
- ``sweep_concurrency`` (:func:`_per_decode_worker`): Dynamo's TensorRT-LLM sweep multiplies each
  listed concurrency by the decode workers;
- ``total_gpus`` (:func:`_same_total_gpus`, read where no entry's layout matches): a GB200 row's
  "tpN" with EP 1 is the deployment's N GPUs;
- ``launch_script`` (:func:`_launch_script_entries`): before ``nvidia-master.yaml`` held GB200
  entries, ``runners/launch_gb200-nv.sh``'s SGLang jobs;
- ``recipe_committed_after`` (:func:`_later_recipe_matches`, read where nothing else matches):
  the srt-slurm recipe file committed within :data:`LATER_RECIPE_WINDOW` after a run that
  precedes every InferenceX entry of its model (GLM-5 and Kimi-K2.5 on GB200);
- ``changelog`` (:func:`_push_run_keys`): a row stamped seconds after a commit is that
  commit's push run, which benchmarks only the config keys the commit adds to
  ``perf-changelog.yaml``;
- ``recipe_file_mtp`` (:func:`_recipe_mtp_steps`): an SGLang recipe file's
  ``speculative-num-steps`` is the MTP k its entry does not name;
- ``nodes_fp4`` (:func:`_nodes_signature` with ``deepep=False``): FP4 GB200 SGLang entries sized
  in nodes, read with the entry's own EP;
- ``copy`` (:func:`_settle_ambiguous_copies`): an ambiguous row takes the record of a dated row
  of the same measurement that the recipes settle.

Run: python benchmarks/resolve_disagg_recipes.py --repo /work/.mirror/SemiAnalysisAI+InferenceX/repo
--srt-repo /work/.mirror/NVIDIA+srt-slurm/repo (needs git and PyYAML; a few seconds).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import fnmatch
import math
import re
import subprocess
from collections.abc import Callable
from typing import Any

import yaml

CONFIG = ".github/configs/nvidia-master.yaml"
MODEL = {"DeepSeek-R1": "dsr1", "gpt-oss-120b": "gptoss", "Kimi-K2.5": "kimik2.5", "GLM-5": "glm5"}
GPU = {"b200_sxm": "b200", "h100_sxm": "h100", "h200_sxm": "h200", "gb200": "gb200"}
ENGINE = {"trtllm": "dynamo-trt", "sglang": "dynamo-sglang"}
FIELDS = ("id", "status", "prefill_num_workers", "prefill_tp", "prefill_ep", "prefill_dp_attn",
          "decode_num_workers", "decode_tp", "decode_ep", "decode_dp_attn", "spec_decoding",
          "entry", "commit", "twin", "mtp_k", "decode_max_batch", "spec_from", "rule")
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
#: GPUs per node of the GB200 NVL72 trays the node-sized SGLang entries run on (Dynamo's
#: ``components/backends/sglang/slurm_jobs/submit_disagg.sh``: ``GPUS_PER_NODE=4``; its
#: ``submit_job_script.py`` requires the nodes to divide by the workers).
GPUS_PER_NODE = 4
#: A ``measured=`` stamp that records only the day (``2026-01-29T00:00:00.000Z`` or
#: ``2026-03-23``; the sweeps' dated stamps carry seconds, ``2026-01-29T15:52:16Z``, three
#: seconds after the recipe commit efe2f531c that the run checked out): the run happened some
#: time that UTC day: where no version before the day's start matches, the versions committed
#: that day up to its end are read (the newest that matches, as for a dated stamp).
DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}(?:T00:00:00(?:\.0+)?Z?)?")
DAY_END = dt.timedelta(days=1) - dt.timedelta(microseconds=1)
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


def _same_layout(row: dict, ss: dict) -> bool:
    """The row's layout is the entry's: prefill TP, prefill EP and decode TP equal."""
    want = tuple(int(row[k]) for k in ("prefill_tp_size", "prefill_moe_ep_size",
                                       "decode_tp_size"))
    return (ss["prefill"]["tp"], ss["prefill"].get("ep", 1), ss["decode"]["tp"]) == want


def _entry_gpus(ss: dict) -> int:
    """All GPUs of a search-space entry: per pool ``<ROLE>_NODES`` x :data:`GPUS_PER_NODE`
    where the entry sizes the pool in nodes, else workers x ``tp``."""
    total = 0
    for role in ("prefill", "decode"):
        part = ss[role]
        settings = " ".join(str(x) for x in part.get("additional-settings") or [])
        m = re.search(rf"{role.upper()}_NODES=(\d+)", settings)
        total += int(m.group(1)) * GPUS_PER_NODE if m else part["num-worker"] * part["tp"]
    return total


def _same_total_gpus(row: dict, ss: dict) -> bool:
    """Rule ``total_gpus``: the row's ``tp`` is the whole deployment's GPU count, the entry's
    (:func:`_entry_gpus`). The GB200 rows of the 2026-04-06 file stamped 2025-12-01 /
    2025-12-05 say "tp12" .. "tp72" with EP 1 on both pools: InferenceMAX's first GB200
    sweeps, whose recipes (``runners/launch_gb200-nv.sh`` @ 450d834a9 / 175fe5364, carried
    into ``nvidia-master.yaml`` @ 93e1b3ca1 on 2025-12-05) give 4-GPU context workers and
    ``tp`` 8 .. 32 generation workers, or nodes, never a 12 .. 72-GPU worker: e.g.
    ``dsr1-fp4-gb200-dynamo-trt`` 1K/1K ``conc-list [2048, 4300]``, 2 prefill workers of
    TP4 and one decode worker of 16 (24 GPUs), is the row "c2048 tp24". Read only where the
    row's layout matches no entry (:func:`_same_layout`), its two pools state the same ``tp``
    and EP 1."""
    ptp, pep, dtp, dep = (int(row[k] or 1) for k in ("prefill_tp_size", "prefill_moe_ep_size",
                                                     "decode_tp_size", "decode_moe_ep_size"))
    return ptp == dtp and pep == dep == 1 and _entry_gpus(ss) == ptp


def _matches(row: dict, entries: dict, reads_nodes: Callable[[str], bool] = lambda _: True,
             fits: Callable[[dict, dict], bool] = _same_layout,
             file_concs: Callable[[str], set[int] | None] = lambda _: None,
             per_decode_worker: Callable[[str], bool] = lambda _: False,
             file_mtp: Callable[[str], int | None] = lambda _: None,
             ) -> list[tuple[str, tuple, int | None, int | None]]:
    """The search-space entries of the row's model, precision, GPU, engine and ISL/OSL that
    ran the row's concurrency at a layout ``fits`` accepts, each as (reference, signature,
    MTP k, decode max batch). The concurrency an entry ran: its srt-slurm recipe file's
    ``benchmark.concurrencies`` where ``file_concs`` reads the file (:func:`_file_concurrencies`;
    reference tagged "(concurrency from recipe file)" where the entry's ``conc-list`` does not
    hold it); where the entry's launch script runs Dynamo's TensorRT-LLM performance sweep
    (``per_decode_worker``, :func:`_per_decode_worker`) its ``conc-list`` x its decode workers
    (tagged "(concurrency x decode workers)" where that differs); else its ``conc-list``."""
    name = "-".join((MODEL[row["model_path"].split("/")[1]], row["precision"], GPU[row["system"]],
                     ENGINE[row["backend"]]))
    conc = int(re.search(r"silicon_concurrency=(\d+)", row["silicon_data_source"]).group(1))
    out = []
    for entry, e in entries.items():
        if entry != name and not entry.startswith(name + "-"):
            continue
        for sl in e.get("seq-len-configs") or []:
            if (sl["isl"], sl["osl"]) != (int(row["isl"]), int(row["osl"])):
                continue
            for i, ss in enumerate(sl.get("search-space") or []):
                settings = " ".join(str(x) for part in (ss["prefill"], ss["decode"])
                                    for x in part.get("additional-settings") or [])
                listed = ss.get("conc-list") or []
                recipe = re.search(r"CONFIG_FILE=(\S+)", settings)
                ran = file_concs(recipe.group(1)) if recipe else None
                if ran is None and not recipe and per_decode_worker(entry):
                    ran = {c * ss["decode"]["num-worker"] for c in listed}
                if conc not in (listed if ran is None else ran) or not fits(row, ss):
                    continue
                nodes = bool(re.search(r"(PREFILL|DECODE)_NODES=", settings)
                             and reads_nodes(entry))
                sig, ref = _signature(ss), f"{entry}[isl={sl['isl']},osl={sl['osl']}][{i}]"
                if conc not in listed:
                    ref += (" (concurrency from recipe file)" if recipe
                            else " (concurrency x decode workers)")
                if nodes and (by_nodes := _nodes_signature(ss, row["precision"] == "fp8")):
                    sig, ref, nodes = by_nodes, ref + " (GPUs from nodes)", False
                    if row["precision"] != "fp8":
                        ref += " (FP4: the entry's EP)"
                k = _named(settings, MTP_K)
                if k is None and recipe and sig[-1] == "mtp":
                    k = file_mtp(recipe.group(1))
                    ref += " (k from recipe file)" if k else ""
                out.append((ref, sig + (nodes,), k, _named(settings, DECODE_MAX_BATCH)))
    return out


#: The ways a row's layout is compared with an entry's, in order: the next is read only where
#: the one before matches no version (column ``rule``: blank for the first).
RULES: tuple[tuple[str, Callable[[dict, dict], bool]], ...] = (
    ("", _same_layout), ("total_gpus", _same_total_gpus))


def _nodes_signature(ss: dict, deepep: bool = True) -> tuple | None:
    """The signature of an FP8 entry that sizes its workers in nodes, where it can be read:
    both pools attention-DP (``dp-attn``) with ``<ROLE>_NODES`` named; each worker then holds
    ``nodes / num-worker`` nodes of :data:`GPUS_PER_NODE` GPUs, every one an attention rank and
    an expert rank (Dynamo's ``components/backends/sglang/slurm_jobs/scripts/gb200-fp8.sh`` @
    085194da: ``--tp-size $TOTAL_GPUS --dp-size $TOTAL_GPUS --enable-dp-attention
    --enable-deepep-moe``, DeepEP putting one expert rank on each GPU). None elsewhere. Rule
    ``nodes_fp4`` (``deepep`` False, round 11): the FP4 entries ran Dynamo's frozen
    ``b7107d00`` scripts (InferenceX ``benchmarks/dsr1_fp4_gb200_dynamo-sglang_slurm.sh`` @
    c040b5cf2, ``GPU_TYPE="gb200-fp4"``), not stored (the stored ``gb200-fp4.sh`` @ 085194da
    runs neither pool); their entries state ``dp-attn: true``, the nodes and ``ep: 1`` ("1
    prefill worker at DEP4 and 2 decode workers at DEP4", @ c040b5cf2), so they are read the
    same way with the entry's EP; the 5 recorded FP4 twins that can be compared give the same
    workers, GPUs per worker and attention DP, and EP 1. A twin's layout is taken over this
    reading."""
    out: list = []
    for role in ("prefill", "decode"):
        part = ss[role]
        settings = " ".join(str(x) for x in part.get("additional-settings") or [])
        m = re.search(rf"{role.upper()}_NODES=(\d+)", settings)
        if not (m and part.get("dp-attn")) or int(m.group(1)) % part["num-worker"]:
            return None
        gpus = int(m.group(1)) // part["num-worker"] * GPUS_PER_NODE
        out += [part["num-worker"], gpus, gpus if deepep else part.get("ep", 1), True]
    return tuple(out) + (ss.get("spec-decoding", "none"),)


def _reads_nodes(repo: str, commit: str, entry: str, cache: dict[tuple[str, str], bool]) -> bool:
    """Whether the entry's launch script at ``commit`` (``benchmarks/<model>_<precision>_<gpu>_
    <framework>_slurm.sh``) reads ``PREFILL_NODES`` (the SGLang GB200 scripts pass it to
    Dynamo's ``submit_disagg.sh``); the gpt-oss GB200 TensorRT-LLM script reads only the TP (a
    worker of ``tp`` GPUs). True where the script is not stored (the row stays ``nodes``)."""
    model, precision, gpu, *framework = entry.split("-")
    key = (commit, entry)
    if key not in cache:
        path = f"benchmarks/{model}_{precision}_{gpu}_{'-'.join(framework)}_slurm.sh"
        text = subprocess.run(["git", "-C", repo, "show", f"{commit}:{path}"],
                              capture_output=True, text=True).stdout
        cache[key] = not text or "PREFILL_NODES" in text
    return cache[key]


#: The Dynamo refs whose TensorRT-LLM sweep multiplies the listed concurrencies by the decode
#: workers (the DeepSeek-R1 FP4 GB200 scripts' ``git checkout release/0.5.1-rc0.20251105``:
#: its rows' concurrencies 144 = 36 x 4, 564 = 141 x 4, 102 = 34 x 3 appear in no list, and
#: the 3 recorded copies of such rows give the multiplied entry's layout). The gpt-oss script
#: checks out ``release/0.5.1-rc0.20260105`` (a ``benchmark_disagg.slurm`` taking DECODE_EP
#: too), whose client is not stored; its rows say it did not multiply (c3072 on the 3-worker
#: entry ``conc-list [3072]``, c16 on the 4-worker ``[16]``).
SWEEP_PER_DECODE_WORKER_REFS = ("release/0.5.1-rc0.20251105",)


def _per_decode_worker(repo: str, commit: str, entry: str,
                       cache: dict[tuple[str, str], bool]) -> bool:
    """Rule ``sweep_concurrency``: whether the entry's launch script at ``commit``
    (``benchmarks/<model>_<precision>_<gpu>_<framework>_slurm.sh``, later
    ``benchmarks/multi_node/<model>_<precision>_<gpu>_<framework>.sh``) submits Dynamo's
    TensorRT-LLM performance sweep (``sbatch ... benchmark_disagg.slurm ... "${CONC_LIST}"``,
    ``components/backends/trtllm/performance_sweeps`` of ai-dynamo/dynamo at
    ``release/0.5.1-rc0.20251105``; InferenceX 93e1b3ca1 .. 645b97aa4 for DeepSeek-R1 FP4
    GB200, and gpt-oss FP4 GB200 through f316a0ef6). That sweep's client multiplies each
    listed concurrency by the decode workers (``scripts/bench.sh``: ``concurrency=$((concurrency
    * num_gen_servers))``, every stored version), so ``conc-list [1, 2, 4, 8, 16, 32, 64, 141]``
    over 4 TEP8 decode workers ran 4 .. 564: the 2025-12-05 rows "tp36" c128, c256, c564.
    Read only for the Dynamo refs of :data:`SWEEP_PER_DECODE_WORKER_REFS`."""
    model, precision, gpu, *framework = entry.split("-")
    key = (commit, entry)
    if key not in cache:
        fw = "-".join(framework)
        text = ""
        for path in (f"benchmarks/{model}_{precision}_{gpu}_{fw}_slurm.sh",
                     f"benchmarks/multi_node/{model}_{precision}_{gpu}_{fw}.sh"):
            text = text or subprocess.run(["git", "-C", repo, "show", f"{commit}:{path}"],
                                          capture_output=True, text=True).stdout
        cache[key] = "benchmark_disagg.slurm" in text and any(
            f"git checkout {ref}" in text for ref in SWEEP_PER_DECODE_WORKER_REFS)
    return cache[key]


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


def _recipe_history(srt: str | None) -> dict[str, list[tuple[dt.datetime, str]]]:
    """Every commit (all refs) of the srt-slurm git directory ``srt`` that touched each file
    under ``recipes/``, by path, oldest first (empty without ``srt``)."""
    if not srt:
        return {}
    log = subprocess.run(["git", "-C", srt, "log", "--all", "--format=@%H %cI", "--name-only",
                          "--", "recipes"], capture_output=True, text=True, check=True).stdout
    out: dict[str, list[tuple[dt.datetime, str]]] = {}
    when: tuple[dt.datetime, str] | None = None
    for line in log.split("\n"):
        if line.startswith("@"):
            commit, date = line[1:].split()
            when = (dt.datetime.fromisoformat(date), commit)
        elif line.strip() and when:
            out.setdefault(line.strip(), []).append(when)
    return {k: sorted(v) for k, v in out.items()}


#: Rule ``recipe_file_concurrency``'s fallback: the runs clone srt-slurm's
#: ``sa-submission-q1-2026`` branch, which the snapshot holds only as merged into main
#: (NVIDIA/srt-slurm 5063eb43, 2026-03-03, "Merge sa-submission-q1-2026 into main (#202)");
#: main then consolidated the B200 recipe files into 4 (37f8ca23, 2026-03-04) while the branch
#: kept them. Where no stored version at or before the measurement holds the file, or main
#: had deleted it, the file's stored content nearest the measurement is read.
Q1_FALLBACK = True


def _file_concurrencies(srt: str, history: dict, path: str, limit: dt.datetime,
                        cache: dict, parse: Callable[[str], Any] | None = None) -> Any:
    """Rule ``recipe_file_concurrency``: the concurrencies an entry's srt-slurm recipe file
    (``CONFIG_FILE=recipes/...``) runs, its ``benchmark.concurrencies`` ("44", "4 192 360 668",
    "1024x2048", [4, 8]) at the file's newest commit at or before ``limit``; None where no
    version is stored (then the entry's ``conc-list`` is read). The multi-node launch scripts
    run the file as it stands (``runners/launch_h200-dgxc-slurm.sh`` @ f316a0ef6: ``srtctl
    apply -f "$CONFIG_FILE"`` after cloning srt-slurm at ``sa-submission-q1-2026``), so the
    file's concurrencies are what the benchmark sent, and an entry's ``conc-list`` can be a
    label: ``dsr1-fp8-h200-dynamo-trt`` 1K/1K ``conc-list [4]`` runs
    ``recipes/trtllm/h200/1k1k/mtp/c4_ctx1_gen11_tep8_batch128_eplb0_mtp3.yaml`` whose
    ``concurrencies: "44"`` (NVIDIA/srt-slurm @ 75f6e32a, 2026-01-27; 4 per decode worker x
    11 workers). Source: github.com/NVIDIA/srt-slurm (formerly ishandhanani/srt-slurm),
    Apache-2.0, snapshot c88ef731; its ``sa-submission-q1-2026`` branch is not in the snapshot,
    so the file is read from the refs it holds. ``parse`` reads another fact of the same
    version (:func:`_recipe_mtp_steps`)."""
    parse = parse or _recipe_concurrencies

    def read(commit: str) -> Any:
        key = (commit, path, parse.__name__)
        if key not in cache:
            cache[key] = parse(subprocess.run(["git", "-C", srt, "show", f"{commit}:{path}"],
                                              capture_output=True, text=True).stdout)
        return cache[key]

    stored = [c for _, c in history.get(path, [])]
    before = [c for d, c in history.get(path, []) if d <= limit]
    if before and (got := read(before[-1])) is not None:
        return got
    if not Q1_FALLBACK:
        return None
    # the q1 branch as merged (Q1_FALLBACK): the file's newest stored content before it
    # left, where main had deleted it by then; its first stored content where none before
    later = ([c for c in reversed(before)] if before else []) + [c for c in stored
                                                                  if c not in before]
    return next((got for c in later if (got := read(c)) is not None), None)


def _recipe_mtp_steps(text: str) -> int | None:
    """Rule ``recipe_file_mtp``: the draft tokens per decode step an SGLang srt-slurm recipe
    file runs, its ``speculative-num-steps`` (EAGLE with ``speculative-eagle-topk: 1``: one
    draft token per step, ``speculative-num-draft-tokens`` = steps + 1; e.g.
    ``recipes/b200-fp4/1k1k/mtp/low-latency-dep4-1p-tep8-5d.yaml`` @ 5063eb43: 2); None where
    the file names none or names different ones."""
    steps = set(re.findall(r"speculative[-_]num[-_]steps:\s*(\d+)", text or ""))
    topk = set(re.findall(r"speculative[-_]eagle[-_]topk:\s*(\d+)", text or ""))
    return int(steps.pop()) if len(steps) == 1 and topk <= {"1"} else None


def _recipe_concurrencies(text: str) -> set[int] | None:
    """The concurrencies an srt-slurm recipe file's ``benchmark.concurrencies`` lists (a
    number, "44", "4 192 360 668", "1024x2048x4096", ['7'] or [4, 8]); None where the file is
    empty (deleted at that commit) or names none."""
    y = yaml.safe_load(text) if text else None
    bench = y.get("benchmark") if isinstance(y, dict) else None
    found = bench.get("concurrencies") if isinstance(bench, dict) else None
    return {int(x) for x in re.findall(r"\d+", str(found))} if found is not None else None


#: Rule ``recipe_committed_after``: the srt-slurm directory of each (model, system, engine,
#: precision) whose recipes were run before any InferenceMAX entry named them, and how long
#: after a measurement their first commit may come. The GB200 TensorRT-LLM FP4 GLM-5 and
#: Kimi-K2.5 rows (``wip=True``, measured 2026-04-02 05:29-05:43 UTC) precede every
#: ``nvidia-master.yaml`` entry of theirs (Kimi-K2.5's first, PR #1026, is of 2026-04-13;
#: GLM-5's, PR #1803, of 2026-07-15); the engineer who ran them committed the recipe files to
#: srt-slurm 26.5 h later (NVIDIA/srt-slurm ed40e8ec "Add Kimi K2.5 disagg STP and MTP recipes
#: for GB200 NVfp4", b8ae71a5 "Add GLM5 disagg STP recipes for GB200 NVfp4", both 2026-04-03
#: 08:13 UTC, Yeswanth Koti; the recipes' model and container paths are under his cluster
#: user directory), each file naming the concurrencies it runs; Kimi-K2.5's InferenceX entry
#: then copied these files (``CONFIG_FILE=recipes/kimi2.5/trtllm_dynamo/...``).
LATER_RECIPE_DIRS = {
    ("Kimi-K2.5", "gb200", "trtllm", "fp4"): "recipes/kimi2.5/trtllm_dynamo/disagg/gb200Nvfp4/",
    ("GLM-5", "gb200", "trtllm", "fp4"): "recipes/GLM5/disagg/trtllm_dynamo/gb200_nvfp4/"}
LATER_RECIPE_WINDOW = dt.timedelta(days=2)


def _recipe_file_layout(text: str) -> tuple | None:
    """An srt-slurm TensorRT-LLM recipe file's (ISL, OSL, concurrencies, signature, MTP k,
    decode max_batch_size): ``resources`` ``prefill_workers`` / ``gpus_per_prefill`` /
    ``decode_workers`` / ``gpus_per_decode``, ``backend.trtllm_config.<role>``
    ``moe_expert_parallel_size`` and ``enable_attention_dp``, the file name's ``_mtp<k>``
    (``mtp0``: none). None where the file states no such layout."""
    y = yaml.safe_load(text) if text else None
    try:
        res, cfg, bench = y["resources"], y["backend"]["trtllm_config"], y["benchmark"]
        sig: list = []
        for role, n, g in (("prefill", "prefill_workers", "gpus_per_prefill"),
                           ("decode", "decode_workers", "gpus_per_decode")):
            part = cfg[role]
            sig += [int(res[n]), int(res[g]), int(part.get("moe_expert_parallel_size") or 1),
                    bool(part.get("enable_attention_dp"))]
        concs = {int(x) for x in re.findall(r"\d+", str(bench["concurrencies"]))}
        return (int(bench["isl"]), int(bench["osl"]), concs, sig,
                int(cfg["decode"].get("max_batch_size") or 0) or None)
    except (KeyError, TypeError, ValueError):
        return None


def _later_recipe_matches(row: dict, measured: dt.datetime, srt: str,
                          history: dict[str, list[tuple[dt.datetime, str]]],
                          cache: dict[tuple[str, str], tuple | None],
                          ) -> tuple[str, list[tuple[str, tuple, int | None, int | None]]] | None:
    """Rule ``recipe_committed_after`` (:data:`LATER_RECIPE_DIRS`): (srt-slurm commit,
    matches) of the first commit within :data:`LATER_RECIPE_WINDOW` after the measurement that
    adds recipe files under the row's directory; a file matches where its ISL/OSL are the row's,
    its ``benchmark.concurrencies`` hold the row's concurrency and its GPUs per prefill and
    decode worker are the row's ``tp``s. None where no such commit or file."""
    key = (row["model_path"].split("/")[1], row["system"], row["backend"], row["precision"])
    where = LATER_RECIPE_DIRS.get(key)
    if not where:
        return None
    after = sorted({(d, c) for path, vs in history.items() if path.startswith(where)
                    for d, c in vs if measured < d <= measured + LATER_RECIPE_WINDOW})
    if not after:
        return None
    commit = after[0][1]
    listed = subprocess.run(["git", "-C", srt, "ls-tree", "-r", "--name-only", commit, where],
                            capture_output=True, text=True).stdout.split()
    conc = int(re.search(r"silicon_concurrency=(\d+)", row["silicon_data_source"]).group(1))
    out = []
    for path in sorted(listed):
        if (commit, path) not in cache:
            cache[(commit, path)] = _recipe_file_layout(subprocess.run(
                ["git", "-C", srt, "show", f"{commit}:{path}"], capture_output=True,
                text=True).stdout)
        got = cache[(commit, path)]
        if not got:
            continue
        isl, osl, concs, sig, batch = got
        if ((isl, osl) == (int(row["isl"]), int(row["osl"])) and conc in concs
                and (sig[1], sig[5]) == (int(row["prefill_tp_size"]), int(row["decode_tp_size"]))):
            k = _named(path, MTP_K)
            out.append((path, tuple(sig) + ("mtp" if k else "none", False), k or None, batch))
    return (commit, out) if out else None


#: Rule ``launch_script``: before ``nvidia-master.yaml`` held GB200 disaggregated entries
#: (2025-12-05), the GB200 runner ``runners/launch_gb200-nv.sh`` held them; its SGLang branch
#: (DeepSeek-R1 FP8, ``MODEL_PATH=.../deepseek-r1-0528``) submits per ISL/OSL
#: ``bash ./submit_disagg.sh <prefill nodes> <prefill workers> <decode nodes> <decode workers>
#: <x> $ISL $OSL $concurrency_list inf`` (``concurrency_list="1024x2048x..."``).
LAUNCH_SCRIPT = "runners/launch_gb200-nv.sh"
LAUNCH_SCRIPT_ENTRY = "dsr1-fp8-gb200-dynamo-sglang"


def _launch_script_entries(text: str) -> dict:
    """Rule ``launch_script``: the SGLang jobs of a ``runners/launch_gb200-nv.sh`` version as
    ``nvidia-master.yaml`` entries (:data:`LAUNCH_SCRIPT_ENTRY`): each ``submit_disagg.sh``
    line's nodes and workers as ``<ROLE>_NODES`` and ``num-worker``, attention DP on (read as
    the yaml that replaced the script did: InferenceX 93e1b3ca1 turned ``submit_disagg.sh 6 3
    12 1 ...`` into ``PREFILL_NODES=6``, 3 prefill workers, ``DECODE_NODES=12``, 1 decode
    worker, ``dp-attn: true``), its concurrencies from the ``concurrency_list`` set before it.
    @ 450d834a9 (2025-11-05, in force until 175fe5364 on 2025-12-01 20:32 UTC) 1K/1K runs
    ``6 3 12 1`` at 1024 .. 8192 (the 2025-12-01 rows "tp72" c4608 .. c8192)."""
    lengths, names, confs = None, {}, {}
    for line in text.split("\n"):
        if m := re.search(r'"\$ISL" = "(\d+)" \] && \[ "\$OSL" = "(\d+)"', line):
            lengths = (int(m.group(1)), int(m.group(2)))
        if m := re.match(r'\s*(\w+)="([\dx]+)"\s*$', line):
            names[m.group(1)] = [int(x) for x in m.group(2).split("x")]
        m = re.search(r"submit_disagg\.sh (\d+) (\d+) (\d+) (\d+) \d+ \$ISL \$OSL \$(\w+)", line)
        if m and lengths and m.group(5) in names:
            pn, pw, dn, dw = (int(m.group(i)) for i in range(1, 5))
            ss = {"conc-list": names[m.group(5)],
                  "prefill": {"num-worker": pw, "tp": 1, "dp-attn": True,
                              "additional-settings": [f"PREFILL_NODES={pn}"]},
                  "decode": {"num-worker": dw, "tp": 1, "dp-attn": True,
                             "additional-settings": [f"DECODE_NODES={dn}"]}}
            confs.setdefault(lengths, []).append(ss)
    if not confs:
        return {}
    return {LAUNCH_SCRIPT_ENTRY: {"seq-len-configs": [
        {"isl": isl, "osl": osl, "search-space": sp} for (isl, osl), sp in confs.items()]}}


def _launch_script_matches(row: dict, repo: str, limits: list[dt.datetime],
                           cache: dict[str, dict],
                           ) -> tuple[str, list[tuple[str, tuple, int | None, int | None]]] | None:
    """Rule ``launch_script`` (:func:`_launch_script_entries`): the newest version of
    :data:`LAUNCH_SCRIPT` at or before the measurement (a day-only stamp: that day's too)
    whose SGLang jobs run the row's concurrency on the row's GPUs (:func:`_same_total_gpus`)."""
    if not cache:
        log = subprocess.run(["git", "-C", repo, "log", "--format=%H %cI", "--",
                              LAUNCH_SCRIPT], capture_output=True, text=True).stdout.split()
        cache["_versions"] = {"v": sorted(((dt.datetime.fromisoformat(d), h) for h, d in
                                           zip(log[::2], log[1::2])), reverse=True)}
    for limit in limits:
        for date, commit in cache["_versions"]["v"]:
            if date > limit:
                continue
            if commit not in cache:
                cache[commit] = _launch_script_entries(subprocess.run(
                    ["git", "-C", repo, "show", f"{commit}:{LAUNCH_SCRIPT}"],
                    capture_output=True, text=True).stdout)
            if m := _matches(row, cache[commit], fits=_same_total_gpus):
                return commit, [(f"{LAUNCH_SCRIPT} {ref}", *rest) for ref, *rest in m]
    return None


#: Rule ``changelog``: how long after a commit a ``measured=`` stamp may come and still be
#: that commit's push run (the sweeps' stamps sit seconds after the commit they check out:
#: ``measured=2026-01-29T15:52:16Z`` for efe2f531c, committed 15:52:13Z).
PUSH_RUN_LAG = dt.timedelta(seconds=60)


def _push_run_keys(repo: str, commit: str, committed: dt.datetime, when: str,
                   measured: dt.datetime, cache: dict[str, list[str]]) -> list[str] | None:
    """Rule ``changelog``: the config keys the push run of ``commit`` benchmarked, where the
    row's stamp (to the second, not a day-only one) is that run's, within
    :data:`PUSH_RUN_LAG` after the commit; None elsewhere. On a push to main InferenceX's
    ``.github/workflows/run-sweep.yml`` runs ``utils/process_changelog.py --base-ref
    ${{ github.event.before }} --head-ref ${{ github.event.after }}``, which benchmarks only the
    ``config-keys`` (wildcards allowed) of the entries the push added to
    ``perf-changelog.yaml`` (InferenceX @ 593fb431a); the keys are read from the commit's diff
    against its first parent. E.g. 84b7df683 (2026-02-11, "add mtp b200 fp4 dynamo-sglang")
    names only ``dsr1-fp4-b200-dynamo-sglang-mtp``, so its run's rows are MTP rows."""
    if DATE_ONLY.fullmatch(when) or not (dt.timedelta(0) <= measured - committed
                                         <= PUSH_RUN_LAG):
        return None
    if commit not in cache:
        cache[commit] = _changelog_keys(subprocess.run(
            ["git", "-C", repo, "diff", f"{commit}^1", commit, "--", "perf-changelog.yaml"],
            capture_output=True, text=True).stdout)
    return cache[commit] or None


def _changelog_keys(diff: str) -> list[str]:
    """The ``config-keys`` of the entries a ``perf-changelog.yaml`` diff adds (its "+" lines,
    as ``utils/process_changelog.py``'s ``get_added_lines`` reads them)."""
    added = "\n".join(line[1:] for line in diff.split("\n")
                      if line.startswith("+") and not line.startswith("+++"))
    try:
        entries = yaml.safe_load(added) or []
    except yaml.YAMLError:
        entries = []
    return [k for e in entries if isinstance(e, dict) for k in e.get("config-keys") or []]


def resolve(repo: str, runs: str, srt: str | None = None) -> list[dict]:
    versions, cache, out = _versions(repo), {}, []
    script_cache: dict[tuple[str, str], bool] = {}
    history, file_cache = _recipe_history(srt), {}
    layout_cache: dict[tuple[str, str], tuple | None] = {}
    sweep_cache: dict[tuple[str, str], bool] = {}
    launch_cache: dict[str, dict] = {}
    keys_cache: dict[str, list[str]] = {}
    dates = dict(versions)
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
        limits = [measured] + ([measured + DAY_END] if DATE_ONLY.fullmatch(when) else [])
        rec = {"id": row["id"], "status": "none"}
        for rule, fits in RULES:
            found = None
            for limit in limits:
                for commit, date in reversed(versions):
                    if date <= limit and (m := _matches(
                        row, _entries(repo, commit, cache),
                        lambda e, c=commit: _reads_nodes(repo, c, e, script_cache), fits,
                        lambda path, t=limit: _file_concurrencies(srt, history, path, t,
                                                                  file_cache) if srt else None,
                        lambda e, c=commit: _per_decode_worker(repo, c, e, sweep_cache),
                        lambda path, t=limit: _file_concurrencies(
                            srt, history, path, t, file_cache, _recipe_mtp_steps)
                        if srt else None)):
                        found = (commit, m)
                        break
                if found:
                    break
            if found:
                tags = " ".join(e for e, *_ in found[1])
                rec["rule"] = " ".join(x for x, tag in (
                    (rule, ""), ("recipe_file_concurrency", "(concurrency from recipe file)"),
                    ("sweep_concurrency", "(concurrency x decode workers)"),
                    ("recipe_file_mtp", "(k from recipe file)"),
                    ("nodes_fp4", "(FP4: the entry's EP)")) if x and tag in tags)
                ran = _push_run_keys(repo, found[0], dates[found[0]], when, measured, keys_cache)
                if ran is not None and (kept := [x for x in found[1] if any(
                        fnmatch.fnmatchcase(x[0].split("[")[0], k) for k in ran)]) and len(
                        kept) < len(found[1]):
                    found = (found[0], kept)
                    rec["rule"] = " ".join(x for x in (rec["rule"], "changelog") if x)
                break
        if not found and (found := _launch_script_matches(row, repo, limits, launch_cache)):
            rec["rule"] = "launch_script total_gpus"
        if not found and srt and (found := _later_recipe_matches(row, measured, srt, history,
                                                                 layout_cache)):
            rec["rule"] = "recipe_committed_after"
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
                rec["_mtp_ks"] = {k for _, sig, k, _ in m if sig[-2] not in ("none", "")}
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
            from_nodes = rec["status"] == "resolved" and "(GPUs from nodes)" in rec["entry"]
            if (rec["status"] in TWIN_SETTLES or from_nodes) and len(layouts) == 1:
                for k in FIELDS[2:11]:
                    rec.pop(k, None)
                rec["status"] = "twin"
                rec.update(zip(FIELDS[2:11], layouts.pop()))
        out.append(rec)
    _settle_mtp(out, rows, recorded)
    _settle_ambiguous_copies(out, rows)
    return out


def _settle_ambiguous_copies(recs: list[dict], rows: list[dict]) -> None:
    """Rule ``copy``: an ``ambiguous`` row that is the same measurement (:func:`_measurement`)
    as a row the recipes settle (``resolved`` / ``mtp``) whose ``measured=`` stamp gives the
    time (not a day-only one, :data:`DATE_ONLY`) takes that row's record: one run, one
    deployment. The 2026-04-06 file repeats 2026-03-25 rows with a day-only stamp, which reads
    the recipe versions before that day; the dated copy reads the version the run checked out
    (e.g. ``..._8192x1024_c4_tp8_ep8_1285``, the copy of ``..._c4_tp8_0_ep8_0_694``, settled
    by rule ``changelog``). Column ``spec_from``: "copy of <id>"."""
    by_id = {r["id"]: r for r in rows}

    def dated(rid: str) -> bool:
        m = re.search(r"measured=([0-9T:.\-]+Z?)", by_id[rid]["silicon_data_source"])
        return bool(m) and not DATE_ONLY.fullmatch(m.group(1))

    settled = {_measurement(by_id[r["id"]]): r for r in recs
               if r["status"] in ("resolved", "mtp") and dated(r["id"])}
    for rec in recs:
        other = settled.get(_measurement(by_id[rec["id"]])) if rec["status"] == "ambiguous" \
            else None
        if other is not None:
            for k in FIELDS[1:13] + ("mtp_k", "decode_max_batch"):
                rec[k] = other.get(k, "")
            rec["spec_from"] = f"copy of {other['id']}"
            rec["rule"] = " ".join(x for x in (rec.get("rule", ""), "copy") if x)


def _measurement(row: dict) -> tuple:
    """What identifies one measurement across the file's copies: system, engine, lengths,
    concurrency, TTFT and TPOT (the last two rounded to :data:`TWIN_RTOL`)."""
    conc = re.search(r"silicon_concurrency=(\d+)", row["silicon_data_source"])
    return (row["system"], row["backend"], row["isl"], row["osl"], conc and conc.group(1),
            *(round(math.log(float(row[m])) / TWIN_RTOL) for m in
              ("silicon_ttft_ms", "silicon_tpot_ms")))


def _settle_mtp(recs: list[dict], rows: list[dict], recorded: list[dict]) -> None:
    """Settle ``mtp_unknown`` rows (the recipe lists their workers with and without MTP) where
    a stored record says which ran, in rounds until nothing changes (column ``spec_from``):
    - config: a recorded twin's InferenceX ``config_id`` (AIConfigurator's db-dump rows) is a
      configuration that also holds a twin of a row the recipes settle (``resolved``: no MTP;
      ``mtp``: k drafts). An InferenceX config record carries one ``spec_method``
      (ai-dynamo/aiconfigurator ``src/aiconfigurator/sdk/config_adapter/inferencex.py`` @
      095f58a51 reads ``config["spec_method"]`` per config), so its rows share it;
    - copy: a settled row of the same measurement (:func:`_measurement`, e.g. the 2026-04-06
      file's copy of a 2026-03-25 row);
    - pair: the row's source file holds, at the same ``measured=`` stamp (one workflow run) and
      the same matching entries, exactly two measurements, the other settled: the run measured
      each of the two entries (one with MTP, one without) once, so this row is the other one.
    """
    by_id = {r["id"]: r for r in rows}
    config = {r["id"]: m.group(1) for r in recorded
              if (m := re.search(r"config_id=(\d+)", r["silicon_data_source"]))}
    unknown = [rec for rec in recs if rec["status"] == "mtp_unknown"]

    def settle(rec: dict, k: int, why: str) -> None:
        ks = rec.pop("_mtp_ks")
        if k and ks != {k}:
            return
        rec.update(status="mtp" if k else "resolved", spec_decoding="mtp" if k else "none",
                   mtp_k=k or "", spec_from=why)

    def spec(rec: dict) -> int:
        return int(rec["mtp_k"]) if rec["status"] == "mtp" else 0

    changed = True
    while changed:
        changed = False
        known: dict[str, set[int]] = {}
        for rec in recs:
            if rec["status"] in ("resolved", "mtp"):
                for t in (rec.get("twin") or "").split():
                    if t in config:
                        known.setdefault(config[t], set()).add(spec(rec))
        settled = {_measurement(by_id[r["id"]]): r for r in recs
                   if r["status"] in ("resolved", "mtp")}
        groups: dict[tuple, list[dict]] = {}
        for rec in recs:
            if "_mtp_ks" in rec or rec.get("spec_from", "").startswith(("config", "copy", "pair")):
                row = by_id[rec["id"]]
                stamp = re.search(r"source_file=([^;]*);.*measured=([^;]*)",
                                  row["silicon_data_source"])
                groups.setdefault((stamp and stamp.groups(), rec["entry"]), []).append(rec)
        for rec in unknown:
            if "_mtp_ks" not in rec:
                continue
            cfgs = {config[t] for t in (rec.get("twin") or "").split() if t in config}
            specs = set().union(*(known.get(c, set()) for c in cfgs)) if cfgs else set()
            twin = settled.get(_measurement(by_id[rec["id"]]))
            row = by_id[rec["id"]]
            stamp = re.search(r"source_file=([^;]*);.*measured=([^;]*)", row["silicon_data_source"])
            group = groups.get((stamp and stamp.groups(), rec["entry"]), [])
            other = [g for g in group if g is not rec]
            if len(specs) == 1:
                k = specs.pop()
                settle(rec, k, f"config_id={' '.join(sorted(cfgs))}")
            elif twin is not None:
                settle(rec, spec(twin), f"copy of {twin['id']}")
            elif (len(group) == 2 and "_mtp_ks" not in other[0]
                  and other[0]["status"] in ("resolved", "mtp")
                  and _measurement(row) != _measurement(by_id[other[0]["id"]])):
                ks = rec["_mtp_ks"]
                k = 0 if other[0]["status"] == "mtp" else (ks.copy().pop() if len(ks) == 1
                                                              and None not in ks else -1)
                if k < 0:
                    continue
                settle(rec, k, f"pair of {other[0]['id']}")
            else:
                continue
            changed = True
    for rec in unknown:
        rec.pop("_mtp_ks", None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repo", required=True, help="git directory of SemiAnalysisAI/InferenceX")
    ap.add_argument("--srt-repo", help="git directory of NVIDIA/srt-slurm (recipe files' "
                    "concurrencies: _file_concurrencies)")
    ap.add_argument("--runs", default="planner/data/serving-runs.csv")
    ap.add_argument("--out", default="planner/data/disagg-recipes.csv")
    args = ap.parse_args()
    recs = resolve(args.repo, args.runs, args.srt_repo)
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
