"""What the console script does at start: `planner --version` imports no command group, a call
that prints no help does not ready the help text, and a reader that goes away (`| head`) ends
the command with exit code 141 and nothing on stderr (not a crash, not rich's exit 1, which is
a violated budget's code)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests_support import MAIN_AND_MODULES

HELP_READY = """
import json, sys
sys.argv = ["planner", *sys.argv[1:]]
from planner import cli
calls = []
real = cli._first_sentence
cli._first_sentence = lambda callback: (calls.append(callback), real(callback))[1]
try:
    cli.main()
except SystemExit as exc:
    code = exc.code
sys.stderr.write(json.dumps({"code": code, "readied": len(calls)}))
"""


def _run(script, *args):
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True)
    return json.loads(proc.stderr.strip().splitlines()[-1])


def test_version_imports_no_command_group():
    seen = _run(MAIN_AND_MODULES, "--version")
    assert seen["code"] in (0, None)
    assert seen["cli"] == ["planner.cli"] and seen["numpy"] is False


def test_help_is_readied_only_when_help_is_printed():
    assert _run(HELP_READY, "kv-cache", "deepseek-v3", "-f", "json")["readied"] == 0
    for args in (("kv-cache", "--help"), ("kv-cache", "-h"), ("--help",)):
        seen = _run(HELP_READY, *args)
        assert seen["code"] in (0, None) and seen["readied"] >= 1, args


def test_a_closed_pipe_exits_141_quietly():
    proc = subprocess.Popen([sys.executable, "-m", "planner", "validate", "--runs"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()                 # the reader goes away, as `| head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert err == ""
