"""Batched sampling with temperature and nucleus (top-p), carrying the recurrent state.

Each step feeds only the newest token and the carried (h, c): the prefix is never re-encoded.
"""

from __future__ import annotations

import torch


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Mask logits [B, V] outside the smallest set of tokens whose probability reaches top_p."""
    if top_p >= 1.0:
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    cumulative = sorted_logits.softmax(-1).cumsum(-1)
    drop = cumulative - sorted_logits.softmax(-1) >= top_p  # keeps at least the top token
    sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
    return torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)


@torch.no_grad()
def sample(
    net,
    n: int,
    max_tokens: int,
    bos_id: int,
    eos_id: int | None = None,
    temperature: float = 1.0,
    top_p: float = 0.95,
    generator: torch.Generator | None = None,
) -> list[list[int]]:
    """n sequences of at most max_tokens tokens each (BOS/EOS stripped), sampled in one batch."""
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    token = torch.full((n, 1), bos_id, dtype=torch.long, device=device)  # [n, 1]
    state = None
    out = torch.empty(n, max_tokens, dtype=torch.long, device=device)
    finished = torch.zeros(n, dtype=torch.bool, device=device)
    length = 0
    for step in range(max_tokens):
        logits, state = net(token, state)  # [n, 1, V]
        logits = top_p_filter(logits[:, -1] / max(temperature, 1e-5), top_p)  # [n, V]
        token = torch.multinomial(logits.softmax(-1), 1, generator=generator)  # [n, 1]
        out[:, step] = token[:, 0]
        length = step + 1
        if eos_id is not None:
            finished |= token[:, 0] == eos_id
            if bool(finished.all()):
                break
    net.train(was_training)
    sequences = []
    for row in out[:, :length].tolist():
        if eos_id is not None and eos_id in row:
            row = row[: row.index(eos_id)]
        sequences.append([t for t in row if t != bos_id])
    return sequences
