"""Threads per run: chosen once from the settings and the usable cores (affinity, cgroup quota), shared
among the seqclf runs live at the start, kept for the whole run and on resume."""

import json
import subprocess
import sys
import textwrap
import time

import lightning as L
import pytest
import torch
from conftest import run_seqclf

from seqclf import threads
from seqclf.errors import ConfigError


@pytest.fixture
def registry(tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "REGISTRY", tmp_path / "runs")
    monkeypatch.setitem(threads._state, "lock", None)
    monkeypatch.setitem(threads._state, "plan", None)
    for name in threads.ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    before = torch.get_num_threads()
    yield tmp_path / "runs"
    torch.set_num_threads(before)


def other_run(registry) -> subprocess.Popen:
    """Another process registered as a live seqclf run, until it is killed."""
    code = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from seqclf import threads
        threads.REGISTRY = Path({str(registry)!r})
        threads._register()
        print("ready", flush=True)
        time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


LECTURE = ("lstm", 16, 32, 1, False)  # Embedding(10000, 16) -> LSTM(32)
SMALL, LARGE = 1e6, 1e9


def test_the_work_of_a_step_decides_between_one_thread_and_the_share():
    assert threads.recurrent_work(*LECTURE, 32, 32) == 32 * 32 * 4 * 32 * (16 + 32)  # 6.3 M: one thread
    assert threads.recurrent_work(*LECTURE, 1024, 32) > threads.ONE_THREAD_WORK  # evaluation's batches: more
    assert threads.recurrent_work("gru", 16, 32, 1, False, 32, 32) == 32 * 32 * 3 * 32 * 48
    two_layers = threads.recurrent_work("lstm", 16, 32, 2, True, 32, 32)
    assert two_layers == 32 * 32 * 4 * 32 * 2 * ((16 + 64) + 2 * 32)


def test_live_runs_at_the_start_share_the_cores_and_later_ones_change_nothing(registry, monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    with threads.registered():
        plan = threads.plan("auto", SMALL, LARGE)
        assert (plan.train, plan.eval) == (1, 4) and torch.get_num_threads() == 1
        proc = other_run(registry)  # a run that starts later does not change this one's counts
        try:
            assert threads.active_runs() == 2 and threads.current() == plan
            with threads.registered():  # a new run now gets its share
                assert threads.plan("auto", LARGE, LARGE).train == 2
        finally:
            proc.kill()
            proc.wait()
    (stale,) = registry.iterdir()  # the killed run's file, unlocked; this run left when it ended
    with threads.registered():
        threads.plan("auto", SMALL, SMALL)
        assert threads.active_runs() == 1 and not stale.exists()


def test_a_number_the_environment_or_the_record_wins_over_the_choice(registry, monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    with threads.registered():
        assert threads.plan(3, SMALL, SMALL).to_dict() == {"train": 3, "eval": 3, "why": "threads=3"}
        recorded = {"train": 2, "eval": 1, "why": "threads=auto: 2 usable cores, 1 live seqclf run(s)"}
        resumed = threads.plan("auto", SMALL, LARGE, recorded=recorded)
        assert (resumed.train, resumed.eval) == (2, 1) and "recorded" in resumed.why
        monkeypatch.setenv("OMP_NUM_THREADS", "1")  # a user, a DDP launcher or joblib's worker set it
        assert threads.plan("auto", LARGE, LARGE).train == 1
        assert len(list(registry.iterdir())) == 1  # counted among the live runs whatever its counts
    assert list(registry.iterdir()) == []


@pytest.mark.parametrize("bad", [0, -2, "many", 1.5, True])
def test_bad_thread_settings_are_refused(registry, bad):
    with pytest.raises(ConfigError, match="must be 'auto' or a positive integer"):
        threads.check_setting(bad)


@pytest.mark.parametrize(
    "files, expected",
    [
        ({"cpu.max": "150000 100000\n"}, 2),  # cgroup v2: 1.5 CPUs -> 2 threads
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),  # cgroup v1
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ],
)
def test_a_cgroup_quota_caps_the_usable_cores(tmp_path, monkeypatch, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(threads, "CGROUP", tmp_path)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: set(range(64)))
    assert threads.usable_cores() == (expected or 64)


def test_the_registry_is_a_private_folder_and_a_planted_link_deletes_nothing(tmp_path, monkeypatch, caplog):
    victim = tmp_path / "victim"
    victim.mkdir()
    for name in ("123-abcdef", "notes.txt"):  # one named like a stale lock file, one not
        (victim / name).write_text("keep me")
    link = tmp_path / "seqclf-runs-link"
    link.symlink_to(victim)
    monkeypatch.setattr(threads, "REGISTRY", link)
    monkeypatch.setitem(threads._state, "lock", None)
    monkeypatch.setattr(threads, "usable_cores", lambda: 1)
    with threads.registered():
        threads.plan("auto", SMALL, SMALL)
        assert threads.active_runs() == 1
    assert "is not a private folder of this user" in caplog.text
    assert sorted(p.name for p in victim.iterdir()) == ["123-abcdef", "notes.txt"]


def test_a_pipe_or_a_stranger_file_in_the_registry_neither_blocks_nor_is_removed(registry, monkeypatch):
    import os
    import threading

    monkeypatch.setattr(threads, "usable_cores", lambda: 1)
    registry.mkdir(mode=0o700)
    os.mkfifo(registry / "999-pipe")
    (registry / "notes.txt").write_text("not seqclf's")
    threads.plan("auto", SMALL, SMALL)
    counted = []
    worker = threading.Thread(target=lambda: counted.append(threads.active_runs()), daemon=True)
    worker.start()
    worker.join(timeout=10)
    threads._release()
    assert counted == [1], "the count blocked on a pipe"
    assert {p.name for p in registry.iterdir()} == {"999-pipe", "notes.txt"}
    assert oct(registry.stat().st_mode & 0o777) == "0o700"


def test_evaluation_batches_run_side_by_side_each_on_one_thread(registry, monkeypatch):
    """The plan's evaluation count is how many batches run at once, each on a thread of its own with
    one torch thread: the results come in order, are those of one thread (an LSTM, whose oneDNN
    kernel sums by thread count), follow the caller's inference mode, and leave training's count alone."""
    import threading

    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(16, 64, batch_first=True).eval()
    batches = list(torch.randn(6, 256, 32, 16).unbind())

    def forward(x):
        return lstm(x)[0], threading.get_ident(), torch.get_num_threads(), torch.is_inference_mode_enabled()

    torch.set_num_threads(1)
    with torch.inference_mode():
        one_thread = [lstm(x)[0] for x in batches]
    with threads.registered():
        threads.plan("auto", LARGE, LARGE)
        assert torch.get_num_threads() == 2
        training = threads.side_by_side(forward, batches, "cpu")
        assert {r[1] for r in training} == {threading.get_ident()}  # outside evaluation: here
        threads.use("eval")
        with torch.inference_mode():
            results = list(threads.side_by_side(forward, batches, "cpu"))
        assert torch.get_num_threads() == 1
        assert all(torch.equal(r[0], expected) for r, expected in zip(results, one_thread, strict=True))
        assert threading.get_ident() not in {r[1] for r in results} and {r[2] for r in results} == {1}
        assert all(r[3] for r in results)
        threads.use("train")
        assert torch.get_num_threads() == 2
    assert threads._state["workers"] is None


class CountThreads(L.Callback):
    """Records torch's thread count in training steps."""

    def __init__(self):
        self.seen = set()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.seen.add(torch.get_num_threads())


def test_evaluation_gets_its_own_count_and_the_run_records_both(registry, monkeypatch, tmp_path, imdb_dir):
    import threading

    from conftest import compose_train

    from seqclf.cli.train import train
    from seqclf.tasks.classify.module import SeqClassifier

    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads, "ONE_THREAD_WORK", threads.recurrent_work("lstm", 4, 4, 1, False, 10, 12))
    counter, evaluated = CountThreads(), []
    monkeypatch.setattr(L.Trainer, "__init__", _with_callback(L.Trainer.__init__, counter))
    eval_batch = SeqClassifier.eval_batch

    def recorded(self, x, y):
        evaluated.append((threading.current_thread().name, torch.get_num_threads()))
        return eval_batch(self, x, y)

    monkeypatch.setattr(SeqClassifier, "eval_batch", recorded)
    # debug sizes: a training batch of 8 is below the threshold set here, an evaluation batch of 16 above;
    # no limit on validation batches, so a call evaluates a block of them
    overrides = [f"data.path={imdb_dir}", "trainer.limit_val_batches=null"]
    metrics = train(compose_train(tmp_path, overrides))
    assert counter.seen == {1}
    assert {n for _, n in evaluated} == {1}
    # a pool of two workers (a single batch, as the sanity check's, runs where it is called); which of
    # them takes a batch is the scheduler's choice, so only the pool's threads are asserted
    workers = {name for name, _ in evaluated} - {threading.current_thread().name}
    assert workers and workers <= {"seqclf-eval_0", "seqclf-eval_1"}
    assert metrics["threads"]["train"] == 1 and metrics["threads"]["eval"] == 2
    ckpt = torch.load(next(tmp_path.rglob("last.ckpt")), weights_only=True)
    assert ckpt["threads"] == metrics["threads"]


def _with_callback(init, callback):
    def patched(self, *args, callbacks=None, **kwargs):
        init(self, *args, callbacks=[*(callbacks or []), callback], **kwargs)

    return patched


def _read(path) -> str:
    return path.read_text() if path.is_file() else ""


BUSY = "import time\nwhile True: time.time()"


@pytest.mark.slow
def test_the_same_command_gives_the_same_weights_on_a_busy_machine_and_after_resume(tmp_path, imdb_dir, cli_env):
    """A 64-unit LSTM (oneDNN's kernel sums in an order that depends on the thread count, and a step
    this size takes the cores' share): straight on a quiet machine, then in two halves with a busy
    process beside it, another seqclf run starting and stopping during the first half and one live
    when the second starts. Weights and validation metrics bit for bit."""
    from conftest import start_seqclf

    settings = [f"data.path={imdb_dir}", "debug=default", "model.encoder.hidden_size=64", "model.encoder.embed_dim=32",
                "data.batch_size=32", "data.max_len=32", "trainer.limit_train_batches=6", "trainer.deterministic=true",
                "data.steps_per_execution=2", "test=false"]  # fmt: skip
    assert threads.recurrent_work("lstm", 32, 64, 1, False, 32, 32) >= threads.ONE_THREAD_WORK

    def train(folder, *extra):
        done = run_seqclf("train", *settings, f"hydra.run.dir={folder}", *extra, env=cli_env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads((folder / "metrics.json").read_text())

    straight = train(tmp_path / "straight", "trainer.max_epochs=2")
    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        halves = tmp_path / "halves"
        first_half = start_seqclf("train", *settings, "trainer.max_epochs=1", f"hydra.run.dir={halves}",
                                  env=cli_env, cwd=tmp_path)  # fmt: skip
        deadline = time.monotonic() + 120
        while "Threads:" not in _read(halves / "train.log") and time.monotonic() < deadline:
            time.sleep(0.05)
        other = start_seqclf("train", *settings, "trainer.max_epochs=3", f"hydra.run.dir={tmp_path / 'other'}",
                             env=cli_env, cwd=tmp_path)  # fmt: skip
        assert first_half.wait(timeout=300) == 0
        first = json.loads((halves / "metrics.json").read_text())
        other.wait(timeout=300)
        live = start_seqclf("train", *settings, "trainer.max_epochs=50", "trainer.limit_train_batches=1.0",
                            f"hydra.run.dir={tmp_path / 'live'}", env=cli_env, cwd=tmp_path)  # fmt: skip
        time.sleep(3)
        second = run_seqclf("train", f"resume={halves}", "trainer.max_epochs=2", env=cli_env, cwd=tmp_path)
        assert second.returncode == 0, second.stderr[-3000:]
        second = json.loads((halves / "metrics.json").read_text())
        live.kill()
    finally:
        busy.kill()
    assert straight["threads"]["train"] == first["threads"]["train"] == second["threads"]["train"]
    assert straight["val/acc_best"] == second["val/acc_best"]
    a = torch.load(tmp_path / "straight" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "halves" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=0, msg=key)
