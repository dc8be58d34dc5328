"""Long texts: the cost of a training step with the cells reading the padding (the lecture's way) or
each text's own words only (model.encoder.packed=true), in batches drawn at random or of similar
lengths (data.bucket=true), on the real IMDB at data.max_len words (pre-padded, the last words kept).
Milliseconds per step (forward, backward, Adam) over the same batches, one thread, medians of 3 passes.

    python benchmarks/lengths.py --data ../shared/data/imdb --max-len 400
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch


def batches(dm, bucket: bool, n: int) -> list[torch.Tensor]:
    from seqclf.data.batches import BatchOrder

    lengths = (dm.train_set.x != 0).sum(dim=1) if bucket else None
    order = BatchOrder(len(dm.train_set), 32, seed=42, lengths=lengths)
    return [dm.train_set.x[rows] for rows in order.batches(epoch=0)[:n]]


def step_ms(cell: str, embed: int, hidden: int, packed: bool, xs: list[torch.Tensor], vocab: int) -> float:
    from seqclf.models.encoders import RecurrentEncoder
    from seqclf.models.networks import SequenceClassifier

    torch.manual_seed(0)
    net = SequenceClassifier(RecurrentEncoder(vocab, cell, embed, hidden, packed=packed))
    optimizer = torch.optim.Adam(net.parameters(), fused=True)
    y = torch.zeros(32)
    passes = []
    for _ in range(3):
        start = time.perf_counter()
        for x in xs:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x), y[: len(x)])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        passes.append((time.perf_counter() - start) / len(xs) * 1000)
    return statistics.median(passes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--max-len", type=int, default=400)
    parser.add_argument("--steps", type=int, default=60, help="batches timed per setting")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from seqclf.data import TextDataModule

    with tempfile.TemporaryDirectory() as cache:
        dm = TextDataModule(path=args.data, cache_dir=cache, max_len=args.max_len, progress=False)
        dm.prepare_data()
        dm.setup("fit")
    words = (dm.train_set.x != 0).sum(dim=1).float()
    print(f"{len(words)} training reviews at {args.max_len} words: {words.mean():.0f} words on average, "
          f"{(words == args.max_len).float().mean():.0%} cut at {args.max_len}")  # fmt: skip
    drawn = {bucket: batches(dm, bucket, args.steps) for bucket in (False, True)}
    for bucket, xs in drawn.items():
        longest = statistics.mean(int((x != 0).sum(dim=1).max()) for x in xs)
        print(f"batches {'of similar lengths' if bucket else 'at random'}: longest text {longest:.0f} words on average")
    print("\n| model | padding read, random | packed, random | padding read, buckets | packed, buckets |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for cell, embed, hidden in (("lstm", 16, 32), ("lstm", 64, 128), ("gru", 64, 128)):
        cells = [step_ms(cell, embed, hidden, packed, drawn[bucket], dm.tokenizer.vocab_size)
                 for bucket in (False, True) for packed in (False, True)]  # fmt: skip
        print(f"| {cell} {embed}/{hidden} | " + " | ".join(f"{ms:.1f} ms" for ms in cells) + " |")


if __name__ == "__main__":
    main()
