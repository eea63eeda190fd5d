"""Snapshot the planner's printed output, to show that a refactor changes no printed number.

Runs `planner paper -f json`, `planner validate -f json`, `planner check specs/ -f json` and every
`$ planner ...` line of the README's console blocks, each in a fresh process from the checkout
given by --repo (its own `planner` package, its own catalog), and writes one file per command:
the exit code, stdout and stderr. Two snapshots compare with `diff -r`.

    python benchmarks/snapshot_outputs.py --repo . --out /tmp/after
    git worktree add /tmp/before <commit>
    python benchmarks/snapshot_outputs.py --repo /tmp/before --readme README.md --out /tmp/before-out
    diff -r /tmp/before-out /tmp/after

--readme names the README whose examples are run (pass the same one to both runs, so that both
run the same commands). Tables are drawn at a fixed width of 200 columns.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

FIXED = ["paper -f json", "validate -f json", "check specs/ -f json", "paper", "validate"]


def readme_commands(readme: Path) -> list[str]:
    commands = []
    for block in re.findall(r"```console\n(.*?)```", readme.read_text(), flags=re.S):
        commands += [line[len("$ planner "):] for line in block.splitlines()
                     if line.startswith("$ planner ")]
    return commands


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path("."))
    parser.add_argument("--readme", type=Path, default=None)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    repo = args.repo.resolve()
    readme = (args.readme or repo / "README.md").resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(repo), COLUMNS="200", PLANNER_NO_CACHE="1",
               TERM="dumb", NO_COLOR="1")
    env.pop("GITHUB_ACTIONS", None)
    commands = FIXED + readme_commands(readme)
    with tempfile.TemporaryDirectory() as scratch:
        for command in commands:
            argv = [a if not a.endswith((".xml", ".png", ".svg")) else str(Path(scratch) / a)
                    for a in shlex.split(command)]
            done = subprocess.run([sys.executable, "-m", "planner", *argv], cwd=repo, env=env,
                                  capture_output=True, text=True, timeout=300)
            stderr = done.stderr.replace(scratch, "<tmp>")
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", command)[:80]
            name += "-" + hashlib.sha1(command.encode()).hexdigest()[:8]
            (args.out / name).write_text(f"$ planner {command}\nexit {done.returncode}\n"
                                         f"--- stdout\n{done.stdout}--- stderr\n{stderr}")
    print(f"{len(commands)} commands written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
