"""Predict throughput, PyTorch against onnxruntime: texts per second at batch 1 and 256 on the real
IMDB test reviews, for the lecture's model (Embedding(10000, 16) -> LSTM(32), the last 32 words)
and the 200-word GRU of experiment=long_reviews (16/32, the last 200 words). Two rows per model:
the network alone (word ids in, probabilities out) and end to end (text in, label and probabilities
out: seqclf.load(...).predict against onnx_predict.py). The same threads for both (--threads),
medians of 3 passes; the weights are a fresh network's (the work per text does not depend on them).

    python benchmarks/export.py --data ../shared/data/imdb
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

MODELS = {
    "lecture LSTM 16/32, 32 words": ("lstm", 32),
    "long_reviews GRU 16/32, 200 words": ("gru", 200),
}


def rate(run, items: list, batch: int) -> float:
    """Texts per second of ``run`` over ``items`` in batches of ``batch``: the median of 3 passes."""
    passes = []
    for _ in range(3):
        start = time.perf_counter()
        for i in range(0, len(items), batch):
            run(items[i : i + batch])
        passes.append(time.perf_counter() - start)
    return len(items) / statistics.median(passes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="IMDB in the Hub's layout (e.g. ../shared/data/imdb)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--texts", type=int, default=2048, help="test reviews per pass at batch 256 (batch 1: 1/8)")
    args = parser.parse_args()
    import onnxruntime
    import pyarrow.parquet as pq

    from seqclf.data.labels import Labels
    from seqclf.data.text import WordTokenizer
    from seqclf.export import export
    from seqclf.export.onnx_predict import Model
    from seqclf.models.encoders import RecurrentEncoder
    from seqclf.models.networks import SequenceClassifier
    from seqclf.tasks.classify.inference import Classifier

    torch.set_num_threads(args.threads)
    root = Path(args.data) / "plain_text"
    train = pq.read_table(next(root.glob("train-*.parquet")), columns=["text"]).column("text").to_pylist()
    test = pq.read_table(next(root.glob("test-*.parquet")), columns=["text"]).column("text").to_pylist()
    texts = test[: args.texts]
    print(f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, {args.threads} threads each")
    print("| model | path | PyTorch, batch 1 | onnxruntime, batch 1 | PyTorch, batch 256 | onnxruntime, batch 256 |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (cell, length) in MODELS.items():
            tokenizer = WordTokenizer.fit(train, 10000, max_len=length)
            torch.manual_seed(0)
            net = SequenceClassifier(RecurrentEncoder(10000, cell, 16, 32))
            model = Classifier(net, tokenizer, Labels(("neg", "pos"), False))
            done = export(model, "onnx", Path(tmp) / f"{cell}{length}.onnx")
            runtime = Model(done.manifest)
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = args.threads
            runtime.session = onnxruntime.InferenceSession(str(done.model), options, providers=["CPUExecutionProvider"])
            network = model.scores()[0].eval()
            ids = torch.from_numpy(tokenizer.encode(texts).astype("int64"))

            def torch_net(rows, network=network):
                with torch.inference_mode():
                    return network(torch.stack(rows))

            def onnx_net(rows, runtime=runtime):
                return runtime.scores(torch.stack(rows).numpy())

            rows = list(ids)
            for path, ours, theirs, items in (
                ("network (ids in)", torch_net, onnx_net, rows),
                ("end to end (text in)", lambda b, m=model: m.predict(b, 256), runtime.predict, texts),
            ):
                few = items[: len(items) // 8]
                cells = [rate(ours, few, 1), rate(theirs, few, 1), rate(ours, items, 256), rate(theirs, items, 256)]
                print(f"| {name} | {path} | " + " | ".join(f"{c:,.0f}" for c in cells) + " |", flush=True)


if __name__ == "__main__":
    main()
