"""GradientFlow, a Lightning callback: why gates matter, measured on the run's own model once per
validation epoch: the gradient that reaches each word, and what the LSTM/GRU gates do."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from seqclf import threads
from seqclf.atomic import write_json
from seqclf.errors import ConfigError, check_positive_int
from seqclf.lightning import tracking
from seqclf.models.probes import GATES, REPORTED, gate_activations, grad_norm_per_position
from seqclf.runs import plots
from seqclf.runs.files import GRAD_FLOW_FILE

log = logging.getLogger(__name__)
HISTOGRAM_VALUES = 16384  # gate values per histogram, at most


class GradientFlow(L.Callback):
    """Once per validation epoch, on a fixed probe batch of ``probe_size`` validation reviews that fill
    every position (no padding), with the model in eval mode:

    - ``grad/first_over_last``: the norm of dLoss/dx_t at the first word over that at the last word,
      where x_t is the embedding fed to the encoder at step t (batch mean of per-review norms);
      the TensorBoard image ``grad/norm_by_position`` draws the norm at every position, log scale,
      one curve per epoch (an image rather than one scalar card per position, which for 32-256
      positions would bury the shape of the decay);
    - LSTM and GRU: ``gates/<gate>``, the mean of each sigmoid gate (LSTM forget, input, output; GRU
      update, reset) over the probe batch, the image ``gates/mean_by_position`` (each gate's mean
      at every position) and a histogram per gate; layers above the first and backward
      directions add ``l1/``, ``l0_reverse/`` ... to the name.

    The numbers of every epoch go to ``grad_flow.json`` in the run folder (and into checkpoints,
    so a resumed run continues them), the scalars to the loggers at the step of the epoch's
    validation metrics (under DDP, like the file, rank 0's probe). The two measurements run side by
    side on evaluation's threads (seqclf.threads). Training is unchanged: the probe draws no random
    numbers and leaves the parameters' gradients alone."""

    IMAGES = ("end", "epoch", "off")

    def __init__(self, probe_size: int = 256, images: str = "end", histograms: bool = True) -> None:
        check_positive_int("callbacks.grad_flow.probe_size", probe_size)
        if images not in self.IMAGES:
            raise ConfigError(
                f"callbacks.grad_flow.images={images!r} is not valid; choose one of {', '.join(self.IMAGES)}."
            )
        self.probe_size, self.images, self.histograms = probe_size, images, histograms
        self.history: dict[str, Any] = {"epoch": [], "grad_norm": [], "gates": {}, "seconds": []}
        self._probe: tuple[torch.Tensor, torch.Tensor] | None = None
        self._said_why = False

    def _probe_batch(self, trainer: L.Trainer, pad: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The first ``probe_size`` validation reviews without padding, in the loader's fixed order."""
        if self._probe is None:
            loader = trainer.val_dataloaders
            if isinstance(loader, (list, tuple)):
                loader = loader[0] if loader else None
            kept_x, kept_y, count = [], [], 0
            # fork_rng: a DataLoader draws its workers' base seed from torch's global generator when
            # iterated, and that draw would change the run's later dropout masks and shuffles.
            with torch.random.fork_rng(devices=[]):
                batches = iter(loader or ())
            for tokens, labels, *_ in batches:  # batches, or blocks of them (their rows in the same order)
                full = (tokens != pad).all(dim=1)
                kept_x.append(tokens[full])
                kept_y.append(labels[full])
                count += int(full.sum())
                if count >= self.probe_size:
                    break
            if count == 0:
                return None
            # clone(): the loader's tensors may be inference tensors, which autograd cannot record
            self._probe = (torch.cat(kept_x)[: self.probe_size].clone(), torch.cat(kept_y)[: self.probe_size].clone())
        return self._probe

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        start = time.perf_counter()
        net = pl_module.net
        if not (hasattr(net.encoder, "embedding") and hasattr(net.encoder, "encode")):
            if not self._said_why:
                log.warning(
                    "callbacks.grad_flow measures the gradient at each input step of an encoder that embeds, then "
                    "encodes (seqclf's recurrent one); %s does not: nothing is measured (callbacks.grad_flow=null "
                    "drops it).",
                    type(net.encoder).__name__,
                )
                self._said_why = True
            return
        rnn = getattr(net.encoder, "rnn", None)  # a recurrent encoder's cells, whose gates it shows
        with torch.inference_mode(False):
            probe = self._probe_batch(trainer, net.pad_idx)
            if probe is None:
                return
            tokens, labels = (t.to(pl_module.device) for t in probe)
            loss = getattr(pl_module, "loss", None)
            measures = [
                lambda: grad_norm_per_position(net, tokens, labels, loss).float().cpu(),
                lambda: gate_activations(rnn, net.encoder.embedding(tokens)) if type(rnn) in GATES else {},
            ]
            # cuDNN's RNN backward runs in training mode only; its native kernels need no dropout off.
            with torch.backends.cudnn.flags(enabled=False):
                norms, gates = threads.side_by_side(lambda measure: measure(), measures, tokens.device)
        curves = {"grad/first_over_last": float(norms[0] / norms[-1])}
        epoch_gates = {}
        for name, layer_gates in gates.items():
            prefix = "" if name == "l0" else f"{name}/"
            for gate in REPORTED[type(rnn)]:
                values = layer_gates[gate].float()
                epoch_gates[prefix + gate] = values.mean(dim=(0, 2)).cpu().tolist()
                curves[f"gates/{prefix}{gate}"] = float(values.mean())
        pl_module.log_curves(curves)
        self.history["epoch"].append(trainer.current_epoch + 1)
        self.history["grad_norm"].append(norms.tolist())
        for key, per_step in epoch_gates.items():
            self.history["gates"].setdefault(key, []).append(per_step)
        if trainer.is_global_zero:
            self._histograms(trainer, gates)
            if self.images == "epoch":
                self._images(trainer)
        self.history["seconds"].append(time.perf_counter() - start)
        if trainer.is_global_zero:
            write_json(Path(trainer.default_root_dir) / GRAD_FLOW_FILE, self.history)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.images == "end" and trainer.is_global_zero and self.history["epoch"]:
            self._images(trainer)

    @staticmethod
    def _writers(trainer: L.Trainer) -> list:
        return [lg.experiment for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]

    def _histograms(self, trainer: L.Trainer, gates: dict[str, dict[str, torch.Tensor]]) -> None:
        if not self.histograms:
            return
        reported = REPORTED.get(type(getattr(trainer.lightning_module.net.encoder, "rnn", None)), ())
        for writer in self._writers(trainer):
            for name, layer_gates in gates.items():
                prefix = "" if name == "l0" else f"{name}/"
                for gate in reported:
                    values = layer_gates[gate].float().flatten()
                    # an even subsample: TensorBoard's histogram sorts every value it gets
                    values = values[:: max(1, len(values) // HISTOGRAM_VALUES)].cpu()
                    writer.add_histogram(f"gates/{prefix}{gate}", values, trainer.global_step)

    def _images(self, trainer: L.Trainer) -> None:
        """Drawn with matplotlib, which takes longer than the measurements themselves: by default
        once, when fitting ends (``images=epoch``: after every validation epoch)."""
        writers = self._writers(trainer)
        if not writers and not tracking.mlflow_loggers(trainer):
            return
        history = self.history
        images = {
            "grad/norm_by_position": plots.position_curves(
                [(f"epoch {e}", n) for e, n in zip(history["epoch"], history["grad_norm"], strict=True)],
                "|dLoss/dx_t| (batch mean)",
                "gradient reaching each word",
                log_y=True,
                colormap="viridis",
            )
        }
        if history["gates"]:
            images["gates/mean_by_position"] = plots.position_curves(
                [(gate, per_epoch[-1]) for gate, per_epoch in history["gates"].items()],
                "mean gate value",
                f"gates, epoch {history['epoch'][-1]}",
            )
        for writer in writers:
            for tag, image in images.items():
                writer.add_image(tag, image, trainer.global_step, dataformats="HWC")
        tracking.log_images(trainer, images)

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = state["history"]
