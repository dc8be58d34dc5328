"""IMDB sentiment data: load, tokenise, cache the encoded splits, split off validation, serve batches."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler

from seqclf.atomic import fsync
from seqclf.data import sources
from seqclf.data.text import FORMAT, WordTokenizer, check_side
from seqclf.errors import DataError

log = logging.getLogger(__name__)

# Batches are slices of in-memory tensors: worker processes would only add start-up and IPC cost.
warnings.filterwarnings("ignore", ".*does not have many workers.*")

CACHE_VERSION = 1
_ARRAYS = ("train_x", "train_y", "test_x", "test_y")


class TensorBatches(Dataset):
    """Indexed by a list of row indices, returns a whole batch: one tensor gather instead of
    per-review ``__getitem__`` calls and a collate step (the model is tiny, so this matters)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, rows: list[int] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.as_tensor(rows).to(self.x.device, non_blocking=True)
        return self.x[rows], self.y[rows]

    def to(self, device: torch.device) -> TensorBatches:
        return self if self.x.device == device else TensorBatches(self.x.to(device), self.y.to(device))


def _world() -> tuple[int, int]:
    """(rank, world size) of this process in DDP, (0, 1) otherwise."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class Batches(Sampler[torch.Tensor]):
    """Batches of row indices over a whole split: in order (evaluation), or in a fresh random order
    each pass (training, ``seed`` given) that depends only on (seed, pass number), not on the global
    random state, so a resumed run sees exactly the batches an uninterrupted one would have. The
    pass number comes from ``next_pass()`` (the DataModule counts passes and keeps the count in
    checkpoints; the epoch Lightning hands to ``set_epoch`` lags by one after some resumes), or is
    0 without it.

    Under DDP each process takes every world-size-th batch of the same order (seqclf shards itself;
    trainer.use_distributed_sampler is off), so 2 processes x batch 16 take the same steps as one
    process x batch 32. Training pads with batches from the start so every process steps equally
    often; evaluation does not pad, so no review is counted twice.
    """

    def __init__(
        self, n_rows: int, batch_size: int, seed: int | None = None, next_pass: Callable[[], int] | None = None
    ):
        self.n_rows, self.batch_size, self.seed, self.next_pass = n_rows, batch_size, seed, next_pass

    def _share(self, n_batches: int) -> list[int]:
        rank, world = _world()
        padded = list(range(n_batches))
        if self.seed is not None and n_batches % world:
            padded += padded[: world - n_batches % world]
        return padded[rank::world]

    def __len__(self) -> int:
        return len(self._share(-(-self.n_rows // self.batch_size)))

    def __iter__(self):
        if self.seed is None:
            order = torch.arange(self.n_rows)
        else:
            n_pass = self.next_pass() if self.next_pass else 0
            order = torch.randperm(self.n_rows, generator=torch.Generator().manual_seed(self.seed + n_pass))
        batches = order.split(self.batch_size)
        return iter([batches[i] for i in self._share(len(batches))])


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of row indices into (train, val) that keeps each label's share in both parts."""
    rng = np.random.default_rng(seed)
    val = []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        rng.shuffle(rows)
        val.append(rows[: int(round(len(rows) * fraction))])
    val_rows = np.sort(np.concatenate(val))
    train_rows = np.setdiff1d(np.arange(len(labels)), val_rows)
    if len(val_rows) == 0 or len(train_rows) == 0:
        raise DataError(
            f"data.val_fraction={fraction} leaves {len(train_rows)} training and {len(val_rows)} validation "
            f"reviews out of {len(labels)}; choose a fraction that leaves both non-empty."
        )
    return train_rows, val_rows


class IMDBDataModule(L.LightningDataModule):
    """IMDB reviews from the Hub (``stanfordnlp/imdb``) or a local folder (``path``).

    ``prepare_data`` fits the vocabulary on the train split and writes the encoded splits to a
    cache keyed by the source and the tokeniser settings; ``setup`` reads them back, so later runs
    (and every DDP rank) skip tokenisation. Validation is a stratified ``val_fraction`` of train
    (``val_split="train"``), or the test split itself (``val_split="test"``, as the lecture's
    notebook did). Given ``tokenizer`` (a JSON string, e.g. from a checkpoint), the data is encoded
    with it instead of a vocabulary fitted here.
    """

    def __init__(
        self,
        path: str | None = None,
        hub_name: str = "stanfordnlp/imdb",
        revision: str | None = None,
        cache_dir: str = "~/.cache/seqclf",
        vocab_size: int = 10_000,
        max_len: int = 32,
        padding: str = "pre",
        truncation: str = "pre",
        val_fraction: float = 0.1,
        batch_size: int = 32,
        eval_batch_size: int = 1024,
        seed: int = 42,
        progress: bool = True,
        num_proc: int | None = None,
        val_split: str = "train",
        tokenizer: str | None = None,
    ):
        super().__init__()
        # Data settings travel in checkpoints and loggers; vocab_size is the model's (the real size).
        self.save_hyperparameters(ignore=["vocab_size", "cache_dir", "progress", "num_proc", "tokenizer"])
        if not 0.0 < val_fraction < 1.0:
            raise DataError(f"data.val_fraction={val_fraction} must lie strictly between 0 and 1 (e.g. 0.1).")
        if val_split not in ("train", "test"):
            raise DataError(f"data.val_split={val_split!r} is not valid; choose 'train' (a share of it) or 'test'.")
        self.val_split = val_split
        self.given_tokenizer = WordTokenizer.from_json(tokenizer) if tokenizer else None
        if self.given_tokenizer is not None:  # its own length and sides win over the settings
            max_len = self.given_tokenizer.max_len
            padding, truncation = self.given_tokenizer.padding, self.given_tokenizer.truncation
            vocab_size = self.given_tokenizer.vocab_size
        self.path = None if path in (None, "") else str(Path(path).expanduser().resolve())
        self.hub_name, self.revision = hub_name, revision
        self.cache_root = Path(cache_dir).expanduser().resolve()
        self.vocab_size, self.max_len = int(vocab_size), int(max_len)
        self.padding, self.truncation = check_side("padding", padding), check_side("truncation", truncation)
        self.val_fraction, self.seed = float(val_fraction), int(seed)
        self.batch_size, self.eval_batch_size = int(batch_size), int(eval_batch_size)
        self.progress, self.num_proc = progress, num_proc
        self.tokenizer: WordTokenizer | None = None
        self.train_set = self.val_set = self.test_set = None
        self.train_passes = 0  # epochs served so far: picks each epoch's order, kept in checkpoints
        self._files: dict[str, list[Path]] | None = None

    # -- cache ---------------------------------------------------------------------------------
    def _local_files(self) -> dict[str, list[Path]]:
        if self._files is None:
            self._files = sources.find_local_files(self.path)
        return self._files

    def _source(self) -> dict[str, Any]:
        if self.path is None:
            return {"hub": self.hub_name, "revision": self.revision}
        return {"files": sources.fingerprint(self._local_files())}

    @property
    def cache_dir(self) -> Path:
        key = {
            "version": CACHE_VERSION,
            "tokenizer": FORMAT,
            "source": self._source(),
            "vocab_size": self.vocab_size,
            "max_len": self.max_len,
            "padding": self.padding,
            "truncation": self.truncation,
        }
        if self.given_tokenizer is not None:
            key["given_tokenizer"] = hashlib.sha256(self.given_tokenizer.to_json().encode()).hexdigest()
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        return self.cache_root / f"imdb-{digest}"

    def prepare_data(self) -> None:
        """Tokenise and cache the encoded splits unless a cache for these settings exists."""
        target = self.cache_dir
        if (target / "meta.json").exists():
            log.info("Using cached encoded data in %s", target)
            return
        if self.path is None:
            raw = sources.load_hub(self.hub_name, self.revision)
        else:
            raw = sources.load_local(self._local_files())
        arrays = {}
        if self.given_tokenizer is None:
            tokenizer, arrays["train_x"] = WordTokenizer.fit_encode(
                raw["train"].texts,
                self.vocab_size,
                progress=self.progress,
                workers=self.num_proc,
                max_len=self.max_len,
                padding=self.padding,
                truncation=self.truncation,
            )
        else:
            tokenizer = self.given_tokenizer
        for split in sources.SPLITS:
            if f"{split}_x" not in arrays:
                arrays[f"{split}_x"] = tokenizer.encode(raw[split].texts, progress=self.progress, workers=self.num_proc)
            arrays[f"{split}_y"] = raw[split].labels.astype(np.int8)
        meta = {"source": self._source(), "rows": {s: len(raw[s].labels) for s in sources.SPLITS}}
        self._write_cache(target, tokenizer, arrays, meta)
        log.info("Encoded data cached in %s", target)

    @staticmethod
    def _write_cache(target: Path, tokenizer: WordTokenizer, arrays: dict[str, np.ndarray], meta: dict) -> None:
        """Write into a private temporary folder, then rename: readers never see a partial cache,
        and concurrent writers (parallel sweep jobs) cannot mix their files."""
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            for name, array in arrays.items():
                np.save(tmp / f"{name}.npy", array)
            tokenizer.save(tmp / "tokenizer.json")
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
            for path in [*tmp.iterdir(), tmp]:  # on disk before the rename publishes them
                fsync(path)
            try:
                os.rename(tmp, target)
            except OSError:
                if not (target / "meta.json").exists():  # not a lost race with another writer
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # -- state -------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.tokenizer is not None:
            return  # already set up (the entry point calls setup early to learn the vocabulary size)
        cache = self.cache_dir
        if not (cache / "meta.json").exists():
            raise DataError(f"no encoded data in {cache}: call prepare_data() before setup().")
        self.tokenizer = WordTokenizer.load(cache / "tokenizer.json")
        arrays = {name: np.load(cache / f"{name}.npy") for name in _ARRAYS}
        x = torch.from_numpy(arrays["train_x"].astype(np.int64))
        y = torch.from_numpy(arrays["train_y"].astype(np.float32))
        self.test_set = TensorBatches(
            torch.from_numpy(arrays["test_x"].astype(np.int64)),
            torch.from_numpy(arrays["test_y"].astype(np.float32)),
        )
        if self.val_split == "test":  # the lecture's notebook: all of train, validated on test
            self.train_set, self.val_set = TensorBatches(x, y), self.test_set
        else:
            train_rows, val_rows = stratified_split(arrays["train_y"], self.val_fraction, self.seed)
            self.train_set = TensorBatches(x[train_rows], y[train_rows])
            self.val_set = TensorBatches(x[val_rows], y[val_rows])

    def state_dict(self) -> dict[str, Any]:
        """Stored in every checkpoint: what turns raw text into model input, and the epoch count."""
        if self.tokenizer is None:
            return {}
        return {"tokenizer": self.tokenizer.to_json(), "train_passes": self.train_passes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.train_passes = int(state.get("train_passes", 0))
        if self.tokenizer is not None and "tokenizer" in state and state["tokenizer"] != self.tokenizer.to_json():
            raise DataError(
                "the checkpoint's vocabulary differs from the one fitted on the current data "
                f"(data.path={self.path}, vocab_size={self.vocab_size}, max_len={self.max_len}); "
                "resume with the data settings the checkpoint was trained with."
            )

    # -- loaders -------------------------------------------------------------------------------------
    def _on_device(self, name: str) -> TensorBatches:
        """GPU fast path: on an accelerator the encoded split (a few MB) moves to the device once,
        so each batch is a gather there instead of a host-to-device copy per step."""
        if self.trainer is not None:
            setattr(self, name, getattr(self, name).to(self.trainer.strategy.root_device))
        return getattr(self, name)

    def train_dataloader(self) -> DataLoader:
        # Shuffle over the whole split: the Hub's IMDB lists all negatives before all positives.
        dataset = self._on_device("train_set")
        batches = Batches(len(dataset), self.batch_size, self.seed, self._next_train_pass)
        return DataLoader(dataset, sampler=batches, batch_size=None)

    def _next_train_pass(self) -> int:
        self.train_passes += 1
        return self.train_passes - 1

    def _eval_loader(self, name: str) -> DataLoader:
        dataset = self._on_device(name)
        return DataLoader(dataset, sampler=Batches(len(dataset), self.eval_batch_size), batch_size=None)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val_set")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test_set")
