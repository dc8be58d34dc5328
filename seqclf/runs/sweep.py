"""The Hydra callback of every multirun: names job folders by their swept values, and when the
sweep ends summarises its jobs (seqclf.runs.summary) and fails the command if any job failed."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from seqclf.cli.resolvers import SWEEP_KEYS_ENV
from seqclf.errors import SeqclfError
from seqclf.runs import folders
from seqclf.runs.summary import write_summary

log = logging.getLogger(__name__)


# The sweep folder this process holds while its jobs run: here, not on the callback, which the joblib
# and submitit launchers pickle to send to their workers (a held lock cannot be).
_held = contextlib.ExitStack()


class SweepSummary(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        try:  # a second sweep started into this folder at the same moment writes its jobs elsewhere
            advice = "a sweep writes its jobs there; give this one another hydra.sweep.dir (or leave it out)."
            _held.enter_context(folders.hold(Path(config.hydra.sweep.dir), advice))
        except SeqclfError as e:
            print(f"seqclf-train: error: {e}", file=sys.stderr)
            sys.exit(2)

        overrides = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
        swept = [o.key_or_group for o in overrides if o.is_sweep_override()]
        swept += list(OmegaConf.select(config, "hydra.sweeper.params") or {})  # a search's (Optuna) space
        # Read by seqclf.cli.resolvers.job_dirname (hydra.sweep.subdir); launchers' workers inherit it.
        os.environ[SWEEP_KEYS_ENV] = ",".join(swept)
        storage = OmegaConf.select(config, "hydra.sweeper.storage")
        if isinstance(storage, str) and storage.startswith("sqlite:///"):  # sqlite creates no folders
            Path(storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        with _held:
            self._summarise(config)

    def _summarise(self, config: DictConfig) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        rows = write_summary(sweep_dir)
        failed = [row for row in rows if row["status"] != "completed"]
        log.info("Sweep summary (%d jobs) in %s:\n%s", len(rows), sweep_dir, (sweep_dir / "summary.md").read_text())
        if failed:
            names = ", ".join(" ".join(row["overrides"]) or row["run"] for row in failed)
            print(f"seqclf-train: error: {len(failed)} of {len(rows)} jobs did not complete: {names}", file=sys.stderr)
            sys.exit(1)
