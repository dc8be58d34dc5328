"""seqclf from Python: load a checkpoint and classify (or tag) texts with it, no config or data needed.

import seqclf
model = seqclf.load("outputs/train/runs/<run>/checkpoints/last.ckpt")
model.predict(["A wonderful, moving film.", "Dull."])  # [{"label": "pos", "probs": {...}}, ...]
model.trace(["A wonderful, moving film."])  # the class probabilities after each word
tagger = seqclf.load("outputs/punctuation/runs/<run>/checkpoints/last.ckpt")
tagger.predict(["what a film i loved it"])  # [{"words": [...], "tags": ["O", "O", "EXCLAMATION", ...]}]
writer = seqclf.load("outputs/generate/runs/<run>/checkpoints/last.ckpt")
writer.generate("pos", n=2, seed=1)  # ["this is one of the best films ...", "..."]
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from seqclf import tasks
from seqclf.errors import SeqclfError
from seqclf.runs import checkpoints

if TYPE_CHECKING:
    from seqclf.tasks.classify.inference import Classifier
    from seqclf.tasks.generate.inference import Generator
    from seqclf.tasks.tagging.inference import Tagger


def load(path: str | Path, device: str = "auto", command: str | None = None) -> Classifier | Tagger | Generator:
    """The classifier (or tagger, or generator) in a checkpoint written by seqclf-train, loaded safely
    (tensors and plain values only): its task's inference object (seqclf.tasks); ``device``: auto
    (CUDA when present), cpu or cuda. ``command``: the command asking, refused (one paragraph naming
    the right one) when the checkpoint's task is not one it serves."""
    ckpt = checkpoints.load(path)
    task = tasks.of_checkpoint(ckpt)
    if command is not None:
        task.require(command, path)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif str(device).startswith("cuda") and not torch.cuda.is_available():
        raise SeqclfError(
            f"device={device}, but this machine has no CUDA device torch can use (torch {torch.__version__}"
            f"{', a CPU build' if torch.version.cuda is None else ''}); use device=cpu, or device=auto to take a "
            "GPU when there is one."
        )
    return task.inference_class().from_checkpoint(ckpt, path, device)
