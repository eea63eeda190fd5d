"""Shared fixtures. The validation record of planner.specs.load goes to a per-session temporary
folder, so the tests neither read nor write the user's cache."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ["PLANNER_CACHE_DIR"] = tempfile.mkdtemp(prefix="planner-test-cache-")

from planner.catalog import load_hardware, load_model  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def v3():
    return load_model("deepseek-v3")


@pytest.fixture(scope="session")
def h800():
    return load_hardware("h800")


@pytest.fixture()
def write_yaml(tmp_path):
    """Write ``text`` to a YAML file in a temporary folder and return its path."""

    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write
