"""The validation cache: a record that a file's exact bytes validated as a spec class, so that
the next load builds the spec without pydantic (~50 ms saved per CLI call).

A record is trusted only for what it proves, never because it exists: its name is the BLAKE2b
hash of (the code fingerprint, the spec class, the file bytes), and its content is the BLAKE2b
digest of the same message keyed with this cache's secret key (32 random bytes in ``key``,
created on first use, readable by its owner only). A marker written by hand, copied from another
cache, left by another version of the code or cut short by a crash does not match its digest
and the file is validated again. The fingerprint covers the content of every module that decides
what validates (``planner/specs/*.py``, ``units.py``, ``vocab.py``), the planner's version and
the installed pydantic's (read from its ``version.py``, without importing it).

The records live in ``$PLANNER_CACHE_DIR`` (default ``$XDG_CACHE_HOME/planner`` or
``~/.cache/planner``); ``PLANNER_NO_CACHE=1`` turns them off. A cache that cannot be read or
written (no permission, a file in the way, a name too long) is ignored: every file is validated.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

#: Bytes of the cache's secret key and of a record's keyed digest.
KEY_BYTES = 32
#: Modules, besides ``planner/specs/*.py``, whose code decides what a spec file validates to.
_CODE_FILES = ("units.py", "vocab.py", "errors.py", "__init__.py")

_SPECS_DIR = Path(__file__).resolve().parent
_PLANNER_DIR = _SPECS_DIR.parent


def _blake2b(data: bytes, key: bytes = b"") -> bytes:
    try:  # the builtin module: hashlib would also load OpenSSL (~2 ms)
        from _blake2 import blake2b
    except ImportError:  # pragma: no cover - other Python implementations
        from hashlib import blake2b
    return blake2b(data, digest_size=KEY_BYTES, key=key).digest()


def _pydantic_version_file() -> bytes:
    """The bytes of the ``pydantic/version.py`` that an import would find (its version and the
    pydantic-core version it requires), found on ``sys.path`` without importing pydantic."""
    for entry in sys.path:
        try:
            with open(os.path.join(entry or ".", "pydantic", "version.py"), "rb") as fh:
                return fh.read()
        except OSError:
            continue
    return b"(pydantic not found)"


@functools.lru_cache(maxsize=None)
def code_fingerprint() -> bytes:
    """A digest of everything that decides whether given bytes validate: the spec code, units
    and vocabulary (file contents, not times), the planner's and pydantic's versions."""
    from planner import __version__

    parts = [__version__.encode(), _pydantic_version_file()]
    files = sorted(p for p in _SPECS_DIR.iterdir() if p.suffix == ".py")
    files += [_PLANNER_DIR / name for name in _CODE_FILES]
    for path in files:
        try:
            parts += [path.name.encode(), path.read_bytes()]
        except OSError:
            parts += [path.name.encode(), b"(unreadable)"]
    return _blake2b(b"\0".join(_blake2b(p) for p in parts))


def cache_dir() -> Path | None:
    """The cache folder, or None when ``PLANNER_NO_CACHE`` is set."""
    if os.environ.get("PLANNER_NO_CACHE"):
        return None
    base = os.environ.get("PLANNER_CACHE_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg or Path.home() / ".cache") / "planner"


def _private_regular_file(fd: int) -> bool:
    """The open file is a regular file of this user that nobody else may write."""
    import stat

    st = os.fstat(fd)
    getuid = getattr(os, "getuid", None)
    return (stat.S_ISREG(st.st_mode) and not st.st_mode & 0o022
            and (getuid is None or st.st_uid == getuid()))


def _read_small(path: Path, size: int) -> bytes | None:
    """At most ``size`` + 1 bytes of a private regular file (never through a symbolic link)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        return os.read(fd, size + 1) if _private_regular_file(fd) else None
    finally:
        os.close(fd)


def _write_private(path: Path, data: bytes, *, exclusive: bool) -> None:
    """Write ``data`` whole into ``path`` (mode 0600): a temporary file, then a rename (or a
    link, which fails when ``exclusive`` and ``path`` exists)."""
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.write(fd, data)
        os.close(fd)
        fd = -1
        if exclusive:
            os.link(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        if fd >= 0:
            os.close(fd)
        if os.path.exists(tmp):
            os.remove(tmp)


@functools.lru_cache(maxsize=None)
def _key(root: Path) -> bytes | None:
    """This cache's secret key, created on first use; None when it cannot be read or made, or
    is not a private file of this user."""
    path = root / "key"
    try:
        key = _read_small(path, KEY_BYTES)
    except FileNotFoundError:
        try:
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
            _write_private(path, os.urandom(KEY_BYTES), exclusive=True)
        except FileExistsError:   # another process made it first: use that one
            pass
        except OSError:
            return None
        try:
            key = _read_small(path, KEY_BYTES)
        except OSError:
            return None
    except OSError:
        return None
    return key if key is not None and len(key) == KEY_BYTES else None


def _record(cls: type, raw: bytes) -> tuple[Path, bytes] | None:
    """(the record's path, its expected content) for ``raw`` validated as ``cls``."""
    root = cache_dir()
    if root is None:
        return None
    key = _key(root)
    if key is None:
        return None
    message = code_fingerprint() + f"|{cls.__module__}.{cls.__qualname__}|".encode() + raw
    return root / "validated" / _blake2b(message).hex(), _blake2b(message, key)


def is_validated(cls: type, raw: bytes) -> bool:
    """True when this cache holds a record, with the right keyed digest, that ``raw`` validated
    as ``cls``."""
    try:    # hmac.compare_digest, without hmac's import of hashlib and OpenSSL (~2 ms)
        from _operator import _compare_digest as same
    except ImportError:  # pragma: no cover - other Python implementations
        from hmac import compare_digest as same  # type: ignore[no-redef]
    try:
        record = _record(cls, raw)
        if record is None:
            return False
        content = _read_small(record[0], KEY_BYTES)
    except (OSError, ValueError):
        return False
    return content is not None and same(content, record[1])


def record_validated(cls: type, raw: bytes) -> None:
    """Record that ``raw`` validated as ``cls`` (silently nothing when the cache is unusable)."""
    try:
        record = _record(cls, raw)
        if record is None:
            return
        record[0].parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_private(record[0], record[1], exclusive=False)
    except (OSError, ValueError):
        pass
