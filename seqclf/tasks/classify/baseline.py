"""The linear baselines a user would pick instead of a neural model, fitted with scikit-learn on a run's
own split: TF-IDF of word 1-2 grams + logistic regression, and for binary data the NB-weighted model
(Wang & Manning 2012's NBSVM, with logistic regression: binary 1-2 gram counts scaled by their
log-count ratio). Each reads the words the run's model reads (its vocabulary, its max_len words per
text), takes its C from the validation split by the run's monitored metric, and touches the test
split once; the scores are the run's own (StageScores). scikit-learn is imported here only, never on
training's path."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from seqclf.tasks.classify.scores import StageScores

C_GRID = (0.3, 1.0, 3.0, 10.0)  # logistic regression's inverse regularisation strengths tried on validation


@dataclass
class Split:
    texts: list[str]  # the words the model reads, joined with spaces
    y: np.ndarray  # class ids (binary: 0/1; multi-label: 0/1 rows), as integers


def split_of(dataset, vocab: Sequence[str]) -> Split:
    """An encoded split (token ids, padding 0) as the texts of the words the model reads."""
    words = [" ".join(vocab[i] for i in ids if i != 0) for ids in dataset.x.tolist()]
    return Split(words, dataset.y.numpy().astype(np.int64))


def scores(pred: np.ndarray, y: np.ndarray, num_classes: int) -> dict[str, float]:
    """acc, f1_macro (and f1_micro for multi-label data) exactly as the run computes its own."""
    stage = StageScores(num_classes, multi_label=y.ndim == 2)
    stage.update(torch.from_numpy(np.asarray(pred)), torch.from_numpy(np.asarray(y)))
    return {name: float(value) for name, value in stage.compute()[0].items()}


def _log_count_ratio(x, y: np.ndarray) -> np.ndarray:
    p = np.asarray(x[y == 1].sum(axis=0)).ravel() + 1.0
    q = np.asarray(x[y == 0].sum(axis=0)).ravel() + 1.0
    return np.log((p / p.sum()) / (q / q.sum()))


def _features(kind: str):
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

    if kind == "tfidf":
        return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"\S+")
    return CountVectorizer(ngram_range=(1, 2), binary=True, token_pattern=r"\S+")


def _classifier(c: float, multi_label: bool, balanced: bool):
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced" if balanced else None)
    return OneVsRestClassifier(model) if multi_label else model


MODELS = {"tfidf": "TF-IDF 1-2 grams + LR", "nb": "NB-weighted 1-2 grams + LR"}


def fit(
    kind: str,
    train: Split,
    val: Split,
    test: Split,
    num_classes: int,
    monitor: str = "acc",
    balanced: bool = False,
    grid: Sequence[float] = C_GRID,
) -> dict:
    """Fit baseline ``kind`` (tfidf, or nb: binary data only) for each C in ``grid``, keep the C whose
    validation ``monitor`` (acc or f1_macro) is best, refit nothing, and score the test split once."""
    start = time.perf_counter()
    features = _features(kind)
    x_train = features.fit_transform(train.texts)
    x_val, x_test = features.transform(val.texts), features.transform(test.texts)
    if kind == "nb":
        r = _log_count_ratio(x_train, train.y)
        x_train, x_val, x_test = (x.multiply(r).tocsr() for x in (x_train, x_val, x_test))
    multi_label = train.y.ndim == 2
    tried = []
    for c in grid:
        model = _classifier(c, multi_label, balanced).fit(x_train, train.y)
        tried.append((scores(model.predict(x_val), val.y, num_classes), c, model))
    val_scores, c, model = max(tried, key=lambda t: t[0][monitor])
    seconds = time.perf_counter() - start  # fitting every C and choosing one: what a user would spend
    return {
        "model": MODELS[kind],
        "C": c,
        "class_weight": "balanced" if balanced else None,
        "val": val_scores,
        "test": scores(model.predict(x_test), test.y, num_classes),
        "fit_seconds": round(seconds, 3),
    }
