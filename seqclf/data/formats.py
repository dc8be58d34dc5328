"""Reading one local data file as a table: Parquet, JSON Lines, CSV, TSV, fastText lines, CoNLL columns."""

from __future__ import annotations

import re
from pathlib import Path

from seqclf.errors import DataError

FASTTEXT_LABEL = "__label__"


def read_table(path: Path, text_files: str = "fasttext", words: str = "tokens", tags: str = "tags"):
    """One file as a pyarrow Table (``text_files``: how a .txt file reads, fasttext or conll; ``words``
    and ``tags``: the columns a CoNLL file's first and last become). pyarrow
    directly rather than `datasets`: the encoded splits are cached by seqclf anyway, so an Arrow copy
    in the HF cache would only cost time."""
    import pyarrow
    import pyarrow.csv
    import pyarrow.json
    import pyarrow.parquet

    suffix = path.suffix.lower()  # train.CSV is a CSV file
    if suffix == ".parquet":
        return pyarrow.parquet.ParquetFile(path).read()  # read_table would import pyarrow.dataset, slow to import
    if suffix == ".conll" or (suffix == ".txt" and text_files == "conll"):
        return read_conll(path, words, tags)
    if suffix == ".txt":
        return read_fasttext(path)
    # The label column as written: read as numbers, integers beyond 2**53 would become one float.
    convert = pyarrow.csv.ConvertOptions(column_types={tags: pyarrow.string()})
    # A block holds whole rows, so one text longer than the default block (1 MB) needs a larger
    # one; larger blocks mean fewer parallel readers, hence only when needed.
    for block_size in (None, min(path.stat().st_size + 1, 2**31 - 1)):
        read_options = pyarrow.csv.ReadOptions(**({"block_size": block_size} if block_size else {}))
        try:
            if suffix == ".csv":  # texts may hold line breaks inside quoted fields
                return _labels_as_written(pyarrow.csv.read_csv(
                    path, read_options=read_options, convert_options=convert,
                    parse_options=pyarrow.csv.ParseOptions(newlines_in_values=True),
                ), tags)  # fmt: skip
            if suffix == ".tsv":  # tab-separated, unquoted: a quote is part of the text
                return _labels_as_written(pyarrow.csv.read_csv(
                    path, read_options=read_options, convert_options=convert,
                    parse_options=pyarrow.csv.ParseOptions(delimiter="\t", quote_char=False),
                ), tags)  # fmt: skip
            table = pyarrow.json.read_json(  # JSON Lines
                path, read_options=pyarrow.json.ReadOptions(**({"block_size": block_size} if block_size else {}))
            )
            return _exact_json_labels(table, path, tags)
        except pyarrow.ArrowInvalid as e:
            if block_size or "straddl" not in str(e):
                raise


# CoNLL-U's comment lines: "# key = value" or "# key" (a CoNLL-2003 line "# NN I-NP O" is the word "#").
_CONLLU_COMMENT = re.compile(r"#\s*[\w.-]+\s*(=.*)?\s*$")
_INTEGER = re.compile(r"-?\d+(\.0*)?")


def _labels_as_written(table, column: str):
    """A CSV label column read as text: integers (``1`` or ``1.0``) become exact Python ints, any
    size; other values stay the strings they are; empty cells are missing."""
    import pyarrow

    if column not in table.column_names:
        return table  # the missing column is named by the caller's check
    values = table.column(column).to_pylist()
    present = [v for v in values if v not in (None, "")]
    if present and all(_INTEGER.fullmatch(v.strip()) for v in present):
        values = [int(v.strip().split(".")[0]) if v not in (None, "") else None for v in values]
        big = any(abs(v) >= 2**63 for v in values if v is not None)
        array = pyarrow.array([str(v) if v is not None else None for v in values]) if big else pyarrow.array(values)
    else:
        array = pyarrow.array([v if v != "" else None for v in values], pyarrow.string())
    return table.set_column(table.column_names.index(column), column, array)


def _exact_json_labels(table, path: Path, column: str):
    """pyarrow reads a JSON number beyond 2**53 as a float, so that two such integer labels become one:
    then the label column is read again with Python's json, whose integers are exact."""
    import json

    import pyarrow

    if column not in table.column_names or not pyarrow.types.is_floating(table.column(column).type):
        return table
    if not any(v is not None and abs(v) >= 2**53 for v in table.column(column).to_pylist()):
        return table
    with path.open(encoding="utf-8") as f:
        values = [json.loads(line).get(column) for line in f if line.strip()]
    strings = pyarrow.array([None if v is None else str(v) for v in values], pyarrow.string())
    return _labels_as_written(table.set_column(table.column_names.index(column), column, strings), column)


def read_fasttext(path: Path):
    """fastText's format as a table of ``text`` and ``label``: each line is one or more
    ``__label__<name>`` tokens, then the text; several labels on any line make the data multi-label."""
    import pyarrow as pa

    texts, labels = [], []
    with path.open(encoding="utf-8", newline="") as f:
        for number, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            words = line.split()  # fastText splits at any whitespace (a tab after the label too)
            names = []
            while words and words[0].startswith(FASTTEXT_LABEL):
                names.append(words.pop(0)[len(FASTTEXT_LABEL) :])
            if not names or "" in names:
                raise DataError(
                    f"{path}, line {number}: it does not start with a label ({FASTTEXT_LABEL}<name>); a .txt file is "
                    f"read in fastText's format, one text per line: '{FASTTEXT_LABEL}sports Our team won.'"
                )
            texts.append(" ".join(words))
            labels.append(names)
    if any(len(names) > 1 for names in labels):
        return pa.table({"text": texts, "label": labels})
    return pa.table({"text": texts, "label": [names[0] for names in labels]})


def read_conll(path: Path, words: str = "tokens", tags: str = "tags"):
    """A CoNLL column file as a table: one word per line (its columns separated by spaces or tabs),
    a blank line between sentences, ``-DOCSTART-`` lines and CoNLL-U's comment lines skipped (a word
    ``#`` with its tags stays a word). Every column is ``column0``,
    ``column1``, ... (``data.tags_column=column1``: CoNLL-2003's POS tags); the first is also the
    ``words`` column and the last the ``tags`` column (CoNLL-2003: word, POS, chunk, NER)."""
    import pyarrow as pa

    sentences: list[list[list[str]]] = [[]]
    width = None
    with path.open(encoding="utf-8", newline="") as f:
        for number, line in enumerate(f, start=1):
            if _CONLLU_COMMENT.match(line):  # "# sent_id = 1", "# text = ...", "# newdoc": not words
                continue
            fields = line.split()
            if not fields or fields[0] == "-DOCSTART-":
                if sentences[-1]:
                    sentences.append([])
                continue
            if width is None:
                width = len(fields)
            if len(fields) != width or width < 2:
                raise DataError(
                    f"{path}, line {number}: {len(fields)} column(s) where the file's first word line has {width}; a "
                    "CoNLL file has one word per line with the same columns on every line (the word first, its tag "
                    "last) and a blank line between sentences."
                )
            sentences[-1].append(fields)
    sentences = [s for s in sentences if s]
    table = {f"column{i}": [[w[i] for w in s] for s in sentences] for i in range(width or 2)}
    first, last = table["column0"], table[f"column{(width or 2) - 1}"]
    return pa.table({**{words: first, tags: last}, **table})  # columnN names win
