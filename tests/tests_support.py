"""Helpers shared by the tests (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
V3_TEXT = (REPO / "models" / "deepseek-v3.yaml").read_text()
H800_TEXT = (REPO / "hardware" / "h800.yaml").read_text()
