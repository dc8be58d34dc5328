"""hparams_search=imdb32: a tiny Optuna search completes, writes the summary and the study, and continues."""

import csv
import sqlite3
import subprocess
from pathlib import Path

import pytest
from conftest import TINY, run_seqclf


def search(tmp_path, imdb_dir, env, n_trials: int) -> subprocess.CompletedProcess:
    args = [
        "-m", "hparams_search=imdb32", f"data.path={imdb_dir}", *TINY, f"hydra.sweeper.n_trials={n_trials}",
        "trainer.max_epochs=2",  # 10 random start-up trials (the preset's): the continued study too
        # one trial of three fails (a learning rate that is not a number), and the search goes on
        "optimizer.lr=choice(0.001,0.003,nan)",
    ]  # fmt: skip
    return run_seqclf("train", *args, env=env, cwd=tmp_path, timeout=600)


def trials(db: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(db) as con:
        return con.execute("select number, state from trials order by number").fetchall()


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
def test_a_search_runs_records_every_trial_and_continues_its_study(tmp_path, imdb_dir, cli_env):
    first = search(tmp_path, imdb_dir, cli_env, n_trials=3)
    db = tmp_path / "outputs" / "search" / "imdb32.db"
    assert db.is_file(), first.stderr[-3000:]
    # trial 0 (seed 42) draws optimizer.lr=nan: refused with its one paragraph, no traceback
    assert "This job failed; the sweep goes on: optimizer.lr=nan must be" in first.stdout + first.stderr
    assert "Traceback" not in first.stdout + first.stderr
    (sweep,) = list((tmp_path / "outputs" / "search" / "multiruns").iterdir())
    assert (sweep / "optimization_results.yaml").is_file()
    with (sweep / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and len(trials(db)) == 3
    states = [state for _, state in trials(db)]
    assert states.count("COMPLETE") == sum(r["status"] == "completed" for r in rows) >= 1
    assert all("model=" in r["overrides"] and "optimizer.lr=" in r["overrides"] for r in rows)  # its parameters
    assert [r["best"] for r in rows].count("best") == 1
    (best,) = [r for r in rows if r["best"]]
    assert all(r["monitor"] == "val/acc" for r in rows)
    assert float(best["val_best"]) == max(float(r["val_best"]) for r in rows if r["status"] == "completed")

    again = search(tmp_path, imdb_dir, cli_env, n_trials=2)  # the same command: 2 more trials, same study
    assert [n for n, _ in trials(db)] == [0, 1, 2, 3, 4], again.stderr[-3000:]
    # new points, not the first process's again (its sampler is seeded with 42 + the 3 trials held)
    with sqlite3.connect(db) as con:
        rows = con.execute("select trial_id, param_name, param_value from trial_params").fetchall()
    params = {}
    for trial_id, name, value in rows:
        params.setdefault(trial_id, []).append((name, value))
    sets = [tuple(sorted(p)) for p in params.values()]
    assert len(sets) == 5 and len(set(sets)) == 5
    assert len(list((tmp_path / "outputs" / "search" / "multiruns").iterdir())) == 2
