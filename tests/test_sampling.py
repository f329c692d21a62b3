"""Sampling: top-p, one batch with carried state, and a decodable MIDI file with notes."""

from __future__ import annotations

import symusic
import torch
from torch import nn

from moodgen import tokenizers as tk
from moodgen.generation.render import note_count, piano_roll_png, tokens_to_midi
from moodgen.generation.sampler import sample, top_p_filter

from .conftest import compose_train, make_midi, scale_piece


class ScriptedNet(nn.Module):
    """Emits a fixed token script; its position lives only in the carried state.

    If the sampler re-encoded the prefix or dropped the state, the script would restart.
    """

    def __init__(self, script: list[int], vocab: int):
        super().__init__()
        self.script, self.vocab = script, vocab
        self.dummy = nn.Parameter(torch.zeros(1))
        self.calls = 0

    def forward(self, tokens, state=None):
        self.calls += 1
        assert tokens.shape[1] == 1, "sampler must feed one new token per step"
        position = torch.zeros(tokens.shape[0], dtype=torch.long) if state is None else state
        nxt = torch.tensor([self.script[min(int(p), len(self.script) - 1)] for p in position])
        logits = torch.full((tokens.shape[0], 1, self.vocab), -1e4)
        logits[torch.arange(tokens.shape[0]), 0, nxt] = 1e4
        return logits, position + 1


def test_top_p_keeps_the_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = top_p_filter(logits, 0.7).isfinite()
    assert kept.tolist() == [[True, True, False, False]]
    assert top_p_filter(logits, 0.1).isfinite().sum() == 1  # always at least the top token
    assert top_p_filter(logits, 1.0).isfinite().all()


def test_sampling_carries_state_and_decodes_to_midi(tmp_path):
    tokenizer = tk.build_tokenizer(compose_train(tmp_path, []).tokenizer)
    ids = tk.encode_file(tokenizer, make_midi(tmp_path / "src.mid", scale_piece(1, 24)))
    script = ids[1:]  # everything after BOS, ending in EOS
    net = ScriptedNet(script, len(tokenizer))
    sequences = sample(
        net,
        n=3,
        max_tokens=500,
        bos_id=tk.bos_id(tokenizer),
        eos_id=tk.eos_id(tokenizer),
        generator=torch.Generator().manual_seed(0),
    )
    assert net.calls == len(script)  # stopped at EOS, one call per token for the whole batch
    assert sequences == [ids[1:-1]] * 3
    score = tokens_to_midi(tokenizer, sequences[0], tmp_path / "out.mid")
    assert note_count(symusic.Score(str(tmp_path / "out.mid"))) == note_count(score) == 24
    png = piano_roll_png(score, tmp_path / "out.png")
    assert png.stat().st_size > 1000


def test_sampling_is_seeded():
    torch.manual_seed(0)
    from moodgen.models import LanguageModel

    net = LanguageModel(20, embedding_dim=4, hidden_size=8, num_layers=1)
    a = sample(net, 2, 30, bos_id=1, generator=torch.Generator().manual_seed(5))
    b = sample(net, 2, 30, bos_id=1, generator=torch.Generator().manual_seed(5))
    assert a == b and all(len(s) <= 30 for s in a)
