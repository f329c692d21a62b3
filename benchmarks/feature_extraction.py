"""LM feature extraction for the 201 labelled phrases: batched (padded, length-sorted) vs one at a time.

    python benchmarks/feature_extraction.py --checkpoint path/to/best.ckpt [--data ../shared/data/vgmidi]

The checkpoint comes from a training run (outputs/train/<time>/checkpoints/ or the MLflow run's
`checkpoints/`); its tokenizer is rebuilt from the default config. Goal: batched < 30 s on CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import vgmidi_root

from moodgen.artifacts import load_lm_checkpoint
from moodgen.classifier.features import lm_features
from moodgen.config import TokenizerConfig
from moodgen.data.vgmidi import load_phrases
from moodgen.tokenizers import build_tokenizer, encode_corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data")
    parser.add_argument("--features", default="final_cell")
    args = parser.parse_args()
    root = vgmidi_root(args.data)
    phrases = load_phrases(root, "train") + load_phrases(root, "test")
    corpus = encode_corpus(build_tokenizer(TokenizerConfig(name="remi")), [p.path for p in phrases])
    net = load_lm_checkpoint(args.checkpoint).net
    start = time.perf_counter()
    batched = lm_features(net, corpus, (args.features,), batch_size=32)[args.features]
    batched_s = time.perf_counter() - start
    start = time.perf_counter()
    single = lm_features(net, corpus, (args.features,), batch_size=1)[args.features]
    single_s = time.perf_counter() - start
    print(f"phrases: {len(corpus.names)}  tokens: {corpus.n_tokens:,}  features: {args.features} {batched.shape}")
    print(f"max |batched - one at a time|: {np.abs(batched - single).max():.2e}")
    print(f"one at a time: {single_s:.2f} s   batched (32): {batched_s:.2f} s   speed-up: {single_s / batched_s:.1f}x")
    print(f"goal: batched < 30 s -> {'met' if batched_s < 30 else 'NOT met'}")


if __name__ == "__main__":
    main()
