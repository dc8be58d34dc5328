"""The generation task (one-to-many): a conditional language model on the same cells. The class is
the first input (its start token), the previous word every later input, and a softmax over the
vocabulary at every step (full, or adaptive with ``softmax_cutoffs``) gives the next word; trained
with teacher forcing by the shared engine (seqclf.tasks.engine), scored by perplexity."""

from __future__ import annotations

import math

import torch
from torchmetrics import SumMetric

from seqclf.data.settings import plain
from seqclf.data.text import IGNORE
from seqclf.models import encoders
from seqclf.models.networks import language_model_of
from seqclf.tasks.engine import PerStepModule
from seqclf.tasks.generate.checks import check_generation
from seqclf.tasks.optimizer import OptimizerSettings


class Perplexity(torch.nn.Module):
    """exp(mean cross-entropy per real token) over a stage, from summed losses and token counts
    (torchmetrics' sums, so DDP processes add theirs up)."""

    def __init__(self) -> None:
        super().__init__()
        self.loss, self.tokens = SumMetric(), SumMetric()

    def update(self, nll: torch.Tensor, tokens: torch.Tensor) -> None:
        """A batch's summed negative log-likelihood and its count of real tokens."""
        self.loss.update(nll)
        self.tokens.update(tokens)

    def compute(self) -> torch.Tensor:
        tokens = float(self.tokens.compute())
        return torch.tensor(math.exp(float(self.loss.compute()) / tokens) if tokens else float("nan"))

    def reset(self) -> None:
        self.loss.reset()
        self.tokens.reset()


class SeqGenerator(PerStepModule):
    """Next-word prediction conditioned on a class: LanguageModel's distribution over the vocabulary
    at every step, cross-entropy over the real steps. ``labels`` are the class names (their start
    tokens are in the vocabulary); every argument is a primitive, so a checkpoint describes itself."""

    def __init__(
        self,
        vocab_size: int,
        encoder: dict | None = None,
        dropout: float = 0.0,
        optimizer: dict | None = None,
        softmax_cutoffs: list[int] | None = None,
        labels: list[str] | None = None,
        monitor: str = "val/perplexity",
        vectors: str | None = None,
        freeze_vectors: int | str = 0,
    ):
        super().__init__()
        encoder, optimizer = encoders.spec(encoder), OptimizerSettings.of(optimizer).to_dict()
        check_generation(monitor, encoder)
        # Hydra's ListConfigs become plain lists in hparams
        labels = [str(name) for name in labels or ()]
        softmax_cutoffs = plain(softmax_cutoffs)
        self.save_hyperparameters()
        self.net = language_model_of(self.hparams)
        self.val_scores, self.test_scores = Perplexity(), Perplexity()
        self.init_engine(monitor)

    @staticmethod
    def data_inputs(datamodule) -> dict:
        """The hyperparameters that come from the data: the class names."""
        return {"labels": list(datamodule.labels.names)}

    @property
    def label_names(self) -> list[str]:
        return list(self.hparams.labels)

    def loss(self, features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over the batch's real steps (0 for a batch with none)."""
        return self._mean(*self.net.nll(features, target, IGNORE))

    @staticmethod
    def _mean(total: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return total / tokens.clamp(min=1)

    def update_train(self, features: torch.Tensor, target: torch.Tensor) -> None:
        """Nothing beyond the loss: the training perplexity is the exponent of the epoch's mean loss."""

    def train_metrics(self) -> dict:
        return {"perplexity": torch.exp(self.train_loss.compute())}

    def eval_batch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """The batch's mean loss and its summed loss and real steps, from one pass through the head."""
        nll = self.net.nll(self(x), y, IGNORE)
        return self._mean(*nll), nll

    def update_scores(self, stage: str, nll: tuple[torch.Tensor, torch.Tensor], target: torch.Tensor) -> None:
        getattr(self, f"{stage}_scores").update(*nll)

    def compute_scores(self, stage: str) -> dict[str, torch.Tensor]:
        scores = getattr(self, f"{stage}_scores")
        perplexity = scores.compute()
        scores.reset()
        return {"perplexity": perplexity}
