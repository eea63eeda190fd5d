"""The Python API: ``import planner`` is cheap, every exported name resolves, and a short session
loads specs, builds a deployment and runs the calculators."""

from __future__ import annotations

import os
import pydoc
import subprocess
import sys

import pytest

import planner
from tests_support import REPO

#: Heavy third-party packages ``import planner`` must not pull in.
HEAVY = ("numpy", "pydantic", "rich", "yaml", "typer")


def _python(code: str) -> str:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=120, check=True)
    return done.stdout.strip()


def test_import_planner_is_cheap():
    loaded = _python("import sys, planner; "
                     f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    assert loaded == ""
    # dir() lists the lazy names without importing them.
    loaded = _python("import sys, planner; d = dir(planner); assert 'serve' in d; "
                     f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    assert loaded == ""


def test_import_planner_calc_is_cheap():
    loaded = _python("import sys, planner.calc; "
                     f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    assert loaded == ""


@pytest.mark.parametrize("name", planner.__all__)
def test_every_exported_name_resolves(name):
    assert getattr(planner, name) is not None


def test_exports_are_the_calculators_themselves():
    from planner.calc import ep, flops, kv_cache, params, serving, training
    from planner.catalog import load_hardware, load_model
    from planner.specs.deployment import ServeConfig

    assert planner.serve is serving.serve
    assert planner.fewest_gpus is serving.fewest_gpus and planner.fit is serving.fewest_gpus
    assert planner.model_kv_cache is kv_cache.model_kv_cache
    assert planner.model_flops_per_token is flops.model_flops_per_token
    assert planner.model_params is params.model_params
    assert planner.ep_decode_limit is ep.ep_decode_limit
    assert planner.train_run is training.train_run
    assert planner.load_model is load_model and planner.load_hardware is load_hardware
    assert planner.ServeConfig is ServeConfig
    for name in ("check", "evaluate", "load_model", "load_hardware", "serve", "fit",
                 "model_kv_cache", "model_flops_per_token", "model_params", "ep_decode_limit",
                 "train_run", "ServeConfig"):
        assert name in planner.__all__


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        planner.no_such_thing  # noqa: B018


def test_help_shows_the_calculator_docstring():
    text = pydoc.render_doc(planner.serve, renderer=pydoc.plaintext)
    first = planner.serve.__doc__.strip().splitlines()[0]
    assert first in text
    text = pydoc.render_doc(planner.ep_decode_limit, renderer=pydoc.plaintext)
    assert "Formula:" in text and "Ref:" in text and "Example:" in text


def test_py_typed_ships():
    assert (REPO / "planner" / "py.typed").is_file()


def test_end_to_end_session():
    v3, h800 = planner.load_model("deepseek-v3"), planner.load_hardware("h800")
    assert isinstance(v3, planner.Model) and isinstance(h800, planner.Hardware)
    # 61 layers × (512 + 64) elements × 2 bytes = 70,272 bytes per token (P Table 1).
    assert planner.model_kv_cache(v3).kv_cache_bytes_per_token == 70_272
    assert round(planner.model_params(v3).params_total / 1e9, 2) == 671.03
    assert round(planner.model_flops_per_token(v3).train_flops_per_token / 1e9) == 250
    paper = planner.ep_decode_limit(v3, h800, hidden_size=7000, dispatch_bytes_per_element=1)
    assert paper.ep_ceiling_tokens_per_s == pytest.approx(67.76, abs=0.01)
    run = planner.train_run(v3, h800, tokens=1e12, num_gpus=2048, tokens_per_day=272.80e9)
    assert run.train_gpu_hours == pytest.approx(180_176, rel=1e-4)
    results = [planner.serve(v3, h800, planner.ServeConfig(gpus=16, batch_per_gpu=b))
               for b in (1, 16, 64, 256)]
    tpots = [r.tpot_s for r in results]
    per_gpu = [r.tokens_per_s_per_gpu for r in results]
    # A bigger batch per GPU takes longer per step and yields more tokens per GPU.
    assert tpots == sorted(tpots) and per_gpu == sorted(per_gpu)
    assert all(t > 0 for t in tpots)
    fit = planner.fit(v3, h800)
    assert fit.num_gpus is not None and fit.num_gpus >= 8 and fit.memory.fits
