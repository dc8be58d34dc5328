"""The README's commands as a user types them: each composes with the shipped config, and the quick start runs."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import make_imdb, make_reviews, topic_rows, write_rows, write_split
from hydra import compose, initialize_config_dir
from test_tagging import conll_text, entity_rows

from seqclf import CONF_DIR
from seqclf.cli import config, export, generate, predict, vectors

README = Path(__file__).resolve().parent.parent / "README.md"
# What the README's commands read, and the tiny data that stands in for it here (the only substitution).
DATA = {"/data/imdb": "imdb", "/data/quips": "quips", "/data/conll": "conll"}


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def section(name: str) -> str:
    """The bash block between the README's ``--8<-- [start:name]`` and ``[end:name]`` markers (the
    docs include the same sections)."""
    text = README.read_text()
    (block,) = bash_blocks(text[text.index(f"[start:{name}]") : text.index(f"[end:{name}]")])
    return block


def commands(block: str) -> list[list[str]]:
    """Each command of a block as its words, comments and line continuations taken out."""
    lines = [re.sub(r"\$\([^)]*\)", "SHELL", line) for line in block.replace("\\\n", " ").splitlines()]
    return [shlex.split(line, comments=True) for line in lines if shlex.split(line, comments=True)]


def train_overrides(words: list[str]) -> list[list[str]]:
    """The overrides of each run a seqclf-train command starts (each value of a sweep's lists)."""
    args = [w for w in words[1:] if w != "-m"]
    runs = [[]]
    for arg in args:
        key, _, value = arg.partition("=")
        if "-m" in words and "," in value and not value.startswith(("[", "{")):
            runs = [[*run, f"{key}={choice}"] for run in runs for choice in value.split(",")]
        else:
            runs = [[*run, arg] for run in runs]
    return runs


def readme_commands() -> list[list[str]]:
    blocks = bash_blocks(README.read_text())
    setup, *rest = blocks
    assert "pip install" in setup  # the set-up block is what .ci/run runs
    return [words for block in rest for words in commands(block)]


def test_the_readme_is_short_and_its_quick_start_is_the_docs_one():
    assert len(README.read_text()) < 12_000
    docs = (README.parent / "docs" / "getting-started.md").read_text()
    assert '--8<-- "README.md:quickstart"' in docs


def test_every_readme_command_is_a_seqclf_command_whose_settings_compose(tmp_path):
    """A renamed option or group breaks this test, not a reader: every seqclf-train run of the README
    composes and passes the checks a run makes before it starts."""
    seen = set()
    for words in readme_commands():
        program = words[0]
        seen.add(program)
        if program == "seqclf-train":
            for overrides in train_overrides(words):
                if any(o.startswith("resume=") for o in overrides):
                    continue  # needs a run folder: the slow test below resumes the quick start's
                cfg = config.load_config(overrides, output_dir=tmp_path)
                config.validate(cfg)
        elif program == "seqclf-vectors":
            with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
                vectors.check(compose("vectors", overrides=words[1:]))
        elif program == "seqclf-baseline":
            assert len(words) == 2 and words[1] == "SHELL", words  # a run folder
        elif program in ("seqclf-predict", "seqclf-generate", "seqclf-export"):
            keys = {w.partition("=")[0] for w in words[1:]}
            command = {"seqclf-predict": predict, "seqclf-generate": generate, "seqclf-export": export}[program]
            assert keys <= set(command.KEYS), keys
        else:
            assert program in {"pytest", "mkdocs", "tensorboard"} or "=" in program, words
    assert {
        "seqclf-train",
        "seqclf-predict",
        "seqclf-generate",
        "seqclf-baseline",
        "seqclf-vectors",
        "seqclf-export",
        "tensorboard",
    } <= seen


TENSORBOARD_SHIM = """\
#!{python}
# The quick start's last command serves until Ctrl-C: run the real TensorBoard as written, and stop
# it once it says where it serves.
import subprocess, sys
proc = subprocess.Popen([{real!r}, *sys.argv[1:]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
for line in proc.stdout:
    sys.stdout.write(line)
    if "http://" in line:
        proc.terminate()
        proc.wait()
        sys.exit(0)
sys.exit(proc.wait() or 1)
"""


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
def test_the_quick_start_and_the_next_commands_run_as_written(tmp_path, cli_env):
    """The README's two blocks of commands in one shell, as a user would type them, on generated data."""
    data = tmp_path / "data"
    make_imdb(data / "imdb")
    write_split(data / "imdb" / "plain_text", "unsupervised", make_reviews(100, seed=3), "parquet")  # IMDB's unlabelled
    write_rows(data / "quips" / "train.csv", topic_rows(150, seed=1))
    write_rows(data / "quips" / "test.csv", topic_rows(60, seed=2))
    (data / "conll").mkdir()
    (data / "conll" / "train.conll").write_text(conll_text(entity_rows(200, 1)))
    (data / "conll" / "test.conll").write_text(conll_text(entity_rows(50, 2)))
    block = section("quickstart") + section("more")
    for written, here in DATA.items():
        block = block.replace(written, str(data / here))
    shims = tmp_path / "bin"
    shims.mkdir()
    real = shutil.which("tensorboard", path=os.path.dirname(sys.executable)) or shutil.which("tensorboard")
    (shims / "tensorboard").write_text(textwrap.dedent(TENSORBOARD_SHIM).format(python=sys.executable, real=real))
    (shims / "tensorboard").chmod(0o755)
    env = dict(cli_env, PATH=f"{shims}:{os.path.dirname(sys.executable)}:{cli_env['PATH']}")
    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=work, env=env, capture_output=True,
                            text=True, timeout=900)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    outputs = work / "outputs"
    imdb, tagger, from_vectors, tracked = runs = sorted((outputs / "train" / "runs").iterdir())
    (quips,) = (outputs / "own_data" / "runs").iterdir()
    (writer,) = (outputs / "writer" / "runs").iterdir()
    (long_reviews,) = (outputs / "long_reviews" / "runs").iterdir()
    runs += [quips, writer]
    for run in [*runs, long_reviews]:
        assert json.loads((run / "status.json").read_text())["status"] == "completed", run
    metrics = {run: json.loads((run / "metrics.json").read_text()) for run in runs}
    assert metrics[imdb]["epochs"] == 12  # resumed from 10 in its own folder
    assert metrics[quips]["labels"] == sorted({r["topic"] for r in topic_rows(150, 1)})
    baseline = json.loads((quips / "baseline.json").read_text())  # seqclf-baseline beside the own-data run
    assert baseline["run_test"]["f1_macro"] == metrics[quips]["test/f1_macro"] and baseline["baselines"]
    assert "test/f1" in metrics[tagger] and "test/perplexity" in metrics[writer]
    assert json.loads((work / "outputs" / "w2v" / "vectors.json").read_text())["texts"] == {
        "train": 200,
        "unsupervised": 100,
    }
    assert metrics[from_vectors]["vectors"]["coverage"] > 0.5  # seqclf-vectors' word2vec of the reviews
    (sweep,) = (outputs / "train" / "multiruns").iterdir()
    assert {"summary.md", "summary.png"} <= {p.name for p in sweep.iterdir()}
    exported = json.loads((imdb / "checkpoints" / "last.json").read_text())  # seqclf-export's manifest
    assert exported["model"] == "last.onnx" and (imdb / "checkpoints" / "onnx_predict.py").is_file()
    assert json.loads((tracked / "mlflow.json").read_text())["mlflow"]["run_id"]  # logged to MLflow too
    assert (outputs / "mlflow.db").is_file() and list(tracked.glob("events.out.tfevents.*"))
    (search,) = (outputs / "search" / "multiruns").iterdir()
    assert (search / "optimization_results.yaml").is_file()
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    (prediction,) = [line for line in lines if "text" in line and "probs" in line]
    assert prediction["text"] == "A wonderful, moving film." and prediction["label"] in ("neg", "pos")
    assert [line["label"] for line in lines if "probs" not in line] == ["pos", "pos"]  # seqclf-generate n=2
    assert "http://" in result.stdout  # TensorBoard served the runs


def test_the_readme_links_and_pictures_are_files_of_the_repository():
    targets = re.findall(r"\]\((?!https?://)([^)#]+)", README.read_text())
    assert targets and all((README.parent / t).is_file() for t in targets), targets
