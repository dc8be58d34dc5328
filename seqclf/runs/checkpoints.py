"""Reading checkpoints safely: tensors and plain values only, with errors that say what to do. (No
Lightning here: seqclf-predict reads checkpoints without it; seqclf.lightning.checkpointing writes them in training.)"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from seqclf import migrate
from seqclf.data.batches import SETTING_NAMES, check_mid_epoch
from seqclf.data.labels import IMDB_NAMES, Labels
from seqclf.data.text import WordTokenizer
from seqclf.errors import ConfigError, SeqclfError

# Where Lightning stores the datamodule's state_dict: under its class name.
DATA_KEYS = ("TextDataModule", "TaggingDataModule", "GenerationDataModule")
# The settings that must be the checkpoint's to continue from it, besides the encoder's (but its dropout).
MODEL_KEYS = ("vocab_size", "pooling", "labels", "multi_label")


class CheckpointError(SeqclfError):
    """A checkpoint is missing, unreadable, unsafe or does not fit the requested model."""


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or ["no details"])[0]


def load(path: str | Path, setting: str = "ckpt_path") -> dict[str, Any]:
    """Load with ``weights_only=True``: a checkpoint is data, so nothing in it may run code. ``setting``:
    what named the file (ckpt_path, model.init_from), for the messages."""
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(
            f"{setting}={path} does not exist; give the path of a .ckpt file written by seqclf-train."
        )
    if path.is_dir():
        raise CheckpointError(
            f"{setting}={path} is a folder; give a checkpoint file such as {path}/checkpoints/last.ckpt "
            "(or resume=<run folder> to continue a run)."
        )
    if not path.is_file():  # opening a named pipe would wait for a writer for ever
        raise CheckpointError(
            f"{setting}={path} is not a regular file (a named pipe, a socket or a device); give a checkpoint file."
        )
    if path.stat().st_size == 0:
        raise CheckpointError(
            f"{path} is empty (0 bytes); use another checkpoint, e.g. checkpoints/last.ckpt of the run."
        )
    with path.open("rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":  # torch.save writes a zip archive
        raise CheckpointError(
            f"{path} is not a checkpoint: seqclf-train writes them as .ckpt files (zip archives), and this file is "
            "something else (text, say). Give a checkpoint such as <run folder>/checkpoints/last.ckpt."
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        text = str(e)
        if "Unsupported global" in text:  # torch's safe unpickler met a class or function: code, not data
            detail = next(ln.strip() for ln in text.splitlines() if "Unsupported global" in ln)
            raise CheckpointError(
                f"refused to load {path}: it holds objects other than tensors and plain values, which could run "
                f"code when unpickled ({detail}). Only load checkpoints you trust, written by seqclf-train."
            ) from None
        detail = "unpickling failed" if "weights only" in text.lower() else _first_line(text)  # not torch's advice
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({detail}); it may be truncated or not a "
            "PyTorch checkpoint. Use another checkpoint, e.g. checkpoints/last.ckpt of the run."
        ) from None
    except Exception as e:  # a damaged file can fail anywhere in torch's unpickler (IndexError, KeyError, ...)
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({type(e).__name__}: {_first_line(str(e))}); it may be truncated "
            "or not a PyTorch checkpoint. Use another checkpoint, e.g. checkpoints/last.ckpt of the run."
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise CheckpointError(f"{path} is a PyTorch file but not a seqclf checkpoint (no state_dict/hyper_parameters).")
    return migrate.checkpoint(ckpt)


def adopt_model(ckpt: dict[str, Any], model_cfg, chosen: set[str]) -> list[str]:
    """Set each architecture setting of ``model_cfg`` (the encoder's, but its dropout, and the
    pooling) that the user did not choose (``chosen``: names under ``model``, as
    seqclf.cli.config.chosen_model_settings gives them) to the checkpoint's; return the changes as
    ``model.<name>=<value>``. Continuing from an rnn checkpoint needs no ``model=rnn``."""
    saved, changed = ckpt["hyper_parameters"], []
    saved_encoder, encoder = saved.get("encoder") or {}, model_cfg.encoder
    if saved_encoder.get("_target_") != encoder.get("_target_") and "encoder._target_" not in chosen:
        kept = {"dropout": encoder.dropout} if "dropout" in encoder else {}
        model_cfg.encoder = {**saved_encoder, **kept}
        return [f"model.encoder={saved_encoder}"]
    for key, value in saved_encoder.items():
        if key != "dropout" and f"encoder.{key}" not in chosen and key in encoder and encoder[key] != value:
            encoder[key] = value
            changed.append(f"model.encoder.{key}={value}")
    if (
        "pooling" in saved
        and "pooling" not in chosen
        and "pooling" in model_cfg
        and model_cfg.pooling != saved["pooling"]
    ):
        model_cfg.pooling = saved["pooling"]
        changed.append(f"model.pooling={saved['pooling']}")
    return changed


def check_model(ckpt: dict[str, Any], model_settings: dict[str, Any], path: str | Path) -> None:
    """The requested model must be the checkpoint's model; name every setting that differs. The
    learning-rate schedule too: the checkpoint holds its schedule's state, which another would misread."""
    saved = ckpt["hyper_parameters"]
    schedule = (model_settings.get("optimizer") or {}).get("lr_schedule")
    saved_schedule = (saved.get("optimizer") or {}).get("lr_schedule", "none")
    if schedule is not None and schedule != saved_schedule:
        raise CheckpointError(
            f"the checkpoint {path} was trained with optimizer.lr_schedule={saved_schedule}, and continuing it with "
            f"optimizer.lr_schedule={schedule} would mix the two schedules' state. Continue with "
            f"optimizer.lr_schedule={saved_schedule}, or start a new run without ckpt_path."
        )
    diffs = [f"model.{k}={model_settings[k]!r} (checkpoint: {saved.get(k)!r})" for k in MODEL_KEYS
             if k in model_settings and k in saved and model_settings[k] != saved[k]]  # fmt: skip
    encoder, saved_encoder = model_settings.get("encoder") or {}, saved.get("encoder") or {}
    from seqclf.models import encoders

    unset = encoders.defaults(saved_encoder.get("_target_"))
    diffs += [
        f"model.encoder.{k}={encoder.get(k, unset.get(k))!r} (checkpoint: {saved_encoder.get(k, unset.get(k))!r})"
        for k in sorted(set(encoder) | set(saved_encoder), key=[*saved_encoder, *encoder].index)
        if k != "dropout" and encoder.get(k, unset.get(k)) != saved_encoder.get(k, unset.get(k))
    ]
    if diffs:
        raise CheckpointError(
            f"the checkpoint {path} was trained with other model settings: {', '.join(diffs)}. "
            "Drop these overrides (or use the same config) to continue from it."
        )


def check_restart(ckpt: dict[str, Any], cfg, path: str | Path) -> None:
    """A checkpoint saved in the middle of an epoch continues only with the batch order and blocks it
    was trained in: checked against the config ``cfg`` before anything runs (the data loader checks
    it again, with the number of DDP processes too, when it restarts)."""
    from omegaconf import OmegaConf

    fit_loop = ckpt.get("loops", {}).get("fit_loop", {})
    progress = fit_loop.get("epoch_loop.batch_progress", {})
    mid_epoch = progress.get("current", {}).get("ready", 0) > 0 and not progress.get("is_last_batch", True)
    loaders = fit_loop.get("state_dict", {}).get("combined_loader") or [{}]
    if mid_epoch and isinstance(loaders[0], dict):
        # every setting by its name in the config; the process count is known only once DDP has started
        current = {key: OmegaConf.select(cfg, name) for key, name in SETTING_NAMES.items() if key != "processes"}
        check_mid_epoch(loaders[0], current, f"the checkpoint {path}")


def _data_state(ckpt: dict[str, Any]) -> dict[str, Any]:
    return next((ckpt[key] for key in DATA_KEYS if isinstance(ckpt.get(key), dict)), {})


def tokenizer(ckpt: dict[str, Any], path: str | Path) -> WordTokenizer:
    try:
        return WordTokenizer.from_json(_data_state(ckpt)["tokenizer"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path} holds no seqclf tokenizer ({e}); was it written by seqclf-train?") from None


def labels(ckpt: dict[str, Any]) -> Labels:
    """The classes a checkpoint was trained for (those written before seqclf had classes: IMDB's neg, pos)."""
    state = _data_state(ckpt).get("labels")
    if not state:
        return Labels(IMDB_NAMES)
    names, values = state.get("names") if isinstance(state, dict) else None, (state or {}).get("values")
    if (
        not isinstance(names, (list, tuple))
        or not names
        or not all(isinstance(n, str) for n in names)
        or not (values is None or (isinstance(values, (list, tuple)) and all(type(v) is int for v in values)))
    ):
        raise CheckpointError(
            f"the checkpoint's classes are {state!r}, not a list of class names (and their ids); the checkpoint is "
            "damaged or was changed by hand. Use a checkpoint as seqclf-train wrote it."
        )
    return Labels.from_dict(state)


def network(ckpt: dict[str, Any], path: str | Path):
    """The plain network of a checkpoint, as its task builds it (seqclf.tasks), with its trained
    weights, in eval mode: all prediction needs, without Lightning."""
    from seqclf import tasks

    try:
        net = tasks.of_checkpoint(ckpt).build_network(ckpt["hyper_parameters"])
        net.load_state_dict({k[4:]: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")})
    except ConfigError as e:
        raise CheckpointError(f"{path}: {e}") from None
    except (KeyError, TypeError, RuntimeError, ValueError) as e:
        raise CheckpointError(f"{path} does not match the seqclf model ({str(e).splitlines()[0]}).") from None
    return net.eval()


def model(ckpt: dict[str, Any], path: str | Path):
    """The LightningModule of a checkpoint, built from its hyperparameters and weights, in eval mode."""
    from seqclf import tasks

    try:
        net = tasks.of_checkpoint(ckpt).module_class()(**ckpt["hyper_parameters"])
        net.load_state_dict(ckpt["state_dict"])
    except ConfigError as e:
        raise CheckpointError(f"{path}: {e}") from None
    except (TypeError, RuntimeError, ValueError) as e:
        raise CheckpointError(f"{path} does not match the seqclf model ({str(e).splitlines()[0]}).") from None
    return net.eval()


def newest(run: Path) -> Path:
    """The checkpoint of a run that is furthest along: last.ckpt or last-step.ckpt."""
    candidates = [p for p in (run / "checkpoints" / "last.ckpt", run / "checkpoints" / "last-step.ckpt") if p.is_file()]
    if not candidates:
        raise CheckpointError(
            f"{run} has no checkpoints/last.ckpt to resume from; the run stopped before its first save."
        )
    return max(candidates, key=lambda p: (load(p).get("global_step", -1), p.name == "last.ckpt"))
