"""GradientFlow: the gradient at each word and the gate statistics, logged by a real (tiny) run."""

import json
from pathlib import Path

import pytest
import torch
from conftest import TINY, compose_train
from omegaconf import open_dict
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from seqclf.cli.train import train
from seqclf.errors import ConfigError


def events(run: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run), size_guidance={"scalars": 0, "images": 0, "histograms": 0})
    acc.Reload()
    return acc


@pytest.mark.parametrize(
    "cell, gates", [("lstm", {"forget", "input", "output"}), ("gru", {"update", "reset"}), ("rnn", set())]
)
def test_each_validation_epoch_logs_gradient_by_position_and_gates(tmp_path, imdb_dir, cell, gates):
    cfg = compose_train(tmp_path, [f"data.path={imdb_dir}", f"model={cell}", "trainer.max_epochs=2"])
    train(cfg)
    run = Path(cfg.paths.output_dir)
    history = json.loads((run / "grad_flow.json").read_text())
    assert history["epoch"] == [1, 2]
    assert [len(norms) for norms in history["grad_norm"]] == [12, 12]  # one per position, data.max_len=12
    assert all(n > 0 for norms in history["grad_norm"] for n in norms)
    assert set(history["gates"]) == gates
    assert all(len(per_epoch) == 2 and all(0 < g < 1 for g in per_epoch[1]) for per_epoch in history["gates"].values())

    acc = events(run)
    ratio = [e.value for e in acc.Scalars("grad/first_over_last")]
    assert ratio == pytest.approx([n[0] / n[-1] for n in history["grad_norm"]], rel=1e-5)
    for gate in gates:
        mean = [e.value for e in acc.Scalars(f"gates/{gate}")]
        assert mean == pytest.approx([sum(g) / len(g) for g in history["gates"][gate]], rel=1e-5)
        assert len(acc.Histograms(f"gates/{gate}")) == 2
    # images=end: drawn once, when fitting ends.
    assert len(acc.Images("grad/norm_by_position")) == 1
    assert len(acc.Images("gates/mean_by_position")) == (1 if gates else 0) if gates else True


def test_the_probe_leaves_training_unchanged(tmp_path, imdb_dir):
    weights = []
    for on in (True, False):
        overrides = [f"data.path={imdb_dir}", "trainer.max_epochs=2", "trainer.deterministic=true", "model.dropout=0.3"]
        cfg = compose_train(tmp_path / str(on), [*overrides, *([] if on else ["callbacks.grad_flow=null"])])
        train(cfg)
        ckpt = torch.load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=True)
        weights.append(ckpt["state_dict"])
        assert (Path(cfg.paths.output_dir) / "grad_flow.json").is_file() == on
    for name, tensor in weights[0].items():
        assert torch.equal(tensor, weights[1][name]), name


def test_images_every_epoch_on_request_and_bad_settings_refused(tmp_path, imdb_dir):
    cfg = compose_train(tmp_path, [f"data.path={imdb_dir}", "trainer.max_epochs=2", "callbacks.grad_flow.images=epoch"])
    train(cfg)
    assert len(events(Path(cfg.paths.output_dir)).Images("grad/norm_by_position")) == 2

    for key, value, message in [
        ("probe_size", 0, "probe_size=0 must be a positive integer"),
        ("images", "x", "one of end"),
    ]:
        cfg = compose_train(tmp_path / key, [f"data.path={imdb_dir}"])
        with open_dict(cfg):
            cfg.callbacks.grad_flow[key] = value
        with pytest.raises(ConfigError, match=message):
            train(cfg)
        assert not (tmp_path / key / "cache").exists()  # refused before any data was read


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_probe_runs_on_cuda_where_cudnn_refuses_backward_in_eval_mode(tmp_path, imdb_dir):
    overrides = [o for o in TINY if o != "trainer=cpu"]
    cfg = compose_train(tmp_path, [*overrides, "trainer=gpu", "model=lstm", f"data.path={imdb_dir}"], tiny=False)
    train(cfg)
    history = json.loads((Path(cfg.paths.output_dir) / "grad_flow.json").read_text())
    assert len(history["grad_norm"][0]) == 12 and set(history["gates"]) == {"forget", "input", "output"}
