"""Sampling speed: carried LSTM state vs re-encoding the prefix every step, and batch throughput.

    python benchmarks/sampling.py [--model lstm_small] [--tokens 512]

Both samplers draw the same number of tokens from the same (untrained) model; the naive one
re-runs the whole prefix through the LM for every new token, as a model without a state cache
must. Goal: carried state >= 20x faster at 512 tokens. Also prints pieces per second at batch 1
and batch 64 for the carried-state sampler.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import train_config

from moodgen.generation.sampler import sample, top_p_filter
from moodgen.models import LanguageModel
from moodgen.models.module import ARCHITECTURE_KEYS

VOCAB = 267


@torch.no_grad()
def naive_sample(net, n: int, max_tokens: int, bos: int, generator) -> torch.Tensor:
    tokens = torch.full((n, 1), bos, dtype=torch.long)
    for _ in range(max_tokens):
        logits, _ = net(tokens)  # the whole prefix, every step
        probs = top_p_filter(logits[:, -1], 0.95).softmax(-1)
        tokens = torch.cat([tokens, torch.multinomial(probs, 1, generator=generator)], dim=1)
    return tokens


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lstm_small")
    parser.add_argument("--tokens", type=int, default=512)
    args = parser.parse_args()
    cfg = train_config(args.model)
    torch.manual_seed(0)
    net = LanguageModel(VOCAB, **{k: cfg.model[k] for k in ARCHITECTURE_KEYS}).eval()
    gen = torch.Generator().manual_seed(0)
    cached = timed(lambda: sample(net, 1, args.tokens, 1, None, generator=gen))
    naive = timed(lambda: naive_sample(net, 1, args.tokens, 1, gen))
    print(f"model {args.model}, {args.tokens} tokens, batch 1")
    print(f"naive prefix re-encoding: {naive:.2f} s   carried state: {cached:.3f} s")
    print(f"speed-up: {naive / cached:.1f}x  (goal >= 20x)")
    for batch in (1, 64):
        seconds = timed(lambda b=batch: sample(net, b, args.tokens, 1, None, generator=gen))
        print(
            f"batch {batch:>2}: {batch / seconds:.2f} pieces/s of {args.tokens} tokens "
            f"({batch * args.tokens / seconds:,.0f} tokens/s)"
        )


if __name__ == "__main__":
    main()
