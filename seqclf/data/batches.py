"""Batches for training and evaluation: an encoded split in memory, the per-epoch batch order
(sharded across DDP processes), and training blocks of several batches per ``training_step``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler

from seqclf.errors import DataError


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


# data.bucket: the rows sorted by length together, in batches' worth: more, batches of closer lengths;
# fewer, a batch's texts closer to a random draw.
BUCKET_BATCHES = 50


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

    def __init__(
        self,
        n_rows: int,
        batch_size: int,
        seed: int | None = None,
        reshuffle: bool = True,
        lengths: torch.Tensor | None = None,
    ):
        self.n_rows, self.batch_size, self.seed, self.reshuffle = n_rows, batch_size, seed, reshuffle
        self.lengths = lengths  # each row's words (data.bucket): batches of similar lengths

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
        size = self._batch_size()
        if self.seed is None:
            order = torch.arange(self.n_rows)
            if self.lengths is not None:  # evaluation: longest first, the scores do not depend on the order
                order = torch.argsort(self.lengths, descending=True, stable=True)
            batches = order.split(size)
        else:
            generator = torch.Generator().manual_seed(self.seed + (epoch if self.reshuffle else 0))
            order = torch.randperm(self.n_rows, generator=generator)
            batches = order.split(size) if self.lengths is None else self._buckets(order, size, generator)
        return [batches[i] for i in self._share(len(batches))]

    def _buckets(self, order: torch.Tensor, size: int, generator: torch.Generator) -> list[torch.Tensor]:
        """Batches of similar lengths, still in a seeded order: the shuffled rows in pieces of
        BUCKET_BATCHES batches, each piece sorted by length and cut into batches, then the batches
        shuffled (with the epoch's generator: the same batches for the same seed and epoch)."""
        batches = []
        for piece in order.split(size * BUCKET_BATCHES):
            piece = piece[torch.argsort(self.lengths[piece], descending=True, stable=True)]
            batches.extend(piece.split(size))
        return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]

    def __iter__(self):
        return iter(self.batches())


class TrainBlocks(Sampler[tuple[torch.Tensor, tuple[int, ...]]]):
    """The training batches of each epoch (a BatchOrder), cut to ``limit`` batches (a count, or a
    share as Lightning's ``limit_train_batches``), in blocks of ``steps_per_execution`` consecutive
    batches: each item is (the rows of its batches, their sizes), so one gather and one
    ``training_step`` call serve K optimizer steps. The same batches in the same order for any K.
    Evaluation's fixed order is handed over in blocks too (one ``validation_step`` call per block).

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
        self.saved: dict = {}  # the position settings of the checkpoint resumed from

    def settings(self) -> dict:
        """What a position in the middle of an epoch depends on (kept in checkpoints)."""
        return {
            "steps_per_execution": self.steps_per_execution,
            "batch_size": self.order.batch_size,
            "seed": self.order.seed,
            "reshuffle": self.order.reshuffle,
            "bucket": self.order.lengths is not None,
            "limit_train_batches": self.limit,
            "processes": _world()[1],
        }

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
        if done:
            check_mid_epoch(self.saved, self.settings())
        batches = self.order.batches(epoch)[: self.num_steps]
        k = self.steps_per_execution
        for i in range(done * k, len(batches), k):
            block = batches[i : i + k]
            yield torch.cat(block), tuple(len(b) for b in block)


class TrainLoader(DataLoader):
    """The training DataLoader over TrainBlocks. Resumable in the middle of an epoch (TrainBlocks
    continues after the blocks Lightning's restored progress counts), and its state, kept in
    checkpoints, is the block size those blocks were counted in."""

    def state_dict(self) -> dict:
        return self.sampler.settings()

    def load_state_dict(self, state: dict) -> None:
        self.sampler.saved = dict(state)


# The setting behind each of TrainBlocks.settings(), as the user gives it.
SETTING_NAMES = {
    "steps_per_execution": "data.steps_per_execution",
    "batch_size": "data.batch_size",
    "seed": "data.seed",
    "reshuffle": "data.reshuffle",
    "bucket": "data.bucket",
    "limit_train_batches": "trainer.limit_train_batches",
    "processes": "trainer.devices",
}


def check_mid_epoch(saved: dict, current: dict, source: str = "the checkpoint") -> None:
    """A run restarted in the middle of an epoch skips the blocks its checkpoint counts, in the
    order and block size the checkpoint was trained with: every setting that order depends on must
    be the checkpoint's (those it records; ``current`` may hold only some). They may change at an
    epoch's end."""
    changed = [key for key in SETTING_NAMES if key in saved and key in current and current[key] != saved[key]]
    if changed:
        diffs = ", ".join(f"{SETTING_NAMES[k]}={current[k]} (checkpoint: {saved[k]})" for k in changed)
        keep = " ".join(f"{SETTING_NAMES[k]}={saved[k]}" for k in changed)
        raise DataError(
            f"{source} was saved in the middle of an epoch, and continuing it needs the batches in the order and "
            f"blocks it was trained in, but {diffs}. Continue with {keep}; these may change at an epoch's end "
            "(from checkpoints/last.ckpt, saved when an epoch ends)."
        )
