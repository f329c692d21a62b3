"""The language model: the report's parameter count, every cell, state carrying, noise in training only."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from moodgen.models import LAYERS, LanguageModel
from moodgen.models.module import ARCHITECTURE_KEYS, quiet_trainer, seeded_fit

from .conftest import compose_train

PRESETS = ["lstm_small", "lstm", "mlstm", "paper"]


def build(tmp_path, preset: str, vocab: int = 254, **overrides) -> LanguageModel:
    cfg = compose_train(tmp_path, [f"model={preset}"]).model
    kwargs = {k: cfg[k] for k in ARCHITECTURE_KEYS} | overrides
    return LanguageModel(vocab, **kwargs)


def test_paper_parameter_count(tmp_path):
    # Keras: 8,067,838; PyTorch's LSTM keeps two bias vectors: + 4 layers x 4 gates x 512
    assert sum(p.numel() for p in build(tmp_path, "paper").parameters()) == 8_067_838 + 4 * 4 * 512


@pytest.mark.parametrize("cell", sorted(LAYERS))
def test_carried_state_equals_one_pass(cell):
    torch.manual_seed(0)
    net = LanguageModel(40, cell=cell, embedding_dim=8, hidden_size=12, num_layers=2).eval()
    tokens = torch.randint(0, 40, (3, 10))  # [B, T]
    full, _ = net(tokens)
    state, steps = None, []
    for t in range(10):
        logits, state = net(tokens[:, t : t + 1], state)
        steps.append(logits)
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_forward_shapes(tmp_path, preset):
    net = build(tmp_path, preset, vocab=50, hidden_size=16, embedding_dim=8)
    logits, state, hidden = net(torch.randint(0, 50, (2, 5)), return_hidden=True)
    assert logits.shape == (2, 5, 50)
    assert len(state) == len(hidden) == net_layers(net)
    assert hidden[-1].shape == (2, 5, 16) and state[-1][1].shape == (2, 16)


def net_layers(net: LanguageModel) -> int:
    return len(net.layers)


def test_noise_only_in_training():
    torch.manual_seed(0)
    net = LanguageModel(30, embedding_dim=8, hidden_size=8, num_layers=2, dropout=0.0, noise_std=1.0)
    tokens = torch.randint(0, 30, (2, 6))
    net.eval()
    assert torch.equal(net(tokens)[0], net(tokens)[0])
    net.train()
    assert not torch.equal(net(tokens)[0], net(tokens)[0])


def test_extra_dropout_layer_sits_before_the_output():
    net = LanguageModel(30, embedding_dim=8, hidden_size=8, num_layers=1, output_dropout=0.5)
    assert net.output_dropout.p == 0.5
    assert list(dict(net.named_children()))[-2:] == ["output_dropout", "head"]


@pytest.mark.parametrize("cell", sorted(LAYERS))
def test_padded_batch_state_matches_each_sequence_alone(cell):
    torch.manual_seed(0)
    net = LanguageModel(40, cell=cell, embedding_dim=8, hidden_size=12, num_layers=2).eval()
    rows = [torch.randint(1, 40, (n,)) for n in (7, 3, 5)]
    padded = torch.zeros(3, 7, dtype=torch.long)
    for i, row in enumerate(rows):
        padded[i, : len(row)] = row
    _, state, hidden = net(padded, return_hidden=True, lengths=torch.tensor([7, 3, 5]))
    for i, row in enumerate(rows):
        _, alone, alone_hidden = net(row[None], return_hidden=True)
        for layer in range(2):
            assert torch.allclose(state[layer][0][i], alone[layer][0][0], atol=1e-5)
            assert torch.allclose(state[layer][1][i], alone[layer][1][0], atol=1e-5)
        assert torch.allclose(hidden[-1][i, : len(row)], alone_hidden[-1][0], atol=1e-5)


class DropoutRegression(pl.LightningModule):
    """A linear map learned through dropout: its weights depend on every dropout draw."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(8, 1)
        torch.nn.init.zeros_(self.layer.weight)
        torch.nn.init.zeros_(self.layer.bias)

    def training_step(self, batch, batch_idx):
        (x,) = batch
        return (self.layer(torch.nn.functional.dropout(x, 0.5, training=True)) - x.sum(1, keepdim=True)).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


def test_a_seeded_fit_is_the_same_whatever_ran_before_and_leaves_the_callers_stream_alone():
    """The attribute LM's benchmark fine-tunes once differed in their last loss (1.365 and 1.364) under one
    cache key, most likely because dropout drew from torch's global generator in whatever state the
    process had left it."""
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(1))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x), batch_size=8)
    weights = []
    for before in (0, 1):
        torch.manual_seed(before)
        module = DropoutRegression()
        caller = torch.random.get_rng_state()
        seeded_fit(quiet_trainer(max_epochs=1), module, loader, seed=3)
        assert torch.equal(torch.random.get_rng_state(), caller)  # given back as it was
        weights.append(module.layer.weight.detach().clone())
    assert torch.equal(weights[0], weights[1])
    other = DropoutRegression()
    seeded_fit(quiet_trainer(max_epochs=1), other, loader, seed=4)
    assert not torch.equal(other.layer.weight, weights[0])  # the seed is what decides
