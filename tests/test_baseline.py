"""seqclf-baseline: the linear models a user would pick instead, on a run's own split, beside the run."""

import json

import numpy as np
import pytest
from conftest import run_seqclf

from seqclf.cli import baseline
from seqclf.runs import summary
from seqclf.tasks.classify import baseline as linear


def test_the_baseline_is_fitted_on_the_runs_split_and_shown_beside_it(topic_run):
    run, env, _ = topic_run
    done = run_seqclf("baseline", str(run), env=env, cwd=run.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((run / "baseline.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert result["texts"] == {"train": 135, "val": 15, "test": 60}  # the run's own split (10% of 150)
    assert result["chosen_by"] == "val/f1_macro"  # the run's monitored metric
    (tfidf,) = result["baselines"]  # three classes: no NB weights (binary only)
    assert tfidf["model"] == "TF-IDF 1-2 grams + LR" and tfidf["C"] in linear.C_GRID
    assert set(tfidf["test"]) == {"acc", "f1_macro"} and tfidf["test"]["acc"] > 0.9  # the cue words are linear
    assert result["run_test"]["acc"] == metrics["test/acc"]
    assert f"{metrics['max_len']} per text" in result["words"] and metrics["max_len"] % 8 == 0  # max_len=auto's
    assert "| TF-IDF 1-2 grams + LR |" in done.stdout and "| this run |" in done.stdout
    rows = summary.write_summary(run)
    assert rows[0]["baseline"] == "TF-IDF 1-2 grams + LR" and rows[0]["baseline_test_acc"] == tfidf["test"]["acc"]
    assert "baseline_test_f1_macro" in (run / "summary.md").read_text()


def test_the_scores_are_the_runs_own_and_nb_weights_are_for_binary_data():
    rng = np.random.default_rng(0)
    words = ["film", "plot", "actor", "scene"]

    def split(n):
        y = rng.integers(0, 2, n)
        texts = [" ".join([("good" if label else "bad"), *rng.choice(words, 4)]) for label in y]
        return linear.Split(texts, y)

    train, val, test = split(200), split(50), split(50)
    fitted = linear.fit("nb", train, val, test, num_classes=2)
    assert fitted["test"]["acc"] == 1.0 and fitted["model"] == "NB-weighted 1-2 grams + LR"
    # the run's metric classes: macro-F1 over the classes that occur, accuracy as the share right
    assert linear.scores(np.array([0, 0, 1]), np.array([0, 1, 1]), 2) == pytest.approx(
        {"acc": 2 / 3, "f1_macro": (2 / 3 + 2 / 3) / 2}
    )


def test_a_run_that_is_not_a_classifier_or_not_a_run_is_one_paragraph(tmp_path, topic_run):
    _, env, _ = topic_run
    done = run_seqclf("baseline", str(tmp_path), env=env, cwd=tmp_path)
    assert done.returncode == 2 and "is not a seqclf run folder" in done.stderr
    run = tmp_path / "tagging_run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text(
        "model:\n  _target_: seqclf.tasks.tagging.module.SeqTagger\n"
        "data:\n  _target_: seqclf.tasks.tagging.data.TaggingDataModule\n"
    )
    with pytest.raises(Exception, match="task=tagging run; seqclf-baseline fits linear text classifiers"):
        baseline.baseline(run)
