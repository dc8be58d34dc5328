"""A search's Optuna study file (``hydra.sweeper.storage``, sqlite): checked before the sweeper
opens it, and read for the number of trials it holds."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from seqclf.atomic import check_writable
from seqclf.errors import ConfigError

LOCK_WAIT_SECONDS = 3.0  # sqlite's busy wait: another search's short writes end well within it


def sqlite_path(storage) -> Path | None:
    """The file of a ``sqlite:///`` storage URL (Optuna's other storages are left to Optuna)."""
    text = str(storage)
    return Path(text.removeprefix("sqlite:///")).expanduser() if text.startswith("sqlite:///") else None


def trials_held(storage, study_name) -> int:
    """The trials the study already holds: 0 for a new study or a file that is not one (yet)."""
    path = sqlite_path(storage)
    if path is None or not path.is_file():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as con:
            (count,) = con.execute(
                "select count(*) from trials join studies using (study_id) where study_name = ?", (study_name,)
            ).fetchone()
    except sqlite3.Error:  # check_storage refuses such a file before the sweeper opens it
        return 0
    return int(count)


def check_storage(storage) -> None:
    """A search's study file must be a sqlite database that this process may write, and not held by
    another: Optuna's own errors for such a file are tracebacks (a misleading one for a read-only
    file, and only after a long wait for a locked one). Nothing is written."""
    path = sqlite_path(storage)
    if path is None:
        return
    setting = f"hydra.sweeper.storage={storage}"
    check_writable(path.parent, setting)  # sqlite writes its journal beside the file
    if not path.exists():
        return  # the sweeper creates it
    if not path.is_file():
        raise ConfigError(f"{setting}: {path} is not a regular file; give the path of a study file (.db).")
    fix = "Give another file (hydra.sweeper.storage=sqlite:///<path>.db) to start a new study"
    if not os.access(path, os.W_OK):  # sqlite would open it read-only and fail at the first trial's result
        raise ConfigError(
            f"{setting}: {path} cannot be written (read-only); each trial's result is written to it. Make it "
            f"writable (chmod u+w {path}) or copy it somewhere writable. {fix}."
        )
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=LOCK_WAIT_SECONDS, isolation_level=None)) as con:
            tables = {name for (name,) in con.execute("select name from sqlite_master where type = 'table'")}
            if tables and "studies" not in tables:
                raise ConfigError(
                    f"{setting}: {path} is a sqlite database but not an Optuna study (it has no studies table). {fix}."
                )
            con.execute("begin immediate")  # takes the write lock a trial's result needs, then lets it go
            con.execute("rollback")
    except sqlite3.OperationalError as e:
        reason = str(e)
        if "locked" in reason or "busy" in reason:
            raise ConfigError(
                f"{setting}: {path} is locked by another process (sqlite: {reason}, after waiting "
                f"{LOCK_WAIT_SECONDS:g} s). Close the program holding it (a sqlite shell, a browser of the file) or "
                f"wait for it; searches of the same study can share the file otherwise. {fix}."
            ) from None
        raise ConfigError(f"{setting}: {path} cannot be opened as a study (sqlite: {reason}). {fix}.") from None
    except sqlite3.DatabaseError as e:
        raise ConfigError(
            f"{setting}: {path} is not a readable study file (sqlite: {e}); it may be damaged or another kind of "
            f"file. Move it away, or {fix[0].lower()}{fix[1:]}."
        ) from None
