"""Every tokenizer round-trips a piece; the tokenized corpus is cached and invalidated correctly."""

from __future__ import annotations

import pytest

from moodgen import tokenizers as tk
from moodgen.data.midi import read_piano
from moodgen.generation.render import note_count

from .conftest import compose_train, make_midi, scale_piece

NAMES = sorted(tk.TOKENIZERS)


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_keeps_the_notes(tmp_path, name):
    tokenizer = tk.build_tokenizer(compose_train(tmp_path, [f"tokenizer={name}"]).tokenizer)
    path = make_midi(tmp_path / "piece.mid", scale_piece(3, 32), tracks=2)
    ids = tk.encode_file(tokenizer, path)
    assert ids[0] == tk.bos_id(tokenizer) and ids[-1] == tk.eos_id(tokenizer)
    score = tokenizer.decode([ids[1:-1]])
    assert note_count(score) == note_count(read_piano(path)) == 32


@pytest.mark.parametrize("name", NAMES)
def test_saved_tokenizer_loads_identically(tmp_path, name):
    tokenizer = tk.build_tokenizer(compose_train(tmp_path, [f"tokenizer={name}"]).tokenizer)
    tk.save_tokenizer(tokenizer, tmp_path / "tok")
    loaded = tk.load_tokenizer(tmp_path / "tok")
    assert type(loaded) is type(tokenizer)
    assert loaded.vocab == tokenizer.vocab
    assert tk.tokenizer_key(loaded) == tk.tokenizer_key(tokenizer)


def test_corpus_cache_hit_and_invalidation(tmp_path, monkeypatch):
    tokenizer = tk.build_tokenizer(compose_train(tmp_path, []).tokenizer)
    files = [make_midi(tmp_path / f"p{i}.mid", scale_piece(i)) for i in range(3)]
    first = tk.encode_corpus(tokenizer, files, tmp_path / "cache")
    assert len(list((tmp_path / "cache" / "tokens").glob("*.npz"))) == 1

    def no_tokenizing(*args):
        raise AssertionError("cache miss: the corpus was tokenized again")

    with monkeypatch.context() as patch:
        patch.setattr(tk, "encode_file", no_tokenizing)
        again = tk.encode_corpus(tokenizer, files, tmp_path / "cache")
    assert (again.ids == first.ids).all() and again.names == first.names

    make_midi(files[0], scale_piece(9))  # content changed -> new key -> tokenized again
    changed = tk.encode_corpus(tokenizer, files, tmp_path / "cache")
    assert len(list((tmp_path / "cache" / "tokens").glob("*.npz"))) == 2
    assert not (changed.piece(0).shape == first.piece(0).shape and (changed.piece(0) == first.piece(0)).all())

    other = tk.build_tokenizer(compose_train(tmp_path, ["tokenizer=tsd"]).tokenizer)
    tk.encode_corpus(other, files, tmp_path / "cache")  # another tokenizer -> its own entry
    assert len(list((tmp_path / "cache" / "tokens").glob("*.npz"))) == 3
