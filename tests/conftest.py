"""Shared fixtures: tiny IMDB-format and multi-class data made on the fly and the shipped config, shrunk."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from seqclf.cli.config import load_config

POS_WORDS = ["great", "wonderful", "moving", "superb", "loved", "brilliant"]
NEG_WORDS = ["awful", "boring", "terrible", "waste", "hated", "dull"]
FILLER = ["the", "film", "a", "movie", "plot", "actor", "and", "it", "was", "scene"]

# Small and quick: every test that trains uses the shipped tiny preset (conf/debug/tiny.yaml).
TINY = ["debug=tiny"]


def make_reviews(n: int, seed: int, extra_word: str | None = None) -> list[dict]:
    """``n`` label-sorted reviews (all negative, then all positive) as the Hub's IMDB is."""
    rng = random.Random(seed)
    rows = []
    for label in (0, 1):
        cue = POS_WORDS if label else NEG_WORDS
        for _ in range(n // 2):
            words = rng.choices(FILLER, k=rng.randint(5, 30)) + rng.choices(cue, k=3)
            if extra_word:
                words.append(extra_word)
            rng.shuffle(words)
            text = " ".join(words).capitalize() + ".<br /><br />" + rng.choice(["Yes!", "Really.", "Don't ask."])
            rows.append({"text": text, "label": label})
    return rows


def write_split(folder: Path, split: str, rows: list[dict], fmt: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        path = folder / f"{split}-00000-of-00001.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path)
    elif fmt == "jsonl":
        path = folder / f"{split}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif fmt == "csv":
        path = folder / f"{split}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["text", "label"])
            writer.writeheader()
            writer.writerows(rows)
    else:
        raise ValueError(fmt)
    return path


def make_imdb(root: Path, fmt: str = "parquet", n_train: int = 200, n_test: int = 80) -> Path:
    """A folder in the Hub's layout (``plain_text/<split>-*.parquet``) or flat CSV / JSON Lines.
    The word ``zebra`` appears in test only, to check that the vocabulary comes from train."""
    folder = root / "plain_text" if fmt == "parquet" else root
    write_split(folder, "train", make_reviews(n_train, seed=1), fmt)
    write_split(folder, "test", make_reviews(n_test, seed=2, extra_word="zebra"), fmt)
    return root


CUES = {
    "sport": ["goal", "match", "team", "score"],
    "science": ["atom", "theory", "lab", "data"],
    "music": ["song", "guitar", "album", "band"],
}
TOPIC_FILLER = ["the", "a", "was", "it", "and", "of", "this", "very"]


def cue_text(rng: random.Random, labels: list[str], cues: dict[str, list[str]]) -> str:
    words = rng.choices(TOPIC_FILLER, k=rng.randint(4, 12)) + [
        w for label in labels for w in rng.choices(cues[label], k=2)
    ]
    rng.shuffle(words)
    return " ".join(words)


def topic_rows(n: int, seed: int, text: str = "quip", label: str = "topic") -> list[dict]:
    """``n`` texts of three topics with string labels, sorted by topic as many real files are."""
    rng = random.Random(seed)
    return [{text: cue_text(rng, [t], CUES), label: t} for t in sorted(CUES) for _ in range(n // len(CUES))]


def write_rows(path: Path, rows: list[dict], delimiter: str = ",") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="session")
def topics_dir(tmp_path_factory) -> Path:
    """A user's own CSV files: columns quip and topic, string labels (three topics)."""
    root = tmp_path_factory.mktemp("topics")
    write_rows(root / "train.csv", topic_rows(150, seed=1))
    write_rows(root / "test.csv", topic_rows(60, seed=2))
    return root


@pytest.fixture(scope="session")
def imdb_dir(tmp_path_factory) -> Path:
    return make_imdb(tmp_path_factory.mktemp("imdb"))


@pytest.fixture(autouse=True)
def _offline_env(monkeypatch, tmp_path_factory):
    """No test may reach a network or touch the user's caches."""
    home = tmp_path_factory.getbasetemp() / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(home / "datasets"))
    monkeypatch.setenv("SEQCLF_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "seqclf_cache"))
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    yield
    GlobalHydra.instance().clear()


def run_seqclf(module: str, *args, env: dict | None = None, cwd, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m seqclf.cli.<module> ARGS`` in ``cwd``, as a user runs the console scripts."""
    command = [sys.executable, "-m", f"seqclf.cli.{module}", *args]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


# Two DDP processes on the CPU at batch 8 take the steps one process takes at batch 16.
SINGLE = ["data.batch_size=16"]
DDP = ["data.batch_size=8", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]


def single_and_ddp(tmp_path: Path, common: list[str], env: dict) -> tuple[Path, Path]:
    """``seqclf-train COMMON`` in one process and in two DDP processes (the same effective batch), each
    in its own folder under ``tmp_path``; their run folders (one each), the single process's first."""
    runs = []
    for name, extra in (("single", SINGLE), ("ddp", DDP)):
        (tmp_path / name).mkdir()
        done = run_seqclf("train", *common, *extra, env=env, cwd=tmp_path / name)
        assert done.returncode == 0, done.stderr[-3000:]
        (run,) = (tmp_path / name / "outputs" / "train" / "runs").iterdir()
        runs.append(run)
    return runs[0], runs[1]


def _default_sigint() -> None:
    # A job started in the background of a non-interactive shell (as CI may run us) inherits an
    # ignored SIGINT, and Python then installs no KeyboardInterrupt handler. A user's terminal has
    # the default; give the child that.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_seqclf(module: str, *args, env: dict, cwd) -> subprocess.Popen:
    """``run_seqclf`` without waiting (runs side by side, signals): stdout and stderr in one pipe."""
    command = [sys.executable, "-m", f"seqclf.cli.{module}", *args]
    return subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=_default_sigint)  # fmt: skip


def compose_train(tmp_path: Path, overrides: list[str] = (), tiny: bool = True) -> DictConfig:
    """The shipped train config with outputs under ``tmp_path``, as the entry point would see it."""
    return load_config([*(TINY if tiny else []), *overrides], output_dir=tmp_path)


@pytest.fixture
def cli_env(tmp_path) -> dict:
    """Environment for running the console script in a subprocess, offline."""
    env = dict(os.environ)
    env.update(HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", SEQCLF_CACHE_DIR=str(tmp_path / "cache"))
    return env


TOPIC_COLUMNS = ["data.text_column=quip", "data.label_column=topic"]


@pytest.fixture(scope="module")
def topic_run(tmp_path_factory, topics_dir):
    """A finished tiny classification run on a user's three-topic CSV files: (its folder, the
    environment it ran in, the finished command)."""
    work = tmp_path_factory.mktemp("baseline")
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "SEQCLF_CACHE_DIR": str(work / "cache")}
    done = run_seqclf(
        "train",
        *TINY,
        f"data.path={topics_dir}",
        *TOPIC_COLUMNS,
        "data.max_len=auto",
        "monitor=val/f1_macro",
        env=env,
        cwd=work,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = (work / "outputs" / "train" / "runs").iterdir()
    return run, env, done
