"""The encoded-data cache: one folder per source and tokeniser settings, holding the tokenizer, the
encoded arrays and a ``meta.json`` with each array's shape and checksum. Written whole or not at
all; checked when opened, so a damaged cache is rebuilt instead of used."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from seqclf.atomic import fsync
from seqclf.data.text import WordTokenizer

log = logging.getLogger(__name__)

VERSION = 2  # 2: meta.json records each array's shape and checksum


def folder(root: Path, key: dict) -> Path:
    """The cache folder for ``key`` (the source and every setting the encoded arrays depend on)."""
    digest = hashlib.sha256(json.dumps({"version": VERSION, **key}, sort_keys=True).encode()).hexdigest()[:16]
    return root / f"imdb-{digest}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def problem(target: Path, arrays: tuple[str, ...]) -> str | None:
    """Why the cache in ``target`` cannot be used (None: it is whole). ``"missing"`` if there is none."""
    if not target.exists():
        return "missing"
    try:
        meta = json.loads((target / "meta.json").read_text())
        recorded = meta["arrays"]
        WordTokenizer.load(target / "tokenizer.json")
    except FileNotFoundError as e:
        return f"{Path(e.filename).name} is missing"
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"meta.json or tokenizer.json is unreadable ({type(e).__name__}: {e})"
    for name in arrays:
        path = target / f"{name}.npy"
        if name not in recorded:
            return f"meta.json does not record {name}"
        if not path.is_file():
            return f"{path.name} is missing"
        if _sha256(path) != recorded[name]["sha256"]:
            return f"{path.name} does not match its checksum (cut short or changed)"
    return None


def read(target: Path, arrays: tuple[str, ...]) -> tuple[WordTokenizer, dict[str, np.ndarray]]:
    """The tokenizer and arrays of a cache that ``problem`` found whole."""
    return WordTokenizer.load(target / "tokenizer.json"), {n: np.load(target / f"{n}.npy") for n in arrays}


def write(target: Path, tokenizer: WordTokenizer, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write into a private temporary folder, then rename: readers never see a partial cache, and
    concurrent writers (parallel sweep jobs) cannot mix their files. A damaged cache in ``target``
    is moved aside first and removed after."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    aside = None
    try:
        recorded = {}
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", array)
            recorded[name] = {"shape": list(array.shape), "sha256": _sha256(tmp / f"{name}.npy")}
        tokenizer.save(tmp / "tokenizer.json")
        (tmp / "meta.json").write_text(json.dumps({**meta, "arrays": recorded}, indent=2))
        for path in [*tmp.iterdir(), tmp]:  # on disk before the rename publishes them
            fsync(path)
        if target.exists() and problem(target, tuple(arrays)) is not None:
            aside = Path(tempfile.mkdtemp(prefix=f".{target.name}-damaged-", dir=target.parent))
            os.rename(target, aside / "cache")
        try:
            os.rename(tmp, target)
        except OSError:
            if problem(target, tuple(arrays)) is not None:  # not a lost race with another writer
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
