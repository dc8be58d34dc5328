"""A real multi-class corpus that installs on these machines: Debian's `fortunes` package (the
fortune(6) cookie files, one topic per file), written as a user's own CSV files with their own
column names (`quip`, `topic`) and string labels, plus a TF-IDF + logistic regression baseline.

    apt-get install fortunes                      # /usr/share/games/fortunes
    python benchmarks/fortunes.py make DIR        # DIR/train.csv, DIR/test.csv (stratified 80/20, seeded)
    pip install scikit-learn && python benchmarks/fortunes.py baseline DIR
    seqclf-train data.path=DIR data.text_column=quip data.label_column=topic
"""

from __future__ import annotations

import csv
import random
import re
import sys
from collections import Counter
from pathlib import Path

SOURCE = Path("/usr/share/games/fortunes")
MIN_PER_TOPIC = 300  # topics with fewer fortunes are left out
TEST_SHARE, SEED = 0.2, 0


def read_fortunes(source: Path = SOURCE) -> list[tuple[str, str]]:
    """(text, topic) for every fortune of every topic with at least MIN_PER_TOPIC of them."""
    rows = []
    for path in sorted(source.iterdir()):
        if path.suffix or not path.is_file():  # .dat indexes and .u8 links
            continue
        raw = path.read_text(encoding="utf-8", errors="replace").split("\n%\n")
        texts = [re.sub(r"\s+", " ", t).strip() for t in raw]
        texts = [t for t in texts if t and t != "%"]
        if len(texts) >= MIN_PER_TOPIC:
            rows += [(t, path.name) for t in texts]
    return rows


def make(folder: Path) -> None:
    rows = read_fortunes()
    rng = random.Random(SEED)
    by_topic: dict[str, list[str]] = {}
    for text, topic in rows:
        by_topic.setdefault(topic, []).append(text)
    splits = {"train": [], "test": []}
    for topic, texts in sorted(by_topic.items()):
        rng.shuffle(texts)
        cut = round(len(texts) * TEST_SHARE)
        splits["test"] += [(t, topic) for t in texts[:cut]]
        splits["train"] += [(t, topic) for t in texts[cut:]]
    folder.mkdir(parents=True, exist_ok=True)
    for split, items in splits.items():
        rng.shuffle(items)
        with (folder / f"{split}.csv").open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["quip", "topic"])
            writer.writerows(items)
    counts = Counter(topic for _, topic in splits["train"])
    print(f"{len(splits['train'])} train, {len(splits['test'])} test texts, {len(counts)} topics: {dict(counts)}")


def baseline(folder: Path) -> None:
    """TF-IDF (words and word pairs) + logistic regression, fitted on train, scored on test once."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    def load(split):
        with (folder / f"{split}.csv").open(encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        return [r["quip"] for r in rows], [r["topic"] for r in rows]

    (x_train, y_train), (x_test, y_test) = load("train"), load("test")
    for weights in (None, "balanced"):
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        model = LogisticRegression(max_iter=2000, C=10.0, class_weight=weights)
        model.fit(vectorizer.fit_transform(x_train), y_train)
        predicted = model.predict(vectorizer.transform(x_test))
        print(
            f"TF-IDF + logistic regression (class_weight={weights}): test accuracy "
            f"{accuracy_score(y_test, predicted):.4f}, macro-F1 {f1_score(y_test, predicted, average='macro'):.4f}"
        )


if __name__ == "__main__":
    command, folder = sys.argv[1], Path(sys.argv[2])
    {"make": make, "baseline": baseline}[command](folder)
