"""Writing files safely: nothing half-written is ever visible under the final name, and a folder
that cannot be written to is found before any work starts."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from seqclf.errors import ConfigError

_UMASK = os.umask(0)
os.umask(_UMASK)


def fsync(path: Path) -> None:
    """Flush a file's or a folder's data (a folder: its entries, e.g. a rename) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """Run ``write(f)`` on a temporary file beside ``path``, fsync it and rename it over ``path``:
    a kill at any moment leaves either the previous file or the new one, both whole."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # the mode of any other new file, not mkstemp's private 0600
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync(target.parent)  # the rename itself survives a crash


def write_json(path: str | Path, data: object) -> None:
    """``data`` as indented JSON, written atomically."""
    write_atomic(path, lambda f: f.write((json.dumps(data, indent=2) + "\n").encode()))


def check_writable(folder: str | Path, setting: str) -> None:
    """Create ``folder`` if need be and write a file into it, or raise a ConfigError naming
    ``setting`` (the option that chose the folder) and the fix. Leaves no file behind."""
    path = Path(folder).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        file = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
        reason = f"{file} is a file, not a folder" if file else e.strerror
        raise ConfigError(f"{setting}: cannot write into {path} ({reason}); choose a writable folder.") from None
