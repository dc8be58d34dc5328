"""The encoded-data cache: one folder per source and tokeniser settings, holding the tokenizer, the
encoded arrays and a ``meta.json`` with each array's shape and checksum. Written whole or not at
all; checked when opened, so a damaged cache is rebuilt instead of used."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqclf.atomic import fsync
from seqclf.data.labels import Labels
from seqclf.data.text import WordTokenizer

log = logging.getLogger(__name__)

VERSION = 4  # 2: meta.json records each array's shape and checksum; 3: and the classes (labels); 4: row keys


@dataclass
class Loaded:
    """What a cache holds: the tokenizer, the classes and the encoded arrays (``<split>_x``, ``<split>_y``)."""

    tokenizer: WordTokenizer
    labels: Labels
    arrays: dict[str, np.ndarray]


def folder(root: Path, key: dict) -> Path:
    """The cache folder for ``key`` (the source and every setting the encoded arrays depend on)."""
    digest = hashlib.sha256(json.dumps({"version": VERSION, **key}, sort_keys=True).encode()).hexdigest()[:16]
    return root / f"data-{digest}"


class Damaged(Exception):
    """The cache cannot be used; the message says why (``missing`` if there is none)."""


def load(target: Path) -> Loaded:
    """The tokenizer, classes and arrays of the cache in ``target``, each file read once and checked
    against ``meta.json`` as it is read; Damaged if any of it is missing, cut short or changed."""
    if not target.exists():
        raise Damaged("missing")
    try:
        meta = json.loads((target / "meta.json").read_text())
        recorded, labels = meta["arrays"], Labels.from_dict(meta["labels"])
        tokenizer = WordTokenizer.load(target / "tokenizer.json")
    except FileNotFoundError as e:
        raise Damaged(f"{Path(e.filename).name} is missing") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise Damaged(f"meta.json or tokenizer.json is unreadable ({type(e).__name__}: {e})") from None
    loaded = {}
    for name in recorded:
        path = target / f"{name}.npy"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise Damaged(f"{path.name} is missing") from None
        if hashlib.sha256(data).hexdigest() != recorded[name]["sha256"]:
            raise Damaged(f"{path.name} does not match its checksum (cut short or changed)")
        loaded[name] = np.load(io.BytesIO(data))
    return Loaded(tokenizer, labels, loaded)


def _whole(target: Path) -> bool:
    try:
        load(target)
    except Damaged:
        return False
    return True


def write(target: Path, tokenizer: WordTokenizer, labels: Labels, arrays: dict[str, np.ndarray], meta: dict) -> None:
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
            data = (tmp / f"{name}.npy").read_bytes()
            recorded[name] = {"shape": list(array.shape), "sha256": hashlib.sha256(data).hexdigest()}
        tokenizer.save(tmp / "tokenizer.json")
        (tmp / "meta.json").write_text(json.dumps({**meta, "labels": labels.to_dict(), "arrays": recorded}, indent=2))
        for path in [*tmp.iterdir(), tmp]:  # on disk before the rename publishes them
            fsync(path)
        if target.exists() and not _whole(target):
            aside = Path(tempfile.mkdtemp(prefix=f".{target.name}-damaged-", dir=target.parent))
            os.rename(target, aside / "cache")
        try:
            os.rename(tmp, target)
        except OSError:
            if not _whole(target):  # not a lost race with another writer
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
