"""torch's threads per training process: a count for training steps and one for evaluation,
chosen once per run from things that do not depend on timing, kept for the whole run and recorded
in its checkpoints, so the same command gives the same weights however busy the machine is.

The count is part of what makes a CPU run reproducible: oneDNN's LSTM kernel, which torch uses for
small LSTMs, sums in an order that depends on it. A model whose step is small (the lecture's) is
faster on one thread, and one thread never waits for another; a larger step takes the usable cores
(the CPU affinity mask and the cgroup CPU quota, not the host's core count), shared among the
seqclf runs of this user alive when the run starts (a folder of lock files, one per live run,
released by the kernel when the process ends, however it ends). Evaluation's large batches are
independent of each other: its count is how many run at once, each on one thread (side_by_side),
so its numbers do not depend on the count at all.
seqclf/__init__ also shortens the OpenMP runtime's spin before a waiting thread sleeps, so runs that
come to share cores later do not slow each other down many times.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from seqclf.errors import ConfigError
from seqclf.models.checks import RECURRENT

try:
    import fcntl
except ImportError:  # Windows: no registry, every run takes all usable cores
    fcntl = None

log = logging.getLogger(__name__)

# One folder per user, mode 0700: another user cannot plant links or pipes in it (the shared temp
# folder is writable by everyone). Runs of other users are not counted.
REGISTRY = Path(tempfile.gettempdir()) / f"seqclf-runs-{os.getuid() if hasattr(os, 'getuid') else 0}"
ENTRY = re.compile(r"\d+-[A-Za-z0-9_]+")  # the lock files seqclf writes: <pid>-<random>
CGROUP = Path("/sys/fs/cgroup")
ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")  # set by a user, a DDP launcher or joblib's workers

# Multiply-adds of one step's recurrent layers below which one thread is faster than two (measured
# on a 2-core machine, docs/performance.md, "How", Threads): the lecture's LSTM step is 6 M, a 64-unit LSTM's 25 M.
ONE_THREAD_WORK = 16e6

_state: dict = {"lock": None, "plan": None, "phase": "train", "workers": None}


def usable_cores() -> int:
    """Cores this process may run on: its affinity mask, capped by a cgroup CPU quota (containers)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(cores, math.ceil(quota)) if quota else cores)


def _cgroup_quota() -> float | None:
    """CPUs allowed by the cgroup (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), None without a limit."""
    root = CGROUP
    with contextlib.suppress(OSError, ValueError):
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    with contextlib.suppress(OSError, ValueError):
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        return quota / int((root / "cpu" / "cpu.cfs_period_us").read_text()) if quota > 0 else None
    return None


def _private_registry() -> Path | None:
    """The registry folder, made if missing: a real folder (not a link) of this user's, which no one
    else may write to; else None (a warning, and the run counts itself alone)."""
    with contextlib.suppress(FileExistsError):
        REGISTRY.mkdir(mode=0o700)
    try:
        info = os.lstat(REGISTRY)
    except OSError as e:
        log.warning("threads=auto: cannot use %s (%s); this run takes all usable cores.", REGISTRY, e.strerror)
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        log.warning(
            "threads=auto: %s is not a private folder of this user (a link, another owner, or open to others); "
            "it is left alone, and this run takes all usable cores. Remove it to share cores among runs again.",
            REGISTRY,
        )
        return None
    return REGISTRY


def _register() -> None:
    """A lock file for this process, held until it exits (the kernel drops the lock then)."""
    if fcntl is None or _state["lock"] is not None:
        return
    registry = _private_registry()
    if registry is None:
        return
    with contextlib.suppress(OSError):
        # Locked under a hidden name first, so no other run takes the new file for a stale one.
        fd, tmp = tempfile.mkstemp(prefix=".new-", dir=registry)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path = registry / f"{os.getpid()}-{Path(tmp).name[5:]}"
        os.rename(tmp, path)
        _state["lock"] = (fd, path)


def active_runs() -> int:
    """seqclf runs of this user alive on this machine, this one included. Only files named as seqclf
    names them are looked at, opened without following links or waiting (a pipe never blocks), and
    only a regular file of this user's that no live run locks is removed: a dead run's."""
    if _state["lock"] is None:
        return 1
    own = _state["lock"][1]
    count = 1
    with contextlib.suppress(OSError):
        for path in own.parent.iterdir():
            if path == own or not ENTRY.fullmatch(path.name):
                continue
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue  # gone meanwhile, a link, or not ours to open
            try:
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
                    continue
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                count += 1  # its owner holds the lock: a live run
            else:
                with contextlib.suppress(OSError):
                    path.unlink()
            finally:
                os.close(fd)
    return count


def _release() -> None:
    """Leave the registry: this process trains no more (an idle process keeps no share of the cores)."""
    if _state["lock"] is None:
        return
    fd, path = _state["lock"]
    _state["lock"] = None
    with contextlib.suppress(OSError):
        path.unlink()
    os.close(fd)


def _environment_threads() -> int | None:
    for name in ENV_VARS:
        with contextlib.suppress(KeyError, ValueError):
            return max(1, int(os.environ[name]))
    return None


def check_setting(setting) -> None:
    """``threads``: ``auto`` or a positive number; a number above the usable cores is allowed, with a
    warning (threads then wait for cores, and a run gets many times slower)."""
    if setting != "auto" and (isinstance(setting, bool) or not isinstance(setting, int) or setting < 1):
        raise ConfigError(f"threads={setting!r} must be 'auto' or a positive integer (torch threads for this run).")
    cores = usable_cores()
    if setting != "auto" and setting > cores:
        log.warning(
            "threads=%d is more than the %d cores this process may use: its threads will wait for cores, which "
            "slows training down many times; threads=auto (or at most %d) is faster.",
            setting,
            cores,
            cores,
        )


def recurrent_work(cell: str, embed_dim: int, hidden_size: int, num_layers: int, bidirectional: bool,
                   batch: int, length: int) -> float:  # fmt: skip
    """Multiply-adds of the recurrent layers' forward pass over one batch: what decides whether more
    threads pay (the embedding and the output layer are small beside it)."""
    gates = {"lstm": 4, "gru": 3}.get(cell, 1)
    directions = 2 if bidirectional else 1
    inputs = embed_dim + (num_layers - 1) * hidden_size * directions  # each layer's input width, summed
    return batch * length * gates * hidden_size * directions * (inputs + num_layers * hidden_size)


def model_work(model, batch: int, length: int) -> float:
    """The work of a batch through a model's encoder (``model.encoder``: a config's or a
    LightningModule's hparams): seqclf's recurrent encoder counted by recurrent_work without torch,
    another by its own ``work`` (an encoder that does not say is taken as large, a share of the cores)."""
    spec = model["encoder"]
    if spec.get("_target_") == RECURRENT:
        return recurrent_settings_work(spec, batch, length)
    from seqclf.models import encoders

    work = encoders.resolve(spec.get("_target_")).work(encoders.settings_of(spec), batch, length)
    return float("inf") if work is None else work


def recurrent_settings_work(settings, batch: int, length: int) -> float:
    """recurrent_work of a recurrent encoder's settings (those it leaves out: its defaults)."""
    shape = {"cell": "lstm", "embed_dim": 16, "hidden_size": 32, "num_layers": 1, "bidirectional": False}
    shape.update({k: settings[k] for k in shape if k in settings})
    return recurrent_work(*shape.values(), batch, length)


@dataclass(frozen=True)
class Plan:
    """The thread counts of one run: torch's threads for a training step, and evaluation batches
    (validation, test) run at once, a thread each."""

    train: int
    eval: int
    why: str

    def to_dict(self) -> dict:
        return {"train": self.train, "eval": self.eval, "why": self.why}


def plan(setting: int | str, train_work: float, eval_work: float, recorded: dict | None = None) -> Plan:
    """Choose and apply this run's thread counts (``threads`` setting; the work of a training and of
    an evaluation batch, from recurrent_work; ``recorded``: the plan in the checkpoint a run
    continues from). ``threads=N`` is N everywhere; OMP_NUM_THREADS/MKL_NUM_THREADS, which a user,
    joblib's workers or a DDP launcher set, likewise; with ``auto`` a resumed run keeps its recorded
    counts, and a new one takes one thread for a small step and else its share of the usable cores."""
    _register()  # a run counts among the live ones whatever its counts
    if setting != "auto":
        chosen = Plan(setting, setting, f"threads={setting}")
    elif _environment_threads() is not None:
        n = _environment_threads()
        chosen = Plan(n, n, "OMP_NUM_THREADS/MKL_NUM_THREADS")
    elif recorded and {"train", "eval"} <= set(recorded):
        chosen = Plan(int(recorded["train"]), int(recorded["eval"]), "recorded in the checkpoint resumed from")
    else:
        runs = active_runs()
        share = max(1, usable_cores() // runs)
        counts = [1 if work < ONE_THREAD_WORK else share for work in (train_work, eval_work)]
        chosen = Plan(*counts, f"threads=auto: {usable_cores()} usable cores, {runs} live seqclf run(s)")
    _state["plan"] = chosen
    use("train")
    return chosen


def current() -> Plan | None:
    return _state["plan"]


def use(phase: str) -> None:
    """Set torch's count for ``phase``: the plan's training count (train), or one thread (eval:
    evaluation's batches run side by side instead, side_by_side)."""
    if _state["plan"] is not None:
        import torch  # here: checking the threads setting (config.validate) needs no torch

        _state["phase"] = phase
        threads = _state["plan"].train if phase == "train" else 1
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def side_by_side(fn: Callable, items: Sequence, device) -> Iterable:
    """``fn`` of each item, in order. With tensors on a CPU ``device``, in evaluation (``use("eval")``)
    under a plan whose evaluation count N is above one: N items at a time, each on a thread of its
    own that runs torch on one thread. Independent batches keep N cores busy without the waits of N
    threads sharing one batch's kernels, and each result is what one thread computes, so
    evaluation's numbers do not depend on N. The caller's grad and inference modes apply in the
    workers (torch keeps them per thread); under autocast (mixed precision, also per thread), on
    other devices and outside evaluation the items run one after another, here."""
    import torch

    plan = _state["plan"]
    serial = plan is None or plan.eval < 2 or _state["phase"] != "eval" or len(items) < 2
    if serial or torch.device(device).type != "cpu" or torch.is_autocast_enabled("cpu"):
        return map(fn, items)
    if _state["workers"] is None:
        _state["workers"] = ThreadPoolExecutor(
            plan.eval, thread_name_prefix="seqclf-eval", initializer=torch.set_num_threads, initargs=(1,)
        )
    inference, grad = torch.is_inference_mode_enabled(), torch.is_grad_enabled()

    def run(item):
        with torch.inference_mode(inference), torch.set_grad_enabled(grad):
            return fn(item)

    return _state["workers"].map(run, items)


@contextlib.contextmanager
def registered() -> Iterator[None]:
    """For the duration of a training run: it counts among the live runs (once it has a plan) and
    leaves the registry after (an idle process keeps no share of the cores)."""
    try:
        yield
    finally:
        _release()
        if _state["workers"] is not None:
            _state["workers"].shutdown()
        _state.update(plan=None, phase="train", workers=None)
