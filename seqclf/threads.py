"""torch's threads per training process: the cores this process may really use, shared with the
other seqclf runs active on the machine.

torch starts one thread per core it counts, and its parallel regions spin while they wait for a
thread that another process has pushed off its core; with the lecture model's tiny kernels two
runs sharing the cores that way can each get many times slower. So each run registers itself in a
folder of lock files (one per live run, released by the kernel when the process ends, however it
ends), counts the live runs now and then, and takes its share of the usable cores: the CPU
affinity mask and the cgroup CPU quota, not the host's core count.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import stat
import statistics
import tempfile
from collections.abc import Iterator
from pathlib import Path
from time import monotonic, perf_counter

import lightning as L
import torch

from seqclf.errors import ConfigError

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

_state: dict = {"setting": None, "lock": None, "history": [], "cap": None}


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


@contextlib.contextmanager
def share(setting: int | str = "auto") -> Iterator[int]:
    """``configure(setting)`` for the duration of a training run; the run leaves the registry after."""
    try:
        yield configure(setting)
    finally:
        _release()


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


def configure(setting: int | str = "auto") -> int:
    """Set torch's thread count for this process, before its first parallel work: ``setting`` threads
    if it is a number; with ``auto``, the OMP_NUM_THREADS/MKL_NUM_THREADS that a user or a launcher
    set, else the usable cores divided among the live seqclf runs (and then kept up to date by
    ``ThreadShare``). Returns the count."""
    if setting != "auto" and (isinstance(setting, bool) or not isinstance(setting, int) or setting < 1):
        check_setting(setting)  # raises; checked with the other settings before a run starts
    _state["setting"] = setting
    _state["history"], _state["cap"] = [], None
    _register()
    if setting == "auto" and _environment_threads() is None:
        return rebalance()
    return _apply(setting if setting != "auto" else _environment_threads())


def rebalance() -> int:
    """With ``threads=auto``: this run's share of the usable cores given the live runs now, capped
    at one thread if the run's trial found one faster (see ThreadShare)."""
    if not adaptive():
        return torch.get_num_threads()
    share = max(1, usable_cores() // active_runs())
    return _apply(min(share, _state["cap"] or share))


def adaptive() -> bool:
    """Whether seqclf chooses the thread count (``threads=auto`` and no OMP/MKL_NUM_THREADS)."""
    return _state["setting"] == "auto" and _environment_threads() is None


def _apply(threads: int) -> int:
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    if not _state["history"] or _state["history"][-1] != threads:
        _state["history"].append(threads)
    return threads


def history() -> list[int]:
    """The thread counts this process trained with, in order (one entry unless runs came or went)."""
    return list(_state["history"])


class ThreadShare(L.Callback):
    """With ``threads=auto``: every ``interval_s`` seconds of training (and before each validation)
    recounts the live seqclf runs and resizes this run's share of the cores.

    First, on a CPU, a short trial: after ``warmup`` training blocks, ``trials`` blocks each with the
    share and with one thread, alternating. If one thread is faster per step, as for models as small
    as the lecture's (the README has the measurements), the run keeps one thread; larger models and
    batches keep their share. The thread count does not change the results (measured on CPU).
    """

    def __init__(self, interval_s: float = 2.0, warmup: int = 2, trials: int = 3) -> None:
        self.interval_s, self.warmup, self.trials = interval_s, warmup, trials
        self._next = 0.0
        self._plan: list[int] = []  # thread counts of the trial blocks still to run
        self._seconds: dict[int, list[float]] = {}
        self._block: tuple[int, float, int] | None = None  # (threads, start time, start step)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        share = torch.get_num_threads()
        if adaptive() and share > 1 and pl_module.device.type == "cpu" and _state["cap"] is None:
            self._plan = [share, 1] * self.trials
            self._seconds = {share: [], 1: []}

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if self._plan and batch_idx >= self.warmup:
            threads = self._plan.pop(0)
            torch.set_num_threads(threads)
            self._block = (threads, perf_counter(), trainer.global_step)
            return
        now = monotonic()
        if now >= self._next and not self._plan:
            self._next = now + self.interval_s
            rebalance()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int):
        if self._block is None:
            return
        threads, start, step = self._block
        self._block = None
        if trainer.global_step > step:
            self._seconds[threads].append((perf_counter() - start) / (trainer.global_step - step))
        if not self._plan:  # the trial is over
            share = max(self._seconds)
            one, many = (statistics.median(self._seconds[n] or [math.inf]) for n in (1, share))
            _state["cap"] = 1 if one < many else None
            log.info(
                "threads=auto: %.0f us/step with 1 thread, %.0f with %d; using %s",
                one * 1e6,
                many * 1e6,
                share,
                "1" if one < many else f"up to {share}",
            )
            rebalance()

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._plan:
            rebalance()
