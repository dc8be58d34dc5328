"""Predict with a model seqclf-export wrote as ONNX, with onnxruntime and numpy only (no torch, no
seqclf): seqclf-export copies this file beside the model; copy the three files anywhere.

    python onnx_predict.py best.json "A wonderful, moving film." "Dull."
    python onnx_predict.py best.json --input reviews.txt > predictions.jsonl

Each text gives one JSON line, as seqclf-predict writes it: a classifier's "label" (multi-label:
"labels") and "probs", a tagger's "words" and "tags". The manifest (best.json) holds the
vocabulary and the rules that turn a text into the model's word ids; this file repeats them.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import unicodedata
from pathlib import Path

import numpy as np
import onnxruntime


class Words:
    """A text's words by the manifest's rules (seqclf's WordTokenizer.words)."""

    def __init__(self, rules: dict):
        self.breaks = re.compile(rules["breaks"], re.IGNORECASE) if rules["breaks"] else None
        categories = tuple(rules["to_space_categories"])
        table = {cp: " " for cp in range(rules["to_space_below"]) if unicodedata.category(chr(cp))[0] in categories}
        table.update({ord(char): " " for char in rules["to_space"]})
        table.update({ord(char): None for char in rules["removed"]})
        self.table = table

    def __call__(self, text: str) -> list[str]:
        text = text.lower()
        if self.breaks is not None:
            text = self.breaks.sub(" ", text)
        return text.translate(self.table).split()


class Model:
    def __init__(self, manifest: str | Path):
        path = Path(manifest)
        self.spec = json.loads(path.read_text(encoding="utf-8"))
        if self.spec.get("format") != "seqclf.Export/1" or self.spec.get("model_format") != "onnx":
            raise SystemExit(f"{path} is not the manifest of a model seqclf-export wrote as ONNX")
        self.session = onnxruntime.InferenceSession(str(path.parent / self.spec["model"]))
        tok = self.spec["tokenizer"]
        self.max_len, self.pre_pad, self.pre_trunc = tok["max_len"], tok["padding"] == "pre", tok["truncation"] == "pre"
        self.index = {word: i for i, word in enumerate(tok["vocab"])}
        self.unk, self.pad = tok["unk_id"], tok["pad_id"]
        self.words, self.labels = Words(tok["rules"]), self.spec["labels"]

    def ids(self, rows: list[list[str]]) -> np.ndarray:
        """Word lists -> (len(rows), max_len) int64 ids, truncated and padded at the manifest's sides."""
        n = self.max_len
        out = np.full((len(rows), n), self.pad, dtype=np.int64)
        for i, words in enumerate(rows):
            kept = [self.index.get(w.lower(), self.unk) for w in (words[-n:] if self.pre_trunc else words[:n])]
            if kept and self.pre_pad:
                out[i, n - len(kept) :] = kept
            elif kept:
                out[i, : len(kept)] = kept
        return out

    def scores(self, ids: np.ndarray, batch_size: int = 256) -> np.ndarray:
        parts = [self.session.run(None, {"tokens": ids[i : i + batch_size]})[0] for i in range(0, len(ids), batch_size)]
        return np.concatenate(parts)

    def predict(self, texts: list[str]) -> list[dict]:
        todo = [i for i, t in enumerate(texts) if t.strip()]
        got = self._classify(texts, todo) if self.spec["task"] == "classify" else self._tag(texts, todo)
        records = [{"text": t, **self.spec["empty"]} for t in texts]
        for i, record in zip(todo, got, strict=True):
            records[i] = {"text": texts[i], **record}
        return records

    def _classify(self, texts: list[str], todo: list[int]) -> list[dict]:
        if not todo:
            return []
        probs = self.scores(self.ids([self.words(texts[i]) for i in todo]))
        out = []
        for p in probs.tolist():
            ranked = sorted(range(len(self.labels)), key=lambda k: -p[k])
            if self.spec["kind"] == "multilabel":
                record = {"labels": [self.labels[k] for k in ranked if p[k] > self.spec["threshold"]]}
            elif self.spec["kind"] == "binary":
                record = {"label": self.labels[1 if p[1] > 0.5 else 0]}
            else:
                record = {"label": self.labels[int(np.argmax(p))]}
            record["probs"] = {self.labels[k]: round(p[k], 6) for k in ranked}
            out.append(record)
        return out

    def _tag(self, texts: list[str], todo: list[int]) -> list[dict]:
        n, words = self.max_len, {i: self.words(texts[i]) for i in todo}
        pieces = [(i, ws[s : s + n]) for i, ws in words.items() for s in range(0, len(ws), n)]
        tags: dict[int, list[str]] = {i: [] for i in todo}
        if pieces:
            picks = self.scores(self.ids([p for _, p in pieces])).argmax(-1)
            for (i, piece), pick in zip(pieces, picks, strict=True):
                real = pick[n - len(piece) :] if self.pre_pad else pick[: len(piece)]
                tags[i].extend(self.labels[k] for k in real.tolist())
        return [{"words": words[i], "tags": tags[i]} for i in todo]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", help="the .json seqclf-export wrote beside the .onnx")
    parser.add_argument("texts", nargs="*", help="texts to predict")
    parser.add_argument("--input", help="a text file, one text per line")
    args = parser.parse_args(argv)
    texts = list(args.texts)
    if args.input:
        lines = Path(args.input).read_text(encoding="utf-8-sig").split("\n")
        texts += [line.removesuffix("\r") for line in (lines[:-1] if lines and lines[-1] == "" else lines)]
    for record in Model(args.manifest).predict(texts):
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
