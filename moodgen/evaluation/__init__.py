"""Objective evaluation of generated pieces: per piece, per set (Yang & Lerch), repetition, mood."""
