"""The day-to-day workflow from the command line: sweeps and their summaries, resume, eval, predict."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import TINY
from conftest import run_seqclf as seqclf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from seqclf.cli import predict
from seqclf.runs import files, summary


def only(folder: Path) -> Path:
    (item,) = list(folder.iterdir())
    return item


def scalars(run: Path, tag: str) -> list[float]:
    return [value for _, value in files.scalars(run, tag)]


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
def test_multirun_names_job_folders_and_writes_the_summary(tmp_path, imdb_dir, cli_env):
    result = seqclf("train", "-m", "model=rnn,gru", f"data.path={imdb_dir}", *TINY, env=cli_env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    sweep = only(tmp_path / "outputs" / "train" / "multiruns")
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert len(jobs) == 2 and "model=gru" in jobs[0] and "model=rnn" in jobs[1]
    assert all((sweep / job / "metrics.json").is_file() for job in jobs)
    # model=gru ran second: its first step counts from its own start, not from the sweep's
    first, second = (json.loads((sweep / job / "metrics.json").read_text())["first_step_seconds"] for job in jobs[::-1])
    assert second < first
    with (sweep / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["completed", "completed"]
    assert all(0 <= float(r["val_best"]) <= 1 and 0 <= float(r["test_acc"]) <= 1 for r in rows)
    assert all(r["monitor"] == "val/acc" and 0 <= float(r["test_f1_macro"]) <= 1 for r in rows)
    assert [r["epochs"] for r in rows] == ["1", "1"] and all(float(r["seconds_per_epoch"]) > 0 for r in rows)
    assert all(len(r["seconds_per_epoch"]) <= 7 for r in rows)  # 0.00412 or 12.41, not 0.004123456
    # Each row shows its own overrides; those every job shares are said once, above the table.
    assert [r["overrides"] for r in rows] == ["model=rnn", "model=gru"]
    md = (sweep / "summary.md").read_text()
    assert md.count(f"data.path={imdb_dir}") == 1 and md.startswith("Every run: `")
    assert "| run | overrides | status |" in md
    assert "test_f1 |" not in md and "error" not in md  # columns no run has are left out of the table
    assert (sweep / "summary.png").read_bytes()[:4] == b"\x89PNG"
    for job in jobs:  # the loss panel's curves: training and validation loss of each epoch
        train_loss, val_loss = summary.summarize_run(sweep / job, sweep)["losses"]
        assert len(train_loss) == len(val_loss) == 1 and train_loss[0] > 0 and val_loss[0] > 0
    # The gradient reaching each word, one line per job, and its first/last ratio per row.
    assert (sweep / "grad_flow.png").read_bytes()[:4] == b"\x89PNG"
    for row in rows:
        norms = json.loads((sweep / row["run"] / "grad_flow.json").read_text())["grad_norm"][-1]
        assert float(row["grad_first_over_last"]) == pytest.approx(norms[0] / norms[-1], rel=1e-3)


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
def test_a_failing_job_is_recorded_and_the_others_finish(tmp_path, imdb_dir, cli_env):
    args = ["-m", "model=rnn", f"data.path={imdb_dir}", *TINY, "model.encoder.hidden_size=-1,4"]
    result = seqclf("train", *args, env=cli_env, cwd=tmp_path)
    assert result.returncode == 1
    assert "1 of 2 jobs did not complete" in result.stderr
    sweep = only(tmp_path / "outputs" / "train" / "multiruns")
    with (sweep / "summary.csv").open() as f:
        rows = {r["status"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"failed", "completed"}
    assert "model.encoder.hidden_size=-1 must be a positive integer" in rows["failed"]["error"]
    assert float(rows["completed"]["test_acc"]) >= 0

    # seqclf-report rebuilds the same summary from disk.
    (sweep / "summary.csv").unlink()
    report = seqclf("report", str(sweep), env=cli_env, cwd=tmp_path)
    assert report.returncode == 0 and "2 run(s)" in report.stdout
    with (sweep / "summary.csv").open() as f:
        assert sorted(r["status"] for r in csv.DictReader(f)) == ["completed", "failed"]

    # A damaged metrics.json is read as missing, with a warning, not a traceback.
    completed = next(p.parent for p in sweep.glob("*/metrics.json"))
    (completed / "metrics.json").write_text('{"test/acc": 0.5')
    report = seqclf("report", str(sweep), env=cli_env, cwd=tmp_path)
    assert report.returncode == 0 and "metrics.json is unreadable" in report.stderr, report.stderr
    assert "Traceback" not in report.stderr


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
def test_resume_continues_in_place_and_equals_an_uninterrupted_run(tmp_path, imdb_dir, cli_env):
    # dropout: the masks after the resumed epoch's start must be the uninterrupted run's
    args = [f"data.path={imdb_dir}", *TINY, "trainer.deterministic=true", "trainer.limit_train_batches=6",
            "model.dropout=0.3"]  # fmt: skip
    straight = seqclf("train", *args, "trainer.max_epochs=2", env=cli_env, cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr
    first = seqclf("train", *args, "trainer.max_epochs=1", env=cli_env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    runs = sorted((tmp_path / "outputs" / "train" / "runs").iterdir())
    straight_run, run = runs
    resumed = seqclf("train", f"resume={run}", "trainer.max_epochs=2", env=cli_env, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert sorted((tmp_path / "outputs" / "train" / "runs").iterdir()) == runs  # no new run folder

    a = torch.load(straight_run / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 1 and a["global_step"] == b["global_step"] == 12
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=0, atol=0, msg=key)
    assert scalars(run, "val/acc") == scalars(straight_run, "val/acc")  # one TensorBoard run, 2 epochs
    assert scalars(run, "train/loss") == scalars(straight_run, "train/loss")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and len(metrics["epoch_seconds"]) == 2
    (segment,) = metrics["history"]  # the first segment's results are kept beside the resumed run's
    assert segment["epochs"] == 1 and "val/acc_best" in segment and "history" not in segment
    assert (run / ".hydra" / "overrides.yaml").read_text() == (
        straight_run / ".hydra" / "overrides.yaml"
    ).read_text().replace("max_epochs=2", "max_epochs=1")  # the run's own record is kept; the resume has its own
    assert len(list((run / ".hydra").glob("resume-*/overrides.yaml"))) == 1
    # seqclf-report shows what the run is now: the resume's max_epochs=2, under the run's own name
    (row,) = summary.write_summary(run)
    assert "trainer.max_epochs=2" in row["overrides"] and "trainer.max_epochs=1" not in row["overrides"]
    assert row["run"] == run.name and row["epochs"] == 2
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    # Resumed again with nothing left to train: said at once, exit 0, the run untouched.
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    again = seqclf("train", f"resume={run}", "trainer.max_epochs=2", env=cli_env, cwd=tmp_path)
    assert again.returncode == 0 and "has already trained 2 epochs (trainer.max_epochs=2 asks" in again.stderr
    # asked for fewer epochs than it trained: the advice counts from what was trained, not from what was asked
    fewer = seqclf("train", f"resume={run}", "trainer.max_epochs=1", env=cli_env, cwd=tmp_path)
    assert fewer.returncode == 0 and "add trainer.max_epochs=N with N more than 2 to train" in fewer.stderr
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"} == before

    # HPARAMS tab: hyperparameters with val/acc_best as the metric.
    acc = EventAccumulator(str(run))
    acc.Reload()
    assert "_hparams_/experiment" in acc.PluginTagToContent("hparams")


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
def test_resume_and_checkpoint_errors_are_clear(tmp_path, imdb_dir, cli_env):
    not_a_run = seqclf("train", f"resume={tmp_path}", f"data.path={imdb_dir}", *TINY, env=cli_env, cwd=tmp_path)
    assert not_a_run.returncode == 2 and "is not a seqclf run folder" in not_a_run.stderr
    missing = seqclf(
        "train", f"ckpt_path={tmp_path}/nope.ckpt", f"data.path={imdb_dir}", *TINY, env=cli_env, cwd=tmp_path
    )
    assert missing.returncode == 2 and "nope.ckpt does not exist" in missing.stderr
    assert "Traceback" not in not_a_run.stderr + missing.stderr


@pytest.fixture(scope="module")
def trained_ckpt(tmp_path_factory, imdb_dir) -> Path:
    """A checkpoint copied alone into an empty folder."""
    from conftest import compose_train

    from seqclf.cli.train import train

    work = tmp_path_factory.mktemp("trained")
    cfg = compose_train(work, [f"data.path={imdb_dir}", "trainer.max_epochs=2", "trainer.limit_train_batches=10"])
    metrics = train(cfg)
    alone = tmp_path_factory.mktemp("alone") / "best.ckpt"
    shutil.copy(Path(cfg.paths.output_dir) / metrics["best_checkpoint"], alone)
    return alone


def test_eval_from_a_lone_checkpoint_writes_json_beside_it(trained_ckpt, imdb_dir, cli_env):
    result = seqclf("evaluate", f"ckpt_path={trained_ckpt}", f"data.path={imdb_dir}", "trainer=cpu",
                    env=cli_env, cwd=trained_ckpt.parent)  # fmt: skip
    assert result.returncode == 0, result.stderr
    metrics = json.loads(trained_ckpt.with_suffix(".test.json").read_text())
    assert metrics["test_texts"] == 80 and 0 <= metrics["test/acc"] <= 1 and metrics["test/loss"] > 0
    assert metrics["split"] == "test" and 0 <= metrics["test/f1_macro"] <= 1
    # the per-class report and confusion matrix go to the eval's run folder, which the log names
    (run,) = (trained_ckpt.parent / "outputs" / "eval" / "runs").iterdir()
    assert (run / "test_report.csv").is_file() and (run / "confusion_matrix.png").is_file()
    assert str(run / "test_report.csv") in result.stderr + result.stdout


@pytest.mark.slow
def test_eval_of_the_best_checkpoint_gives_the_runs_own_test_numbers(tmp_path, imdb_dir, cli_env):
    """seqclf-eval evaluates as a training run does (batches side by side, a thread each), so the
    best checkpoint scores bit for bit what the run's own test reported. A 128-unit LSTM at batch 32:
    enough work for evaluation to take the cores, and oneDNN's LSTM kernel sums by thread count."""
    sizes = ["model.encoder.embed_dim=16", "model.encoder.hidden_size=128", "data.eval_batch_size=32"]
    trained = seqclf("train", f"data.path={imdb_dir}", *TINY, *sizes, "trainer.limit_test_batches=null",
                     env=cli_env, cwd=tmp_path)  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    run = only(tmp_path / "outputs" / "train" / "runs")
    metrics = json.loads((run / "metrics.json").read_text())
    best = run / metrics["best_checkpoint"]
    scored = seqclf("evaluate", f"ckpt_path={best}", f"data.path={imdb_dir}", "trainer=cpu", "data.eval_batch_size=32",
                    env=cli_env, cwd=tmp_path)  # fmt: skip
    assert scored.returncode == 0, scored.stderr[-3000:]
    result = json.loads(best.with_suffix(".test.json").read_text())
    assert {k: result[k] for k in ("test/loss", "test/acc", "test/f1_macro")} == {
        k: metrics[k] for k in ("test/loss", "test/acc", "test/f1_macro")
    }


def test_eval_without_ckpt_path_fails_at_once(tmp_path, cli_env):
    result = seqclf("evaluate", env=cli_env, cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and "ckpt_path is required" in result.stderr


def test_eval_with_a_bad_data_setting_is_one_paragraph(trained_ckpt, tmp_path, cli_env):
    # raised in the DataModule's constructor, which Hydra wraps in its own exception
    result = seqclf("evaluate", f"ckpt_path={trained_ckpt}", "data.val_split=", env=cli_env, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("seqclf-eval: error: data.val_split='' must be a name")
    # a setting the checkpoint's tokenizer decides is refused, not silently ignored
    ignored = seqclf("evaluate", f"ckpt_path={trained_ckpt}", "data.max_len=64", env=cli_env, cwd=tmp_path)
    assert ignored.returncode == 2 and "data.max_len=64: the checkpoint's tokenizer decides" in ignored.stderr
    assert "max_len=12" in ignored.stderr and not (tmp_path / "outputs").exists()  # refused before a run folder


def test_predict_text_with_commas_quotes_and_equals(trained_ckpt, capsys):
    review = 'A wonderful, "moving" film = great, loved it!'
    predict.main([f"ckpt_path={trained_ckpt}", f"text={review}", "text=awful boring waste"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == [review, "awful boring waste"]
    assert all(r["label"] in ("pos", "neg") and 0 <= r["probs"]["pos"] <= 1 for r in rows)
    assert all(r["label"] == ("pos" if r["probs"]["pos"] > 0.5 else "neg") for r in rows)
    assert all(abs(r["probs"]["pos"] + r["probs"]["neg"] - 1) < 1e-5 for r in rows)


def test_predict_file_to_jsonl(trained_ckpt, tmp_path):
    (tmp_path / "reviews.txt").write_text("great superb loved\n\nawful, boring, a waste\n", encoding="utf-8")
    out = tmp_path / "predictions.jsonl"
    predict.main([f"ckpt_path={trained_ckpt}", f"input={tmp_path / 'reviews.txt'}", f"output={out}"])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    # one output per input line: the blank one says it had nothing to classify
    assert [r["text"] for r in rows] == ["great superb loved", "", "awful, boring, a waste"]
    assert rows[1]["label"] is None and rows[1]["probs"] is None and "empty text" in rows[1]["error"]
    direct = predict.predict(str(trained_ckpt), ["great superb loved"])
    assert direct[0]["probs"] == rows[0]["probs"]
    assert list(predict.predict(str(trained_ckpt), ["great superb loved"], top_k=1)[0]["probs"]) == [rows[0]["label"]]


def test_predict_json_lines_keep_their_other_fields(trained_ckpt, tmp_path):
    lines = [{"id": 7, "text": "great superb loved"}, {"id": 8, "text": "  "}, {"id": 9, "text": "awful boring"}]
    (tmp_path / "reviews.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    out = tmp_path / "predictions.jsonl"
    predict.main([f"ckpt_path={trained_ckpt}", f"input={tmp_path / 'reviews.jsonl'}", f"output={out}"])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [7, 8, 9] and rows[1]["label"] is None
    assert rows[0]["label"] in ("pos", "neg") and 0 <= rows[2]["probs"]["pos"] <= 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["text="], "text= is empty"),
        (["input=/nonexistent/reviews.txt"], "does not exist"),
        (["input=BINARY"], "is not valid UTF-8"),
        (["input=EMPTY"], "holds no reviews"),
        (["input=BADJSON"], "line 2: not a JSON object with a 'text' field"),
        (["text=hi", "colour=blue"], "unexpected argument 'colour=blue'"),
        ([], "give either text="),
        (["text=hi", "top_k=0"], "top_k=0 must be a positive integer"),
        (["text=hi", "ckpt_path=EMPTY"], "is not a checkpoint: seqclf-train writes them as .ckpt files"),
    ],
)
def test_predict_bad_input_is_a_clear_error(trained_ckpt, tmp_path, capsys, args, message):
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00bad")
    (tmp_path / "empty.txt").write_text("\n  \n")
    (tmp_path / "bad.jsonl").write_text('{"text": "fine"}\n{"review": "no text field"}\n')
    files = {"BINARY": "binary.txt", "EMPTY": "empty.txt", "BADJSON": "bad.jsonl"}
    for name, file in files.items():
        args = [a.replace(name, str(tmp_path / file)) for a in args]
    with pytest.raises(SystemExit) as exit_:
        predict.main([f"ckpt_path={trained_ckpt}", *args])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and "weights_only" not in err  # never torch's unsafe advice


@pytest.mark.parametrize("target", ["CKPT", "INPUT"])
def test_predict_never_writes_over_its_inputs(trained_ckpt, tmp_path, capsys, target):
    copy = tmp_path / "model.ckpt"
    copy.write_bytes(trained_ckpt.read_bytes())
    reviews = tmp_path / "reviews.txt"
    reviews.write_text("a fine film\n")
    before = copy.read_bytes(), reviews.read_bytes()
    output = {"CKPT": copy, "INPUT": reviews}[target]
    with pytest.raises(SystemExit) as exit_:
        predict.main([f"ckpt_path={copy}", f"input={reviews}", f"output={output}"])
    assert exit_.value.code == 2 and "which writing would destroy" in capsys.readouterr().err
    assert (copy.read_bytes(), reviews.read_bytes()) == before
    predict.main([f"ckpt_path={copy}", f"input={reviews}", f"output={tmp_path / 'no' / 'such' / 'x.jsonl'}"])
    assert (tmp_path / "no/such/x.jsonl").is_file()  # folders are made, as for every other output
    with pytest.raises(SystemExit) as exit_:  # a file where a folder should be (root may write anywhere else)
        predict.main([f"ckpt_path={copy}", f"input={reviews}", f"output={reviews / 'x.jsonl'}"])
    assert exit_.value.code == 2 and "cannot be written" in capsys.readouterr().err


def test_predict_with_a_missing_checkpoint(tmp_path, capsys):
    with pytest.raises(SystemExit):
        predict.main([f"ckpt_path={tmp_path / 'gone.ckpt'}", "text=hi"])
    assert "gone.ckpt does not exist" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="asks for CUDA where there is none")
def test_predict_on_cuda_without_cuda_is_one_paragraph(trained_ckpt, capsys):
    with pytest.raises(SystemExit) as exit_:
        predict.main([f"ckpt_path={trained_ckpt}", "text=hi", "device=cuda"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "device=cuda, but this machine has no CUDA device" in err
    assert "use device=cpu" in err and "Traceback" not in err


@pytest.mark.slow
def test_tensorboard_serves_the_run_on_localhost(tmp_path, imdb_dir):
    """`tensorboard --logdir` on 127.0.0.1 reads the run's scalars back over its HTTP API."""
    import socket
    import time
    import urllib.request
    from urllib.parse import quote

    from conftest import compose_train

    from seqclf.cli.train import train

    cfg = compose_train(tmp_path, [f"data.path={imdb_dir}", "trainer.max_epochs=2"])
    train(cfg)
    run = Path(cfg.paths.output_dir)
    with socket.socket() as s:  # a free port on the loopback interface
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(run.parent), "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        tags, deadline = None, time.monotonic() + 90
        while tags is None:
            assert server.poll() is None and time.monotonic() < deadline, "tensorboard did not come up"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/plugin/scalars/tags", timeout=5) as r:
                    tags = json.load(r).get(run.name) or None  # a run is named by its folder alone
            except OSError:
                time.sleep(0.5)
        assert {"train/loss", "train/acc", "val/loss", "val/acc", "val/acc_best", "test/acc"} <= set(tags)
        query = f"run={quote(run.name)}&tag={quote('val/acc', safe='')}"
        url = f"http://127.0.0.1:{port}/data/plugin/scalars/scalars?{query}"
        with urllib.request.urlopen(url, timeout=5) as r:
            points = json.load(r)  # [wall time, step, value] per epoch
        assert len(points) == 2 and all(0 <= value <= 1 for _, _, value in points)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_fast_dev_run_writes_no_checkpoints_or_events_and_the_docs_say_what_it_does_write(tmp_path, imdb_dir):
    from conftest import compose_train

    from seqclf.cli.train import train

    cfg = compose_train(tmp_path, [f"data.path={imdb_dir}", "debug=fast_dev_run"], tiny=False)
    train(cfg)
    out = Path(cfg.paths.output_dir)
    assert not (out / "checkpoints").exists() and not list(out.glob("events.out.tfevents.*"))
    readme = (Path(__file__).parents[1] / "docs" / "configuration.md").read_text()
    assert "no checkpoints and no\n  TensorBoard events" in readme
    for name in ("tokenizer.json", "metrics.json", "test_report.csv"):
        assert (out / name).is_file() and f"`{name}`" in readme


def test_the_docs_name_sweep_job_folders_as_they_are_named():
    from seqclf.cli.resolvers import job_dirname

    name = job_dirname(["seed=2", "model=gru", "model.encoder.hidden_size=64"], 0)
    assert name == "model.encoder.hidden_size=64,model=gru,seed=2"
    assert f"(`{name}`;" in (Path(__file__).parents[1] / "docs" / "sweeps.md").read_text()
    # two paths that differ only in a slash where the other has an underscore get folders of their own
    a, b = job_dirname(["data.path=X/a/b"], 0), job_dirname(["data.path=X/a_b"], 1)
    assert a != b and a.startswith("data.path=X_a_b-") and "/" not in a + b


def test_a_sweep_is_not_started_in_a_folder_that_holds_another(tmp_path, monkeypatch, capsys):
    from seqclf.cli import train as train_module

    job = tmp_path / "sweep" / "model=gru"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "config.yaml").write_text("seed: 1\n")
    (job / "metrics.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["seqclf-train", "-m", "model=rnn,gru", f"hydra.sweep.dir={tmp_path / 'sweep'}"])
    with pytest.raises(SystemExit) as exit_:
        train_module.console()
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "already holds a sweep (1 run(s) with results, e.g. model=gru)" in err
    assert (job / "metrics.json").read_text() == "{}"


def test_a_sweep_into_a_folder_another_sweep_is_writing_is_refused(tmp_path, monkeypatch, capsys):
    """Two sweeps started at once into one folder: both find it empty; the second to start its jobs
    finds the folder held and stops, instead of writing its jobs beside the first's."""
    from seqclf.cli import train as train_module
    from seqclf.runs import folders

    sweep = tmp_path / "sweep"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["seqclf-train", "-m", *TINY, "model=rnn,gru", f"hydra.sweep.dir={sweep}"])
    with folders.hold(sweep), pytest.raises(SystemExit) as exit_:  # the other sweep, at work
        train_module.console()
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"{sweep} is in use by another seqclf process" in err
    assert "give this one another hydra.sweep.dir" in err and list(sweep.iterdir()) == []


@pytest.mark.parametrize("separator", ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\r"])
def test_predict_lines_are_what_newlines_end_and_nothing_else(trained_ckpt, tmp_path, separator):
    """Every separator str.splitlines() splits on but \\n and \\r\\n stays inside its review (a lone \\r
    too), so the outputs line up with the inputs; in JSON Lines too, where U+2028 may stand raw in a string."""
    reviews = ["great superb loved", f"awful{separator}boring", "a film\r"]
    (tmp_path / "reviews.txt").write_bytes(("\n".join(reviews[:2]) + "\r\n" + "a film\n").encode("utf-8"))
    out = tmp_path / "predictions.jsonl"
    predict.main([f"ckpt_path={trained_ckpt}", f"input={tmp_path / 'reviews.txt'}", f"output={out}"])
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").split("\n") if line]
    assert [r["text"] for r in rows] == ["great superb loved", f"awful{separator}boring", "a film"]
    lines = [json.dumps({"id": i, "text": t}, ensure_ascii=False) for i, t in enumerate(reviews[:2])]
    (tmp_path / "reviews.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    predict.main([f"ckpt_path={trained_ckpt}", f"input={tmp_path / 'reviews.jsonl'}", f"output={out}"])
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").split("\n") if line]
    assert [r["id"] for r in rows] == [0, 1] and rows[1]["text"] == f"awful{separator}boring"


def test_report_last_names_the_run_that_completed_last(tmp_path, capsys):
    """Not the newest folder: a run still training or one that failed is never "the last run"."""
    import os

    from seqclf.cli import report

    def run(name: str, status: str, finished_ns: int) -> Path:
        folder = tmp_path / "outputs" / "train" / name
        (folder / ".hydra").mkdir(parents=True)
        (folder / ".hydra" / "config.yaml").write_text("seed: 1\n")
        files.write_status(folder, status)
        os.utime(folder / "status.json", ns=(finished_ns, finished_ns))
        return folder

    run("runs/2026-01-01_10-00-00", "completed", 1_000)
    done = run("multiruns/2026-01-02_10-00-00/model=gru", "completed", 3_000)
    run("runs/2026-01-03_10-00-00", "running", 4_000)  # the newest folder, still training
    run("runs/2026-01-04_10-00-00", "failed", 5_000)
    report.main(["--last", str(tmp_path / "outputs" / "train")])
    assert capsys.readouterr().out.strip() == str(done)
    assert not (tmp_path / "outputs" / "train" / "summary.md").exists()  # --last writes nothing
    with pytest.raises(SystemExit) as exit_:
        report.main(["--last", str(tmp_path / "outputs" / "writer")])
    assert exit_.value.code == 2 and "holds no completed run" in capsys.readouterr().err


def test_predictions_reach_a_terminal_that_cannot_show_their_characters(trained_ckpt, tmp_path, cli_env):
    """PYTHONIOENCODING=ascii: JSON's own escapes, not a UnicodeEncodeError."""
    env = {**cli_env, "PYTHONIOENCODING": "ascii"}
    done = seqclf("predict", f"ckpt_path={trained_ckpt}", "text=un café très réussi", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["text"] == "un café très réussi" and "\\u00e9" in done.stdout


def test_a_trace_plot_of_an_unknown_type_is_refused_before_predicting(trained_ckpt, capsys):
    with pytest.raises(SystemExit) as exit_:
        predict.main([f"ckpt_path={trained_ckpt}", "text=a fine film", "trace=true", "trace_plot=trace.bmpx"])
    captured = capsys.readouterr()
    assert exit_.value.code == 2 and "trace_plot=trace.bmpx does not end in a picture type" in captured.err
    assert captured.out == ""  # refused before any work, so nothing half done


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("threshold", "0.5", "its model.threshold is '0.5', not a probability"),
        ("tokenizer", ["a", "b"], "holds no seqclf tokenizer"),
        ("labels", {"names": 3}, "the checkpoint's classes are {'names': 3}, not a list of class names"),
    ],
)
def test_a_checkpoint_with_a_field_of_the_wrong_type_is_one_paragraph(trained_ckpt, tmp_path, capsys, field, value,
                                                                      message):  # fmt: skip
    import seqclf
    from seqclf.errors import SeqclfError

    ckpt = torch.load(trained_ckpt, weights_only=False)
    if field == "threshold":
        ckpt["hyper_parameters"]["threshold"] = value
    else:
        ckpt["TextDataModule"][field] = value
    changed = tmp_path / "changed.ckpt"
    torch.save(ckpt, changed)
    with pytest.raises(SeqclfError, match=message):
        seqclf.load(changed)
    with pytest.raises(SystemExit) as exit_:  # and the command says the same, in one paragraph
        predict.main([f"ckpt_path={changed}", "text=a fine film"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message.split(",")[0] in err and "Traceback" not in err


def test_a_json_lines_input_with_a_byte_order_mark_is_read(trained_ckpt, tmp_path):
    """As a CSV with one trains: the mark that some editors write first is not part of the first line."""
    (tmp_path / "in.jsonl").write_bytes("\ufeff".encode() + b'{"id": 1, "text": "a fine film"}\n')
    out = tmp_path / "out.jsonl"
    predict.main([f"ckpt_path={trained_ckpt}", f"input={tmp_path / 'in.jsonl'}", f"output={out}"])
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["id"] == 1 and row["text"] == "a fine film" and row["label"] in ("neg", "pos")
