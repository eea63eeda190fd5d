"""The CLI's spelling of calculator parameters: an :class:`~planner.calc.common.Input` taken from a
calculator argument names the parameter (``argument seq_len``); the CLI prints the flag that sets
it (``--seq-len``)."""

from __future__ import annotations

from planner.calc.common import ARGUMENT_ORIGIN_PREFIX

#: Parameters whose flag is not ``--`` + the name with ``-`` for ``_``.
FLAGS = {
    "num_micro_batches": "--micro-batches",
}


def cli_flag_for(parameter: str) -> str:
    """The CLI flag that sets the calculator parameter ``parameter``."""
    return FLAGS.get(parameter, "--" + parameter.replace("_", "-"))


def cli_origin(origin: str) -> str:
    """``origin`` as the CLI prints it: an argument's origin becomes its flag, others unchanged."""
    if origin.startswith(ARGUMENT_ORIGIN_PREFIX):
        return cli_flag_for(origin[len(ARGUMENT_ORIGIN_PREFIX):])
    return origin
