"""seqclf-export: every cell and encoder, a classifier's three kinds and a tagger, as ONNX and
TorchScript, give PyTorch's scores (to seqclf.export.TOLERANCE) on batches of other shapes than the
traced one; onnx_predict.py with onnxruntime alone (torch and seqclf unimportable) reproduces
seqclf-predict's records; what cannot be exported is one paragraph, and nothing is written."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_seqclf

from seqclf.data.labels import Labels
from seqclf.data.text import SPECIALS, WordTokenizer, tokenize_rules
from seqclf.errors import SeqclfError
from seqclf.export import TOLERANCE, export
from seqclf.models import encoders
from seqclf.models.encoders import Encoder
from seqclf.models.networks import LanguageModel, SequenceClassifier, SequenceTagger
from seqclf.tasks.classify.inference import Classifier
from seqclf.tasks.generate.inference import Generator
from seqclf.tasks.tagging.inference import Tagger

RECURRENT = "seqclf.models.encoders.RecurrentEncoder"
ENCODERS = {
    "rnn": {"_target_": RECURRENT, "cell": "rnn", "embed_dim": 8, "hidden_size": 6},
    "lstm": {"_target_": RECURRENT, "cell": "lstm", "embed_dim": 8, "hidden_size": 6},
    "gru": {"_target_": RECURRENT, "cell": "gru", "embed_dim": 8, "hidden_size": 6},
    "bigru-2-layers": {"_target_": RECURRENT, "cell": "gru", "embed_dim": 8, "hidden_size": 6, "bidirectional": True,
                       "num_layers": 2},
    "lstm-packed": {"_target_": RECURRENT, "cell": "lstm", "embed_dim": 8, "hidden_size": 6, "packed": True},
    "bilstm-packed": {"_target_": RECURRENT, "cell": "lstm", "embed_dim": 8, "hidden_size": 6, "packed": True,
                      "bidirectional": True},
    "bag": {"_target_": "seqclf.models.bag.BagEncoder", "embed_dim": 8, "ngrams": 3, "buckets": 997, "sparse": False},
    "hybrid": {"_target_": "seqclf.models.bag.HybridEncoder", "recurrent": {"cell": "gru", "embed_dim": 8,
               "hidden_size": 6, "packed": True}, "bag": {"embed_dim": 4, "sparse": False}},
}  # fmt: skip
WORDS = [f"w{i}" for i in range(40)]
TEXTS = [
    "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15 w16",  # longer than max_len: truncated
    "W3, w5! <br />w7's w8_w9 \u201cw10\u201d \u00e9l\u00e8ve w11 \U0001f600",  # case, marks, a tag, an emoji
    "w20",
    "",  # blank: the empty record
    "?!",  # no words: all padding
    "unknown words only",
]


def tokenizer(padding: str = "pre", truncation: str = "pre") -> WordTokenizer:
    return WordTokenizer([*SPECIALS, *WORDS], max_len=12, padding=padding, truncation=truncation)


def trained(net: torch.nn.Module, targets) -> torch.nn.Module:
    """``net`` after a few Adam steps on random texts, so that no weight is at its start."""
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(5):
        tokens = torch.randint(0, len(SPECIALS) + len(WORDS), (16, 12))
        optimizer.zero_grad()
        out = net(tokens)
        targets(out).backward()
        optimizer.step()
    return net.eval()


def classifier(spec: dict, kind: str, pooling: str = "last", padding: str = "pre") -> Classifier:
    names = {"binary": ("neg", "pos"), "multiclass": ("a", "b", "c"), "multilabel": ("x", "y", "z")}[kind]
    labels = Labels(names, kind == "multilabel")
    torch.manual_seed(1)
    net = SequenceClassifier(encoders.build(spec, len(SPECIALS) + len(WORDS)), labels.num_outputs, pooling, 0.1)
    return Classifier(trained(net, lambda out: out.pow(2).mean() - out[..., 0].mean()), tokenizer(padding), labels)


def tagger(spec: dict, padding: str = "pre") -> Tagger:
    torch.manual_seed(1)
    net = SequenceTagger(encoders.build(spec, len(SPECIALS) + len(WORDS)), 3)
    labels = Labels(("O", "B-X", "I-X"), False)
    return Tagger(trained(net, lambda out: out[..., 1].mean() - out[..., 2].pow(2).mean()), tokenizer(padding), labels)


def other_batch() -> torch.Tensor:
    """A batch neither traced nor checked by the export: 6 texts of 17 steps, pre-padded."""
    ids = torch.randint(1, len(SPECIALS) + len(WORDS), (6, 17), generator=torch.Generator().manual_seed(5))
    for i, pad in enumerate((0, 3, 9, 16, 1, 12)):
        ids[i, :pad] = 0
    return ids


def exported_scores(path: Path, fmt: str, tokens: torch.Tensor) -> torch.Tensor:
    if fmt == "torchscript":
        return torch.jit.load(str(path))(tokens)
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {"tokens": tokens.numpy()})[0])


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("name", list(ENCODERS))
def test_each_encoder_exports_and_gives_pytorchs_scores(tmp_path, name, fmt):
    model = classifier(ENCODERS[name], "multiclass", "max" if name == "gru" else "last")
    done = export(model, fmt, tmp_path / f"model.{fmt}", source="test")
    assert done.max_difference <= TOLERANCE and done.scores_checked > 0
    network, fields = model.scores()
    tokens = other_batch()
    with torch.no_grad():
        expected = network(tokens)
    got = exported_scores(done.model, fmt, tokens)
    assert got.shape == (6, 3)
    torch.testing.assert_close(got, expected, atol=TOLERANCE, rtol=0)
    torch.testing.assert_close(got.sum(-1), torch.ones(6))  # probabilities, not logits
    manifest = json.loads(done.manifest.read_text())
    assert manifest["model"] == done.model.name and manifest["output"] == fields["output"] == "probs"
    assert manifest["labels"] == ["a", "b", "c"] and manifest["tokenizer"]["vocab"] == model.tokenizer.vocab


@pytest.mark.parametrize("kind", ["binary", "multilabel"])
def test_binary_and_multi_label_classifiers_export_each_class_probability(tmp_path, kind):
    model = classifier(ENCODERS["lstm"], kind, "mean")
    done = export(model, "onnx", tmp_path / "m.onnx")
    with torch.no_grad():
        expected = model.scores()[0](other_batch())
    got = exported_scores(done.model, "onnx", other_batch())
    assert got.shape == (6, 2 if kind == "binary" else 3)
    torch.testing.assert_close(got, expected, atol=TOLERANCE, rtol=0)
    manifest = json.loads(done.manifest.read_text())
    assert manifest["kind"] == kind and manifest["threshold"] == 0.5


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("name", ["lstm", "bilstm-packed", "bag"])
def test_a_tagger_exports_a_tag_probability_for_every_word(tmp_path, name, fmt):
    model = tagger(ENCODERS[name])
    done = export(model, fmt, tmp_path / f"tagger.{fmt}")
    tokens = other_batch()
    with torch.no_grad():
        expected = model.scores()[0](tokens)
    got = exported_scores(done.model, fmt, tokens)
    assert got.shape == (6, 17, 3)  # the batch's own length: a dynamic time axis
    torch.testing.assert_close(got, expected, atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("split", ["tokenize", "whitespace"])
def test_the_manifests_rules_split_every_character_as_seqclf_does(split):
    from seqclf.export.onnx_predict import Words

    tokenizer = WordTokenizer(list(SPECIALS), split=split)
    words = Words(tokenize_rules(split))
    every = "".join(chr(cp) for cp in range(0x20000 + 64) if not 0xD800 <= cp < 0xE000)
    texts = [f"Ab{every[i : i + 97]}c D'e<BR/>f<br />G\u2019h" for i in range(0, len(every), 97)]
    assert [words(t) for t in texts] == [tokenizer.words(t) for t in texts]


def run_standalone(script: Path, manifest: Path, texts: list[str], tmp_path: Path) -> list[dict]:
    """onnx_predict.py in a fresh interpreter where importing torch or seqclf fails."""
    listed = tmp_path / "texts.txt"
    listed.write_text("\n".join(texts) + "\n", encoding="utf-8")
    blocker = (
        "import runpy, sys; sys.modules['torch'] = None; sys.modules['seqclf'] = None; "
        f"sys.argv = [{str(script)!r}, {str(manifest)!r}, '--input', {str(listed)!r}]; "
        f"runpy.run_path({str(script)!r}, run_name='__main__')"
    )
    done = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.parametrize("padding", ["pre", "post"])
def test_the_onnxruntime_script_reproduces_predict_for_a_tagger(tmp_path, padding):
    model = tagger(ENCODERS["gru"], padding)
    done = export(model, "onnx", tmp_path / "tagger.onnx")
    script = Path(__file__).resolve().parents[1] / "seqclf" / "export" / "onnx_predict.py"
    records = run_standalone(script, done.manifest, TEXTS, tmp_path)
    expected = model.predict([t for t in TEXTS if t.strip()])
    got = [r for r in records if r["text"].strip()]
    assert [{k: r[k] for k in ("words", "tags")} for r in got] == expected
    assert len(got[0]["tags"]) == 16  # longer than max_len: tagged in two pieces, as predict does
    assert records[3] == {"text": "", "tags": None, "error": "empty text: nothing to tag"}


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel"])
def test_the_onnxruntime_script_reproduces_predict_for_a_classifier(tmp_path, kind):
    model = classifier(ENCODERS["bilstm-packed"], kind, "last", padding="post")
    done = export(model, "onnx", tmp_path / "classifier.onnx")
    script = Path(__file__).resolve().parents[1] / "seqclf" / "export" / "onnx_predict.py"
    records = run_standalone(script, done.manifest, TEXTS, tmp_path)
    expected = model.predict([t for t in TEXTS if t.strip()])
    got = [r for r in records if r["text"].strip()]
    key = "labels" if kind == "multilabel" else "label"
    assert [r[key] for r in got] == [r[key] for r in expected]
    for mine, theirs in zip(got, expected, strict=True):
        assert list(mine["probs"]) == list(theirs["probs"])  # most probable first
        assert np.allclose(list(mine["probs"].values()), list(theirs["probs"].values()), atol=1e-5)
    assert records[3] == {"text": "", "label": None, "probs": None, "error": "empty text: nothing to classify"}


@pytest.mark.slow  # two commands on a trained run: pytest -m slow (CI runs both)
def test_seqclf_export_and_the_onnxruntime_script_reproduce_seqclf_predict(tmp_path, topic_run, topics_dir):
    run, env, _ = topic_run
    ckpt = run / "checkpoints" / "last.ckpt"
    copy = tmp_path / "model.ckpt"
    copy.write_bytes(ckpt.read_bytes())
    done = run_seqclf("export", f"ckpt_path={copy}", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "checked against PyTorch" in done.stdout
    onnx_file, manifest, script = tmp_path / "model.onnx", tmp_path / "model.json", tmp_path / "onnx_predict.py"
    assert onnx_file.is_file() and manifest.is_file() and script.is_file()
    spec = json.loads(manifest.read_text())
    assert spec["task"] == "classify" and spec["source"] == str(copy)
    with open(topics_dir / "test.csv", newline="") as f:
        texts = [row["quip"] for row in csv.DictReader(f)] + TEXTS
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("\n".join(texts) + "\n")
    predicted = run_seqclf("predict", f"ckpt_path={copy}", f"input={inputs}", env=env, cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    expected = [json.loads(line) for line in predicted.stdout.splitlines()]
    got = run_standalone(script, manifest, texts, tmp_path)
    assert [r.get("label") for r in got] == [r.get("label") for r in expected]
    for mine, theirs in zip(got, expected, strict=True):
        assert mine.keys() == theirs.keys()
        if theirs["probs"] is not None:
            assert list(mine["probs"]) == list(theirs["probs"])  # most probable first
            assert np.allclose(list(mine["probs"].values()), list(theirs["probs"].values()), atol=1e-5)
    torchscript = run_seqclf("export", f"ckpt_path={copy}", "format=torchscript", env=env, cwd=tmp_path)
    assert torchscript.returncode == 0, torchscript.stderr
    assert (tmp_path / "model.pt").is_file()


def test_what_cannot_be_exported_is_one_paragraph_and_writes_nothing(tmp_path, monkeypatch):
    net = LanguageModel(encoders.build(ENCODERS["gru"], len(SPECIALS) + len(WORDS)), len(SPECIALS) + len(WORDS))
    writer = Generator(net, tokenizer(), Labels(("neg", "pos"), False))
    with pytest.raises(SeqclfError, match="generator's .* seqclf-export writes classifiers and taggers"):
        export(writer, "onnx", tmp_path / "w.onnx")
    with pytest.raises(SeqclfError, match="format=tflite is not one seqclf exports"):
        export(classifier(ENCODERS["rnn"], "binary"), "tflite", tmp_path / "m.tflite")

    class Counting(Encoder):  # reads a number from a tensor, which tracing fixes to the traced batch's
        def __init__(self, vocab_size: int, pad_idx: int = 0):
            super().__init__()
            self.embedding, self.features, self.causal = torch.nn.Embedding(vocab_size, 4), 4, True

        def forward(self, tokens, mask):
            return self.embedding(tokens) * float(mask.sum())

    net = SequenceClassifier(Counting(len(SPECIALS) + len(WORDS)), 2, "mean")
    with pytest.raises(SeqclfError, match="differ from PyTorch's .* nothing was written"):
        export(Classifier(net.eval(), tokenizer(), Labels(("a", "b"), False)), "onnx", tmp_path / "c.onnx")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(SeqclfError, match=r"needs the onnxruntime package.*seqclf\[export\]"):
        export(classifier(ENCODERS["rnn"], "binary"), "onnx", tmp_path / "m.onnx")


def test_the_command_refuses_to_write_over_its_checkpoint(tmp_path, monkeypatch, capsys):
    from seqclf.cli.export import main

    monkeypatch.chdir(tmp_path)
    ckpt = tmp_path / "m.ckpt"
    ckpt.write_bytes(b"not touched")
    for args, message in (
        ([f"output={ckpt}"], "over the checkpoint itself"),
        (["output=m.json"], "ends in .json, the name of its manifest"),
        (["format=tflite"], "format=tflite is not one seqclf exports"),
        ([f"output={tmp_path}"], "is a folder"),
    ):
        with pytest.raises(SystemExit) as stopped:
            main([f"ckpt_path={ckpt}", *args])
        assert stopped.value.code == 2 and message in capsys.readouterr().err
    assert ckpt.read_bytes() == b"not touched" and sorted(p.name for p in tmp_path.iterdir()) == ["m.ckpt"]
