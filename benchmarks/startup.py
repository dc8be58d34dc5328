"""Start-up of each command against `python -c "import torch"`, paired and alternated.

    python benchmarks/startup.py --ckpt outputs/lecture/runs/<run>/checkpoints/last.ckpt --sweep <multirun folder>

Each command and the reference run in turn, ``--repeats`` times; prints the median wall seconds of
each, its ratio to the reference's median of the same rounds, and its seconds above the
interpreter's own start (`python -c pass`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def wall(command: list[str], stdin: str | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(command, input=stdin, text=True, capture_output=True, env={**os.environ, "HF_DATASETS_OFFLINE": "1"})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="a checkpoint for seqclf-predict")
    parser.add_argument("--sweep", help="a sweep or runs folder for seqclf-report")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    py = sys.executable
    out = tempfile.mkdtemp()
    commands = {
        "python -c pass": [py, "-c", "pass"],
        "python -c 'import torch'": [py, "-c", "import torch"],
        "seqclf-train --help": [py, "-m", "seqclf.cli.train", "--help"],
        "seqclf-train trainer.max_epoch=3 (a mistyped setting)": [py, "-m", "seqclf.cli.train", "trainer.max_epoch=3"],
        "seqclf-train optimizer.lr=-1 (a bad value)": [py, "-m", "seqclf.cli.train", "optimizer.lr=-1"],
        "seqclf-predict, one review": [
            py,
            "-m",
            "seqclf.cli.predict",
            f"ckpt_path={args.ckpt}",
            "text='a fine film'",
            f"output={out}/p.jsonl",
        ],  # fmt: skip
    }
    if args.sweep:
        commands["seqclf-report"] = [py, "-m", "seqclf.cli.report", args.sweep]
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeats):
        for name, command in commands.items():
            times[name].append(wall(command))
    med = {name: statistics.median(t) for name, t in times.items()}
    torch_s, pass_s = med["python -c 'import torch'"], med["python -c pass"]
    print(f"median of {args.repeats}, alternated; import torch {torch_s:.2f} s, interpreter {pass_s:.2f} s")
    print("| command | seconds | / import torch | above the interpreter |")
    print("| --- | ---: | ---: | ---: |")
    for name, seconds in med.items():
        print(f"| {name} | {seconds:.2f} | {seconds / torch_s:.2f}x | {seconds - pass_s:.2f} s |")


if __name__ == "__main__":
    main()
