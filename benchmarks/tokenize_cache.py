"""Tokenized-corpus cache: reload time vs first tokenization of VGMIDI's unlabelled train set.

    python benchmarks/tokenize_cache.py [--data ../shared/data/vgmidi] [--tokenizer remi]

Goal: reload >= 20x faster than tokenizing. Both timings include hashing every file, since
the cache key needs the hashes on every run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import vgmidi_root

from moodgen.config import TokenizerConfig
from moodgen.data.midi import list_midi
from moodgen.tokenizers import build_tokenizer, encode_corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data")
    parser.add_argument("--tokenizer", default="remi")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    files = list_midi(vgmidi_root(args.data) / "unlabelled" / "train")
    tokenizer = build_tokenizer(TokenizerConfig(name=args.tokenizer))
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        first = encode_corpus(tokenizer, files, Path(cache))
        tokenize_s = time.perf_counter() - start
        reloads = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            again = encode_corpus(tokenizer, files, Path(cache))
            reloads.append(time.perf_counter() - start)
        assert (again.ids == first.ids).all()
    reload_s = sorted(reloads)[len(reloads) // 2]
    print(f"files: {len(files)}  tokens: {first.n_tokens:,}  skipped: {len(first.skipped)}")
    print(f"first tokenization: {tokenize_s:.2f} s")
    print(f"cache reload (median of {args.repeats}): {reload_s:.3f} s")
    print(f"speed-up: {tokenize_s / reload_s:.1f}x  (goal >= 20x)")


if __name__ == "__main__":
    main()
