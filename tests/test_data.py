"""TextDataModule (IMDB's preset here; other datasets in test_datasets.py): reading, splitting, caching,
batching and the errors bad data gets."""

import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import make_imdb, write_split

from seqclf.data import Labels, TextDataModule, sources
from seqclf.data.split import stratified_split
from seqclf.errors import ConfigError, DataError

SPLITS = {"train": ("train",), "test": ("test",)}


def datamodule(path, tmp_path, **kwargs) -> TextDataModule:
    settings = dict(
        path=str(path),
        cache_dir=str(tmp_path / "cache"),
        vocab_size=30,
        max_len=10,
        batch_size=16,
        eval_batch_size=32,
        progress=False,
    )
    dm = TextDataModule(**{**settings, **kwargs})
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_stratified_split_keeps_label_shares_and_is_seeded():
    labels = np.array([0] * 600 + [1] * 400)  # label-sorted, as the Hub's IMDB
    train, val = stratified_split(labels, 0.1, seed=7)
    assert len(val) == 100 and len(train) == 900
    assert set(train).isdisjoint(val) and len(set(train) | set(val)) == 1000
    assert (labels[val] == 0).sum() == 60 and (labels[val] == 1).sum() == 40
    assert np.array_equal(val, stratified_split(labels, 0.1, seed=7)[1])
    assert not np.array_equal(val, stratified_split(labels, 0.1, seed=8)[1])
    with pytest.raises(DataError, match="val_fraction"):
        stratified_split(np.array([0, 1]), 0.1, seed=0)


def test_label_sorted_data_gives_mixed_batches_and_a_stratified_validation_split(imdb_dir, tmp_path):
    dm = datamodule(imdb_dir, tmp_path)
    assert len(dm.train_set) == 180 and len(dm.val_set) == 20 and len(dm.test_set) == 80
    assert dm.val_set.y.sum().item() == 10  # half of each class, not the tail of the sorted file
    # evaluated in a mixed order: the first few reviews of either split are not all one class
    assert 0 < dm.val_set.y[:8].sum() < 8 and 0 < dm.test_set.y[:16].sum() < 16
    loader, firsts = dm.train_dataloader(), []
    assert (loader.sampler.steps_per_execution, len(loader), loader.sampler.num_steps) == (64, 1, 12)
    for epoch in range(3):  # every epoch: a new order, each batch mixes classes, each review once
        loader.sampler.epoch = epoch  # with a trainer: its current epoch
        ((x, y, sizes),) = list(loader)  # one block of all 12 batches: one gather
        assert list(sizes) == [16] * 11 + [4]
        batches = list(zip(x.split(sizes), y.split(sizes), strict=True))
        firsts.append(batches[0][0])
        assert all(0 < y.sum() < len(y) for _, y in batches[:-1])
        assert len(x) == len(dm.train_set) and len(torch.unique(x, dim=0)) == len(torch.unique(dm.train_set.x, dim=0))
    assert not torch.equal(firsts[0], firsts[1]) and not torch.equal(firsts[1], firsts[2])
    loader.sampler.epoch = 1
    assert torch.equal(next(iter(loader))[0][:16], firsts[1])  # the order depends on (seed, epoch) only
    ((x, y, sizes),) = list(dm.val_dataloader())  # evaluation batches come in blocks too: one here
    assert x.shape == (20, 10) and x.dtype == torch.int64 and y.dtype == torch.float32 and sum(sizes) == 20


def test_validation_on_the_test_split_as_the_lecture_did(imdb_dir, tmp_path):
    dm = datamodule(imdb_dir, tmp_path, val_split="test")
    assert len(dm.train_set) == 200 and dm.val_set is dm.test_set and len(dm.test_set) == 80
    with pytest.raises(ConfigError, match="data.val_split='' must be a name"):
        TextDataModule(val_split="")
    with pytest.raises(DataError, match="has no 'dev' split"):  # a split named by the user must exist
        datamodule(imdb_dir, tmp_path, val_split="dev")


def test_vocabulary_comes_from_train_only(imdb_dir, tmp_path):
    dm = datamodule(imdb_dir, tmp_path, vocab_size=1000)
    assert "zebra" not in dm.tokenizer.index  # a test-only word
    assert "great" in dm.tokenizer.index and "awful" in dm.tokenizer.index
    assert dm.tokenizer.vocab_size < 1000


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_csv_and_json_lines_load_like_parquet(imdb_dir, tmp_path, fmt):
    other = make_imdb(tmp_path / fmt, fmt=fmt)
    a, b = datamodule(imdb_dir, tmp_path), datamodule(other, tmp_path)
    assert a.tokenizer.vocab == b.tokenizer.vocab
    assert torch.equal(a.test_set.x, b.test_set.x) and torch.equal(a.train_set.y, b.train_set.y)


def test_encoded_splits_are_cached_and_keyed_by_settings(imdb_dir, tmp_path, monkeypatch):
    first = datamodule(imdb_dir, tmp_path)
    monkeypatch.setattr(sources, "load_local", lambda *a: pytest.fail("raw data re-read despite the cache"))
    second = datamodule(imdb_dir, tmp_path)
    assert second.cache_dir == first.cache_dir and torch.equal(second.train_set.x, first.train_set.x)
    # Other settings, another cache.
    other = TextDataModule(path=str(imdb_dir), cache_dir=str(tmp_path / "cache"), vocab_size=30, max_len=11)
    assert other.cache_dir != first.cache_dir
    assert sorted(p.name for p in first.cache_dir.iterdir()) == [
        "meta.json",
        "test_x.npy",
        "test_y.npy",
        "tokenizer.json",
        "train_keys.npy",
        "train_x.npy",
        "train_y.npy",
    ]
    assert not [p for p in first.cache_dir.parent.iterdir() if p.name.startswith(".")]  # no temp folders left


@pytest.mark.parametrize(
    "damage",
    ["cut_array", "delete_array", "delete_meta", "garbage_tokenizer", "changed_array"],
)
def test_a_damaged_cache_is_rebuilt_with_a_warning(imdb_dir, tmp_path, caplog, damage):
    first = datamodule(imdb_dir, tmp_path)
    folder = first.cache_dir
    array = folder / "train_x.npy"
    if damage == "cut_array":
        array.write_bytes(array.read_bytes()[: array.stat().st_size // 2])
    elif damage == "delete_array":
        array.unlink()
    elif damage == "delete_meta":
        (folder / "meta.json").unlink()
    elif damage == "garbage_tokenizer":
        (folder / "tokenizer.json").write_text("{not json")
    elif damage == "changed_array":  # same size, other values: a training run on someone else's data
        data = bytearray(array.read_bytes())
        data[-4:] = b"\x01\x00\x00\x00"
        array.write_bytes(bytes(data))
    caplog.clear()
    again = datamodule(imdb_dir, tmp_path)
    assert "is damaged" in caplog.text and "rebuilding it" in caplog.text
    assert again.cache_dir == folder and torch.equal(again.train_set.x, first.train_set.x)
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # nothing left aside
    caplog.clear()
    datamodule(imdb_dir, tmp_path)
    assert "is damaged" not in caplog.text  # healed


def test_eval_reads_and_encodes_the_test_split_only(imdb_dir, tmp_path, monkeypatch):
    trained = datamodule(imdb_dir, tmp_path)
    (tmp_path / "only_test").mkdir()
    test_file = next((imdb_dir / "plain_text").glob("test-*"))
    (tmp_path / "only_test" / test_file.name).write_bytes(test_file.read_bytes())  # no train split at all
    dm = datamodule(
        tmp_path / "only_test",
        tmp_path,
        tokenizer=trained.tokenizer.to_json(),
        labels=trained.labels.to_dict(),
        splits=["test"],
    )
    assert torch.equal(dm.test_set.x, trained.test_set.x) and dm.train_set is None
    assert sorted(p.name for p in dm.cache_dir.glob("*.npy")) == ["test_x.npy", "test_y.npy"]


def test_datamodule_state_carries_the_tokenizer(imdb_dir, tmp_path):
    dm = datamodule(imdb_dir, tmp_path)
    state = dm.state_dict()
    assert state["tokenizer"] == dm.tokenizer.to_json()
    dm.load_state_dict(state)  # same vocabulary: accepted
    other = datamodule(imdb_dir, tmp_path, vocab_size=20)
    with pytest.raises(DataError, match="different vocabulary|differs"):
        other.load_state_dict(state)


def test_missing_folder_and_missing_split_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match=r"data.path=.*nowhere does not exist.*text column\(s\) \['text'\]"):
        TextDataModule(path=str(tmp_path / "nowhere"), cache_dir=str(tmp_path)).prepare_data()
    write_split(tmp_path / "only_train", "train", [{"text": "a", "label": 0}], "jsonl")
    with pytest.raises(DataError, match="has no 'test' split"):
        TextDataModule(path=str(tmp_path / "only_train"), cache_dir=str(tmp_path)).prepare_data()


@pytest.mark.parametrize(
    "rows, message",
    [
        ([{"review": "a", "label": 0}], r"lacks the column\(s\) \['text'\]"),
        ([{"text": "a", "label": 2}], "every text has the label '2'; training needs texts of at least two classes"),
        ([{"text": None, "label": 1}], "not a string"),
    ],
)
def test_bad_columns_and_labels_are_clear_errors(tmp_path, rows, message):
    for split in ("train", "test"):
        write_split(tmp_path / "bad", split, rows, "jsonl")
    with pytest.raises(DataError, match=message):
        TextDataModule(path=str(tmp_path / "bad"), cache_dir=str(tmp_path / "cache")).prepare_data()


def write_both(folder, name, data: bytes):
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        (folder / f"{split}.{name}").write_bytes(data)
    return folder


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("csv", b"text,label\n" + b"fine,0\n" * 11 + b"caf\xe9,1\n", "the text of row 12 is not valid UTF-8"),
        ("jsonl", b'{"text":"a","label":0}\n' * 3 + b'{"text":"a","label":NaN}\n', r"row 4 has no label \(nan\)"),
        ("csv", b"text,label\n" + b"a,1\n" * 3 + b"b,\n", r"row 4 has no label \(None\)"),
        ("jsonl", b'{"text":"a","label":1}\n{"text":"b","label":1}\n', "every text has the label '1'; training needs"),
        ("jsonl", b'{"text":" ","label":0}\n{"text":"","label":1}\n', "every text is empty"),
        ("txt", b"__label__a fine\nno label here\n", r"line 2: it does not start with a label \(__label__<name>\)"),
        (
            "csv",
            b"review,label\nfine,0\n",
            r"lacks the column\(s\) \['text'\]; found \['review', 'label'\].*data.text_column",
        ),
    ],
)
def test_bad_rows_are_named_by_their_own_row(tmp_path, name, data, message):
    folder = write_both(tmp_path / "bad", name, data)
    with pytest.raises(DataError, match=message):
        TextDataModule(path=str(folder), cache_dir=str(tmp_path / "cache"), progress=False).prepare_data()


@pytest.mark.parametrize("name", ["jsonl", "csv"])
def test_a_review_longer_than_a_read_block_is_read(tmp_path, name):
    long = "word " * 400_000  # 2 MB, more than pyarrow's default block
    rows = [{"text": "short", "label": 0}, {"text": long, "label": 1}, {"text": "1.0 labels", "label": 1.0}]
    for split in ("train", "test"):
        write_split(tmp_path / name, split, rows, name)
    raw = sources.load_local(sources.find_local_files(tmp_path / name, SPLITS), sources.Columns())
    labels = Labels.fit(raw["train"].labels, "train")
    assert raw["train"].texts[1] == long and labels.encode(raw["train"].labels, "train").tolist() == [0, 1, 1]


def test_unreachable_hub_without_data_path_fails_fast_with_help(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    start = time.perf_counter()
    with pytest.raises(DataError) as err:
        TextDataModule(path=None, cache_dir=str(tmp_path)).prepare_data()
    assert time.perf_counter() - start < 10
    message = str(err.value)
    assert "stanfordnlp/imdb" in message and "data.path" in message and "HF_DATASETS_OFFLINE" in message


def test_invalid_arguments_are_rejected(tmp_path):
    with pytest.raises(ConfigError, match="val_fraction=1.5"):
        TextDataModule(val_fraction=1.5)
    with pytest.raises(ConfigError, match="data.steps_per_execution=0 must be a positive integer"):
        TextDataModule(steps_per_execution=0)
    for bad in (-3, 0, 1.5, True):
        with pytest.raises(ConfigError, match=f"trainer.limit_train_batches={bad!r} must be a number of batches"):
            TextDataModule(limit_train_batches=bad)
    with pytest.raises(ValueError, match="data.truncation='middle'"):
        TextDataModule(truncation="middle")


def test_batches_are_served_from_the_trainers_device(imdb_dir, tmp_path):
    """The GPU fast path: the split moves to the trainer's device once; batches are gathered there.
    The meta device stands in for CUDA here; the CUDA test below runs where a GPU is present."""
    dm = datamodule(imdb_dir, tmp_path, steps_per_execution=1)
    assert next(iter(dm.train_dataloader()))[0].device.type == "cpu"  # no trainer attached
    progress = SimpleNamespace(current=SimpleNamespace(completed=0))
    dm.trainer = SimpleNamespace(
        strategy=SimpleNamespace(root_device=torch.device("meta")),
        current_epoch=0,
        fit_loop=SimpleNamespace(epoch_loop=SimpleNamespace(batch_progress=progress)),
    )
    x, y, sizes = next(iter(dm.train_dataloader()))
    assert x.device.type == y.device.type == dm.train_set.x.device.type == "meta"
    assert tuple(x.shape) == (16, 10) and list(sizes) == [16]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_keeps_the_data_on_the_gpu(imdb_dir, tmp_path):
    from conftest import TINY, compose_train

    from seqclf.cli.train import train

    overrides = [o for o in TINY if o != "trainer=cpu"]
    cfg = compose_train(tmp_path, [*overrides, "trainer=gpu", f"data.path={imdb_dir}"], tiny=False)
    metrics = train(cfg)
    assert metrics["epochs"] == 1 and 0 <= metrics["test/acc"] <= 1


def test_fasttext_lines_split_at_any_whitespace(tmp_path):
    """As fastText reads them: a tab after the label ends the label."""
    from seqclf.data.formats import read_fasttext

    path = tmp_path / "train.txt"
    path.write_text("__label__a\tgood film\n__label__b  __label__c\ta dull\tone\n", encoding="utf-8")
    table = read_fasttext(path)
    assert table.column("label").to_pylist() == [["a"], ["b", "c"]]
    assert table.column("text").to_pylist() == ["good film", "a dull one"]


def test_a_parquet_text_column_stored_as_binary_is_read_as_text(tmp_path):
    """Spark and Hive write string columns as binary; valid UTF-8 is text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for split, n in (("train", 40), ("test", 10)):
        texts = [f"a {'fine' if i % 2 else 'dull'} film number {i}".encode() for i in range(n)]
        table = pa.table({"text": pa.array(texts, pa.binary()), "label": [i % 2 for i in range(n)]})
        pq.write_table(table, tmp_path / f"{split}.parquet")
    dm = datamodule(tmp_path, tmp_path)
    assert len(dm.train_set) + len(dm.val_set) == 40 and dm.tokenizer.index.get("fine", 1) > 1


def test_file_endings_in_capitals_are_read_as_what_they_are(tmp_path):
    write_split(
        tmp_path, "train", [{"text": f"a {w} film", "label": i % 2} for i, w in enumerate(["fine"] * 40)], "csv"
    )
    write_split(tmp_path, "test", [{"text": "a fine film", "label": 1}, {"text": "a dull film", "label": 0}], "jsonl")
    (tmp_path / "train.csv").rename(tmp_path / "train.CSV")
    (tmp_path / "test.jsonl").rename(tmp_path / "test.JSONL")
    dm = datamodule(tmp_path, tmp_path)
    assert len(dm.train_set) + len(dm.val_set) == 40 and len(dm.test_set) == 2


def test_integer_labels_beyond_2_to_the_53_keep_their_classes(tmp_path):
    """A CSV reader that infers numbers made 99999999999999999999999 and ...998 one float: one class."""
    big, bigger = "99999999999999999999998", "99999999999999999999999"
    rows = [f"a {'fine' if i % 2 else 'dull'} film {i},{bigger if i % 2 else big}" for i in range(40)]
    (tmp_path / "train.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
    (tmp_path / "test.csv").write_text(f"text,label\na fine film,{bigger}\na dull film,{big}\n")
    dm = datamodule(tmp_path, tmp_path)
    assert dm.labels.names == (big, bigger)
    as_json = tmp_path / "json"  # and in JSON Lines, whose reader makes such numbers floats too
    as_json.mkdir()
    for split, n in (("train", 40), ("test", 2)):
        lines = [f'{{"text": "film {i}", "label": {bigger if i % 2 else big}}}' for i in range(n)]
        (as_json / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    assert datamodule(as_json, tmp_path / "j").labels.names == (big, bigger)
    small = tmp_path / "small"
    small.mkdir()
    (small / "train.csv").write_text("text,label\n" + "".join(f"film {i},{i % 3}.0\n" for i in range(30)))
    (small / "test.csv").write_text("text,label\nfilm,2\n")
    assert datamodule(small, tmp_path / "s").labels.names == ("0", "1", "2")  # 1.0 reads as the class 1
