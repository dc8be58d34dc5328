"""Validation that does not flatter: whole groups on one side (data.group_column) and a warning when
validation shares many texts or openings with training (seqclf.data.overlap)."""

import logging

import numpy as np
import pytest
from conftest import topic_rows, write_rows

from seqclf.data import TextDataModule
from seqclf.data.overlap import HEAD_WORDS, overlap, row_keys
from seqclf.data.split import grouped_split
from seqclf.errors import ConfigError, DataError


def test_a_grouped_split_keeps_each_group_on_one_side_and_is_seeded():
    groups = np.repeat(np.arange(50), np.arange(1, 51) % 7 + 1)  # groups of 1 to 7 rows
    train, val = grouped_split(groups, 0.2, seed=3)
    assert set(groups[train]).isdisjoint(groups[val])
    assert sorted([*train, *val]) == list(range(len(groups)))
    assert abs(len(val) - 0.2 * len(groups)) <= 7  # whole groups: within one group of the share
    assert np.array_equal(val, grouped_split(groups, 0.2, seed=3)[1])
    assert not np.array_equal(val, grouped_split(groups, 0.2, seed=4)[1])
    with pytest.raises(DataError, match="all 4 training texts in one group"):
        grouped_split(np.zeros(4), 0.2, seed=0)


def test_overlap_counts_same_texts_and_same_openings():
    opening = " ".join(f"w{i}" for i in range(HEAD_WORDS))
    train = row_keys(["A film, about  nothing!", f"{opening} then one way", "short one"])
    val = row_keys(["a FILM about nothing", f"{opening} but another way", "short two", ["short", "one"]])
    found = overlap(train, val)
    assert (found.rows, found.same, found.head) == (4, 2, 1)  # a list of words is a text too (tagging)
    assert found.flattering and "2 of the 4 validation texts (50.0%)" in found.describe()
    assert not overlap(train, row_keys(["something else entirely"])).flattering


def sibling_rows(n_products: int, seed: int) -> list[dict]:
    """Entries of one product share their opening words (a template's siblings), as a catalogue's do."""
    rows = topic_rows(n_products * 3, seed=seed)
    out = []
    for i, row in enumerate(rows):
        product = i // 3
        out.append(
            {
                "quip": f"product {product} of the catalogue for every {row['topic']} fan {row['quip']}",
                "topic": row["topic"],
                "product": f"p{product}",
            }
        )
    return out


def datamodule(root, tmp_path, **kwargs) -> TextDataModule:
    settings = dict(
        path=str(root), cache_dir=str(tmp_path / "cache"), text_column="quip", label_column="topic",
        vocab_size=50, max_len=12, progress=False, val_fraction=0.2,
    )  # fmt: skip
    dm = TextDataModule(**{**settings, **kwargs})
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_siblings_in_validation_are_warned_about_and_group_column_keeps_them_apart(tmp_path, caplog):
    write_rows(tmp_path / "data" / "train.csv", sibling_rows(40, seed=1))
    write_rows(tmp_path / "data" / "test.csv", topic_rows(30, seed=2))
    with caplog.at_level(logging.INFO, logger="seqclf.data.datamodule"):
        dm = datamodule(tmp_path / "data", tmp_path)
    assert dm.overlap.head > 0.5 * dm.overlap.rows  # most validation rows have a sibling in train
    warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warning) == 1 and "may overstate test" in warning[0] and "data.group_column=..." in warning[0]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="seqclf.data.datamodule"):
        grouped = datamodule(tmp_path / "data", tmp_path, group_column="product")
    assert grouped.overlap.head == 0 and not [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(grouped.val_set) == 24 and len(grouped.train_set) == 96  # 8 of the 40 products, whole
    train_texts = {tuple(row.tolist()) for row in grouped.train_set.x}
    assert not any(tuple(row.tolist()) in train_texts for row in grouped.val_set.x)


def test_a_bad_group_column_is_one_paragraph(tmp_path):
    write_rows(tmp_path / "data" / "train.csv", sibling_rows(10, seed=1))
    write_rows(tmp_path / "data" / "test.csv", topic_rows(30, seed=2))
    with pytest.raises(DataError, match=r"lacks the column\(s\) \['seller'\].*data.group_column=\.\.\."):
        datamodule(tmp_path / "data", tmp_path, group_column="seller")
    with pytest.raises(ConfigError, match="data.group_column=3 must be a name"):
        TextDataModule(group_column=3)


def test_max_len_auto_fits_the_length_to_the_training_texts_and_says_which_end_is_kept(tmp_path, caplog):
    rows = topic_rows(90, seed=1)
    for i, row in enumerate(rows):  # 10% long texts: the 95th percentile is a long one's length
        row["quip"] = " ".join([row["quip"]] * (6 if i % 10 == 0 else 1))
    write_rows(tmp_path / "data" / "train.csv", rows)
    write_rows(tmp_path / "data" / "test.csv", topic_rows(30, seed=2))
    with caplog.at_level(logging.INFO, logger="seqclf.data.datamodule"):
        dm = datamodule(tmp_path / "data", tmp_path, max_len="auto", truncation="post")
    lengths = sorted(len(row["quip"].split()) for row in rows)
    assert dm.max_len % 8 == 0 and dm.max_len >= int(np.percentile(lengths, 95)) > lengths[len(lengths) // 2]
    assert dm.train_set.x.shape[1] == dm.max_len == dm.tokenizer.max_len
    (line,) = [r.getMessage() for r in caplog.records if "max_len=auto" in r.getMessage()]
    assert "95% of the training texts have at most" in line and f"its first {dm.max_len} words" in line
    again = datamodule(tmp_path / "data", tmp_path, max_len="auto", truncation="post")  # from the cache
    assert again.max_len == dm.max_len and again.cache_dir == dm.cache_dir
    with pytest.raises(ConfigError, match="must be a positive number of words, or auto"):
        TextDataModule(max_len="longest")
    from seqclf.tasks.tagging.data import TaggingDataModule

    with pytest.raises(ConfigError, match="tagging needs a number of words"):
        TaggingDataModule(max_len="auto")
