"""Tagging (task=tagging): a tag per word from the same cells, commands and guarantees as classification:
a user's JSON Lines and CoNLL files, conll2003's layout through the stand-in Hub, seqeval's entity
scores, exact resume, sweeps, DDP, prediction of a tag per word, and the punctuation experiment's data."""

import csv
import io
import json
import random
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from conftest import TINY, run_seqclf, single_and_ddp
from fake_hub import serve
from hydra.errors import ConfigCompositionException
from seqeval.metrics import classification_report

from seqclf import cli
from seqclf.cli.config import load_config, validate
from seqclf.data.formats import read_conll
from seqclf.errors import ConfigError, DataError
from seqclf.tasks.tagging.punctuation import MARKS, words_and_marks
from seqclf.tasks.tagging.scores import TagScores, is_bio

WORDS = ["the", "film", "was", "good", "bad", "plot", "actor", "great", "dull", "scene", "music", "story", "ending"]
NAMES = ["anna", "bob", "carla", "dmitri"]
PLACES = ["paris", "lima", "oslo"]


def marked_rows(n: int, seed: int) -> list[dict]:
    """Sentences whose mark after each word follows from the word: 'great' takes "!", 'plot' a comma,
    the last word a period; string tags, columns words and marks, an id to pass through."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        words = rng.choices(WORDS, k=rng.randint(3, 10))
        marks = ["EXCLAMATION" if w == "great" else "COMMA" if w == "plot" else "O" for w in words]
        marks[-1] = "PERIOD"
        rows.append({"id": i, "words": words, "marks": marks})
    return rows


def entity_rows(n: int, seed: int) -> list[dict]:
    """Sentences with person (two words: B-PER I-PER) and place (B-LOC) entities."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        tokens, tags = [], []
        for _ in range(rng.randint(2, 5)):
            kind = rng.random()
            if kind < 0.25:
                tokens += [rng.choice(NAMES), rng.choice(NAMES)]
                tags += ["B-PER", "I-PER"]
            elif kind < 0.45:
                tokens.append(rng.choice(PLACES))
                tags.append("B-LOC")
            else:
                tokens.append(rng.choice(WORDS))
                tags.append("O")
        rows.append({"tokens": tokens, "tags": tags})
    return rows


@pytest.fixture(scope="module")
def marks_dir(tmp_path_factory) -> Path:
    """A user's own tagging data: JSON Lines with columns words and marks (string tags)."""
    root = tmp_path_factory.mktemp("marks")
    for split, n, seed in (("train", 240, 1), ("test", 60, 2)):
        (root / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in marked_rows(n, seed)))
    return root


def conll_text(rows: list[dict]) -> str:
    """CoNLL-2003's layout: -DOCSTART-, then word POS chunk NER per line, a blank line between sentences."""
    lines = ["-DOCSTART- -X- -X- O", ""]
    for row in rows:
        lines += [f"{w} NN I-NP {t}" for w, t in zip(row["tokens"], row["tags"], strict=True)] + [""]
    return "\n".join(lines) + "\n"


def run_dirs(root: Path, task_name: str = "train") -> list[Path]:
    return sorted((root / "outputs" / task_name / "runs").iterdir())


def test_a_users_json_lines_folder_trains_with_two_column_names_and_nothing_else(tmp_path, marks_dir, cli_env):
    args = ["task=tagging", f"data.path={marks_dir}", "data.tokens_column=words", "data.tags_column=marks"]
    done = run_seqclf("train", *args, *TINY, env=cli_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = run_dirs(tmp_path)
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"test/token_acc", "test/f1", "test/precision", "test/recall", "val/f1_best"} <= set(metrics)
    assert metrics["labels"] == ["COMMA", "EXCLAMATION", "O", "PERIOD"]  # string tags, sorted
    report = (run / "test_report.csv").read_text().splitlines()
    assert report[0] == "label,precision,recall,f1,support" and report[-1].startswith("micro avg,")
    assert {line.split(",")[0] for line in report[1:-1]} == {"COMMA", "EXCLAMATION", "PERIOD"}  # not O
    assert json.loads((run / "tokenizer.json").read_text())["split"] == "whitespace"  # how predict splits a text


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
def test_tagging_learns_and_predicts_a_tag_for_every_word(tmp_path, marks_dir, cli_env):
    args = ["task=tagging", f"data.path={marks_dir}", "data.tokens_column=words", "data.tags_column=marks",
            *TINY, "trainer.limit_train_batches=1.0", "trainer.max_epochs=25", "model.encoder.hidden_size=16",
            "model.encoder.embed_dim=8", "model.encoder.bidirectional=true", "data.max_len=8",
            "data.steps_per_execution=4",
            "optimizer.lr=0.02", "trainer.limit_val_batches=1.0", "trainer.limit_test_batches=1.0"]  # fmt: skip
    done = run_seqclf("train", *args, env=cli_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = run_dirs(tmp_path)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test/f1"] > 0.9 and metrics["test/token_acc"] > 0.9, metrics
    ckpt = run / "checkpoints" / "last.ckpt"
    # A text longer than data.max_len=8 gets a tag for every word (piece by piece); a word list keeps its words.
    text = "the plot was great the film was dull the scene was good and the music was great"
    (tokens_in := tmp_path / "in.jsonl").write_text(
        json.dumps({"id": "a", "tokens": ["The", "plot", "was", "great"]}) + "\n" + json.dumps({"id": "b", "text": ""})
        + "\n"
    )  # fmt: skip
    out = run_seqclf("predict", f"ckpt_path={ckpt}", f"text={text}", env=cli_env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (row,) = [json.loads(line) for line in out.stdout.splitlines()]
    assert row["words"] == text.split() and len(row["tags"]) == len(text.split())
    assert row["tags"][1] == "COMMA" and row["tags"][3] == "EXCLAMATION" and row["tags"][-1] == "PERIOD"
    out = run_seqclf("predict", f"ckpt_path={ckpt}", f"input={tokens_in}", env=cli_env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    first, empty = [json.loads(line) for line in out.stdout.splitlines()]
    assert first["id"] == "a" and first["tokens"] == ["The", "plot", "was", "great"] and "words" not in first
    assert first["tags"] == ["O", "COMMA", "O", "PERIOD"]  # the last word of a sentence: a period
    assert empty == {"id": "b", "text": "", "tags": None, "error": "empty text: nothing to tag"}
    refused = run_seqclf("predict", f"ckpt_path={ckpt}", "text=a film", "trace=true", env=cli_env, cwd=tmp_path)
    assert refused.returncode == 2 and "trace=true is a classifier's reading trace" in refused.stderr
    # seqclf-eval scores the checkpoint as the training's test did.
    data = ["data=conll2003", f"data.path={marks_dir}", "data.tokens_column=words", "data.tags_column=marks"]
    scored = run_seqclf("evaluate", f"ckpt_path={ckpt}", *data, "trainer=cpu", env=cli_env, cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr[-3000:]
    result = json.loads(ckpt.with_suffix(".test.json").read_text())
    best = json.loads((run / "checkpoints" / "last.test.json").read_text())
    assert result["test/f1"] == pytest.approx(best["test/f1"]) and 0 < result["test/f1"] <= 1
    wrong = run_seqclf("evaluate", f"ckpt_path={ckpt}", f"data.path={marks_dir}", env=cli_env, cwd=tmp_path)
    assert wrong.returncode == 2 and "is a tagging checkpoint, and data=imdb is not tagging data" in wrong.stderr


def test_conll_files_train_with_bio_tags_scored_per_entity(tmp_path, cli_env):
    data = tmp_path / "conll"
    data.mkdir()
    (data / "train.conll").write_text(conll_text(entity_rows(200, 1)))
    (data / "test.txt").write_text(conll_text(entity_rows(50, 2)))  # .txt: CoNLL too, for tagging
    done = run_seqclf("train", "task=tagging", f"data.path={data}", *TINY, env=cli_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = run_dirs(tmp_path)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["labels"] == ["B-LOC", "B-PER", "I-PER", "O"]
    report = (run / "test_report.csv").read_text().splitlines()
    assert {line.split(",")[0] for line in report[1:-1]} == {"LOC", "PER"}  # entity types, as seqeval reports
    # Every column by its position too: CoNLL-2003's POS column is column1.
    table = read_conll(data / "train.conll", "tokens", "column1")
    assert table.column("column1").to_pylist()[0] == ["NN"] * len(table.column("tokens").to_pylist()[0])
    (bad := tmp_path / "bad.conll").write_text("the DT\nfilm NN x\n")
    with pytest.raises(DataError, match="line 2: 3 column.s. where the file's first word line has 2"):
        read_conll(bad)


def hub_parquet(rows: list[dict], names: list[str]) -> bytes:
    """A split as the Hub's Parquet conversion writes it: ner_tags ids with their ClassLabel names."""
    import datasets

    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "tokens": datasets.Sequence(datasets.Value("string")),
            "pos_tags": datasets.Sequence(datasets.ClassLabel(names=["NN", "VB", "DT"])),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names)),
        }
    )
    table = {
        "id": [str(i) for i in range(len(rows))],
        "tokens": [r["tokens"] for r in rows],
        "pos_tags": [[i % 3 for i in range(len(r["tokens"]))] for r in rows],
        "ner_tags": [[names.index(t) for t in r["tags"]] for r in rows],
    }
    buffer = io.BytesIO()
    datasets.Dataset.from_dict(table, features=features).to_parquet(buffer)
    return buffer.getvalue()


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
@pytest.mark.parametrize("preset", ["conll2003", "conll2003_pos"])
def test_the_conll2003_presets_load_their_layout_from_the_hub(tmp_path, cli_env, preset):
    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    files = {f"conll2003/{split}/0000.parquet": hub_parquet(entity_rows(n, seed), names)
             for split, n, seed in (("train", 120, 1), ("validation", 30, 2), ("test", 30, 3))}  # fmt: skip
    server, hub = serve("eriktks/conll2003", files, readme="# CoNLL-2003, the Hub's Parquet conversion\n")
    env = {k: v for k, v in cli_env.items() if k not in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE")}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{server.server_address[1]}", HF_HOME=str(tmp_path / "hf"))
    env.pop("HF_DATASETS_CACHE", None)
    try:
        done = run_seqclf("train", "task=tagging", f"data={preset}", *TINY, env=env, cwd=tmp_path)
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr[-3000:]
    assert any("refs%2Fconvert%2Fparquet" in path for _, path in hub.log), hub.log[:5]
    (run,) = run_dirs(tmp_path)
    metrics = json.loads((run / "metrics.json").read_text())
    # The tag names come from the data's ClassLabel; the dataset's own validation split validates.
    assert metrics["labels"] == (names if preset == "conll2003" else ["NN", "VB", "DT"])
    assert "test/f1" in metrics and "test/token_acc" in metrics


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
def test_resume_of_a_tagger_equals_an_uninterrupted_run(tmp_path, marks_dir, cli_env):
    args = ["task=tagging", f"data.path={marks_dir}", "data.tokens_column=words", "data.tags_column=marks", *TINY,
            "trainer.deterministic=true", "trainer.limit_train_batches=6", "data.steps_per_execution=4"]  # fmt: skip
    straight = run_seqclf("train", *args, "trainer.max_epochs=2", env=cli_env, cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr[-3000:]
    first = run_seqclf("train", *args, "trainer.max_epochs=1", env=cli_env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    straight_run, run = run_dirs(tmp_path)
    resumed = run_seqclf("train", f"resume={run}", "trainer.max_epochs=2", env=cli_env, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = torch.load(straight_run / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["global_step"] == b["global_step"] == 12
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=0, atol=0, msg=key)
    assert json.loads((run / "metrics.json").read_text())["test/f1"] == pytest.approx(
        json.loads((straight_run / "metrics.json").read_text())["test/f1"], abs=0
    )


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
def test_a_sweep_over_cells_trains_a_tagger_per_cell(tmp_path, marks_dir, cli_env):
    args = ["-m", "task=tagging", "model=rnn,gru", f"data.path={marks_dir}", "data.tokens_column=words",
            "data.tags_column=marks", *TINY]  # fmt: skip
    done = run_seqclf("train", *args, env=cli_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (sweep,) = (tmp_path / "outputs" / "train" / "multiruns").iterdir()
    with (sweep / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["overrides"] for r in rows] == ["model=rnn", "model=gru"]
    assert [r["status"] for r in rows] == ["completed", "completed"]
    assert all(r["monitor"] == "val/f1" and 0 <= float(r["test_f1"]) <= 1 for r in rows)


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
def test_ddp_on_two_cpu_processes_scores_a_tagger_as_one_process(tmp_path, marks_dir, cli_env):
    common = ["task=tagging", f"data.path={marks_dir}", "data.tokens_column=words", "data.tags_column=marks", *TINY,
              "data.eval_batch_size=1024", "trainer.limit_val_batches=1.0",
              "trainer.limit_test_batches=1.0"]  # fmt: skip
    one, two = single_and_ddp(tmp_path, common, cli_env)
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (one, two))
    assert m1["global_step"] == m2["global_step"] == 4
    # Each process averages its loss over its own words, so the weights are not one process's to the
    # last bit (the batches hold different numbers of words); the scores are the whole test split's:
    # gathered from both processes, they equal one process scoring the same checkpoint.
    assert 0 < m2["test/f1"] <= 1 and json.loads((two / "status.json").read_text())["status"] == "completed"
    best = two / m2["best_checkpoint"]
    data = [f"data.path={marks_dir}", "data=conll2003", "data.tokens_column=words", "data.tags_column=marks"]
    scored = run_seqclf("evaluate", f"ckpt_path={best}", *data, "trainer=cpu", "data.eval_batch_size=1024",
                        env=cli_env, cwd=tmp_path)  # fmt: skip
    assert scored.returncode == 0, scored.stderr[-3000:]
    alone = json.loads(best.with_suffix(".test.json").read_text())
    for key in ("test/token_acc", "test/f1", "test/loss"):
        assert m2[key] == pytest.approx(alone[key], abs=1e-5), key


def test_entity_scores_are_seqevals_and_other_tags_are_scored_per_word():
    names = ["O", "B-PER", "I-PER", "B-LOC"]
    true = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-LOC"]]
    pred = [["B-PER", "O", "O", "B-LOC"], ["B-LOC", "B-LOC"]]
    scores = TagScores(names)
    pad = [-100] * 2
    to_ids = lambda rows: torch.tensor([[names.index(t) for t in r] + pad[: 4 - len(r)] for r in rows])  # noqa: E731
    target = to_ids(true)
    scores.update(to_ids(pred).masked_fill(target == -100, 0), target)
    scalars, report = scores.compute()
    expected = classification_report(true, pred, output_dict=True)
    assert float(scalars["f1"]) == pytest.approx(expected["micro avg"]["f1-score"])
    assert report["PER"]["f1"] == pytest.approx(expected["PER"]["f1-score"]) and report["LOC"]["support"] == 2
    assert float(scalars["token_acc"]) == pytest.approx(4 / 6)
    assert is_bio(names) and not is_bio(list(MARKS)) and not is_bio(["NN", "VB"])
    # Marks: per word, "O" left out of the averages.
    marks = TagScores(list(MARKS))
    marks.update(torch.tensor([[2, 0, 1, 0]]), torch.tensor([[2, 1, 1, -100]]))
    scalars, report = marks.compute()
    assert float(scalars["precision"]) == 1.0 and float(scalars["recall"]) == pytest.approx(2 / 3)
    assert set(report) == set(MARKS[1:]) and report["COMMA"]["support"] == 2


def test_punctuation_marks_follow_their_words():
    words, marks = words_and_marks("Well, I loved it!<br /><br />Was it 7.5/10? Don't ask... Fine: yes.")
    assert words == ["well", "i", "loved", "it", "was", "it", "7", "5", "10", "dont", "ask", "fine", "yes"]
    assert [MARKS[m] for m in marks] == ["COMMA", "O", "O", "EXCLAMATION", "O", "O", "O", "O", "QUESTION", "O",
                                         "PERIOD", "COMMA", "PERIOD"]  # fmt: skip


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
def test_the_punctuation_experiment_derives_its_data_from_reviews(tmp_path, imdb_dir, cli_env):
    done = run_seqclf("train", "experiment=punctuation", f"data.path={imdb_dir}", *TINY, env=cli_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = run_dirs(tmp_path, "punctuation")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["labels"] == list(MARKS) and "test/f1" in metrics
    tokenizer = json.loads((run / "tokenizer.json").read_text())
    # seqclf-predict strips a text's marks as the data's were stripped (the classifier's rule, the default)
    assert tokenizer.get("split", "tokenize") == "tokenize"


def test_task_and_data_must_match_and_tagging_settings_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="is tagging data, but task=classify trains"):
        validate(load_config(["data=conll2003"], tmp_path))
    with pytest.raises(ConfigError, match="monitor='val/acc' is not a validation metric this task logs"):
        validate(load_config(["task=tagging", "monitor=val/acc"], tmp_path))
    with pytest.raises(ConfigCompositionException) as refused:  # the tagger's config has no pooling
        load_config(["task=tagging", "model.pooling=max"], tmp_path)
    assert cli.explain(refused.value).startswith("model.pooling is a setting of task=classify only")
    with pytest.raises(ConfigError, match="data.derive='nouns' is not valid"):
        validate(load_config(["task=tagging", "data.derive=nouns"], tmp_path))


def test_hub_parquet_keeps_the_tag_names(tmp_path):
    buffer = hub_parquet(entity_rows(3, 1), ["O", "B-PER", "I-PER", "B-LOC"])
    table = pq.read_table(io.BytesIO(buffer))
    from seqclf.data.sources import class_names

    assert class_names(table, "ner_tags") == ["O", "B-PER", "I-PER", "B-LOC"]


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_a_bad_tag_is_named_by_its_sentence_and_word_and_an_empty_split_is_not_scored(tmp_path):
    from seqclf.tasks.tagging.data import TaggingDataModule

    _jsonl(tmp_path / "train.jsonl", entity_rows(40, 1))
    test = entity_rows(6, 2)
    test[3]["tags"][1] = "B-WHAT"  # the 4th sentence's 2nd word
    _jsonl(tmp_path / "test.jsonl", test)
    dm = TaggingDataModule(path=str(tmp_path), cache_dir=str(tmp_path / "cache"), progress=False)
    with pytest.raises(DataError, match="sentence 4, word 2, has the label 'B-WHAT'"):
        dm.prepare_data()
    _jsonl(tmp_path / "test.jsonl", [{"tokens": [], "tags": []}, {"tokens": [], "tags": []}])
    dm = TaggingDataModule(path=str(tmp_path), cache_dir=str(tmp_path / "cache2"), progress=False)
    with pytest.raises(DataError, match="has no tagged words within data.max_len=32 \\(its 2 sentences are empty\\)"):
        dm.prepare_data()


def test_conll_u_comment_lines_are_not_words_but_a_hash_word_is():
    import tempfile

    text = "# sent_id = 1\n# text = A # B\n# newdoc\nA DT O\n# SYM O\nB NNP B-PER\n\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.conll"
        path.write_text(text, encoding="utf-8")
        table = read_conll(path)
    assert table.column("tokens").to_pylist() == [["A", "#", "B"]]
    assert table.column("tags").to_pylist() == [["O", "O", "B-PER"]]
