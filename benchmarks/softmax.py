"""A generator's training step with a full softmax against adaptive ones (model.softmax_cutoffs), on
seqclf's own network (LanguageModel) and fused Adam, interleaved round by round; the targets are
word ranks drawn from a Zipf law (p ~ 1/rank), as a frequency-ranked vocabulary's are in text.

    python benchmarks/softmax.py                       # experiment=pretrain200's shapes, 1 thread
    python benchmarks/softmax.py --max-len 32 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from seqclf.data.text import IGNORE
from seqclf.models import LanguageModel, RecurrentEncoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab-size", type=int, default=10_000)
    parser.add_argument("--max-len", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--embed-dim", type=int, default=64)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cutoffs", nargs="*", default=["1000,5000", "2000"], help="adaptive settings to time")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ranks = torch.arange(1, args.vocab_size + 1, dtype=torch.float64)
    shape = (args.batch_size, args.max_len)
    tokens = torch.multinomial(1 / ranks, shape[0] * shape[1], replacement=True).view(shape)
    target = tokens.roll(-1, dims=1)
    target[:, -1] = IGNORE
    settings = {"full": None, **{f"[{c}]": [int(x) for x in c.split(",")] for c in args.cutoffs}}
    nets = {
        name: LanguageModel(
            RecurrentEncoder(args.vocab_size, embed_dim=args.embed_dim, hidden_size=args.hidden_size),
            args.vocab_size,
            cutoffs,
        )
        for name, cutoffs in settings.items()
    }
    optimizers = {name: torch.optim.Adam(net.parameters(), fused=True) for name, net in nets.items()}

    def step(name: str) -> float:
        start = time.perf_counter()
        total, count = nets[name].nll(nets[name](tokens), target, IGNORE)
        optimizers[name].zero_grad()
        (total / count).backward()
        optimizers[name].step()
        return time.perf_counter() - start

    for name in nets:  # warm-up
        step(name)
    seconds: dict[str, list[float]] = {name: [] for name in nets}
    for _ in range(args.rounds):
        for name in nets:
            seconds[name].append(step(name))
    full = statistics.median(seconds["full"])
    print(f"batch {shape[0]} x {shape[1]} words, vocabulary {args.vocab_size}, LSTM {args.embed_dim}/"
          f"{args.hidden_size}, {args.threads} thread(s), median of {args.rounds} interleaved steps:")  # fmt: skip
    for name, times in seconds.items():
        median = statistics.median(times)
        print(f"  softmax {name:>14}: {median * 1000:8.1f} ms a step ({full / median:.2f}x the full softmax's speed)")


if __name__ == "__main__":
    main()
