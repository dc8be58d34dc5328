"""Kills, interruptions, bad input and unsafe checkpoints: clear errors, nothing damaged."""

import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import TINY, compose_train, make_reviews, run_seqclf, start_seqclf, write_split
from hydra.core.global_hydra import GlobalHydra
from omegaconf import open_dict

from seqclf.cli import evaluate, predict
from seqclf.cli import train as train_module
from seqclf.cli.train import train
from seqclf.data import TextDataModule
from seqclf.errors import DataError, SeqclfError, TrainingError
from seqclf.lightning.checkpointing import AtomicCheckpointIO
from seqclf.runs import checkpoints


def snapshot(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` with the hash of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture(scope="module")
def earlier_run(tmp_path_factory, imdb_dir) -> Path:
    """A finished run whose files must survive every bad command below."""
    work = tmp_path_factory.mktemp("earlier")
    cfg = compose_train(work, [f"data.path={imdb_dir}"])
    train(cfg)
    return Path(cfg.paths.output_dir)


def run_cli(main, argv, monkeypatch, cwd) -> int:
    """A console script in this process (much faster than a subprocess), as a user would call it."""
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", argv)
    GlobalHydra.instance().clear()
    with pytest.raises(SystemExit) as exit_:
        main()
    return exit_.value.code


def bad_data(tmp_path: Path, kind: str) -> Path:
    folder = tmp_path / kind
    rows = [{"text": "a fine film", "label": 1}, {"text": "a dull film", "label": 0}]
    if kind == "empty_folder":
        folder.mkdir()
    elif kind == "no_test":
        write_split(folder, "train", rows, "jsonl")
    elif kind == "no_text":
        for split in ("train", "test"):
            write_split(folder, split, [{"review": "x", "label": 0}], "jsonl")
    elif kind == "no_label":
        for split in ("train", "test"):
            write_split(folder, split, [{"text": "x"}], "jsonl")
    elif kind == "unseen_label":  # a class the test split has and train lacks
        write_split(folder, "train", rows, "jsonl")
        write_split(folder, "test", [*rows, {"text": "odd", "label": 2}], "jsonl")
    elif kind == "not_utf8":
        folder.mkdir()
        for split in ("train", "test"):
            (folder / f"{split}.csv").write_bytes(b"text,label\n\xff\xfe bad bytes,1\nfine,0\n")
    elif kind == "no_rows":
        folder.mkdir()
        for split in ("train", "test"):
            (folder / f"{split}.csv").write_text("text,label\n")
    return folder


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "model.encoder.cell=transformer",
            "model.encoder.cell='transformer' is not a known cell type; choose one of rnn, lstm, gru",
        ),
        ("model.encoder.hidden_size=0", "model.encoder.hidden_size=0 must be a positive integer"),
        ("model.encoder.embed_dim=-4", "model.encoder.embed_dim=-4 must be a positive integer"),
        ("data.max_len=0", "data.max_len=0 must be a positive number of words, or auto"),
        ("data.batch_size=0", "data.batch_size=0 must be a positive integer"),
        ("trainer.max_epochs=0", "trainer.max_epochs=0 must be a positive integer"),
        ("data.vocab_size=2", "data.vocab_size=2 must be an integer of at least 3"),
        ("data.val_fraction=0", "data.val_fraction=0 must lie strictly between 0 and 1"),
        ("data.val_fraction=1.5", "data.val_fraction=1.5 must lie strictly between 0 and 1"),
        ("data.padding=middle", "data.padding='middle' is not valid; choose one of pre, post"),
        ("data.truncation=both", "data.truncation='both' is not valid; choose one of pre, post"),
        ("data.path=MISSING", "does not exist"),
        ("data.path=empty_folder", "has no 'train' split"),
        ("data.path=no_test", "has no 'test' split"),
        ("data.path=no_text", "lacks the column(s) ['text']"),
        ("data.path=no_label", "lacks the column(s) ['label']"),
        ("data.path=unseen_label", "row 3 has the label 2, which is not one of the classes fitted on the train split"),
        ("data.path=not_utf8", "the text of row 1 is not valid UTF-8; save the file as UTF-8"),
        ("data.path=no_rows", "has no rows"),
        ("ckpt_path=MISSING", "does not exist"),
        ("ckpt_path=FOLDER", "is a folder; give a checkpoint file"),
        ("ckpt_path=TRUNCATED", "is not a readable checkpoint"),
        ("ckpt_path=NOT_A_CKPT", "is not a checkpoint: seqclf-train writes them as .ckpt files"),
        ("ckpt_path=TEXT", "is not a checkpoint: seqclf-train writes them as .ckpt files"),
        ("resume=LAST", "resume= takes a run folder (e.g. resume=outputs/train/runs/<date_time>) and continues it"),
        ("ckpt_path=OTHER_MODEL", "was trained with other model settings: model.encoder.hidden_size=8 (checkpoint: 4)"),
        ("resume=FOLDER", "is not a seqclf run folder"),
        ("seed=abc", "seed='abc' must be an integer from 0 to 4294967295"),
        ("optimizer.lr=nan", "optimizer.lr=nan must be a number >= 0"),
        ("trainer.precision=7", "trainer.precision=7 is not a precision Lightning knows"),
        ("trainer.limit_train_batches=-3", "trainer.limit_train_batches=-3 must be a number of batches"),
        ("task_name=../../x", "task_name='../../x' names the folder under outputs/"),
        ("data.num_proc=-2", "data.num_proc=-2 must be a positive number of processes"),
        ("data.max_len=100000000", "data.max_len=100000000 needs about"),
        ("data.val_fraction=1.0", "data.val_fraction=1.0 must lie strictly between 0 and 1"),
        ("data.padding=left", "data.padding='left' is not valid; choose one of pre, post"),
        ("optimizer.lr=-1", "optimizer.lr=-1 must be a number >= 0"),
        ("optimizer.weight_decay=-0.1", "optimizer.weight_decay=-0.1 must be a number >= 0"),
        (
            "model.pooling=median",
            "model.pooling='median' is not valid; choose one of last, max, last_max, mean, concat",
        ),
        ("trainer.gradient_clip_val=1.0", "(data.steps_per_execution); set optimizer.gradient_clip_val instead"),
        ("trainer.accumulate_grad_batches=4", "use a larger data.batch_size instead"),
        ("paths.log_dir=UNDER_A_FILE", "a_file is a file, not a folder); choose a writable folder"),
        ("data.cache_dir=UNDER_A_FILE", "a_file is a file, not a folder); choose a writable folder"),
    ],
)
def test_bad_input_is_one_clear_message_and_damages_nothing(
    tmp_path, imdb_dir, earlier_run, monkeypatch, capsys, override, message
):
    before = snapshot(earlier_run)
    last = earlier_run / "checkpoints" / "last.ckpt"
    key, _, value = override.partition("=")
    if key == "data.path" and value != "MISSING":
        value = str(bad_data(tmp_path, value))
    (tmp_path / "truncated.ckpt").write_bytes(last.read_bytes()[:2000])
    (tmp_path / "random.ckpt").write_bytes(os.urandom(4096))
    (tmp_path / "a_file").write_text("not a folder")
    value = {
        "UNDER_A_FILE": str(tmp_path / "a_file" / "outputs"),
        "MISSING": str(tmp_path / "missing"),
        "FOLDER": str(tmp_path),
        "TRUNCATED": str(tmp_path / "truncated.ckpt"),
        "NOT_A_CKPT": str(tmp_path / "random.ckpt"),
        "OTHER_MODEL": str(last),
        "TEXT": str(tmp_path / "a_file"),
        "LAST": str(last),
    }.get(value, value)
    argv = ["seqclf-train", f"data.path={imdb_dir}", *TINY, f"{key}={value}"]
    if value == str(last) and key == "ckpt_path":
        argv.append("model.encoder.hidden_size=8")
    code = run_cli(train_module.console, argv, monkeypatch, tmp_path)
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.startswith("seqclf-train: error: ") and "Traceback" not in err
    assert snapshot(earlier_run) == before


def evil_checkpoint(tmp_path: Path) -> tuple[Path, Path]:
    """A checkpoint whose unpickling would create a file (any code could run instead)."""
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"vocab_size": 10}, "payload": Payload()}, path)
    assert not marker.exists()
    return path, marker


def test_checkpoints_are_data_not_code(tmp_path, imdb_dir, monkeypatch, capsys):
    path, marker = evil_checkpoint(tmp_path)
    code = run_cli(evaluate.main, ["seqclf-eval", f"ckpt_path={path}", f"data.path={imdb_dir}"], monkeypatch, tmp_path)
    assert code == 2 and "refused to load" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        predict.main([f"ckpt_path={path}", "text=hello"])
    assert "refused to load" in capsys.readouterr().err
    argv = ["seqclf-train", f"data.path={imdb_dir}", *TINY, f"ckpt_path={path}"]
    code = run_cli(train_module.main, argv, monkeypatch, tmp_path)
    assert code == 2 and "refused to load" in capsys.readouterr().err
    assert not marker.exists()


def test_checkpoint_writes_are_atomic(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    target = tmp_path / "last.ckpt"
    io.save_checkpoint({"w": torch.ones(3)}, target)

    def dies_halfway(obj, f):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt  # as a kill would, mid-write

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"w": torch.zeros(3)}, target)
    monkeypatch.undo()
    assert torch.equal(torch.load(target, weights_only=True)["w"], torch.ones(3))  # the previous one, whole
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary file left


class PoisonWeights(L.Callback):
    """Makes the loss NaN from optimizer step 6 on (the 3rd step of the 2nd epoch, inside a block)."""

    def on_train_start(self, trainer, pl_module):
        def poison(module, args):
            if module.training and trainer.global_step == 6:
                with torch.no_grad():
                    module.head.weight.fill_(float("nan"))

        pl_module.net.register_forward_pre_hook(poison)


@pytest.mark.parametrize("steps_per_execution", [1, 16])
def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path, imdb_dir, steps_per_execution):
    overrides = [f"data.path={imdb_dir}", "trainer.max_epochs=3", f"data.steps_per_execution={steps_per_execution}"]
    cfg = compose_train(tmp_path, overrides)
    with open_dict(cfg):
        cfg.callbacks.poison = {"_target_": "test_reliability.PoisonWeights"}
    with pytest.raises(TrainingError, match=r"the training loss is nan at step 6 \(epoch 1\); training stopped"):
        train(cfg)
    last = torch.load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 0 and all(torch.isfinite(t).all() for t in last["state_dict"].values())


def _prepare(path: str, cache: str) -> str:
    dm = TextDataModule(path=path, cache_dir=cache, vocab_size=30, max_len=10, progress=False, num_proc=1)
    dm.prepare_data()
    dm.setup("fit")
    return dm.tokenizer.to_json()


def test_parallel_jobs_preparing_the_same_cache_do_not_corrupt_it(tmp_path, imdb_dir):
    with multiprocessing.get_context("fork").Pool(3) as pool:
        results = pool.starmap(_prepare, [(str(imdb_dir), str(tmp_path))] * 3)
    assert len(set(results)) == 1
    (cache,) = [p for p in tmp_path.iterdir()]  # one complete cache, no temporary folders left
    assert (cache / "meta.json").is_file() and _prepare(str(imdb_dir), str(tmp_path)) == results[0]


def _first_run(runs: Path, proc: subprocess.Popen, timeout: float = 120) -> Path:
    """The run folder the process creates in ``runs`` (which seqclf may create, empty, first)."""
    deadline = time.monotonic() + timeout
    while not (runs.is_dir() and any(runs.iterdir())):
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, f"no run folder appeared in {runs}"
        time.sleep(0.05)
    return next(runs.iterdir())


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


@pytest.mark.slow
def test_kill_9_at_random_moments_then_resume_finishes_with_the_weights_of_an_uninterrupted_run(
    tmp_path, imdb_dir, cli_env
):
    """Step checkpoints every 7 optimizer steps, blocks of 3 steps, dropout: three kill -9s at
    random moments (mid-epoch, or in the middle of writing a checkpoint), each followed by resume=."""
    import random

    args = [f"data.path={imdb_dir}", *TINY, "trainer.deterministic=true", "trainer.limit_train_batches=1.0",
            "trainer.max_epochs=12", "data.steps_per_execution=3", "model.dropout=0.3",
            "callbacks.step_checkpoint.every_n_train_steps=7"]  # fmt: skip
    (tmp_path / "straight").mkdir()
    (tmp_path / "killed").mkdir()
    straight = run_seqclf("train", *args, env=cli_env, cwd=tmp_path / "straight")
    assert straight.returncode == 0, straight.stderr
    rng = random.Random(7)
    proc = start_seqclf("train", *args, env=cli_env, cwd=tmp_path / "killed")
    runs = tmp_path / "killed" / "outputs" / "train" / "runs"
    run = _first_run(runs, proc)
    kills = []
    for _ in range(3):
        _wait_for(run / "checkpoints" / "last-step.ckpt", proc)
        time.sleep(rng.uniform(0.0, 1.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills.append(torch.load(checkpoints.newest(run), weights_only=True)["global_step"])
        proc = start_seqclf("train", f"resume={run}", env=cli_env, cwd=tmp_path)
    output = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, output
    assert not list((run / "checkpoints").glob(".*.tmp"))  # a save cut short leaves nothing behind
    straight_run = next((tmp_path / "straight" / "outputs" / "train" / "runs").iterdir())
    a = torch.load(straight_run / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["global_step"] == b["global_step"], kills
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=0, atol=0, msg=f"{key} after kills at {kills}")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_ctrl_c_or_sigterm_stops_cleanly_exits_non_zero_keeps_a_checkpoint(tmp_path, imdb_dir, cli_env, sig):
    proc = start_seqclf("train", f"data.path={imdb_dir}", *TINY, "trainer.max_epochs=500", env=cli_env, cwd=tmp_path)
    runs = tmp_path / "outputs" / "train" / "runs"
    run = _first_run(runs, proc)
    _wait_for(run / "checkpoints" / "last.ckpt", proc)
    proc.send_signal(sig)
    proc.communicate(timeout=120)
    assert (
        proc.returncode
        == {signal.SIGINT: 1, signal.SIGTERM: 128 + signal.SIGTERM, signal.SIGHUP: 128 + signal.SIGHUP}[sig]
    )
    assert '"interrupted"' in (run / "status.json").read_text()  # SIGHUP too: not left "running"
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] >= 0


def test_any_damaged_checkpoint_is_a_clear_error(tmp_path):
    """Empty files and random bytes of any length: torch's unpickler fails in many ways (IndexError,
    KeyError, ...), and each becomes the same one-paragraph error."""
    import random
    import warnings

    from seqclf.runs import checkpoints

    path = tmp_path / "damaged.ckpt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about the odd pickle protocols random bytes claim
        for seed in range(300):
            rng = random.Random(seed)
            path.write_bytes(rng.randbytes(rng.randint(0, 5000) if seed else 0))
            with pytest.raises(
                checkpoints.CheckpointError, match="is empty|is not a readable checkpoint|is not a checkpoint"
            ):
                checkpoints.load(path)


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
def test_a_run_folder_cannot_make_resume_run_code_and_a_refused_resume_changes_nothing(tmp_path, imdb_dir, cli_env):
    trained = run_seqclf("train", f"data.path={imdb_dir}", *TINY, env=cli_env, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    (run,) = list((tmp_path / "outputs" / "train" / "runs").iterdir())
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    config = run / ".hydra" / "config.yaml"
    config.write_text(
        config.read_text() + f"\nextra:\n  evil:\n    _target_: builtins.open\n    _args_: [{victim}, w]\n"
    )
    before = snapshot(run)
    resumed = run_seqclf("train", f"resume={run}", "trainer.max_epochs=2", env=cli_env, cwd=tmp_path)
    assert resumed.returncode == 2 and "asks to build builtins.open, which no seqclf config builds" in resumed.stderr
    assert victim.read_text() == "precious" and snapshot(run) == before  # status.json still says completed


@pytest.fixture
def finished_run(tmp_path, shared_run) -> Path:
    """A run folder written by the command, as resume= expects one: a copy of shared_run for this
    test alone (it may be moved, changed or resumed)."""
    run = tmp_path / "work" / "outputs" / "train" / "runs" / shared_run.name
    shutil.copytree(shared_run, run)
    (run / ".lock").unlink(missing_ok=True)
    return run


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory, imdb_dir) -> Path:
    """A finished run that the tests below read but never change (one training for all of them)."""
    from conftest import TINY as tiny

    work = tmp_path_factory.mktemp("shared_run")
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "SEQCLF_CACHE_DIR": str(work / "cache")}
    done = run_seqclf("train", f"data.path={imdb_dir}", *tiny, env=env, cwd=work)
    assert done.returncode == 0, done.stderr
    (run,) = (work / "outputs" / "train" / "runs").iterdir()
    return run


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
def test_a_moved_run_folder_resumes_into_itself(tmp_path, imdb_dir, finished_run, cli_env):
    moved = tmp_path / "elsewhere" / "my-run"
    moved.parent.mkdir()
    finished_run.rename(moved)
    stale = moved / "checkpoints" / ".last.ckpt.k2j3h4.tmp"  # a save that a kill -9 interrupted
    stale.write_bytes(b"half a checkpoint")
    resumed = run_seqclf("train", f"resume={moved}", "trainer.max_epochs=2", env=cli_env, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "dirpath has changed" not in resumed.stderr and "exists and is not empty" not in resumed.stderr
    assert not stale.exists()
    ckpt = torch.load(moved / "checkpoints" / "last.ckpt", weights_only=True)
    for state in ckpt["callbacks"].values():
        for key in ("dirpath", "best_model_path", "last_model_path"):
            if state.get(key):
                assert Path(state[key]).is_relative_to(moved), (key, state[key])
    metrics = json.loads((moved / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and (moved / metrics["best_checkpoint"]).is_file()


def test_a_run_in_use_is_not_resumed_and_a_refused_resume_changes_nothing(finished_run, monkeypatch, capsys, tmp_path):
    from seqclf.runs import folders

    def files():  # .lock is the holder's pid, rewritten by each process that holds the folder
        return {k: v for k, v in snapshot(finished_run).items() if k != ".lock"}

    before = files()
    with folders.hold(finished_run):  # as a training process holds its run folder
        code = run_cli(train_module.console, ["seqclf-train", f"resume={finished_run}"], monkeypatch, tmp_path)
    assert code == 2 and "is in use by another seqclf process" in capsys.readouterr().err
    for bad in ("trainer.max_epochs=-1", "optimizer.lr=-1", "model=gru"):
        code = run_cli(train_module.console, ["seqclf-train", f"resume={finished_run}", bad], monkeypatch, tmp_path)
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("seqclf-train: error: ") and "Traceback" not in err, (bad, err)
    assert files() == before  # status.json still says completed; no .hydra/resume-* record
    assert not (finished_run / ".lock").exists()  # the hold's file goes with it: no stale lock is left


@pytest.mark.parametrize("errors", ["errno", "short write"])
@pytest.mark.parametrize("full_while", ["checkpoint", "cache"])
def test_a_full_disk_is_one_message_and_leaves_nothing_half_written(
    tmp_path, imdb_dir, monkeypatch, capsys, full_while, errors
):
    """With the errno of a full disk, and as numpy and torch report a write cut short (none)."""
    import errno

    import numpy as np

    short = {"checkpoint": RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 128 vs 64"),
             "cache": OSError("108000 requested and 51168 written")}[full_while]  # fmt: skip

    def full_disk(file):
        (file.write if hasattr(file, "write") else Path(file).write_bytes)(b"the first bytes")
        raise OSError(errno.ENOSPC, "No space left on device") if errors == "errno" else short

    if full_while == "checkpoint":
        monkeypatch.setattr(torch, "save", lambda obj, f, *args, **kwargs: full_disk(f))
    else:
        monkeypatch.setattr(np, "save", lambda file, array, *args, **kwargs: full_disk(file))
    cache = tmp_path / "cache"
    argv = ["seqclf-train", f"data.path={imdb_dir}", *TINY, f"data.cache_dir={cache}"]
    code = run_cli(train_module.console, argv, monkeypatch, tmp_path)
    err = capsys.readouterr().err
    said = "No space left on device" if errors == "errno" else "the disk is most likely full"
    assert code == 2 and said in err and "Traceback" not in err, err
    (run,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    assert json.loads((run / "status.json").read_text())["status"] == "failed"
    assert said in (run / "train.log").read_text()
    assert not [p for p in [*run.rglob("*"), *cache.rglob("*")] if p.name.startswith(".") and p.name != ".lock"
                and p.name != ".hydra" and ".hydra" not in p.parts]  # fmt: skip
    if full_while == "cache":
        assert not list(cache.glob("imdb-*"))  # no cache published from a failed write


@pytest.mark.parametrize(
    "command, override, message",
    [
        ("train", "trainer.max_epoch=3", "trainer.max_epoch is not a setting; did you mean trainer.max_epochs?"),
        ("train", "model=lstmm", "model=lstmm is not an option of model; choose one of bag, gru, hybrid, lstm, rnn."),
        ("train", "optimizer.lr=-1", "optimizer.lr=-1 must be a number >= 0"),
        ("train", "ckpt_path=runs/model=gru,seed=2/last.ckpt", "must be quoted: key='value'"),
        ("evaluate", "data.pth=x", "data.pth is not a setting; did you mean data.path?"),
        ("evaluate", "data.progress=false", "ckpt_path is required"),
        ("evaluate", "ckpt_path=missing.ckpt", "missing.ckpt does not exist"),
    ],
)
def test_a_mistake_on_the_command_line_is_one_paragraph_before_any_run_folder(
    tmp_path, cli_env, command, override, message
):
    result = run_seqclf(command, *override.split(" "), env=cli_env, cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr + result.stdout
    assert result.stderr.startswith(f"seqclf-{'eval' if command == 'evaluate' else 'train'}: error: ")
    assert not (tmp_path / "outputs").exists()  # nothing was started, so nothing is left behind


@pytest.mark.parametrize(
    "command, args, message",
    [
        # other tools' habits
        ("train", "--max_epochs 3", "--max_epochs is not an option: seqclf-train takes Hydra overrides, key=value "
                                    "with no dashes, e.g. trainer.max_epochs=3"),
        ("train", "-m model=rnn, lstm", "the space after the comma makes two arguments; write the values without "
                                        "spaces, model=rnn,lstm"),
        ("evaluate", "--ckpt-path=x.ckpt", "seqclf-eval takes Hydra overrides, key=value with no dashes, e.g. "
                                           "ckpt_path=x.ckpt"),
        ("train", "lstm", "'lstm' is not an override; give settings as key=value"),
        # checked with the other settings, before any folder (they were refused only once the run had started)
        ("train", "threads=0", "threads=0 must be 'auto' or a positive integer"),
        ("train", "threads=abc", "threads='abc' must be 'auto' or a positive integer"),
        ("train", "threads=1.5", "threads=1.5 must be 'auto' or a positive integer"),
    ],
)  # fmt: skip
def test_other_tools_habits_and_bad_thread_counts_are_refused_before_any_run_folder(
    tmp_path, monkeypatch, capsys, command, args, message
):
    """The command's own entry point in this process (the subprocess table above covers the rest)."""
    console = {"train": train_module.console, "evaluate": evaluate.console}[command]
    prog = f"seqclf-{'eval' if command == 'evaluate' else 'train'}"
    code = run_cli(console, [prog, *args.split(" ")], monkeypatch, tmp_path)
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.startswith(f"{prog}: error: ") and "Traceback" not in err
    assert not (tmp_path / "outputs").exists()


def test_threads_far_above_the_usable_cores_are_warned_about(tmp_path, caplog):
    from seqclf.cli.config import validate

    validate(compose_train(tmp_path, ["threads=100000"]))
    assert "threads=100000 is more than the" in caplog.text and "threads=auto" in caplog.text


def test_a_new_run_is_never_written_over_an_existing_one(shared_run, tmp_path, monkeypatch, capsys):
    before = snapshot(shared_run)
    argv = ["seqclf-train", f"hydra.run.dir={shared_run}", *TINY]
    code = run_cli(train_module.console, argv, monkeypatch, tmp_path)
    err = capsys.readouterr().err
    assert code == 2 and "already holds a run" in err and f"resume={shared_run}" in err
    assert snapshot(shared_run) == before  # not even .hydra/config.yaml was rewritten
    (tmp_path / "a_file").write_text("x")
    code = run_cli(
        train_module.console, ["seqclf-train", f"hydra.run.dir={tmp_path / 'a_file'}"], monkeypatch, tmp_path
    )
    err = capsys.readouterr().err
    assert code == 2 and "is a file, not a folder" in err and "Traceback" not in err


def test_a_named_pipe_where_a_file_belongs_is_refused_before_any_read_blocks(tmp_path, imdb_dir, capsys):
    folder = tmp_path / "pipes"
    folder.mkdir()
    (folder / "test.jsonl").write_text('{"text": "a", "label": 0}\n')
    os.mkfifo(folder / "train.jsonl")
    with pytest.raises(DataError, match="train.jsonl is not a regular file"):
        TextDataModule(path=str(folder), cache_dir=str(tmp_path / "cache")).prepare_data()
    os.mkfifo(tmp_path / "model.ckpt")
    with pytest.raises(SeqclfError, match="is not a regular file"):
        checkpoints.load(tmp_path / "model.ckpt")
    with pytest.raises(SystemExit):
        predict.main([f"ckpt_path={tmp_path / 'model.ckpt'}", f"input={folder / 'train.jsonl'}"])
    assert "input=" in (err := capsys.readouterr().err) and "is not a regular file" in err


def test_predict_writes_to_stdout_and_through_links_never_replacing_them(shared_run, tmp_path, capsys):
    ckpt = shared_run / "checkpoints" / "last.ckpt"
    predict.main([f"ckpt_path={ckpt}", "text=a fine film", "output=-"])
    assert json.loads(capsys.readouterr().out)["text"] == "a fine film"
    target, link = tmp_path / "real.jsonl", tmp_path / "link.jsonl"
    target.write_text("old\n")
    link.symlink_to(target)
    predict.main([f"ckpt_path={ckpt}", "text=a fine film", f"output={link}"])
    assert link.is_symlink() and json.loads(target.read_text())["text"] == "a fine film"


def test_report_reads_a_sweep_whose_hydra_records_were_cut_short(tmp_path, shared_run, caplog):
    from seqclf.runs import summary

    sweep = tmp_path / "sweep"
    shutil.copytree(shared_run, sweep / "job0")
    for name in ("hydra.yaml", "overrides.yaml"):
        path = sweep / "job0" / ".hydra" / name
        path.write_text(path.read_text()[: len(path.read_text()) // 2] + "\n  - [unclosed")
    rows = summary.write_summary(sweep)
    assert len(rows) == 1 and rows[0]["status"] == "completed" and "is unreadable" in caplog.text


def test_a_checkpoint_with_another_learning_rate_schedule_is_refused(shared_run, tmp_path, imdb_dir):
    ckpt = shared_run / "checkpoints" / "last.ckpt"
    cfg = compose_train(tmp_path, [f"data.path={imdb_dir}", f"ckpt_path={ckpt}", "optimizer.lr_schedule=cosine",
                                   "trainer.max_epochs=2"])  # fmt: skip
    with pytest.raises(checkpoints.CheckpointError, match="trained with optimizer.lr_schedule=none, and continuing"):
        train(cfg)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def _session_members(sid: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # field 6, the session id
            members.append(int(stat.parent.name))
    return members


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_during_data_preparation_is_recorded_and_ends_the_tokeniser_workers(tmp_path, cli_env, sig):
    rows = make_reviews(40_000, seed=3)
    for split in ("train", "test"):
        write_split(tmp_path / "big", split, rows, "jsonl")
    command = [sys.executable, "-m", "seqclf.cli.train", f"data.path={tmp_path / 'big'}", *TINY, "data.num_proc=2"]
    proc = subprocess.Popen(command, env=cli_env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while len(_children(proc.pid)) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # until the tokeniser's two worker processes run
    assert len(_children(proc.pid)) >= 2, "the workers never started"
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, out[-2000:]
    (run,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "interrupted" and signal.Signals(sig).name in status["error"]
    for _ in range(100):  # the workers end with the run
        if not _session_members(proc.pid):
            break
        time.sleep(0.05)
    assert _session_members(proc.pid) == []


def test_a_mid_epoch_resume_with_another_batch_order_is_refused_and_changes_nothing(
    tmp_path, imdb_dir, monkeypatch, capsys
):
    """A run killed in the middle of an epoch (its newest checkpoint: the step checkpoint at step 4 of
    8) continues only with the blocks and order it was trained in; any other is refused before the
    folder is touched (a huge block was once accepted and ended the run at the wrong step)."""
    from seqclf.tasks.classify.module import SeqClassifier

    def killed(self, batch, batch_idx):
        if self.trainer.global_step >= 6:
            raise RuntimeError("killed")

    settings = [f"data.path={imdb_dir}", *TINY, "trainer.limit_train_batches=8", "data.steps_per_execution=2",
                "callbacks.step_checkpoint.every_n_train_steps=4"]  # fmt: skip
    with monkeypatch.context() as patch:
        patch.setattr(SeqClassifier, "on_train_batch_start", killed, raising=False)
        assert run_cli(train_module.console, ["seqclf-train", *settings], monkeypatch, tmp_path) == 1
    capsys.readouterr()
    (run,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    assert torch.load(run / "checkpoints" / "last-step.ckpt", weights_only=True)["global_step"] == 4
    before = {k: v for k, v in snapshot(run).items() if k != ".lock"}
    for changed in ("data.steps_per_execution=1000000000", "data.steps_per_execution=3", "data.batch_size=4",
                    "seed=3", "trainer.limit_train_batches=6"):  # fmt: skip
        code = run_cli(train_module.console, ["seqclf-train", f"resume={run}", changed], monkeypatch, tmp_path)
        err = capsys.readouterr().err
        assert code == 2 and "saved in the middle of an epoch" in err and "Traceback" not in err, (changed, err)
        assert {k: v for k, v in snapshot(run).items() if k != ".lock"} == before, changed
    monkeypatch.setattr(sys, "argv", ["seqclf-train", f"resume={run}"])
    GlobalHydra.instance().clear()
    train_module.console()  # with its own settings it continues, to the step an uninterrupted run ends at
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 8


def _study(path: Path) -> Path:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study(storage=f"sqlite:///{path}", study_name="imdb32")
    return path


@pytest.mark.parametrize("kind", ["damaged", "not_a_study", "locked", "folder"])
def test_a_search_whose_study_file_cannot_be_used_is_one_paragraph_before_anything_runs(
    tmp_path, imdb_dir, monkeypatch, capsys, kind
):
    import sqlite3

    pytest.importorskip("optuna")
    db = tmp_path / "study.db"
    holder = None
    if kind == "damaged":
        db.write_bytes(os.urandom(4096))
    elif kind == "not_a_study":
        with sqlite3.connect(db) as con:
            con.execute("create table notes (line text)")
    elif kind == "locked":  # another program holds the write lock (a sqlite shell in a transaction, say)
        holder = sqlite3.connect(_study(db), isolation_level=None)
        holder.execute("begin exclusive")
    else:
        db.mkdir()
    before = db.read_bytes() if db.is_file() else None
    argv = ["seqclf-train", "-m", "hparams_search=imdb32", f"data.path={imdb_dir}", *TINY,
            f"hydra.sweeper.storage=sqlite:///{db}"]  # fmt: skip
    code = run_cli(train_module.console, argv, monkeypatch, tmp_path)
    if holder is not None:
        holder.close()
    err = capsys.readouterr().err
    expected = {"damaged": "is not a readable study file (sqlite: file is not a database)",
                "not_a_study": "is a sqlite database but not an Optuna study", "locked": "is locked by another process",
                "folder": "is not a regular file"}[kind]  # fmt: skip
    assert code == 2 and expected in err and str(db) in err and "Traceback" not in err, err
    assert err.startswith("seqclf-train: error: ") and err.count("\n") == 1  # one paragraph
    assert not (tmp_path / "outputs").exists() and (before is None or db.read_bytes() == before)


@pytest.mark.skipif(not shutil.which("setpriv"), reason="runs the command as another user with setpriv")
def test_a_search_whose_study_file_is_read_only_is_one_paragraph(tmp_path, imdb_dir, cli_env):
    """Read-only for the user who runs the search (root may write any file, so the command runs as nobody)."""
    import tempfile

    pytest.importorskip("optuna")
    tmp_path = Path(tempfile.mkdtemp())  # pytest's folder is private to the user running the tests
    tmp_path.chmod(0o777)
    db = _study(tmp_path / "study.db")
    db.chmod(0o444)
    args = ["-m", "hparams_search=imdb32", f"data.path={imdb_dir}", *TINY, f"hydra.sweeper.storage=sqlite:///{db}"]
    command = [sys.executable, "-m", "seqclf.cli.train", *args]
    env = {**cli_env, "HOME": str(tmp_path), "MPLCONFIGDIR": str(tmp_path)}
    if os.geteuid() == 0:
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        probe = subprocess.run([*nobody, sys.executable, "-c", "import seqclf.cli.train"], env=env, cwd=tmp_path,
                               capture_output=True, text=True, timeout=60)  # fmt: skip
        if probe.returncode != 0:  # e.g. the clone lives in a folder of mode 0700
            shutil.rmtree(tmp_path)
            pytest.skip(f"user nobody cannot run seqclf from where this clone lives: {probe.stderr.strip()[-300:]}")
        command = [*nobody, *command]
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "cannot be written (read-only)" in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and not (tmp_path / "outputs").exists()
    shutil.rmtree(tmp_path)


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
def test_a_run_folder_of_an_earlier_version_resumes(tmp_path, finished_run, cli_env):
    """Its config names classes by their earlier places and settings ThreadShare no longer takes."""
    config = finished_run / ".hydra" / "config.yaml"
    text = config.read_text()
    for new, old in (
        ("seqclf.lightning.checkpointing.", "seqclf.checkpoints."),
        ("seqclf.data.TextDataModule", "seqclf.data.IMDBDataModule"),
    ):
        assert new in text
        text = text.replace(new, old)
    text = text.replace(
        "_target_: seqclf.lightning.callbacks.ThreadShare", "_target_: seqclf.threads.ThreadShare\n    interval_s: 2.0"
    )
    config.write_text(text)
    resumed = run_seqclf("train", f"resume={finished_run}", "trainer.max_epochs=2", env=cli_env, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((finished_run / "metrics.json").read_text())["epochs"] == 2


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
def test_a_run_that_failed_before_its_first_checkpoint_may_run_again_in_its_folder(tmp_path, imdb_dir, cli_env):
    """It holds nothing a new run would overwrite: the same command, its data fixed, runs there."""
    folder = tmp_path / "my_run"
    bad = bad_data(tmp_path, "unseen_label")
    failed = run_seqclf("train", f"hydra.run.dir={folder}", f"data.path={bad}", *TINY, env=cli_env, cwd=tmp_path)
    assert failed.returncode == 2 and (folder / ".hydra" / "config.yaml").is_file()
    again = run_seqclf("train", f"hydra.run.dir={folder}", f"data.path={imdb_dir}", *TINY, env=cli_env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((folder / "status.json").read_text())["status"] == "completed"


@pytest.mark.parametrize("damage", ["config_yaml", "hydra_yaml_missing"])
def test_resuming_a_run_folder_whose_record_is_damaged_is_one_paragraph(finished_run, monkeypatch, capsys, tmp_path,
                                                                        damage):  # fmt: skip
    if damage == "config_yaml":
        (finished_run / ".hydra" / "config.yaml").write_text("model: [unclosed\n  data: {")
        expected = "config.yaml cannot be read"
    else:
        (finished_run / ".hydra" / "hydra.yaml").unlink()
        expected = "hydra.yaml is missing"
    code = run_cli(train_module.console, ["seqclf-train", f"resume={finished_run}"], monkeypatch, tmp_path)
    err = capsys.readouterr().err
    assert code == 2 and expected in err and "Traceback" not in err and "ckpt_path=" in err, err


def test_an_empty_run_folder_or_cache_folder_is_refused(tmp_path, monkeypatch, capsys):
    """Either would write into the folder the command starts in."""
    code = run_cli(train_module.console, ["seqclf-train", "hydra.run.dir=", *TINY], monkeypatch, tmp_path)
    assert code == 2 and "hydra.run.dir='' names no folder" in capsys.readouterr().err
    monkeypatch.setenv("SEQCLF_CACHE_DIR", "")
    code = run_cli(train_module.console, ["seqclf-train", *TINY], monkeypatch, tmp_path)
    assert code == 2 and "data.cache_dir is empty (SEQCLF_CACHE_DIR=''?)" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing written where it started
