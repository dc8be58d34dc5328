"""Where the raw texts and labels come from: the Hugging Face Hub, or a local folder of Parquet, JSON Lines,
CSV, TSV or fastText files (tagging: CoNLL column files too)."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from seqclf.data.formats import read_table
from seqclf.errors import DataError, row_name

SPLITS = ("train", "test")  # the roles every run reads; "validation" is read when the dataset has one
# File types, in order of preference when a folder holds several (.json is read as JSON Lines, .txt
# as fastText's format: "__label__pos __label__funny The text.").
FORMATS = (".parquet", ".jsonl", ".json", ".csv", ".tsv", ".txt", ".conll")
# Folders searched below data.path: the folder itself, the Hub's config folders, and `data/`.
SUBDIRS = (".", "plain_text", "default", "data")
# What a dataset's own validation split is called, in order of preference (data.val_split=auto).
VALIDATION_NAMES = ("validation", "valid", "val", "dev")
HUB_TIMEOUT_S = 3.0


@dataclass
class RawSplit:
    texts: list  # the texts (classification) or each sentence's list of words (tagging)
    labels: list  # as the data gives them: ids, names, or lists of either (multi-label; tagging: one per word)
    names: list[str] | None = None  # the class names the data itself gives (the Hub's ClassLabel), if any
    groups: list | None = None  # the training rows' groups (data.group_column), kept on one side of validation


@dataclass(frozen=True)
class Columns:
    """Which columns hold the text (several are joined with a space, e.g. a title and a description) and the label."""

    text: tuple[str, ...] = ("text",)
    label: str = "label"  # "": none read (texts alone)
    group: str | None = None  # the training rows' group (data.group_column), if the split keeps groups whole

    def describe(self) -> str:
        group = f" (and group column {self.group!r})" if self.group else ""
        return f"text column(s) {list(self.text)} and label column {self.label!r}{group}"


def _local_help(root: Path, columns: Columns = Columns()) -> str:
    return (
        f"data.path={root} should be a folder holding a train and a test split (and optionally a validation split) "
        "as Parquet, JSON Lines, CSV or TSV files with the "
        f"{columns.describe()} (data.text_column, data.label_column), or fastText files (__label__X text), named "
        "like the Hub's layout (plain_text/train-00000-of-00001.parquet) or simply train.csv, test.csv, "
        "validation.csv (or dev.csv)."
    )


def find_local_files(
    path: str | os.PathLike, splits: dict[str, tuple[str, ...]], optional: tuple[str, ...] = ()
) -> dict[str, list[Path]]:
    """The files of each role in ``splits`` (role -> the split names it may have, in order of
    preference) below ``path``; a role in ``optional`` may be absent. A DataError says what was expected."""
    root = Path(path).expanduser().resolve()
    if not root.exists():
        raise DataError(f"data.path={root} does not exist. {_local_help(root)}")
    if not root.is_dir():
        raise DataError(f"data.path={root} is not a folder. {_local_help(root)}")
    files: dict[str, list[Path]] = {}
    for role, names in splits.items():
        files_of_role = _split_files(root, names)
        if files_of_role:
            files[role] = files_of_role
        elif role not in optional:
            raise DataError(f"data.path={root} has no '{names[0]}' split. {_local_help(root)}")
    return files


def _split_files(root: Path, names: tuple[str, ...]) -> list[Path]:
    for name in names:
        for sub in SUBDIRS:
            folder = root / sub
            for ext in FORMATS:
                found = _named(folder, name, ext)
                for path in found:  # a named pipe would block the read for ever; a folder cannot be read
                    if not path.is_file():
                        raise DataError(
                            f"{path} is not a regular file (a folder, a named pipe, a socket or a device); the "
                            "data files must be ordinary files."
                        )
                if found:
                    return found
    return []


def _named(folder: Path, name: str, ext: str) -> list[Path]:
    """The files ``<name>-*<ext>`` (the Hub's shards), else ``<name><ext>``, in ``folder``; the ending in
    any case (train.CSV, test.JSONL), the name as given."""
    if not folder.is_dir():
        return []
    files = [p for p in folder.iterdir() if p.suffix.lower() == ext]
    shards = sorted(p for p in files if p.name.startswith(f"{name}-"))
    return shards or sorted(p for p in files if p.stem == name)


def fingerprint(files: dict[str, list[Path]]) -> list:
    """Identity of local data for the cache key: names, sizes and modification times."""
    return [[split, str(f), f.stat().st_size, f.stat().st_mtime_ns] for split, paths in files.items() for f in paths]


def class_names(table, column: str) -> list[str] | None:
    """The class names that ``datasets`` records for ``column`` in a table's schema (a ClassLabel, or a
    list of them for multi-label data), as the Hub's Parquet files and every Dataset carry them."""
    raw = (table.schema.metadata or {}).get(b"huggingface")
    if not raw:
        return None
    try:
        feature = json.loads(raw)["info"]["features"][column]
    except (ValueError, KeyError, TypeError):
        return None
    while isinstance(feature, dict) and "feature" in feature and "names" not in feature:  # List / Sequence
        feature = feature["feature"]
    names = feature.get("names") if isinstance(feature, dict) else None
    return [str(n) for n in names] if names else None


def to_raw(table, split: str, where: str, columns: Columns) -> RawSplit:
    """Check the columns and values of one split (a pyarrow Table) and take its texts and labels."""
    group = columns.group if split == "train" else None
    missing = [c for c in (*columns.text, columns.label, group) if c and c not in table.column_names]
    if missing:
        raise DataError(
            f"{where} lacks the column(s) {missing}; found {table.column_names}. seqclf reads the "
            f"{columns.describe()}: name yours with data.text_column=... (one name, or a list such as "
            "[title,description]), data.label_column=..." + (" and data.group_column=..." if group else "")
        )
    if table.num_rows == 0:
        raise DataError(f"{where} has no rows: give a split with at least one labelled text.")
    parts = []
    for column in columns.text:
        texts = table.column(column).to_pylist()
        if any(isinstance(t, bytes) for t in texts):  # undecodable CSV text, or a binary Parquet column (Spark, Hive)
            bad = next((i for i, t in enumerate(texts) if isinstance(t, bytes) and not _is_utf8(t)), None)
            if bad is not None:
                raise DataError(f"{where}: the text of {row_name(bad)} is not valid UTF-8; save the file as UTF-8.")
            texts = [t.decode("utf-8") if isinstance(t, bytes) else t for t in texts]
        bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
        if bad is not None:
            raise DataError(
                f"{where}: {row_name(bad)} has {column} {texts[bad]!r}, not a string; every row needs a text in "
                f"{column!r}."
            )
        parts.append(texts)
    texts = parts[0] if len(parts) == 1 else [" ".join(row) for row in zip(*parts, strict=True)]
    if split == "train" and not any(t.strip() for t in texts):  # a model learns nothing from no words
        raise DataError(f"{where}: every text is empty; training needs texts with words.")
    if not columns.label:  # texts alone (seqclf-vectors)
        return RawSplit(texts=texts, labels=[None] * len(texts))
    labels = table.column(columns.label).to_pylist()
    groups = table.column(group).to_pylist() if group else None
    return RawSplit(texts=texts, labels=labels, names=class_names(table, columns.label), groups=groups)


def to_texts(table, split: str, where: str, columns: Columns) -> RawSplit:
    """``to_raw``'s texts alone: no label column is needed or read."""
    return to_raw(table, split, where, Columns(columns.text, "", None))


def _is_utf8(text: bytes | None) -> bool:
    try:
        (text or b"").decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def to_raw_tokens(table, split: str, where: str, columns: Columns) -> RawSplit:
    """Check one split of tagging data (a list of words and a list of tags per row, as the Hub's
    token-classification datasets hold them) and take its sentences and tags."""
    words_column, tags_column = columns.text[0], columns.label
    missing = [c for c in (words_column, tags_column) if c not in table.column_names]
    if missing:
        raise DataError(
            f"{where} lacks the column(s) {missing}; found {table.column_names}. Tagging reads a list of words "
            f"(data.tokens_column={words_column}) and a list of tags, one per word (data.tags_column={tags_column}), "
            "in each row: name yours with data.tokens_column=... and data.tags_column=..."
        )
    if table.num_rows == 0:
        raise DataError(f"{where} has no rows: give a split with at least one tagged sentence.")
    words, tags = table.column(words_column).to_pylist(), table.column(tags_column).to_pylist()
    for row, (w, t) in enumerate(zip(words, tags, strict=True)):
        if not isinstance(w, list) or not all(isinstance(x, str) for x in w):
            raise DataError(
                f"{where}: {row_name(row)} has {words_column} {w!r}, not a list of words; tagging data holds a list of "
                f'words per row (e.g. ["The", "film"]), and a tag for each in {tags_column!r}.'
            )
        if not isinstance(t, list) or len(t) != len(w):
            count = len(t) if isinstance(t, list) else "no list of"
            raise DataError(
                f"{where}: {row_name(row)} has {len(w)} words but {count} tags; {tags_column!r} needs one tag per word."
            )
    if split == "train" and not any(words):
        raise DataError(f"{where}: every sentence is empty; training needs sentences with words.")
    return RawSplit(texts=words, labels=tags, names=class_names(table, tags_column))


def load_local(
    files: dict[str, list[Path]], columns: Columns, convert=to_raw, text_files: str = "fasttext"
) -> dict[str, RawSplit]:
    """Each split's files, read and checked by ``convert`` (``to_raw``: texts and labels; ``to_raw_tokens``:
    tagging's words and tags)."""
    import pyarrow as pa

    raw = {}
    for split, paths in files.items():
        where = f"the {split} split ({', '.join(str(p) for p in paths)})"
        try:
            tables = [read_table(p, text_files, columns.text[0], columns.label) for p in paths]
            table = pa.concat_tables(tables, promote_options="default")
        except (pa.ArrowException, OSError, UnicodeDecodeError) as e:
            raise DataError(
                f"could not read {where}: {e}. Check that the files are valid {paths[0].suffix[1:]} files, "
                f"UTF-8 encoded, with the {columns.describe()}."
            ) from None
        own = paths[0].suffix.lower() == ".txt" and text_files == "fasttext"  # fastText files name their own columns
        raw[split] = convert(table, split, where, Columns() if own else columns)
    return raw


def _hub_help(name: str, reason: str) -> str:
    return (
        f"Could not load the dataset '{name}' from the Hugging Face Hub ({reason}). "
        "To train without network access, point data.path at a local copy, e.g. "
        "`seqclf-train data.path=/data/imdb` (a folder with train and test Parquet, JSON Lines, CSV or TSV files, "
        "such as the Hub's plain_text/ layout; name the columns with data.text_column and data.label_column). "
        "If the dataset is already in your Hugging Face cache, set HF_DATASETS_OFFLINE=1 to load it from there."
    )


def _offline() -> bool:
    return any(
        os.environ.get(v, "").upper() in {"1", "ON", "YES", "TRUE"} for v in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE")
    )


def hub_unreachable(timeout: float = HUB_TIMEOUT_S) -> str | None:
    """Why the Hub cannot be reached, or None. `datasets` itself retries for ~25 s before giving up."""
    import urllib.error
    import urllib.request

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    url = urlparse(endpoint)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        return f"{host}:{port} is unreachable: {e}"
    # A proxy or a captive portal may accept the connection and never answer: ask for a page, briefly.
    try:
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/api/datasets", method="HEAD"), timeout=timeout)
    except urllib.error.HTTPError:
        return None  # it answered (with an error status): the Hub's own answer follows from datasets
    except (OSError, ValueError) as e:  # URLError, a timeout, a TLS failure
        reason = getattr(e, "reason", e)
        return f"{endpoint} accepted a connection but did not answer within {timeout:g} s ({reason})"
    return None


def load_hub(
    name: str,
    config: str | None,
    revision: str | None,
    splits: dict[str, tuple[str, ...]],
    columns: Columns,
    optional: tuple[str, ...] = (),
    convert=to_raw,
) -> dict[str, RawSplit]:
    """The splits of a Hub dataset, by role (role -> the split names it may have, as for local files)."""
    if not _offline():
        reason = hub_unreachable()
        if reason:
            raise DataError(_hub_help(name, reason))
    import datasets

    try:
        dd = datasets.load_dataset(name, config, revision=revision)
    except Exception as e:  # offline without a cached copy, unknown name, ...: one clear message
        raise DataError(_hub_help(name, f"{type(e).__name__}: {e}")) from None
    raw = {}
    for role, names in splits.items():
        found = next((n for n in names if n in dd), None)
        if found is None:
            if role in optional:
                continue
            raise DataError(
                f"the Hub dataset '{name}' has no split {names[0]!r}; found {list(dd)}. Name the splits with "
                "data.train_split, data.val_split and data.test_split."
            )
        raw[role] = convert(dd[found].data.table, role, f"the {found} split of '{name}'", columns)
    return raw
