"""Multiplicative LSTM layer (Krause et al. 2016), as used by Radford et al. and Ferreira & Whitehead.

m_t = (W_mx x_t) * (W_mh h_{t-1}) replaces h_{t-1} in the gate pre-activations, so each input
symbol gets its own recurrent transition.
"""

from __future__ import annotations

import torch
from torch import nn

State = tuple[torch.Tensor, torch.Tensor]  # (h, c), each [B, H]


class MLSTMLayer(nn.Module):
    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.wmx = nn.Linear(input_size, hidden_size, bias=False)
        self.wmh = nn.Linear(hidden_size, hidden_size, bias=False)
        self.wx = nn.Linear(input_size, 4 * hidden_size, bias=True)
        self.wm = nn.Linear(hidden_size, 4 * hidden_size, bias=False)

    def forward(
        self, x: torch.Tensor, state: State | None = None, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, State]:
        # x: [B, T, E] -> outputs [B, T, H]; with lengths [B], steps past a row's length keep its state
        batch, steps, _ = x.shape
        if state is None:
            zeros = x.new_zeros(batch, self.hidden_size)
            state = (zeros, zeros)
        h, c = state
        mx = self.wmx(x)  # [B, T, H], input projections for all steps at once
        gx = self.wx(x)  # [B, T, 4H]
        outputs = []
        for t in range(steps):
            m = mx[:, t] * self.wmh(h)  # [B, H]
            i, f, o, u = (gx[:, t] + self.wm(m)).chunk(4, dim=-1)
            c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(u)
            h_new = torch.sigmoid(o) * torch.tanh(c_new)
            if lengths is None:
                h, c = h_new, c_new
            else:
                live = (t < lengths).unsqueeze(-1)  # [B, 1]
                h, c = torch.where(live, h_new, h), torch.where(live, c_new, c)
            outputs.append(h_new)
        return torch.stack(outputs, dim=1), (h, c)
