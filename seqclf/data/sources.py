"""Where the raw reviews come from: the Hugging Face Hub, or a local folder in the Hub's layout."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from seqclf.errors import DataError

SPLITS = ("train", "test")
# File types, in order of preference when a folder holds several (.json is read as JSON Lines).
FORMATS = (".parquet", ".jsonl", ".json", ".csv")
# Folders searched below data.path: the folder itself, the Hub's config folder, and `data/`.
SUBDIRS = (".", "plain_text", "data")
HUB_TIMEOUT_S = 3.0


@dataclass
class RawSplit:
    texts: list[str]
    labels: np.ndarray  # int64, 0 = negative, 1 = positive


def _local_help(root: Path) -> str:
    return (
        f"data.path={root} should be a folder holding the train and test splits as Parquet, JSON Lines or "
        "CSV files with a 'text' and a 'label' (0/1) column, named like the Hub's layout "
        "(plain_text/train-00000-of-00001.parquet) or simply train.parquet / train.jsonl / train.csv "
        "and the same for test."
    )


def find_local_files(path: str | os.PathLike, splits: tuple[str, ...] = SPLITS) -> dict[str, list[Path]]:
    """The files of each of ``splits`` below ``path``, or a DataError that says what was expected."""
    root = Path(path).expanduser().resolve()
    if not root.exists():
        raise DataError(f"data.path={root} does not exist. {_local_help(root)}")
    if not root.is_dir():
        raise DataError(f"data.path={root} is not a folder. {_local_help(root)}")
    files: dict[str, list[Path]] = {}
    for split in splits:
        for sub in SUBDIRS:
            folder = root / sub
            for ext in FORMATS:
                found = sorted(folder.glob(f"{split}-*{ext}")) or sorted(folder.glob(f"{split}{ext}"))
                if found:
                    files[split] = found
                    break
            if split in files:
                break
        else:
            raise DataError(f"data.path={root} has no '{split}' split. {_local_help(root)}")
    return files


def fingerprint(files: dict[str, list[Path]]) -> list:
    """Identity of local data for the cache key: names, sizes and modification times."""
    return [[split, str(f), f.stat().st_size, f.stat().st_mtime_ns] for split, paths in files.items() for f in paths]


def _to_raw(table, split: str, where: str) -> RawSplit:
    """Check the columns and values of one split (a pyarrow Table) and convert it."""
    missing = [c for c in ("text", "label") if c not in table.column_names]
    if missing:
        raise DataError(
            f"{where} lacks the column(s) {missing}; found {table.column_names}. "
            "Each split needs a 'text' column (the review) and a 'label' column (0 = negative, 1 = positive)."
        )
    if table.num_rows == 0:
        raise DataError(f"{where} has no rows: give a split with at least one labelled review.")
    texts = table.column("text").to_pylist()
    if texts and isinstance(texts[0], bytes):  # pyarrow keeps a CSV column with any undecodable text as bytes
        bad = next(i for i, t in enumerate(texts) if not _is_utf8(t))
        raise DataError(f"{where}: the text of row {bad} is not valid UTF-8; save the file as UTF-8.")
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise DataError(f"{where}: row {bad} has text {texts[bad]!r}, not a string; every row needs a review text.")
    labels = np.asarray(table.column("label").to_pylist(), dtype=object)
    # A label column with one NaN or 1.0 in it is read as floats: 0.0 and 1.0 are still labels.
    ok = np.array([isinstance(v, (int, float, np.integer)) and not isinstance(v, bool) and v in (0, 1) for v in labels])
    if not ok.all():
        row = int(np.flatnonzero(~ok)[0])
        raise DataError(
            f"{where}: row {row} has label {labels[row]!r}; labels must be the integers 0 (negative) or 1 (positive)."
        )
    labels = labels.astype(np.int64)
    if split == "train":  # a model learns nothing from one class or no words
        if len(np.unique(labels)) < 2:
            raise DataError(
                f"{where}: every review has label {labels[0]}; training needs reviews of both classes (0 and 1)."
            )
        if not any(t.strip() for t in texts):
            raise DataError(f"{where}: every review text is empty; training needs reviews with words.")
    return RawSplit(texts=texts, labels=labels)


def _is_utf8(text: bytes | None) -> bool:
    try:
        (text or b"").decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _read_table(path: Path):
    """One file as a pyarrow Table. pyarrow directly rather than `datasets`: the encoded splits are
    cached by seqclf anyway, so an Arrow copy in the HF cache would only cost time (~1 s cold)."""
    import pyarrow
    import pyarrow.csv
    import pyarrow.json
    import pyarrow.parquet

    if path.suffix == ".parquet":
        return pyarrow.parquet.ParquetFile(path).read()  # read_table would import pyarrow.dataset, slow to import
    # A block holds whole rows, so one review longer than the default block (1 MB) needs a larger
    # one; larger blocks mean fewer parallel readers, hence only when needed.
    for block_size in (None, min(path.stat().st_size + 1, 2**31 - 1)):
        try:
            if path.suffix == ".csv":  # reviews may hold line breaks inside quoted fields
                return pyarrow.csv.read_csv(
                    path,
                    read_options=pyarrow.csv.ReadOptions(**({"block_size": block_size} if block_size else {})),
                    parse_options=pyarrow.csv.ParseOptions(newlines_in_values=True),
                )
            return pyarrow.json.read_json(  # JSON Lines
                path, read_options=pyarrow.json.ReadOptions(**({"block_size": block_size} if block_size else {}))
            )
        except pyarrow.ArrowInvalid as e:
            if block_size or "straddl" not in str(e):
                raise


def load_local(files: dict[str, list[Path]]) -> dict[str, RawSplit]:
    import pyarrow as pa

    raw = {}
    for split, paths in files.items():
        where = f"the {split} split ({', '.join(str(p) for p in paths)})"
        try:
            table = pa.concat_tables([_read_table(p) for p in paths], promote_options="default")
        except (pa.ArrowException, OSError, UnicodeDecodeError) as e:
            raise DataError(
                f"could not read {where}: {e}. Check that the files are valid {paths[0].suffix[1:]} files, "
                "UTF-8 encoded, with 'text' and 'label' columns."
            ) from None
        raw[split] = _to_raw(table, split, where)
    return raw


def _hub_help(name: str, reason: str) -> str:
    return (
        f"Could not load the dataset '{name}' from the Hugging Face Hub ({reason}). "
        "To train without network access, point data.path at a local copy, e.g. "
        "`seqclf-train data.path=/data/imdb` (a folder with train and test Parquet, JSON Lines or CSV files "
        "with 'text' and 'label' columns, such as the Hub's plain_text/ layout). If the dataset is already "
        "in your Hugging Face cache, set HF_DATASETS_OFFLINE=1 to load it from there."
    )


def _offline() -> bool:
    return any(
        os.environ.get(v, "").upper() in {"1", "ON", "YES", "TRUE"} for v in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE")
    )


def hub_unreachable(timeout: float = HUB_TIMEOUT_S) -> str | None:
    """Why the Hub cannot be reached, or None. `datasets` itself retries for ~25 s before giving up."""
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        return f"{host}:{port} is unreachable: {e}"
    return None


def load_hub(name: str, revision: str | None = None, splits: tuple[str, ...] = SPLITS) -> dict[str, RawSplit]:
    if not _offline():
        reason = hub_unreachable()
        if reason:
            raise DataError(_hub_help(name, reason))
    import datasets

    try:
        dd = datasets.load_dataset(name, revision=revision)
    except Exception as e:  # offline without a cached copy, unknown name, ...: one clear message
        raise DataError(_hub_help(name, f"{type(e).__name__}: {e}")) from None
    missing = [s for s in splits if s not in dd]
    if missing:
        raise DataError(f"the Hub dataset '{name}' has no split(s) {missing}; found {list(dd)}.")
    return {s: _to_raw(dd[s].data.table, s, f"the {s} split of '{name}'") for s in splits}
