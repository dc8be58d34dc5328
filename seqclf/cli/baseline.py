"""`seqclf-baseline RUN`: the linear baselines on a classification run's own split, beside the run.

Fits TF-IDF of word 1-2 grams + logistic regression (and, for binary data, the NB-weighted model)
on the run's training rows, the words its model reads (the run's data settings and vocabulary), takes
C from its validation split by its monitored metric, scores its test split once with the run's own
metrics, and writes baseline.json into the run folder; seqclf-report shows it beside the run.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from omegaconf import OmegaConf

from seqclf import cli
from seqclf.errors import SeqclfError
from seqclf.runs.files import BASELINE_FILE

log = logging.getLogger(__name__)
MONITORS = {"val/acc": "acc", "val/f1_macro": "f1_macro", "val/f1_micro": "f1_micro"}


def datamodule(run: Path, cfg):
    """The run's DataModule, set up as it was (the same cache, split and vocabulary)."""
    from seqclf.cli import resolvers
    from seqclf.cli.instantiate import instantiate

    resolvers.register()
    saved = run / "tokenizer.json"
    # a model started from a generator read the data with the generator's vocabulary
    given = {"tokenizer": saved.read_text()} if cfg.model.get("init_from") and saved.is_file() else {}
    dm = instantiate(cfg.data, **given)
    dm.prepare_data()
    dm.setup("fit")
    if saved.is_file() and saved.read_text() != dm.tokenizer.to_json():
        raise SeqclfError(
            f"the data of {run} no longer gives the vocabulary the run was trained with ({saved}): its files or "
            "settings changed since. A baseline on other data would not compare with the run; train a new run on "
            "the data as it is now."
        )
    return dm


def baseline(run: str | Path) -> dict:
    from seqclf import tasks
    from seqclf.runs import files, folders
    from seqclf.tasks.classify import baseline as linear

    run, cfg = folders.resumable(str(run))
    task = tasks.of_config(cfg)
    if task.name != "classify":
        raise SeqclfError(
            f"{run} is a task={task.name} run; seqclf-baseline fits linear text classifiers, so it takes "
            "classification runs (task=classify) only."
        )
    dm = datamodule(run, cfg)
    monitor = MONITORS.get(OmegaConf.select(cfg, "monitor", default="val/acc"), "acc")
    balanced = OmegaConf.select(cfg, "model.class_weights") == "balanced"
    vocab, num_classes = dm.tokenizer.vocab, len(dm.labels.names)
    train, val, test = (linear.split_of(getattr(dm, f"{s}_set"), vocab) for s in ("train", "val", "test"))
    kinds = ["tfidf", "nb"] if dm.labels.kind == "binary" else ["tfidf"]
    result = {
        "run": str(run),
        "words": f"the words the run's model reads: {dm.max_len} per text ({dm.truncation} truncation), "
        f"{dm.tokenizer.vocab_size - 2} in its vocabulary",
        "texts": {"train": len(train.texts), "val": len(val.texts), "test": len(test.texts)},
        "chosen_by": f"val/{monitor}",
        "baselines": [],
    }
    for kind in kinds:
        log.info("Fitting %s on %d texts", linear.MODELS[kind], len(train.texts))
        result["baselines"].append(linear.fit(kind, train, val, test, num_classes, monitor, balanced))
    metrics = files.read_metrics(run)
    result["run_test"] = {k.removeprefix("test/"): v for k, v in metrics.items() if k.startswith("test/")}
    result["run_train_seconds"] = sum(metrics.get("epoch_seconds") or []) or None
    files.write_baseline(run, result)
    return result


def table(result: dict) -> str:
    """The run's test scores beside each baseline's, as a Markdown table."""
    keys = [k for k in ("acc", "f1_macro", "f1_micro") if k in result["baselines"][0]["test"]]
    trained = result.get("run_train_seconds")
    rows = [("this run", result["run_test"], f"{trained:.1f} s training" if trained else "")]
    rows += [(b["model"], b["test"], f"C={b['C']}, {b['fit_seconds']:.1f} s") for b in result["baselines"]]
    lines = ["| model | " + " | ".join(f"test {k}" for k in keys) + " | fit |", "|" + " --- |" * (len(keys) + 2)]
    for name, scores, note in rows:
        cells = [f"{scores[k]:.4f}" if isinstance(scores.get(k), float) else "" for k in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {note} |")
    return "\n".join(lines)


@cli.closed_pipe_ends_quietly
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="seqclf-baseline", description=__doc__.split("\n\n")[1])
    parser.add_argument("run", help="a classification run folder (outputs/train/runs/<date_time>)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with cli.errors_as_messages("seqclf-baseline"):
        result = baseline(args.run)
        print(table(result))
        written = Path(result["run"]) / BASELINE_FILE
        print(f"({result['words']}; C chosen by {result['chosen_by']}; written to {written})")


if __name__ == "__main__":
    main()
