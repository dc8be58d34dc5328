"""The figures stay readable: many runs told apart, legends that name runs, underflowing gradients
marked, and HPARAMS that read true/false."""

import itertools
from types import SimpleNamespace

import numpy as np
from lightning.fabric.utilities.data import AttributeDict
from lightning.pytorch.loggers import TensorBoardLogger

from seqclf.lightning.callbacks import HParamsMetric
from seqclf.runs import plots
from seqclf.runs.summary import legend_label


def test_an_18_job_sweep_gets_18_different_line_styles():
    jobs = [[f"model={c}", f"model.encoder.hidden_size={h}", f"seed={s}"]
            for c, h, s in itertools.product(["rnn", "lstm", "gru"], [4, 8], [1, 2, 3])]  # fmt: skip
    styles = plots.distinct_styles(jobs)
    looks = {(str(s["color"]), s["linestyle"], s["marker"]) for s in styles}
    assert len(looks) == 18
    assert len({str(s["color"]) for s in styles}) == 3  # the colour follows the cell, the first swept key
    many = plots.distinct_styles([[f"seed={i}"] for i in range(25)])  # one key, more values than colours
    assert len({(str(s["color"]), s["linestyle"], s["marker"]) for s in many}) == 25


def test_a_single_runs_legend_names_its_cell_not_its_data_path():
    row = {"overrides": ["data.path=/very/long/path/to/imdb", "trainer.max_epochs=3"], "cell": "gru",
           "status": "completed", "run": "2026-11-29_17-00-00_000000"}  # fmt: skip
    assert legend_label(row) == "model=gru trainer.max_epochs=3 (completed)"


def test_gradients_that_underflow_to_zero_stay_on_a_log_plot(tmp_path):
    image = plots.position_curves([("epoch 1", [0.0, 0.0, 1e-6, 1e-3]), ("epoch 2", [1e-7, 1e-5, 1e-4, 1e-2])],
                                  "|dLoss/dx_t|", "gradient", log_y=True)  # fmt: skip
    assert image.ndim == 3 and image.shape[2] == 3 and image.shape[1] <= 520  # drawn small, for TensorBoard's card
    plots.position_curves([("a", [0.0, 1e-3])], "g", "t", log_y=True, path=tmp_path / "g.png")
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"


def test_hparams_booleans_are_logged_as_true_and_false():
    logged = {}

    class Logger(TensorBoardLogger):
        def __init__(self):
            pass

        def log_hyperparams(self, params, metrics=None, step=None):
            logged.update(params)

    hparams = AttributeDict(bidirectional=True, dropout=0.0, monitor="val/acc")
    module = SimpleNamespace(best_monitored=0.8, hparams=hparams)
    trainer = SimpleNamespace(
        loggers=[Logger()], datamodule=SimpleNamespace(hparams={"reshuffle": False}), global_step=3
    )
    HParamsMetric().on_fit_end(trainer, module)
    assert logged == {"bidirectional": "true", "dropout": 0.0, "monitor": "val/acc", "reshuffle": "false"}
    assert np.isclose(module.best_monitored, 0.8)


def test_the_summary_shows_training_and_validation_loss_beside_the_monitored_metric(tmp_path):
    from matplotlib.image import imread

    curves = [("model=rnn", [0.6, 0.7, 0.72]), ("model=gru", [0.65, 0.75, 0.74])]
    losses = [([0.6, 0.4, 0.2], [0.62, 0.6, 0.7]), ([0.55, 0.3, 0.1], [0.6, 0.55, 0.65])]
    plots.epoch_curves(curves, tmp_path / "one.png", "val/acc", "val/acc per epoch")
    plots.epoch_curves(curves, tmp_path / "two.png", "val/acc", "val/acc per epoch", losses=losses)
    one, two = imread(tmp_path / "one.png"), imread(tmp_path / "two.png")
    assert two.shape[1] > 1.7 * one.shape[1]  # a second panel: the losses
    plots.epoch_curves(curves, tmp_path / "none.png", "val/acc", "t", losses=[([], []), ([], [])])
    assert imread(tmp_path / "none.png").shape[1] < 1.2 * one.shape[1]  # runs without losses: one panel


def test_every_class_stays_identifiable_on_the_confusion_matrix_axes():
    """Long names without spaces (a debtags facet) were all drawn as a bare "…"."""
    from seqclf.runs.plots import tick_names

    names = ["interface::commandline", "role::documentation", "implemented-in::python", "use::editing", "x" * 30,
             "x" * 29 + "y", "x" * 14 + "-" * 16, "x" * 14 + "+" * 16]  # fmt: skip
    ticks = tick_names(names)
    assert len(set(ticks)) == len(names) and all(len(t) <= 18 + 3 for t in ticks)
    assert ticks[3] == "use::editing" and ticks[0].startswith("interfac") and ticks[0].endswith("mmandline")
    alike = tick_names(["a" * 10 + "middle-one" + "b" * 10, "a" * 10 + "middle-two" + "b" * 10, "c"])
    assert alike == ["aaaaaaaa…bbbbbbbbb #1", "aaaaaaaa…bbbbbbbbb #2", "c"]  # told apart by their number


def test_a_confusion_matrix_of_thousands_of_classes_shows_the_largest_and_says_so(monkeypatch):
    from seqclf.runs import plots

    n = 3000
    rng = np.random.default_rng(0)
    counts = np.diag(rng.integers(1, 5, n))
    counts[[7, 70, 700], [7, 70, 700]] = 1000  # the largest classes
    drawn = {}
    real = plots.tick_names

    def recording(names, width=18):
        drawn["names"] = list(names)
        return real(names, width)

    monkeypatch.setattr(plots, "tick_names", recording)
    image = plots.confusion_matrix(counts.tolist(), [f"class{i}" for i in range(n)], "val")
    assert image.ndim == 3 and len(drawn["names"]) == plots.MATRIX_CLASSES
    assert {"class7", "class70", "class700"} <= set(drawn["names"])
