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
from seqclf.errors import ConfigError, DataError

log = logging.getLogger(__name__)

# Batches are slices of in-memory tensors: worker processes would only add start-up and IPC cost.
warnings.filterwarnings("ignore", ".*does not have many workers.*")
# Lightning compares its count of training_step calls (blocks of data.steps_per_execution batches)
# with log_every_n_steps, which seqclf applies to optimizer steps (seqclf.module).
warnings.filterwarnings("ignore", ".*is smaller than the logging interval.*")

CACHE_VERSION = 1
_ARRAYS = ("train_x", "train_y", "test_x", "test_y")


class EncodedSplit(Dataset):
    """An encoded split, indexed by a list of row indices: one tensor gather returns a whole batch
    instead of per-review ``__getitem__`` calls and a collate step (the model is tiny, so this
    matters). Indexed by ``(rows, sizes)`` (a training block, see TrainBlocks) it returns
    ``(x, y, sizes)``: several consecutive batches from one gather, and where each ends."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index):
        rows, sizes = index if isinstance(index, tuple) else (index, None)
        rows = torch.as_tensor(rows).to(self.x.device, non_blocking=True)
        return (self.x[rows], self.y[rows]) if sizes is None else (self.x[rows], self.y[rows], sizes)

    def to(self, device: torch.device) -> EncodedSplit:
        return self if self.x.device == device else EncodedSplit(self.x.to(device), self.y.to(device))


def _world() -> tuple[int, int]:
    """(rank, world size) of this process in DDP, (0, 1) otherwise."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class BatchOrder(Sampler[torch.Tensor]):
    """Batches of row indices over a whole split: in order (evaluation, no ``seed``), or for training
    in a random order per epoch that depends only on (seed, epoch), not on the global random state,
    so a resumed run sees exactly the batches an uninterrupted one would have (``reshuffle=False``:
    the seed's one order every epoch).

    Under DDP each process takes every world-size-th batch of the same order (seqclf shards itself;
    trainer.use_distributed_sampler is off), so 2 processes x batch 16 take the same steps as one
    process x batch 32. Training pads with batches from the start so every process steps equally
    often; evaluation does not pad, so no review is counted twice.
    """

    def __init__(self, n_rows: int, batch_size: int, seed: int | None = None, reshuffle: bool = True):
        self.n_rows, self.batch_size, self.seed, self.reshuffle = n_rows, batch_size, seed, reshuffle

    def _share(self, n_batches: int) -> list[int]:
        rank, world = _world()
        padded = list(range(n_batches))
        if self.seed is not None and n_batches % world:
            padded += padded[: world - n_batches % world]
        return padded[rank::world]

    def _batch_size(self) -> int:
        """Evaluation under DDP takes smaller batches where a split has fewer batches than processes:
        every process needs at least one (Lightning refuses an empty loader on any rank)."""
        _, world = _world()
        if self.seed is not None or world == 1:
            return self.batch_size
        if self.n_rows < world:
            raise DataError(
                f"an evaluation split has {self.n_rows} reviews, fewer than the {world} DDP processes; "
                "give it more reviews (data.val_fraction) or use fewer processes (trainer.devices)."
            )
        return min(self.batch_size, -(-self.n_rows // world))

    def __len__(self) -> int:
        return len(self._share(-(-self.n_rows // self._batch_size())))

    def batches(self, epoch: int = 0) -> list[torch.Tensor]:
        """This process's batches of ``epoch`` (the epoch only matters with a seed and reshuffle)."""
        if self.seed is None:
            order = torch.arange(self.n_rows)
        else:
            seed = self.seed + (epoch if self.reshuffle else 0)
            order = torch.randperm(self.n_rows, generator=torch.Generator().manual_seed(seed))
        batches = order.split(self._batch_size())
        return [batches[i] for i in self._share(len(batches))]

    def __iter__(self):
        return iter(self.batches())


class TrainBlocks(Sampler[tuple[torch.Tensor, tuple[int, ...]]]):
    """The training batches of each epoch (a BatchOrder), cut to ``limit`` batches (a count, or a
    share as Lightning's ``limit_train_batches``), in blocks of ``steps_per_execution`` consecutive
    batches: each item is (the rows of its batches, their sizes), so one gather and one
    ``training_step`` call serve K optimizer steps. The same batches in the same order for any K.

    ``position()`` gives (epoch, blocks of it already trained): the epoch picks the order, and
    blocks are only already trained when Lightning restarts in the middle of an epoch from a
    checkpoint, where iteration continues after them. Without it (no trainer) the epoch is
    ``self.epoch``.
    """

    def __init__(
        self,
        order: BatchOrder,
        steps_per_execution: int,
        limit: int | float | None = None,
        position: Callable[[], tuple[int, int]] | None = None,
    ):
        self.order, self.steps_per_execution, self.limit, self.position = order, steps_per_execution, limit, position
        self.epoch = 0
        self.saved_steps_per_execution = steps_per_execution  # of the checkpoint resumed from

    @property
    def num_steps(self) -> int:
        """Optimizer steps (batches) per epoch on this process."""
        n = len(self.order)
        if self.limit is None:
            return n
        return min(n, self.limit) if isinstance(self.limit, int) else max(1, int(n * self.limit))

    def __len__(self) -> int:
        return -(-self.num_steps // self.steps_per_execution)

    def __iter__(self):
        epoch, done = self.position() if self.position else (self.epoch, 0)
        if done and self.saved_steps_per_execution != self.steps_per_execution:
            raise DataError(
                f"data.steps_per_execution={self.steps_per_execution} differs from the checkpoint's "
                f"{self.saved_steps_per_execution}, which was saved in the middle of an epoch; resume with "
                f"data.steps_per_execution={self.saved_steps_per_execution} (it can change at an epoch's end)."
            )
        batches = self.order.batches(epoch)[: self.num_steps]
        k = self.steps_per_execution
        for i in range(done * k, len(batches), k):
            block = batches[i : i + k]
            yield torch.cat(block), tuple(len(b) for b in block)


class TrainLoader(DataLoader):
    """The training DataLoader over TrainBlocks. Resumable in the middle of an epoch (TrainBlocks
    continues after the blocks Lightning's restored progress counts), and its state, kept in
    checkpoints, is the block size those blocks were counted in."""

    def state_dict(self) -> dict[str, int]:
        return {"steps_per_execution": self.sampler.steps_per_execution}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.saved_steps_per_execution = int(state["steps_per_execution"])


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
        steps_per_execution: int = 16,
        limit_train_batches: int | float | None = None,
        reshuffle: bool = True,
    ):
        super().__init__()
        # Data settings travel in checkpoints and loggers; vocab_size is the model's (the real size).
        self.save_hyperparameters(
            ignore=["vocab_size", "cache_dir", "progress", "num_proc", "tokenizer", "limit_train_batches"]
        )
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
        if isinstance(steps_per_execution, bool) or not isinstance(steps_per_execution, int) or steps_per_execution < 1:
            raise ConfigError(f"data.steps_per_execution={steps_per_execution!r} must be a positive integer.")
        if limit_train_batches is not None and not (
            (
                isinstance(limit_train_batches, int)
                and not isinstance(limit_train_batches, bool)
                and limit_train_batches >= 1
            )
            or (isinstance(limit_train_batches, float) and 0.0 < limit_train_batches <= 1.0)
        ):
            raise ConfigError(
                f"trainer.limit_train_batches={limit_train_batches!r} must be a number of batches (an integer >= 1) "
                "or a share of them (a float in (0, 1]), e.g. trainer.limit_train_batches=200 or 0.1."
            )
        self.steps_per_execution, self.limit_train_batches = steps_per_execution, limit_train_batches
        self.reshuffle = bool(reshuffle)
        self.train_set = self.val_set = self.test_set = None
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
        # Evaluation reads its splits in one seeded order that mixes the classes (the Hub's IMDB is
        # sorted by label), so a part of one (trainer.limit_val_batches, the gradient probe's batch)
        # is not all negative reviews; over a whole split the order changes nothing.
        rng = np.random.default_rng(self.seed)
        test = rng.permutation(len(arrays["test_y"]))
        self.test_set = EncodedSplit(
            torch.from_numpy(arrays["test_x"][test].astype(np.int64)),
            torch.from_numpy(arrays["test_y"][test].astype(np.float32)),
        )
        if self.val_split == "test":  # the lecture's notebook: all of train, validated on test
            self.train_set, self.val_set = EncodedSplit(x, y), self.test_set
        else:
            train_rows, val_rows = stratified_split(arrays["train_y"], self.val_fraction, self.seed)
            val_rows = rng.permutation(val_rows)
            self.train_set = EncodedSplit(x[train_rows], y[train_rows])
            self.val_set = EncodedSplit(x[val_rows], y[val_rows])

    def state_dict(self) -> dict[str, Any]:
        """Stored in every checkpoint: what turns raw text into model input (the position in the
        training order is the TrainLoader's state)."""
        if self.tokenizer is None:
            return {}
        return {"tokenizer": self.tokenizer.to_json()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.tokenizer is not None and "tokenizer" in state and state["tokenizer"] != self.tokenizer.to_json():
            raise DataError(
                "the checkpoint's vocabulary differs from the one fitted on the current data "
                f"(data.path={self.path}, vocab_size={self.vocab_size}, max_len={self.max_len}); "
                "resume with the data settings the checkpoint was trained with."
            )

    # -- loaders -------------------------------------------------------------------------------------
    def _on_device(self, name: str) -> EncodedSplit:
        """GPU fast path: on an accelerator the encoded split (a few MB) moves to the device once,
        so each batch is a gather there instead of a host-to-device copy per step."""
        if self.trainer is not None:
            setattr(self, name, getattr(self, name).to(self.trainer.strategy.root_device))
        return getattr(self, name)

    def train_dataloader(self) -> TrainLoader:
        # Shuffle over the whole split: the Hub's IMDB lists all negatives before all positives.
        dataset = self._on_device("train_set")
        order = BatchOrder(len(dataset), self.batch_size, self.seed, self.reshuffle)
        position = self._train_position if self.trainer is not None else None
        blocks = TrainBlocks(order, self.steps_per_execution, self.limit_train_batches, position)
        return TrainLoader(dataset, sampler=blocks, batch_size=None)

    def _train_position(self) -> tuple[int, int]:
        """(epoch, blocks of it already trained), from Lightning's progress counters, which a resumed
        run restores from its checkpoint before iterating: the epoch picks the order, so a resumed
        run sees exactly the batches an uninterrupted one would have; blocks are already trained
        only when it restarts in the middle of an epoch."""
        trainer = self.trainer
        return trainer.current_epoch, trainer.fit_loop.epoch_loop.batch_progress.current.completed

    def _eval_loader(self, name: str) -> DataLoader:
        dataset = self._on_device(name)
        return DataLoader(dataset, sampler=BatchOrder(len(dataset), self.eval_batch_size), batch_size=None)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val_set")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test_set")
