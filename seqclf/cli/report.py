"""`seqclf-report FOLDER`: summarise a sweep folder or a single run folder, from what is on disk.

Writes summary.csv, summary.md, summary.png (the monitored metric per epoch, one line per run) and
grad_flow.png (the gradient reaching each word in the last epoch, one line per run) into FOLDER.
After a multirun the Hydra callback seqclf.runs.sweep.SweepSummary does the same for the sweep folder.
`seqclf-report --last FOLDER` prints the path of the run below FOLDER that completed last instead.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from seqclf import cli
from seqclf.runs.files import find_runs, last_completed
from seqclf.runs.summary import write_summary


@cli.closed_pipe_ends_quietly
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="seqclf-report", description=__doc__.split("\n\n")[1])
    parser.add_argument("folder", help="a sweep folder (outputs/train/multiruns/...) or a run folder")
    parser.add_argument(
        "--last", action="store_true",
        help="print the path of the run below FOLDER that completed last (e.g. outputs/train) and write nothing",
    )  # fmt: skip
    args = parser.parse_args(argv)
    folder = Path(args.folder)
    if args.last:
        run = last_completed(folder) if folder.is_dir() else None
        if run is None:
            cli.fail(
                "seqclf-report",
                f"{folder} holds no completed run (a run still training or one that failed is not counted); train "
                "one, or name the folder that holds your runs, e.g. outputs/train.",
            )
        print(run)
        return
    if not folder.is_dir() or not find_runs(folder):
        cli.fail(
            "seqclf-report", f"{folder} is neither a run folder (with .hydra/config.yaml) nor a folder holding runs."
        )
    try:
        rows = write_summary(folder)
    except OSError as e:
        cli.fail(
            "seqclf-report", f"cannot write the summary into {folder}: {e.strerror}; give a folder you can write to."
        )
    print((folder / "summary.md").read_text(), end="")
    wrote = "summary.csv, summary.md, summary.png" + (" and grad_flow.png" if any(r["grad_norm"] for r in rows) else "")
    print(f"{len(rows)} run(s); wrote {wrote} in {folder}")


if __name__ == "__main__":
    main()
