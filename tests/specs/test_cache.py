"""The validation cache (issue 18, item 14): a record is trusted for its keyed digest, never
because it exists; its key covers the spec code, units, vocabulary and the pydantic version; an
unusable cache is ignored."""

from __future__ import annotations

import os
import shutil

import pytest

import planner.specs.cache as cache
import planner.specs.load as load_mod
from planner.errors import SpecError
from planner.specs.load import load_model_file
from planner.specs.model import Model
from tests_support import V3_TEXT

INVALID = V3_TEXT.replace("hidden_size: 7168", "hidden_size: -7168")


@pytest.fixture()
def fresh_cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(folder))
    monkeypatch.delenv("PLANNER_NO_CACHE", raising=False)
    cache._key.cache_clear()
    yield folder
    cache._key.cache_clear()


def _record_path(raw: bytes):
    record = cache._record(Model, raw)
    assert record is not None
    return record[0]


@pytest.mark.parametrize("content", [b"", b"\0" * cache.KEY_BYTES, os.urandom(cache.KEY_BYTES),
                                     b"validated"], ids=["empty", "zeros", "random", "text"])
def test_a_hand_made_marker_is_not_trusted(fresh_cache, write_yaml, content):
    """An invalid spec with a marker at its record's name is validated, and refused."""
    path = write_yaml(INVALID)
    marker = _record_path(path.read_bytes())
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_bytes(content)
    marker.chmod(0o600)
    with pytest.raises(SpecError, match="greater than 0"):
        load_model_file(path)


def test_a_record_from_another_cache_is_not_trusted(fresh_cache, tmp_path, write_yaml,
                                                    monkeypatch):
    """Records copied from another cache (another key) prove nothing here."""
    path = write_yaml(INVALID)
    raw = path.read_bytes()
    other = tmp_path / "other"
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(other))
    cache.record_validated(Model, raw)                # as if it had validated there
    assert cache.is_validated(Model, raw)
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(fresh_cache))
    shutil.copytree(other / "validated", fresh_cache / "validated")
    assert not cache.is_validated(Model, raw)
    with pytest.raises(SpecError, match="greater than 0"):
        load_model_file(path)


def test_a_genuine_record_is_used_and_private(fresh_cache, write_yaml, monkeypatch):
    path = write_yaml(V3_TEXT)
    first = load_model_file(path)
    assert cache.is_validated(Model, path.read_bytes())
    key = fresh_cache / "key"
    assert (key.stat().st_mode & 0o777) == 0o600 and len(key.read_bytes()) == cache.KEY_BYTES
    record = _record_path(path.read_bytes())
    assert (record.stat().st_mode & 0o777) == 0o600
    monkeypatch.setattr(load_mod, "_validate_with_pydantic",
                        lambda *a, **k: pytest.fail("not from the record"))
    assert load_model_file(path) == first


def test_a_key_that_others_may_write_is_not_used(fresh_cache, write_yaml):
    path = write_yaml(V3_TEXT)
    load_model_file(path)
    (fresh_cache / "key").chmod(0o666)
    cache._key.cache_clear()
    assert not cache.is_validated(Model, path.read_bytes())


def test_a_symlinked_key_is_not_used(fresh_cache, tmp_path, write_yaml):
    path = write_yaml(V3_TEXT)
    load_model_file(path)
    elsewhere = tmp_path / "elsewhere"
    (fresh_cache / "key").rename(elsewhere)
    (fresh_cache / "key").symlink_to(elsewhere)
    cache._key.cache_clear()
    assert not cache.is_validated(Model, path.read_bytes())


@pytest.mark.parametrize("name", ["units.py", "vocab.py"])
def test_the_key_covers_units_and_vocabulary(tmp_path, monkeypatch, name):
    copy = tmp_path / "planner"
    copy.mkdir()
    for f in cache._CODE_FILES:
        shutil.copy(cache._PLANNER_DIR / f, copy / f)
    monkeypatch.setattr(cache, "_PLANNER_DIR", copy)
    cache.code_fingerprint.cache_clear()
    before = cache.code_fingerprint()
    with open(copy / name, "a") as fh:
        fh.write("\n# changed\n")
    cache.code_fingerprint.cache_clear()
    try:
        assert cache.code_fingerprint() != before
    finally:
        monkeypatch.undo()
        cache.code_fingerprint.cache_clear()


def test_the_key_covers_the_pydantic_version(monkeypatch):
    cache.code_fingerprint.cache_clear()
    before = cache.code_fingerprint()
    assert b"VERSION" in cache._pydantic_version_file()
    monkeypatch.setattr(cache, "_pydantic_version_file", lambda: b"VERSION = '99.0'")
    cache.code_fingerprint.cache_clear()
    try:
        assert cache.code_fingerprint() != before
    finally:
        monkeypatch.undo()
        cache.code_fingerprint.cache_clear()


def test_the_key_covers_the_spec_code_content_not_its_times(tmp_path, monkeypatch):
    copy = tmp_path / "specs"
    shutil.copytree(cache._SPECS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache, "_SPECS_DIR", copy)
    cache.code_fingerprint.cache_clear()
    before = cache.code_fingerprint()
    model = copy / "model.py"
    st = model.stat()
    text = model.read_bytes()
    model.write_bytes(text.replace(b"class", b"klass", 1))      # the same size and time
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert model.stat().st_size == st.st_size
    cache.code_fingerprint.cache_clear()
    try:
        assert cache.code_fingerprint() != before
    finally:
        monkeypatch.undo()
        cache.code_fingerprint.cache_clear()


def test_a_cache_that_cannot_be_entered_is_ignored(fresh_cache, write_yaml, monkeypatch):
    """A PermissionError anywhere in the cache (a folder the user cannot enter) falls back to
    validation: the issue's crash."""
    real_open = os.open

    def guarded(path, *a, **k):
        if str(path).startswith(str(fresh_cache)):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr(os, "open", guarded)
    assert load_model_file(write_yaml(V3_TEXT)).num_layers == 61
    with pytest.raises(SpecError, match="greater than 0"):
        load_model_file(write_yaml(INVALID, name="bad.yaml"))


def test_a_cache_path_too_long_is_ignored(tmp_path, monkeypatch, write_yaml):
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path / ("a" * 300) / "cache"))
    cache._key.cache_clear()
    assert load_model_file(write_yaml(V3_TEXT)).num_layers == 61
    cache._key.cache_clear()
