"""seqclf: recurrent sequence classifiers with PyTorch Lightning and Hydra."""

import logging
import os
import sys
import time
import warnings

# Read once by the OpenMP runtime (libgomp) when torch loads it. A thread waiting for another that a
# process sharing the cores has pushed off its core spins 300,000 rounds by default before it
# sleeps, and runs that share cores then slow each other down many times; 1,000 rounds keep a run
# alone as fast (docs/performance.md, "How", Threads). A user's own setting, or a wait policy, wins.
if "torch" not in sys.modules and "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "1000")

# Lightning 2.6 calls a pytree API that torch 2.13 deprecates, once per fit; nothing a user can act on.
warnings.filterwarnings("ignore", r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")


class _NoAdverts(logging.Filter):
    """Lightning 2.6 logs a tip advertising its cloud logger at every fit."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_NoAdverts())


def _process_start() -> float:
    """``time.perf_counter()`` at the moment this process started (Linux), else now."""
    now = time.perf_counter()
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return now - max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return now


# The reference for "time to first step": interpreter start-up and imports included.
START_TIME = _process_start()

# The configs ship inside the package in a wheel, and beside it in a source checkout.
_HERE = os.path.dirname(os.path.abspath(__file__))
CONF_DIR = (
    os.path.join(_HERE, "conf") if os.path.isdir(os.path.join(_HERE, "conf")) else os.path.join(_HERE, "..", "conf")
)
CONF_DIR = os.path.normpath(CONF_DIR)

__version__ = "0.1.0"

# The public surface, imported when first used: `import seqclf` stays light for the commands.
_PUBLIC = {
    "load": "seqclf.api",
    "Classifier": "seqclf.api",
    "SeqClassifier": "seqclf.tasks.classify.module",
    "SequenceClassifier": "seqclf.models",
    "Encoder": "seqclf.models",
    "TextDataModule": "seqclf.data",
    "WordTokenizer": "seqclf.data",
    "Labels": "seqclf.data",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'seqclf' has no attribute {name!r}")
