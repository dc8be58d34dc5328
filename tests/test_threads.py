"""Threads per run: usable cores (affinity, cgroup quota), shared among live seqclf runs."""

import subprocess
import sys
import textwrap

import pytest
import torch

from seqclf import threads
from seqclf.errors import ConfigError


@pytest.fixture
def registry(tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "REGISTRY", tmp_path / "runs")
    monkeypatch.setitem(threads._state, "lock", None)
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


def test_live_runs_are_counted_and_dead_ones_forgotten(registry, monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    assert threads.configure("auto") == 4 and torch.get_num_threads() == 4
    assert threads.active_runs() == 1
    proc = other_run(registry)
    try:
        assert threads.active_runs() == 2
        assert threads.rebalance() == 2 and torch.get_num_threads() == 2
    finally:
        proc.kill()
        proc.wait()
    assert len(list(registry.iterdir())) == 2  # the killed run's file is still there, unlocked
    assert threads.rebalance() == 4 and threads.history() == [4, 2, 4]
    assert len(list(registry.iterdir())) == 1  # ... and removed by the count


def test_a_run_leaves_the_registry_when_it_ends(registry, monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    with threads.share("auto") as count:
        assert count == 2 and len(list(registry.iterdir())) == 1
    assert list(registry.iterdir()) == [] and threads._state["lock"] is None


def test_a_number_or_the_environment_wins_over_auto(registry, monkeypatch):
    assert threads.configure(1) == 1 and torch.get_num_threads() == 1
    assert threads.rebalance() == 1  # a fixed number is not resized
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # a user, a DDP launcher or joblib's worker set it
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    assert threads.configure("auto") == 1 and threads.rebalance() == 1


@pytest.mark.parametrize("bad", [0, -2, "many", 1.5, True])
def test_bad_thread_settings_are_refused(registry, bad):
    with pytest.raises(ConfigError, match="must be 'auto' or a positive integer"):
        threads.configure(bad)


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


@pytest.mark.parametrize("faster, expected", [(1, [2, 1]), (2, [2])])
def test_a_short_trial_keeps_one_thread_only_if_it_is_faster(
    registry, monkeypatch, tmp_path, imdb_dir, faster, expected
):
    from conftest import compose_train
    from omegaconf import open_dict

    from seqclf.train import train

    clock = [0.0]

    def fake_clock() -> float:  # a step takes 1 s with `faster` threads and 2 s otherwise
        clock[0] += 0.5 if torch.get_num_threads() == faster else 1.0
        return clock[0]

    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads, "perf_counter", fake_clock)
    cfg = compose_train(
        tmp_path, [f"data.path={imdb_dir}", "data.steps_per_execution=1", "trainer.limit_train_batches=8"]
    )
    with open_dict(cfg):
        cfg.callbacks.thread_share.warmup = 1
        cfg.callbacks.thread_share.trials = 2
    assert train(cfg)["threads"] == expected


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
    with threads.share("auto"):
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
    threads.configure("auto")
    counted = []
    worker = threading.Thread(target=lambda: counted.append(threads.active_runs()), daemon=True)
    worker.start()
    worker.join(timeout=10)
    threads._release()
    assert counted == [1], "the count blocked on a pipe"
    assert {p.name for p in registry.iterdir()} == {"999-pipe", "notes.txt"}
    assert oct(registry.stat().st_mode & 0o777) == "0o700"
