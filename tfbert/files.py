"""Writing files safely: JSON that stays standard, atomic files and folders, the cache.

Every output tfbert leaves behind (run folders, exports, conversions) is
written next to its target and renamed into place, so an interrupted write
never leaves a half-written file or folder where a reader would take it as
complete.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any, Iterator, Mapping


# Names of the temporaries below: ".NAME.1a2b3c4d.tmp" (write_text), ".NAME.tmp-XXXXXXXX"
# (atomic_dir) and ".NAME.old-1a2b3c4d" (a folder being replaced); left behind only by a kill.
TEMPORARY = re.compile(r"^\..+\.([0-9a-f]{8}\.tmp|tmp-[A-Za-z0-9_]{8}|old-[0-9a-f]{8})$")


def cache_root() -> Path:
    """Where downloads, extracted archives and conversions go: ``$TFBERT_CACHE`` or ``~/.cache/tfbert``."""
    configured = os.environ.get("TFBERT_CACHE")
    root = Path(configured) if configured else Path.home() / ".cache" / "tfbert"
    return root.expanduser()


def json_safe(value: Any) -> Any:
    """``value`` as standard JSON data: NumPy/TF values to Python, NaN/inf to None, paths and the rest to str."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [json_safe(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json_safe(dataclasses.asdict(value))
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return json_safe(value.tolist())
    if hasattr(value, "numpy"):  # eager tensors
        return json_safe(value.numpy())
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to a temporary sibling, then rename it onto ``path``."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path to write; it replaces ``path`` when the block ends without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """``obj`` as indented UTF-8 JSON (see :func:`json_safe`), written atomically."""
    return write_text(path, json.dumps(json_safe(obj), indent=2, ensure_ascii=False) + "\n")


def read_json(path: str | os.PathLike) -> Any | None:
    """The JSON in ``path``, or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def check_writable_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Create ``path`` if needed and prove a file can be written there; else one-line ConfigError.

    Called before long work, so a bad output path fails in a second, not after the results exist.
    """
    from tfbert.errors import ConfigError

    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} {path} is a file; pass a folder path (a new or existing folder)")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as err:
        raise ConfigError(f"cannot write to {what} {path} ({err.strerror or type(err).__name__}); "
                          f"pass a folder you can write to") from None
    return path


def check_writable_file(path: str | os.PathLike, what: str = "output file") -> Path:
    """``path`` can be written (its folder is writable and it is not a folder); else one-line ConfigError."""
    from tfbert.errors import ConfigError

    path = Path(path).expanduser()
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a folder; pass a file path")
    check_writable_dir(path.parent, what=f"the folder of {what}")
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_dir(out_dir: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling folder that replaces ``out_dir`` when the block ends without error.

    On an error the temporary folder is removed and ``out_dir`` (if it existed)
    is left as it was. The finished folder gets the usual permissions (mkdtemp
    makes it private; servers that load exports often run as other users).
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        old = None
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}")
            out_dir.rename(old)
        os.rename(tmp, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def file_lock(path: Path):
    """An exclusive lock between processes (POSIX); a no-op where fcntl is missing."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover (Windows)
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def utf8_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """(line number, line) of a UTF-8 text file, plain or ``.gz``, streamed.

    Lines lose their ``\\n``/``\\r\\n`` and the first its byte-order mark. Bytes that are not
    UTF-8 and unreadable or cut ``.gz`` files raise a one-line DataError.
    """
    import gzip
    import zlib

    from tfbert.errors import DataError, printable

    path = Path(path)
    number = 0
    try:
        with (gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")) as handle:
            for number, raw in enumerate(handle, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise DataError(
                        f"line {number} of {path} is not UTF-8 text (byte 0x{raw[err.start]:02x}); "
                        f"re-save the file as UTF-8 (e.g. iconv -f cp949 -t utf-8)") from None
                line = line[1:] if number == 1 and line.startswith("\ufeff") else line
                yield number, line
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"cannot read {path} after line {number} ({printable(err)}); "
                        f"check that it is a whole, valid file") from None
