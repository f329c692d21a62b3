"""Evaluating 100 generated-length pieces against 100 reference pieces, end to end (goal < 30 s on CPU).

    python benchmarks/evaluation.py [--data ../shared/data/vgmidi] [--pieces 100]

"Generated" stands in as the first 30 s of VGMIDI unlabelled training pieces; the reference is
VGMIDI's labelled phrases (train + test). Times every part of `moodgen.evaluation.run.evaluate`
(per-piece table and figures, Yang & Lerch distances, repetition, report), without a classifier,
and prints the total against the 30 s budget.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import vgmidi_root

from moodgen.data.vgmidi import load_phrases
from moodgen.evaluation.run import evaluate
from moodgen.evaluation.sets import PieceSet, from_files

BUDGET_S = 30.0


def clipped(pieces: PieceSet, seconds: float) -> PieceSet:
    """Each piece cut to its first `seconds`, as generated pieces are."""
    for piece in pieces.pieces:
        in_seconds = piece.score.to("second")
        end = piece.score.end() * seconds / max(float(in_seconds.end()), 1e-6)
        piece.score = piece.score.clip(0, int(end), clip_end=True)
    return pieces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data")
    parser.add_argument("--pieces", type=int, default=100)
    args = parser.parse_args()
    root = vgmidi_root(args.data)
    start = time.perf_counter()
    train = sorted((root / "unlabelled" / "train").rglob("*.mid"))
    generated = clipped(from_files("generated", train, root, args.pieces, 0), 30.0)
    phrases = [p.path for split in ("train", "test") for p in load_phrases(root, split)]
    reference = from_files("vgmidi_phrases", phrases, root, args.pieces, 0)
    load_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        result = evaluate(generated, reference, Path(folder))
        evaluate_s = time.perf_counter() - start
        size = result.report.stat().st_size / 1e6
    print(f"pieces: {len(generated.pieces)} generated-length vs {len(reference.pieces)} reference")
    print(f"reading MIDI: {load_s:.2f} s   evaluation + report ({size:.1f} MB HTML): {evaluate_s:.2f} s")
    print(f"mean OA {result.metrics['eval/mean_oa']:.3f}")
    ratio = evaluate_s / BUDGET_S
    print(f"evaluation / {BUDGET_S:.0f} s budget: {ratio:.2f}x -> goal {'met' if ratio < 1 else 'NOT met'}")


if __name__ == "__main__":
    main()
