"""The text-classification LightningDataModule: texts and labels from the Hub or a local folder
(seqclf.data.sources), classes (seqclf.data.labels), tokenised and cached (seqclf.data.cache), split for
validation (seqclf.data.split) and served in batches (seqclf.data.batches)."""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from seqclf.data import cache, overlap, settings, sources
from seqclf.data.batches import BatchOrder, EncodedSplit, TrainBlocks, TrainLoader
from seqclf.data.labels import Labels
from seqclf.data.split import grouped_split, stratified_split
from seqclf.data.text import FORMAT, PAD_ID, WordTokenizer, fitted_length
from seqclf.errors import ConfigError, DataError

log = logging.getLogger(__name__)

# Batches are slices of in-memory tensors: worker processes would only add start-up and IPC cost.
warnings.filterwarnings("ignore", ".*does not have many workers.*")
# Texts per evaluation block at most: the block is one gather, whose memory this bounds.
EVAL_BLOCK_ROWS = 16384
# Lightning compares its count of training_step calls (blocks of data.steps_per_execution batches)
# with log_every_n_steps, which seqclf applies to optimizer steps (seqclf.tasks.classify.module).
warnings.filterwarnings("ignore", ".*is smaller than the logging interval.*")


class TextDataModule(L.LightningDataModule):
    """A text-classification dataset from the Hub (``hub_name``, ``hub_config``) or a local folder
    (``path``): the ``text_column`` (one name, or several joined with a space) and the
    ``label_column`` of its train, validation and test splits. IMDB is its default preset
    (conf/data/imdb.yaml), the others are presets too (conf/data/).

    ``prepare_data`` fits the vocabulary and the classes (seqclf.data.labels) on the train split and
    writes the encoded splits to a cache keyed by the source and every setting they depend on;
    ``setup`` reads them back, so later runs (and every DDP rank) skip tokenisation. Validation
    (``val_split``) is the dataset's own validation split when it has one (``auto``), else a
    stratified ``val_fraction`` of train (``train``; multi-label data: a seeded random share), the
    test split itself (``test``, as the lecture's notebook did), or a split named here. Given
    ``tokenizer`` and ``labels`` (from a checkpoint), the data is encoded with them instead of a
    vocabulary and classes fitted here. ``splits=[test]`` reads and encodes the test split only
    (seqclf-eval). Every setting is checked here, where it is used, before any data is read.
    """

    def __init__(
        self,
        path: str | None = None,
        hub_name: str = "stanfordnlp/imdb",
        hub_config: str | None = None,
        revision: str | None = None,
        cache_dir: str = "~/.cache/seqclf",
        text_column: str | list[str] = "text",
        label_column: str = "label",
        label_names: list[str] | None = None,
        group_column: str | None = None,
        train_split: str = "train",
        val_split: str = "auto",
        test_split: str = "test",
        vocab_size: int = 10_000,
        max_len: int | str = 32,
        padding: str = "pre",
        truncation: str = "pre",
        val_fraction: float = 0.1,
        batch_size: int = 32,
        eval_batch_size: int = 1024,
        seed: int = 42,
        progress: bool = True,
        num_proc: int | None = None,
        tokenizer: str | None = None,
        labels: dict | None = None,
        steps_per_execution: int = 64,
        limit_train_batches: int | float | None = None,
        reshuffle: bool = True,
        bucket: bool = False,
        splits: list[str] | tuple[str, ...] = sources.SPLITS,
    ):
        super().__init__()
        # Lists from Hydra are ListConfigs: plain lists in hparams, so checkpoints hold plain data only.
        text_column, label_names = settings.plain(text_column), settings.plain(label_names)
        # Data settings travel in checkpoints and loggers; vocab_size is the model's (the real size).
        self.save_hyperparameters(
            ignore=[
                "vocab_size", "cache_dir", "progress", "num_proc", "tokenizer", "labels", "limit_train_batches",
                "splits",
            ]
        )  # fmt: skip
        settings.check_text({key: value for key, value in locals().items() if key not in ("self", "__class__")})
        self.columns = sources.Columns(settings.column_names(text_column), label_column, group_column)
        self.label_names = [str(n) for n in label_names] if label_names else None
        self.splits = tuple(splits)
        self.val_split = val_split
        # role -> the names that split may have in the dataset, in order of preference
        self.split_names = {"train": (train_split,), "test": (test_split,)}
        self.split_names = {role: names for role, names in self.split_names.items() if role in self.splits}
        if "train" in self.splits and val_split not in ("train", "test"):
            self.split_names["validation"] = sources.VALIDATION_NAMES if val_split == "auto" else (val_split,)
        self.given_tokenizer = WordTokenizer.from_json(tokenizer) if tokenizer else None
        self.given_labels = Labels.from_dict(labels) if labels else None
        if self.given_tokenizer is not None:  # its own length and sides win over the settings
            max_len = self.given_tokenizer.max_len
            padding, truncation = self.given_tokenizer.padding, self.given_tokenizer.truncation
            vocab_size = self.given_tokenizer.vocab_size
        self.path = None if path in (None, "") else str(Path(path).expanduser().resolve())
        self.hub_name, self.hub_config, self.revision = hub_name, hub_config, revision
        self.cache_root = Path(cache_dir).expanduser().resolve()
        # auto: fitted to the training texts when they are first read (prepare_data), then the tokenizer's
        self.vocab_size, self.length_setting = int(vocab_size), max_len
        self.max_len: int | None = None if max_len == settings.AUTO_LENGTH else int(max_len)
        self.padding, self.truncation = padding, truncation
        self.val_fraction, self.seed = float(val_fraction), int(seed)
        self.batch_size, self.eval_batch_size = int(batch_size), int(eval_batch_size)
        self.progress, self.num_proc = progress, num_proc
        self.tokenizer: WordTokenizer | None = None
        self._saved_tokenizer: tuple[WordTokenizer, str] | None = None  # (tokenizer, its JSON), see state_dict
        self.labels: Labels | None = None
        self.class_counts: list[int] | None = None  # texts of each class in the training rows
        self.overlap: overlap.Overlap | None = None  # what validation shares with training (set up)
        self.steps_per_execution, self.limit_train_batches = steps_per_execution, limit_train_batches
        self.reshuffle, self.bucket = bool(reshuffle), bool(bucket)
        self.train_set = self.val_set = self.test_set = None
        self._files: dict[str, list[Path]] | None = None
        self._prepared = False
        self._loaded: cache.Loaded | None = None  # from prepare_data to setup

    # -- cache ---------------------------------------------------------------------------------
    @property
    def _optional(self) -> tuple[str, ...]:
        return ("validation",) if self.val_split == "auto" else ()

    def _local_files(self) -> dict[str, list[Path]]:
        if self._files is None:
            self._files = sources.find_local_files(self.path, self.split_names, self._optional)
        return self._files

    def _source(self) -> dict[str, Any]:
        if self.path is None:
            return {"hub": self.hub_name, "config": self.hub_config, "revision": self.revision}
        return {"files": sources.fingerprint(self._local_files())}

    @property
    def cache_dir(self) -> Path:
        key = {
            "tokenizer": FORMAT,
            "source": self._source(),
            "splits": {role: list(names) for role, names in self.split_names.items()},
            "columns": [list(self.columns.text), self.columns.label],
            "group_column": self.columns.group,
            "label_names": self.label_names,
            "vocab_size": self.vocab_size,
            "max_len": self.length_setting,
            "padding": self.padding,
            "truncation": self.truncation,
        }
        if self.given_tokenizer is not None:
            key["given_tokenizer"] = hashlib.sha256(self.given_tokenizer.to_json().encode()).hexdigest()
        if self.given_labels is not None:
            key["given_labels"] = self.given_labels.to_dict()
        return cache.folder(self.cache_root, {**key, **self._cache_key()})

    def _cache_key(self) -> dict[str, Any]:
        """What else the encoded arrays depend on (a subclass's own settings)."""
        return {}

    def prepare_data(self) -> None:
        """Tokenise and cache the encoded splits unless a whole cache for these settings exists; a
        damaged one (cut short, a file missing or changed) is rebuilt. Once per object: the entry
        point calls it, then Lightning's fit and test again."""
        if self._prepared:
            return
        target = self.cache_dir
        try:
            self._loaded = cache.load(target)  # kept for setup: each file is read once
            self.max_len = self._loaded.tokenizer.max_len
            log.info("Using cached encoded data in %s", target)
            self._prepared = True
            return
        except cache.Damaged as e:
            if str(e) != "missing":
                log.warning("The encoded-data cache %s is damaged (%s); rebuilding it.", target, e)
        raw = self._read_raw()
        if self.max_len is None:
            self._fit_length(raw["train"].texts)
        self._check_memory(sum(len(split.labels) for split in raw.values()))
        labels = self.given_labels
        if labels is None:
            labels = self._fit_labels(raw["train"])
        else:
            self._check_given_labels(labels, raw)
        tokenizer, arrays = self._encode(raw, labels)
        arrays.update(self._row_arrays(raw))
        meta = {"source": self._source(), "rows": {role: len(split.labels) for role, split in raw.items()}}
        cache.write(target, tokenizer, labels, arrays, meta)
        log.info("Encoded data cached in %s", target)
        self._loaded = cache.Loaded(tokenizer, labels, arrays)
        self._prepared = True

    def _read_raw(self, convert=sources.to_raw, text_files: str = "fasttext") -> dict[str, sources.RawSplit]:
        """Each split's raw rows, from the Hub or ``path``, checked by ``convert`` (see seqclf.data.sources)."""
        if self.path is None:
            return sources.load_hub(
                self.hub_name, self.hub_config, self.revision, self.split_names, self.columns, self._optional, convert
            )
        return sources.load_local(self._local_files(), self.columns, convert, text_files)

    def read_texts(self, extra: Sequence[str] = ()) -> dict[str, list[str]]:
        """The raw texts of the training split (and of the data's own validation split, if it has one),
        and of each ``extra`` split (e.g. IMDB's ``unsupervised``), never the test split's, with no label
        read: for what is fitted on texts alone (seqclf-vectors)."""
        self.split_names = {
            **{role: names for role, names in self.split_names.items() if role != "test"},
            **{f"extra:{name}": (name,) for name in extra},
        }
        self._files = None
        raw = self._read_raw(convert=sources.to_texts)
        return {role.removeprefix("extra:"): split.texts for role, split in raw.items()}

    def _fit_length(self, texts: list[str]) -> None:
        """data.max_len=auto: a length that keeps the whole of most training texts, with the cap."""
        self.max_len, longest = fitted_length(texts, settings.AUTO_PERCENTILE, settings.AUTO_CAP, self.seed)
        kept = "first" if self.truncation == "post" else "last"
        capped = f", capped at {settings.AUTO_CAP}" if longest > settings.AUTO_CAP else ""
        log.info(
            "data.max_len=auto: %d%% of the training texts have at most %d words; each text keeps its %s %d words "
            "(data.truncation=%s%s).",
            settings.AUTO_PERCENTILE, longest, kept, self.max_len, self.truncation, capped,
        )  # fmt: skip

    def _fit_labels(self, train: sources.RawSplit) -> Labels:
        return Labels.fit(train.labels, self._where("train"), train.names, self.label_names)

    def _encode(self, raw: dict[str, sources.RawSplit], labels: Labels) -> tuple[WordTokenizer, dict[str, np.ndarray]]:
        """The tokenizer (fitted on train unless given) and each split's ``<role>_x`` and ``<role>_y`` arrays;
        the labels first: a label that cannot be scored is refused before the texts' tokenisation."""
        arrays = {f"{role}_y": labels.encode(split.labels, self._where(role)) for role, split in raw.items()}
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
        for role, split in raw.items():
            if f"{role}_x" not in arrays:
                arrays[f"{role}_x"] = tokenizer.encode(split.texts, progress=self.progress, workers=self.num_proc)
        return tokenizer, arrays

    def _row_arrays(self, raw: dict[str, sources.RawSplit]) -> dict[str, np.ndarray]:
        """What the validation split is drawn and checked with: each training and validation row's
        text keys (seqclf.data.overlap) and, with data.group_column, each training row's group id."""
        arrays = {f"{role}_keys": overlap.row_keys(raw[role].texts) for role in ("train", "validation") if role in raw}
        if self.columns.group:
            groups = raw["train"].groups
            if groups is None:
                raise DataError(
                    f"data.group_column={self.columns.group} names a column, but {self._where('train')} is in "
                    "fastText's format (__label__X text), which has no other columns; give the data as CSV, JSON "
                    "Lines or Parquet with that column, or set data.group_column=null."
                )
            ids: dict = {}
            # a row without a group (null or empty) is a group of its own
            arrays["train_group"] = np.array(
                [ids.setdefault(g, len(ids)) if g not in (None, "") else -1 - i for i, g in enumerate(groups)],
                dtype=np.int64,
            )
        return arrays

    def _where(self, role: str) -> str:
        source = self.path or self.hub_name
        return f"the {role} split of {source}"

    def _check_given_labels(self, labels: Labels, raw: dict[str, sources.RawSplit]) -> None:
        """The data's own class names (if it has any) must be the checkpoint's."""
        for role, split in raw.items():
            if split.names is not None and tuple(split.names) != labels.names:
                raise DataError(
                    f"{self._where(role)} has the classes {split.names}, but the checkpoint was trained for "
                    f"{list(labels.names)}; evaluate it on a dataset with the same classes (its data settings are "
                    "in the run's .hydra/config.yaml)."
                )

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
                self._loaded = cache.load(self.cache_dir)
            except cache.Damaged as e:
                raise DataError(
                    f"no usable encoded data in {self.cache_dir} ({e}); call prepare_data() first."
                ) from None
        loaded, self._loaded = self._loaded, None
        self.tokenizer, self.labels, arrays = loaded.tokenizer, loaded.labels, loaded.arrays
        self.max_len = self.tokenizer.max_len
        # Evaluation reads its splits in one seeded order that mixes the classes (the Hub's IMDB is
        # sorted by label), so a part of one (trainer.limit_val_batches, the gradient probe's batch)
        # is not all negative reviews; over a whole split the order changes nothing.
        rng = np.random.default_rng(self.seed)
        if "test" in self.splits:
            test = rng.permutation(len(arrays["test_y"]))
            self.test_set = self._encoded(arrays["test_x"][test], arrays["test_y"][test])
        if "train" not in self.splits:
            return
        x, y = arrays["train_x"], arrays["train_y"]
        keys = arrays.get("train_keys")
        if self.val_split == "test":  # the lecture's notebook: all of train, validated on test
            train_rows, self.val_set = np.arange(len(y)), self.test_set
            self._unused_groups("validation is the test split (data.val_split=test)")
        elif "validation_y" in arrays:  # the dataset's own
            train_rows = np.arange(len(y))
            val_rows = rng.permutation(len(arrays["validation_y"]))
            self.val_set = self._encoded(arrays["validation_x"][val_rows], arrays["validation_y"][val_rows])
            self._unused_groups("validation is the dataset's own split")
            self._report_overlap(keys, arrays["validation_keys"], "the dataset's validation split")
        else:
            if "train_group" in arrays:
                train_rows, val_rows = grouped_split(arrays["train_group"], self.val_fraction, self.seed)
            else:
                train_rows, val_rows = stratified_split(self._strata(x, y), self.val_fraction, self.seed)
            share = f"{'whole groups of ' if 'train_group' in arrays else ''}a random {self.val_fraction} of train"
            self._report_overlap(keys[train_rows], keys[val_rows], share)
            val_rows = rng.permutation(val_rows)
            self.val_set = self._encoded(x[val_rows], y[val_rows])
        self.train_set = self._training_set(x[train_rows], y[train_rows], arrays)
        self.class_counts = self._class_counts(y[train_rows])

    def _unused_groups(self, why: str) -> None:
        if self.columns.group:
            log.warning("data.group_column=%s is not used: %s, not a share of train.", self.columns.group, why)

    def _report_overlap(self, train_keys: np.ndarray, val_keys: np.ndarray, where: str) -> None:
        """Warn when validation shares many texts or openings with training: its scores then reward
        memorising them and overstate test."""
        self.overlap = found = overlap.overlap(train_keys, val_keys)
        if not found.flattering:
            log.info("Validation (%s) against training: %s.", where, found.describe())
            return
        if self.columns.group:
            fix = (
                f"data.group_column={self.columns.group} keeps each group on one side, so these texts are in "
                "different groups; give texts that belong together one group"
            )
        else:
            fix = (
                "if such texts belong together (entries of one product, posts of one thread, a template's "
                "siblings), name the column that groups them with data.group_column=... so that each group stays "
                "on one side of the split"
            )
        log.warning("Validation (%s) may overstate test: %s; %s.", where, found.describe(), fix)

    def _strata(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Each training row's stratum in the validation split: its class (multi-label data, one stratum)."""
        return y if y.ndim == 1 else np.zeros(len(y), dtype=np.int64)

    def _training_set(self, x: np.ndarray, y: np.ndarray, arrays: dict[str, np.ndarray]) -> EncodedSplit:
        """The training rows (validation's taken out) as tensors; a subclass may add rows of its own."""
        return self._encoded(x, y)

    def _class_counts(self, y: np.ndarray) -> list[int]:
        return self.labels.counts(y)

    def _encoded(self, x: np.ndarray, y: np.ndarray) -> EncodedSplit:
        """Tensors as the loss wants them: float targets for binary and multi-label data (a logit
        each), class ids for multi-class data."""
        target = y.astype(np.int64) if self.labels.kind == "multiclass" else y.astype(np.float32)
        return EncodedSplit(torch.from_numpy(x.astype(np.int64)), torch.from_numpy(target))

    def state_dict(self) -> dict[str, Any]:
        """Stored in every checkpoint: what turns raw text into model input (the position in the
        training order is the TrainLoader's state)."""
        if self.tokenizer is None:
            return {}
        return {"tokenizer": self._tokenizer_json(), "labels": self.labels.to_dict()}

    def _tokenizer_json(self) -> str:
        """The tokenizer as JSON, made once per tokenizer: every checkpoint stores it, and a fitted
        vocabulary does not change."""
        if self._saved_tokenizer is None or self._saved_tokenizer[0] is not self.tokenizer:
            self._saved_tokenizer = (self.tokenizer, self.tokenizer.to_json())
        return self._saved_tokenizer[1]

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.tokenizer is not None and "tokenizer" in state and state["tokenizer"] != self._tokenizer_json():
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

    def _lengths(self, split: EncodedSplit) -> torch.Tensor | None:
        """data.bucket: each text's words (its tokens that are not padding), for batches of similar lengths."""
        return (split.x != PAD_ID).sum(dim=1).cpu() if self.bucket else None

    def train_dataloader(self) -> TrainLoader:
        # Shuffle over the whole split: the Hub's IMDB lists all negatives before all positives.
        lengths = self._lengths(self.train_set)
        dataset = self._on_device("train_set")
        order = BatchOrder(len(dataset), self.batch_size, self.seed, self.reshuffle, lengths)
        position = self._train_position if self.trainer is not None else None
        blocks = TrainBlocks(order, self.steps_per_execution, self.limit_train_batches, position)
        # A loader draws a seed for its workers from the generator it is given each time an epoch's
        # iterator is made; from the global one, that draw would fall between the epoch's start, where
        # a resumed run restores the saved random state, and its first dropout mask, in an
        # uninterrupted run only. A private generator leaves the global one to the model.
        return TrainLoader(dataset, sampler=blocks, batch_size=None, generator=torch.Generator())

    def _train_position(self) -> tuple[int, int]:
        """(epoch, blocks of it already trained), from Lightning's progress counters, which a resumed
        run restores from its checkpoint before iterating: the epoch picks the order, so a resumed
        run sees exactly the batches an uninterrupted one would have; blocks are already trained
        only when it restarts in the middle of an epoch."""
        from seqclf.lightning import private

        return self.trainer.current_epoch, private.blocks_done(self.trainer)

    def _eval_loader(self, name: str, limit_name: str) -> DataLoader:
        """Evaluation batches in blocks, as training's: each ``validation_step``/``test_step`` call
        evaluates several batches, so Lightning's per-call work is paid once per block. A block holds
        at most ``EVAL_BLOCK_ROWS`` texts (one gather) and at most ``steps_per_execution`` batches.
        Under ``trainer.limit_val_batches``/``limit_test_batches`` (which Lightning counts in calls) a
        block is one batch, so a limit still counts batches."""
        lengths = self._lengths(getattr(self, name))
        dataset = self._on_device(name)
        order = BatchOrder(len(dataset), self.eval_batch_size, lengths=lengths)
        limit = getattr(self.trainer, limit_name, None) if self.trainer is not None else None
        limited = limit is not None and not (isinstance(limit, float) and limit == 1.0)  # 1: one batch
        per_block = 1 if limited else max(1, min(self.steps_per_execution, EVAL_BLOCK_ROWS // self.eval_batch_size))
        blocks = TrainBlocks(order, per_block)
        return DataLoader(dataset, sampler=blocks, batch_size=None, generator=torch.Generator())

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val_set", "limit_val_batches")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test_set", "limit_test_batches")
