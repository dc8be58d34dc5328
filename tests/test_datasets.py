"""Your own data: any columns, string labels, multi-class and multi-label data, local files in every
format seqclf reads, the classes' rules, and every preset of conf/data/ through the stand-in Hub."""

import csv
import io
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from conftest import CUES, TINY, compose_train, cue_text, run_seqclf, topic_rows, write_rows
from fake_hub import serve_repos
from omegaconf import open_dict
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from seqclf.cli import predict
from seqclf.cli.train import train
from seqclf.data import Labels, TextDataModule
from seqclf.errors import ConfigError, DataError


def test_a_csv_with_its_own_columns_and_string_labels_trains_evaluates_and_predicts(tmp_path, topics_dir):
    cfg = compose_train(tmp_path, [f"data.path={topics_dir}", "data.text_column=quip", "data.label_column=topic"])
    metrics = train(cfg)
    out = Path(cfg.paths.output_dir)
    assert metrics["labels"] == ["music", "science", "sport"]  # sorted names, the documented order
    assert 0 <= metrics["test/acc"] <= 1 and 0 <= metrics["test/f1_macro"] <= 1 and "val/acc_best" in metrics
    report = list(csv.DictReader((out / "test_report.csv").open()))
    assert [r["label"] for r in report] == ["music", "science", "sport", "macro avg"]
    assert sum(int(r["support"]) for r in report[:3]) == int(report[3]["support"]) > 0
    ckpt = out / "checkpoints" / "last.ckpt"
    rows = predict.predict(str(ckpt), ["guitar album song band", "atom theory lab"])
    assert all(r["label"] in CUES and set(r["probs"]) == set(CUES) for r in rows)
    assert all(abs(sum(r["probs"].values()) - 1) < 1e-5 for r in rows)
    # from Python: the same predictions, without the command
    import seqclf

    model = seqclf.load(ckpt)
    assert model.label_names == ["music", "science", "sport"] and isinstance(model.net, seqclf.SequenceClassifier)
    assert model.predict(["guitar album song band", "atom theory lab"]) == [
        {k: v for k, v in r.items() if k != "text"} for r in rows
    ]
    saved = torch.load(ckpt, weights_only=True)
    assert saved["hyper_parameters"]["labels"] == ["music", "science", "sport"]
    assert saved["state_dict"]["net.head.weight"].shape[0] == 3  # a logit per class


def test_class_weights_and_the_monitored_metric_are_one_setting_each(tmp_path, topics_dir):
    overrides = [f"data.path={topics_dir}", "data.text_column=quip", "data.label_column=topic"]
    extra = ["model.class_weights=balanced", "monitor=val/f1_macro", "callbacks=[default,early_stopping]",
             "trainer.max_epochs=2"]  # fmt: skip
    cfg = compose_train(tmp_path, [*overrides, *extra, "callbacks.confusion_matrix.images=epoch"])
    assert cfg.callbacks.model_checkpoint.monitor == cfg.callbacks.early_stopping.monitor == "val/f1_macro"
    metrics = train(cfg)
    assert "val/f1_macro_best" in metrics and "val/acc_best" not in metrics
    # TensorBoard: macro-F1 and each class's scores per validation epoch, a confusion matrix image per epoch
    tb = EventAccumulator(cfg.paths.output_dir, size_guidance={"scalars": 0, "images": 0})
    tb.Reload()
    tags = set(tb.Tags()["scalars"])
    assert {"val/f1_macro", "val/f1_macro_best", "val_per_class/f1/sport", "val_per_class/recall/music"} <= tags
    assert len(tb.Images("val/confusion_matrix")) == metrics["epochs"] == 2
    assert metrics["class_weights"] == pytest.approx([1.0, 1.0, 1.0])  # balanced data: equal weights
    named = compose_train(tmp_path / "named", [*overrides, "model.class_weights={sport: 3.0}"])
    assert train(named)["class_weights"] == [1.0, 1.0, 3.0]
    wrong = compose_train(tmp_path / "wrong", [*overrides, "model.class_weights={football: 3.0}"])
    with pytest.raises(ConfigError, match=r"names \['football'\], which are not classes of this data"):
        train(wrong)
    with pytest.raises(ConfigError, match="images='x' is not valid; choose one of epoch, end, off"):
        train(compose_train(tmp_path / "img", [*overrides, "callbacks.confusion_matrix.images=x"]))
    with pytest.raises(ConfigError, match="monitor='val/f1' is not a validation metric"):
        train(compose_train(tmp_path / "bad", [*overrides, "monitor=val/f1"]))


def fasttext_lines(n: int, seed: int) -> str:
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        labels = rng.sample(sorted(CUES), k=rng.choice([1, 1, 2]))
        lines.append(" ".join(f"__label__{label}" for label in labels) + " " + cue_text(rng, labels, CUES))
    return "\n".join(lines) + "\n"


def test_fasttext_files_with_several_labels_train_a_multi_label_model(tmp_path):
    folder = tmp_path / "ft"
    folder.mkdir()
    (folder / "train.txt").write_text(fasttext_lines(240, seed=1), encoding="utf-8")
    (folder / "test.txt").write_text(fasttext_lines(60, seed=2), encoding="utf-8")
    cfg = compose_train(tmp_path, [f"data.path={folder}", "monitor=val/f1_micro", "trainer.max_epochs=2"])
    metrics = train(cfg)
    assert metrics["labels"] == ["music", "science", "sport"]
    assert {"test/acc", "test/f1_macro", "test/f1_micro", "val/f1_micro_best"} <= set(metrics)
    out = Path(cfg.paths.output_dir)
    report = [r["label"] for r in csv.DictReader((out / "test_report.csv").open())]
    assert report == ["music", "science", "sport", "macro avg", "micro avg"]
    (row,) = predict.predict(str(out / "checkpoints" / "last.ckpt"), ["goal match guitar song"])
    assert isinstance(row["labels"], list) and set(row["probs"]) == set(CUES) and "label" not in row
    assert row["labels"] == [k for k, p in row["probs"].items() if p > 0.5]  # over the threshold, likeliest first


def test_tsv_with_a_title_and_a_body_column_joins_them(tmp_path):
    folder = tmp_path / "tsv"
    for split, seed in (("train", 1), ("test", 2)):
        rows = [{"title": r["quip"].split()[0], "body": r["quip"], "topic": r["topic"]} for r in topic_rows(60, seed)]
        rows[0]["body"] = 'a "quoted" word'  # TSV is unquoted: quotes are text
        write_rows(folder / f"{split}.tsv", rows, delimiter="\t")
    dm = TextDataModule(path=str(folder), cache_dir=str(tmp_path / "c"), text_column=["title", "body"],
                        label_column="topic", vocab_size=50, max_len=12, progress=False)  # fmt: skip
    dm.prepare_data()
    dm.setup("fit")
    assert dm.labels.names == ("music", "science", "sport") and "quoted" in dm.tokenizer.index
    assert dm.test_set.y.dtype == torch.int64 and len(dm.test_set) == 60


def test_a_dataset_validation_split_is_used_when_it_has_one(tmp_path):
    folder = tmp_path / "own_val"
    write_rows(folder / "train.csv", topic_rows(90, 1, "text", "label"))
    write_rows(folder / "dev.csv", topic_rows(30, 3, "text", "label"))
    write_rows(folder / "test.csv", topic_rows(30, 2, "text", "label"))
    settings = {"path": str(folder), "cache_dir": str(tmp_path / "c"), "vocab_size": 50, "progress": False}
    own = TextDataModule(**settings)
    own.prepare_data()
    own.setup("fit")
    assert (len(own.train_set), len(own.val_set)) == (90, 30)  # all of train, and dev.csv
    share = TextDataModule(**settings, val_split="train")
    share.prepare_data()
    share.setup("fit")
    assert (len(share.train_set), len(share.val_set)) == (81, 9)
    assert share.class_counts == [27, 27, 27]


def test_the_order_of_the_classes_is_fixed_and_documented():
    assert Labels.fit(["b", "a", "B", "b"], "x").names == ("B", "a", "b")  # code point order
    ints = Labels.fit([7, 2, 2, 9], "x")
    assert ints.names == ("2", "7", "9") and ints.encode([9, 2, 7], "x").tolist() == [2, 0, 1]
    named = Labels.fit([0, 1, 1], "x", label_names=["neg", "pos"])
    assert named.names == ("neg", "pos") and named.kind == "binary" and named.num_outputs == 1
    assert Labels.fit([0, 2, 1], "x", label_names=["neg", "pos"]).names == ("0", "1", "2")  # 3 classes: numbers
    hub = Labels.fit([0, 0, 3], "x", source_names=["w", "x", "y", "z"])  # the Hub's ClassLabel names, ids as given
    assert hub.names == ("w", "x", "y", "z") and hub.kind == "multiclass" and hub.num_outputs == 4
    multi = Labels.fit([["a"], ["b", "c"], []], "x")
    assert multi.kind == "multilabel" and multi.encode([["c"], []], "x").tolist() == [[0, 0, 1], [0, 0, 0]]
    assert Labels.from_dict(ints.to_dict()) == ints


@pytest.mark.parametrize(
    "train, test, message",
    [
        (["a", "b"], ["a", "c"], r"row 2 has the label 'c', which is not one of the classes fitted on the train"),
        ([0, 1], [-1, -1], r"has no labels \(every row is -1: hidden, as in GLUE's test sets"),
        ([0, 1], [0, None], r"row 2 has no label \(None\)"),
        ([["a"], "b"], None, "either one label per row or a list of labels per row"),
        (["a", "a"], None, "every text has the label 'a'; training needs texts of at least two classes"),
        ([0.5, 1], None, "the label 0.5 is neither an integer nor a string"),
    ],
)
def test_labels_that_cannot_be_scored_are_refused_by_name(train, test, message):
    with pytest.raises(DataError, match=message):
        Labels.fit(train, "x").encode(test, "the test split")


def test_evaluating_a_checkpoint_on_other_classes_names_both(tmp_path, topics_dir):
    from seqclf.cli.evaluate import evaluate

    cfg = compose_train(tmp_path, [f"data.path={topics_dir}", "data.text_column=quip", "data.label_column=topic"])
    train(cfg)
    other = tmp_path / "other"
    rows = [{"quip": r["quip"], "topic": {"sport": "football"}.get(r["topic"], r["topic"])} for r in topic_rows(30, 5)]
    write_rows(other / "test.csv", rows)
    eval_cfg = compose_train(
        tmp_path / "eval", [f"data.path={other}", "data.text_column=quip", "data.label_column=topic"]
    )
    with open_dict(eval_cfg):
        eval_cfg.ckpt_path = str(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    with pytest.raises(DataError, match="label 'football', which is not one of the classes fitted on the train split"):
        evaluate(eval_cfg)


# -- the presets of conf/data/, each served by the stand-in Hub in its dataset card's layout -----------------

TREC_FINE = [
    "ABBR:abb",
    "ABBR:exp",
    "ENTY:animal",
    "ENTY:body",
    "ENTY:color",
    "ENTY:cremat",
    "ENTY:currency",
    "ENTY:dismed",
    "ENTY:event",
    "ENTY:food",
    "ENTY:instru",
    "ENTY:lang",
    "ENTY:letter",
    "ENTY:other",
    "ENTY:plant",
    "ENTY:product",
    "ENTY:religion",
    "ENTY:sport",
    "ENTY:substance",
    "ENTY:symbol",
    "ENTY:techmeth",
    "ENTY:termeq",
    "ENTY:veh",
    "ENTY:word",
    "DESC:def",
    "DESC:desc",
    "DESC:manner",
    "DESC:reason",
    "HUM:gr",
    "HUM:ind",
    "HUM:title",
    "HUM:desc",
    "LOC:city",
    "LOC:country",
    "LOC:mount",
    "LOC:other",
    "LOC:state",
    "NUM:code",
    "NUM:count",
    "NUM:date",
    "NUM:dist",
    "NUM:money",
    "NUM:ord",
    "NUM:other",
    "NUM:period",
    "NUM:perc",
    "NUM:speed",
    "NUM:temp",
    "NUM:volsize",
    "NUM:weight",
]
GO_EMOTIONS = [
    "admiration",
    "amusement",
    "anger",
    "annoyance",
    "approval",
    "caring",
    "confusion",
    "curiosity",
    "desire",
    "disappointment",
    "disapproval",
    "disgust",
    "embarrassment",
    "excitement",
    "fear",
    "gratitude",
    "grief",
    "joy",
    "love",
    "nervousness",
    "optimism",
    "pride",
    "realization",
    "relief",
    "remorse",
    "sadness",
    "surprise",
    "neutral",
]
# preset: (repository, config, text column, label column, class names, splits, extra columns, multi-label)
PRESETS = {
    "ag_news": ("fancyzhx/ag_news", None, "text", "label", ["World", "Sports", "Business", "Sci/Tech"],
                ("train", "test"), {}, False),
    "yelp_polarity": ("fancyzhx/yelp_polarity", "plain_text", "text", "label", ["1", "2"], ("train", "test"), {},
                      False),
    "rotten_tomatoes": ("cornell-movie-review-data/rotten_tomatoes", None, "text", "label", ["neg", "pos"],
                        ("train", "validation", "test"), {}, False),
    "sst2": ("stanfordnlp/sst2", None, "sentence", "label", ["negative", "positive"],
             ("train", "validation", "test"), {"idx": "int32"}, False),
    "trec": ("CogComp/trec", None, "text", "coarse_label", ["ABBR", "ENTY", "DESC", "HUM", "LOC", "NUM"],
             ("train", "test"), {"fine_label": TREC_FINE}, False),
    "go_emotions": ("google-research-datasets/go_emotions", "simplified", "text", "labels", GO_EMOTIONS,
                    ("train", "validation", "test"), {"id": "string"}, True),
    "nsmc": ("e9t/nsmc", None, "document", "label", ["neg", "pos"], ("train", "test"), {"id": "string"}, False),
}  # fmt: skip
KOREAN = ["영화", "배우", "연기", "정말", "그리고", "이야기"]


def preset_repo(name: str) -> dict[str, bytes]:
    """A few generated rows of each split in the preset's real layout (columns, ClassLabel names,
    config and file names), as Parquet files written by `datasets`, and the card saying which is which."""
    repo, config, text, label, names, splits, extra, multi = PRESETS[name]
    rng = random.Random(name)
    used = names[:3]  # a few classes carry cue words; the rest exist in the names only
    cues = {n: [f"cue{i}x{j}" for j in range(3)] for i, n in enumerate(used)}
    if name == "nsmc":
        cues = {n: [KOREAN[2 * i], KOREAN[2 * i + 1]] for i, n in enumerate(used)}
    feature = datasets.ClassLabel(names=names)
    features = {
        text: datasets.Value("string"),
        label: datasets.Sequence(feature) if multi else feature,
        **{k: datasets.ClassLabel(names=v) if isinstance(v, list) else datasets.Value(v) for k, v in extra.items()},
    }
    folder = config or "data"
    files, card = {}, []
    for split in splits:
        rows = {k: [] for k in features}
        for i in range(60 if split == "train" else 20):
            chosen = rng.sample(used, k=rng.choice([1, 2])) if multi else [used[i % len(used)]]
            rows[text].append(cue_text(rng, chosen, cues))
            ids = [names.index(c) for c in chosen]
            rows[label].append(ids if multi else (-1 if name == "sst2" and split == "test" else ids[0]))
            for k, v in extra.items():
                rows[k].append(rng.randrange(len(v)) if isinstance(v, list) else (i if v == "int32" else str(i)))
        buffer = io.BytesIO()
        datasets.Dataset.from_dict(rows, features=datasets.Features(features)).to_parquet(buffer)
        files[f"{folder}/{split}-00000-of-00001.parquet"] = buffer.getvalue()
        card.append(f"  - split: {split}\n    path: {folder}/{split}-*")
    readme = f"---\nconfigs:\n- config_name: {config or 'default'}\n  data_files:\n" + "\n".join(card) + "\n---\n"
    return {"README.md": readme.encode(), **files}


DRIVER = """
import json, sys
from seqclf.cli.config import load_config
from seqclf.cli.train import train
for name, overrides in json.loads(sys.argv[1]).items():
    metrics = train(load_config(overrides, output_dir=f"{sys.argv[2]}/{name}"))
    print("RESULT", json.dumps({"name": name, **{k: v for k, v in metrics.items() if k != "threads"}}), flush=True)
"""


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
def test_every_preset_trains_from_the_hub_in_its_own_layout(tmp_path, cli_env):
    repos = {PRESETS[name][0]: preset_repo(name) for name in PRESETS}
    server, hub = serve_repos(repos)
    env = {k: v for k, v in cli_env.items() if k not in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE")}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{server.server_address[1]}", HF_HOME=str(tmp_path / "hf"))
    env.pop("HF_DATASETS_CACHE", None)
    runs = {name: [*TINY, f"data={name}", "data.vocab_size=60"] for name in PRESETS}
    runs["go_emotions"].append("monitor=val/f1_micro")
    # 50 classes in 60 rows: a class needs 2 rows to give one to validation
    runs["trec_fine"] = [*TINY, "data=trec", "data.label_column=fine_label", "data.val_fraction=0.5"]
    try:
        done = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(runs), str(tmp_path / "runs")], env=env,
                              cwd=tmp_path, capture_output=True, text=True, timeout=600)  # fmt: skip
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr[-4000:]
    results = {
        r["name"]: r for r in (json.loads(line[7:]) for line in done.stdout.splitlines() if line[:7] == "RESULT ")
    }
    assert set(results) == set(runs)
    for name, (repo, *_, names, _splits, _, multi) in PRESETS.items():
        assert results[name]["labels"] == names, name
        assert ("test/f1_micro" in results[name]) == multi, name
        assert any(f"/datasets/{repo}/resolve/" in path for _, path in hub.log), name
    assert results["trec_fine"]["labels"] == TREC_FINE
    # sst2's test labels are hidden (-1): its preset tests on the validation split, of 20 rows here
    report = (tmp_path / "runs" / "sst2" / "run" / "test_report.csv").read_text().splitlines()
    assert report[-1].endswith(",20")
    # rotten_tomatoes validates on its own validation split, yelp_polarity on a share of train
    caches = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*/cache/data-*/meta.json")]
    rows = {c["source"]["hub"]: c["rows"] for c in caches}
    assert rows["cornell-movie-review-data/rotten_tomatoes"] == {"train": 60, "validation": 20, "test": 20}
    assert "validation" not in rows["fancyzhx/yelp_polarity"]


def test_hangul_words_are_kept_by_the_word_tokenizer():
    from seqclf.data import tokenize

    assert tokenize("이 영화 정말 재밌다!! 배우들의 연기가 최고ㅋㅋ") == [
        "이",
        "영화",
        "정말",
        "재밌다",
        "배우들의",
        "연기가",
        "최고ㅋㅋ",
    ]
    assert np.array_equal(np.array(tokenize("영화, 영화.")), np.array(["영화", "영화"]))


# A checkpoint written by seqclf before it had classes (commit a22a542: `debug=default` on conftest's
# tiny IMDB data): no class names, the tokenizer under "IMDBDataModule", val/acc's best as val_acc_best.
OLD_CHECKPOINT = Path(__file__).parent / "data" / "imdb_before_classes.ckpt"


def test_a_checkpoint_from_before_classes_still_predicts_evaluates_and_continues(tmp_path, imdb_dir):
    from seqclf.cli.evaluate import evaluate

    old = torch.load(OLD_CHECKPOINT, weights_only=True)
    assert "IMDBDataModule" in old and "labels" not in old["hyper_parameters"]  # what makes it old
    ckpt = tmp_path / OLD_CHECKPOINT.name  # a copy: evaluation writes its results beside the checkpoint
    shutil.copy(OLD_CHECKPOINT, ckpt)
    (row,) = predict.predict(str(ckpt), ["great superb loved"])
    assert row["label"] in ("neg", "pos") and set(row["probs"]) == {"neg", "pos"}
    cfg = compose_train(tmp_path / "eval", [f"data.path={imdb_dir}"])
    with open_dict(cfg):
        cfg.ckpt_path = str(ckpt)
    assert 0 <= evaluate(cfg)["test/acc"] <= 1
    # continued training reads its best val/acc and its vocabulary
    metrics = train(compose_train(tmp_path / "more", [f"data.path={imdb_dir}", f"ckpt_path={ckpt}",
                                                      "trainer.max_epochs=2"]))  # fmt: skip
    assert metrics["epochs"] == 2 and metrics["val/acc_best"] >= old["state_dict"]["val_acc_best.max_value"]


def test_eval_reads_the_columns_the_checkpoint_was_trained_on(topic_run, topics_dir):
    """Only ckpt_path and data.path: the checkpoint knows its text and label columns."""
    run, env, _ = topic_run
    ckpt = run / "checkpoints" / "last.ckpt"
    done = run_seqclf("evaluate", f"ckpt_path={ckpt}", f"data.path={topics_dir}", env=env, cwd=run.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    tested = json.loads(ckpt.with_suffix(".test.json").read_text())
    assert tested["test_texts"] == 60 and 0 <= tested["test/acc"] <= 1
    # a column named on the command line wins, and is checked against the data
    named = run_seqclf("evaluate", f"ckpt_path={ckpt}", f"data.path={topics_dir}", "data.text_column=text", env=env,
                       cwd=run.parent)  # fmt: skip
    assert named.returncode == 2 and "lacks the column(s) ['text']" in named.stderr


def test_each_lightning_message_is_printed_once(topic_run):
    """Lightning's own handler and the run's both printed its messages ("INFO: ..." and "[time][lightning]")."""
    run, _, done = topic_run
    printed = done.stdout + done.stderr
    assert printed.count("GPU available:") == 1 and "INFO: GPU available" not in printed
    assert (run / "train.log").read_text().count("GPU available:") == 1  # and it is in the run's log


def test_a_label_train_lacks_is_refused_before_tokenising_with_every_such_row_counted(tmp_path, monkeypatch):
    """Counting from 1 as a user does; how many rows share the problem, not only the first."""
    from seqclf.data import text

    write_rows(tmp_path / "train.csv", topic_rows(30, seed=1))
    rows = topic_rows(12, seed=2)
    for i in (2, 5, 6):
        rows[i]["topic"] = "cooking" if i != 6 else "gardening"
    write_rows(tmp_path / "test.csv", rows)
    monkeypatch.setattr(text.WordTokenizer, "fit_encode", lambda *a, **k: pytest.fail("tokenised before the check"))
    dm = TextDataModule(path=str(tmp_path), cache_dir=str(tmp_path / "cache"), text_column="quip",
                        label_column="topic", progress=False)  # fmt: skip
    with pytest.raises(DataError, match="row 3 has the label 'cooking'") as e:
        dm.prepare_data()
    assert "In all, 3 rows of this split have a label train lacks: 'cooking', 'gardening'." in str(e.value)


def test_class_names_must_be_unique_and_a_wrong_count_of_names_is_said(caplog):
    with pytest.raises(DataError, match="data.label_names name 'x' more than once"):
        Labels.fit([0, 1, 2], "the train split", None, ["x", "x", "y"])
    with pytest.raises(DataError, match=r"the data's own class names \(its ClassLabel\) name 'a' more than once"):
        Labels.fit([0, 1, 2], "the train split", ["a", "a", "b"])
    labels = Labels.fit([0, 1, 2], "the train split", None, ["neg", "pos"])
    assert labels.names == ("0", "1", "2")
    assert "data.label_names=['neg', 'pos'] names 2 classes, but the train split has 3" in caplog.text


def test_multi_label_data_of_one_label_and_a_generator_of_multi_label_data_are_one_paragraph(tmp_path):
    with pytest.raises(DataError, match="every label list holds only 'spam' \\(or nothing\\)"):
        Labels.fit([["spam"], [], ["spam"]], "the train split")
    from seqclf.tasks.generate.data import GenerationDataModule

    folder = tmp_path / "emotions"
    folder.mkdir()
    (folder / "train.txt").write_text(fasttext_lines(60, seed=1), encoding="utf-8")
    (folder / "test.txt").write_text(fasttext_lines(20, seed=2), encoding="utf-8")
    dm = GenerationDataModule(path=str(folder), cache_dir=str(tmp_path / "cache"), progress=False)
    with pytest.raises(DataError, match="has several labels per text \\(multi-label\\); a generator writes"):
        dm.prepare_data()


def test_an_empty_label_is_no_label_not_a_class_named_nothing():
    with pytest.raises(DataError, match=r"row 2 has no label \(''\)"):
        Labels.fit(["a", "", "b"], "the train split")
