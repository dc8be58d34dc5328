"""`seqclf-generate ckpt_path=... label=pos n=5 max_words=60 temperature=0.8 top_k=40 seed=1 output=reviews.jsonl`:
texts written by a generator (task=generate) for a class, as JSON Lines ({"label": ..., "text": ...},
one text a line) in output= (or on stdout), and readable on the terminal (stderr). Repeat label= for
several classes; without it, every class. The same command gives the same texts (seed=, and each class
its own draws). judge=CKPT
(a classifier of the same classes) adds "judged", the class it gives each text, and prints the label
agreement: the share of texts it assigns to the class they were written for.
"""

from __future__ import annotations

import sys

from seqclf import cli
from seqclf.errors import SeqclfError

USAGE = (
    "usage: seqclf-generate ckpt_path=PATH [label=NAME ...] [n=5] [max_words=60] [temperature=0.8] "
    "[top_k=40|none] [seed=1] [output=FILE|-] [judge=CLASSIFIER_CKPT] [device=auto|cpu|cuda]"
)
MIN_TEMPERATURE = 1e-4  # smaller ones overflow the logits' division in float32
DEFAULTS = {"n": "5", "max_words": "60", "temperature": "0.8", "top_k": "40", "seed": "1", "device": "auto"}
KEYS = ("ckpt_path", "label", "output", "judge", *DEFAULTS)


def parse(argv: list[str]) -> dict:
    args = {**DEFAULTS, **cli.key_values(argv, KEYS, "label")}
    if "ckpt_path" not in args:
        raise SeqclfError("ckpt_path=... is required (a checkpoint written by seqclf-train task=generate).")
    for key in ("n", "max_words", "seed"):
        args[key] = _integer(args, key, 0 if key == "seed" else 1)
    args["top_k"] = None if args["top_k"] in ("none", "null", "0") else _integer(args, "top_k", 1)
    given = args["temperature"]
    try:
        args["temperature"] = float(given)
    except ValueError:
        args["temperature"] = -1.0
    if not 0 <= args["temperature"] < float("inf"):
        raise SeqclfError(f"temperature={given} must be a finite number >= 0 (0: the most probable word).")
    if 0 < args["temperature"] < MIN_TEMPERATURE:  # dividing by it overflows: the most probable word anyway
        raise SeqclfError(
            f"temperature={given} is below {MIN_TEMPERATURE:g}, where sampling is the most probable word; give "
            "temperature=0 for that, or a larger temperature."
        )
    if args["seed"] >= 2**63:
        raise SeqclfError(f"seed={args['seed']} is too large; give a seed below 2**63 (e.g. seed=1).")
    if args["device"] not in ("auto", "cpu", "cuda"):
        raise SeqclfError(f"device={args['device']} is not valid; choose auto, cpu or cuda.")
    return args


def _integer(args: dict, key: str, least: int) -> int:
    try:
        value = int(args[key])
    except ValueError:
        value = least - 1
    if value < least:
        raise SeqclfError(f"{key}={args[key]} must be an integer >= {least}.")
    return value


def generate(args: dict) -> tuple[list[dict], float | None]:
    """The texts for each requested class and, with a judge, each text's judged class and the
    label agreement."""
    from seqclf.api import load
    from seqclf.tasks.classify.inference import Classifier

    writer = load(args["ckpt_path"], args["device"], command="seqclf-generate")
    labels = [writer.label(value) for value in args["label"]] or writer.label_names
    judge = None
    if "judge" in args:
        judge = load(args["judge"], args["device"])
        if not isinstance(judge, Classifier) or judge.labels.multi_label:
            raise SeqclfError(f"judge={args['judge']} is not a single-label classifier's checkpoint.")
        if set(labels) - set(judge.label_names):
            raise SeqclfError(
                f"judge={args['judge']} classifies into {', '.join(judge.label_names)}, which lacks "
                f"{', '.join(sorted(set(labels) - set(judge.label_names)))}; give a classifier of the generator's "
                "classes."
            )
    rows = []
    for label in labels:
        texts = writer.generate(label, args["n"], args["max_words"], args["temperature"], args["top_k"], args["seed"])
        rows += [{"label": label, "text": text} for text in texts]
    if judge is None:
        return rows, None
    for row, judged in zip(rows, judge.predict([r["text"] or " " for r in rows]), strict=True):
        row["judged"] = judged["label"]
    return rows, sum(r["judged"] == r["label"] for r in rows) / len(rows)


@cli.key_value_command(USAGE, __doc__)
def main(argv: list[str]) -> None:
    try:
        args = parse(argv)
        rows, agreement = generate(args)
    except SeqclfError as e:
        cli.fail("seqclf-generate", f"{e}\n{USAGE}")
    for row in rows:  # the readable form
        judged = f" (judged {row['judged']})" if "judged" in row else ""
        print(f"[{row['label']}]{judged} {row['text']}\n", file=sys.stderr)
    if agreement is not None:
        print(f"label agreement: {agreement:.3f} ({len(rows)} texts, judged by {args['judge']})", file=sys.stderr)
    from seqclf.cli.predict import emit

    emit("seqclf-generate", rows, args.get("output", "-"), "texts")


if __name__ == "__main__":
    main()
