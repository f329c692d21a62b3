"""The LSTM language model: every variant the report tested is an option of this one class.

embedding -> dropout -> layer 1 -> [Gaussian noise] -> dropout -> layer 2 ... -> [dropout] -> dense
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import MoodgenError
from .mlstm import MLSTMLayer

State = list[tuple[torch.Tensor, torch.Tensor]]  # per layer (h, c), each [B, H]


class LSTMLayer(nn.Module):
    """One nn.LSTM layer (cuDNN / fused CPU kernel) with the same call shape as MLSTMLayer."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.rnn = nn.LSTM(input_size, hidden_size, batch_first=True)

    def forward(self, x, state=None, lengths=None):
        # x [B, T, E]; lengths [B] (right-padded batch) -> final state at each true length
        if x.shape[1] == 1 and lengths is None and not (torch.is_grad_enabled() and self.training):
            # one sampling step: the fused cell skips nn.LSTM's per-call set-up (~6x faster per token)
            rnn = self.rnn
            if state is None:
                zeros = x.new_zeros(x.shape[0], rnn.hidden_size)
                state = (zeros, zeros)
            h, c = torch.lstm_cell(x[:, 0], state, rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0)
            return h.unsqueeze(1), (h, c)
        if state is not None:
            state = (state[0].unsqueeze(0).contiguous(), state[1].unsqueeze(0).contiguous())
        if lengths is None:
            out, (h, c) = self.rnn(x, state)
        else:
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, (h, c) = self.rnn(packed, state)
            out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out, (h.squeeze(0), c.squeeze(0))


# cell name -> layer class; a new variant is one class here plus one conf/model/*.yaml
LAYERS: dict[str, type[nn.Module]] = {"lstm": LSTMLayer, "mlstm": MLSTMLayer}


class GaussianNoise(nn.Module):
    """Additive N(0, std^2) noise in training only, as Keras' GaussianNoise layer."""

    def __init__(self, std: float):
        super().__init__()
        self.std = std

    def forward(self, x):
        if self.training and self.std > 0:
            return x + torch.randn_like(x) * self.std
        return x


class LanguageModel(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        cell: str = "lstm",
        embedding_dim: int = 128,
        hidden_size: int = 256,
        num_layers: int = 2,
        dropout: float = 0.1,
        noise_std: float = 0.0,
        output_dropout: float = 0.0,
    ):
        super().__init__()
        if cell not in LAYERS:
            raise MoodgenError(f"unknown model.cell {cell!r}: use one of {', '.join(LAYERS)}")
        if num_layers < 1:
            raise MoodgenError(f"model.num_layers={num_layers}: need at least 1")
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        sizes = [embedding_dim] + [hidden_size] * num_layers
        self.layers = nn.ModuleList(LAYERS[cell](sizes[i], sizes[i + 1]) for i in range(num_layers))
        self.noise = GaussianNoise(noise_std)
        self.dropout = nn.Dropout(dropout)
        self.output_dropout = nn.Dropout(output_dropout)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(
        self,
        tokens: torch.Tensor,
        state: State | None = None,
        return_hidden: bool = False,
        lengths: torch.Tensor | None = None,
        condition: torch.Tensor | None = None,
    ):
        """tokens [B, T] -> logits [B, T, V], new state (and every layer's outputs [B, T, H]).

        With lengths [B] the batch is right-padded and the state is taken at each true length;
        `condition` [B, E] is added to every step's input embedding (a mood, for steering).
        """
        x = self.embedding(tokens)  # [B, T, E]
        if condition is not None:
            x = x + condition[:, None]
        new_state, hidden = [], []
        for i, layer in enumerate(self.layers):
            x = self.dropout(x)  # Keras LSTM(dropout=...) drops every layer's input
            x, layer_state = layer(x, None if state is None else state[i], lengths)  # [B, T, H]
            if i == 0:
                x = self.noise(x)
            new_state.append(layer_state)
            hidden.append(x)
        logits = self.head(self.output_dropout(x))  # [B, T, V]
        if return_hidden:
            return logits, new_state, hidden
        return logits, new_state
