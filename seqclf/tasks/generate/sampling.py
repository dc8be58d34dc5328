"""Writing with a generator's network: the class's start token first, then each sampled word fed back
as the next input (the encoder's state carried along by its ``step``), until the end token or ``max_words``."""

from __future__ import annotations

import torch

from seqclf.models.networks import LanguageModel


@torch.inference_mode()
def sample(
    net: LanguageModel,
    starts: torch.Tensor,
    max_words: int,
    end: int,
    banned: list[int],
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> list[list[int]]:
    """Token ids written after each of ``starts`` (one start token per text), without the end token.
    ``temperature`` 0 takes the most probable word; ``top_k`` samples among the k most probable;
    ``banned`` ids (padding, unknown, start tokens) are never written."""
    net.eval()
    inputs, state = starts.view(-1, 1), None
    written = torch.empty(len(starts), 0, dtype=torch.long, device=starts.device)
    finished = torch.zeros(len(starts), dtype=torch.bool, device=starts.device)
    for _ in range(max_words + 1):  # max_words words, then room for the end token
        out, state = net.encoder.step(inputs, state)
        logits = net.next_word_scores(out[:, -1]).float()
        logits[:, banned] = float("-inf")
        if temperature == 0:
            chosen = logits.argmax(dim=-1)
        else:
            logits = logits / temperature
            if top_k is not None and top_k < logits.shape[-1]:
                kth = logits.topk(top_k, dim=-1).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            chosen = torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(-1)
        chosen = chosen.masked_fill(finished, end)
        finished |= chosen == end
        written = torch.cat([written, chosen.unsqueeze(-1)], dim=-1)
        if bool(finished.all()):
            break
        inputs = chosen.unsqueeze(-1)
    texts = []
    for row in written.tolist():
        words = row[: row.index(end)] if end in row else row
        texts.append(words[:max_words])
    return texts
