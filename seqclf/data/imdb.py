"""The IMDB LightningDataModule: reviews from the Hub or a local folder, tokenised and cached
(seqclf.data.cache), split for validation (seqclf.data.split) and served in batches (seqclf.data.batches)."""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from seqclf.data import cache, sources
from seqclf.data.batches import BatchOrder, EncodedSplit, TrainBlocks, TrainLoader
from seqclf.data.split import stratified_split
from seqclf.data.text import FORMAT, WordTokenizer, check_side
from seqclf.errors import ConfigError, DataError, check_positive_int

log = logging.getLogger(__name__)

# Batches are slices of in-memory tensors: worker processes would only add start-up and IPC cost.
warnings.filterwarnings("ignore", ".*does not have many workers.*")
# Lightning compares its count of training_step calls (blocks of data.steps_per_execution batches)
# with log_every_n_steps, which seqclf applies to optimizer steps (seqclf.module).
warnings.filterwarnings("ignore", ".*is smaller than the logging interval.*")


class IMDBDataModule(L.LightningDataModule):
    """IMDB reviews from the Hub (``stanfordnlp/imdb``) or a local folder (``path``).

    ``prepare_data`` fits the vocabulary on the train split and writes the encoded splits to a
    cache keyed by the source and the tokeniser settings; ``setup`` reads them back, so later runs
    (and every DDP rank) skip tokenisation. Validation is a stratified ``val_fraction`` of train
    (``val_split="train"``), or the test split itself (``val_split="test"``, as the lecture's
    notebook did). Given ``tokenizer`` (a JSON string, e.g. from a checkpoint), the data is encoded
    with it instead of a vocabulary fitted here. ``splits=[test]`` reads and encodes the test split
    only (seqclf-eval). Every setting is checked here, where it is used, before any data is read.
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
        splits: list[str] | tuple[str, ...] = sources.SPLITS,
    ):
        super().__init__()
        # Data settings travel in checkpoints and loggers; vocab_size is the model's (the real size).
        self.save_hyperparameters(
            ignore=["vocab_size", "cache_dir", "progress", "num_proc", "tokenizer", "limit_train_batches", "splits"]
        )
        for key, value in (("max_len", max_len), ("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            check_positive_int(f"data.{key}", value)
        check_positive_int("data.steps_per_execution", steps_per_execution)
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 3:
            raise ConfigError(
                f"data.vocab_size={vocab_size!r} must be an integer of at least 3 (2 special tokens + 1 word)."
            )
        if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0 < val_fraction < 1:
            raise ConfigError(f"data.val_fraction={val_fraction!r} must lie strictly between 0 and 1 (e.g. 0.1).")
        if num_proc is not None and (isinstance(num_proc, bool) or not isinstance(num_proc, int) or num_proc < 1):
            raise ConfigError(
                f"data.num_proc={num_proc!r} must be a positive number of processes, or null for one per usable core."
            )
        self.splits = tuple(splits)
        if not self.splits or not set(self.splits) <= set(sources.SPLITS):
            raise ConfigError(f"data.splits={list(self.splits)} must name some of {', '.join(sources.SPLITS)}.")
        if "train" not in self.splits and tokenizer is None:
            raise ConfigError("data.splits without train needs a tokenizer (the vocabulary is fitted on train).")
        if val_split == "test" and "test" not in self.splits:
            raise ConfigError("data.val_split=test needs the test split in data.splits.")
        if val_split not in ("train", "test"):
            raise ConfigError(f"data.val_split={val_split!r} is not valid; choose 'train' (a share of it) or 'test'.")
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
        self._prepared = False
        self._loaded: tuple[WordTokenizer, dict[str, np.ndarray]] | None = None  # from prepare_data to setup

    # -- cache ---------------------------------------------------------------------------------
    def _local_files(self) -> dict[str, list[Path]]:
        if self._files is None:
            self._files = sources.find_local_files(self.path, self.splits)
        return self._files

    def _source(self) -> dict[str, Any]:
        if self.path is None:
            return {"hub": self.hub_name, "revision": self.revision}
        return {"files": sources.fingerprint(self._local_files())}

    @property
    def _arrays(self) -> tuple[str, ...]:
        return tuple(f"{split}_{part}" for split in self.splits for part in ("x", "y"))

    @property
    def cache_dir(self) -> Path:
        key = {
            "tokenizer": FORMAT,
            "source": self._source(),
            "splits": list(self.splits),
            "vocab_size": self.vocab_size,
            "max_len": self.max_len,
            "padding": self.padding,
            "truncation": self.truncation,
        }
        if self.given_tokenizer is not None:
            key["given_tokenizer"] = hashlib.sha256(self.given_tokenizer.to_json().encode()).hexdigest()
        return cache.folder(self.cache_root, key)

    def prepare_data(self) -> None:
        """Tokenise and cache the encoded splits unless a whole cache for these settings exists; a
        damaged one (cut short, a file missing or changed) is rebuilt. Once per object: the entry
        point calls it, then Lightning's fit and test again."""
        if self._prepared:
            return
        target = self.cache_dir
        try:
            self._loaded = cache.load(target, self._arrays)  # kept for setup: each file is read once
            log.info("Using cached encoded data in %s", target)
            self._prepared = True
            return
        except cache.Damaged as e:
            if str(e) != "missing":
                log.warning("The encoded-data cache %s is damaged (%s); rebuilding it.", target, e)
        if self.path is None:
            raw = sources.load_hub(self.hub_name, self.revision, self.splits)
        else:
            raw = sources.load_local(self._local_files())
        self._check_memory(sum(len(split.labels) for split in raw.values()))
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
        for split in self.splits:
            if f"{split}_x" not in arrays:
                arrays[f"{split}_x"] = tokenizer.encode(raw[split].texts, progress=self.progress, workers=self.num_proc)
            arrays[f"{split}_y"] = raw[split].labels.astype(np.int8)
        meta = {"source": self._source(), "rows": {s: len(raw[s].labels) for s in self.splits}}
        cache.write(target, tokenizer, arrays, meta)
        log.info("Encoded data cached in %s", target)
        self._loaded = (tokenizer, arrays)
        self._prepared = True

    def _check_memory(self, reviews: int) -> None:
        """Refuse a data.max_len whose encoded reviews would not fit in memory, before encoding them."""
        need = reviews * self.max_len * (4 + 8)  # the encoded int32 arrays, then setup's int64 tensors
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            return
        if need > available:
            raise ConfigError(
                f"data.max_len={self.max_len} needs about {need / 2**30:.1f} GiB for the encoded reviews, more than "
                f"the {available / 2**30:.1f} GiB of memory free ({reviews} reviews); choose a smaller data.max_len "
                "(IMDB reviews average about 230 words)."
            )

    # -- state -------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.tokenizer is not None:
            return  # already set up (the entry point calls setup early to learn the vocabulary size)
        if self._loaded is None:  # a process that did not prepare the data (a DDP rank but the first)
            try:
                self._loaded = cache.load(self.cache_dir, self._arrays)
            except cache.Damaged as e:
                raise DataError(
                    f"no usable encoded data in {self.cache_dir} ({e}); call prepare_data() first."
                ) from None
        (self.tokenizer, arrays), self._loaded = self._loaded, None
        # Evaluation reads its splits in one seeded order that mixes the classes (the Hub's IMDB is
        # sorted by label), so a part of one (trainer.limit_val_batches, the gradient probe's batch)
        # is not all negative reviews; over a whole split the order changes nothing.
        rng = np.random.default_rng(self.seed)
        if "test" in self.splits:
            test = rng.permutation(len(arrays["test_y"]))
            self.test_set = EncodedSplit(
                torch.from_numpy(arrays["test_x"][test].astype(np.int64)),
                torch.from_numpy(arrays["test_y"][test].astype(np.float32)),
            )
        if "train" not in self.splits:
            return
        x = torch.from_numpy(arrays["train_x"].astype(np.int64))
        y = torch.from_numpy(arrays["train_y"].astype(np.float32))
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
