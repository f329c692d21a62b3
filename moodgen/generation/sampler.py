"""Batched sampling with temperature and nucleus (top-p), carrying the recurrent state.

Each step feeds only the newest token and the carried (h, c): the prefix is never re-encoded.
"""

from __future__ import annotations

from collections.abc import Callable

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


StateHook = Callable[[list], list]  # rewrites the carried state after every step (steering)
StopCheck = Callable[[torch.Tensor], torch.Tensor]  # tokens so far [n, t] -> rows done [n] (bool)


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
    prefix: list[int] | None = None,
    state_hook: StateHook | None = None,
    stop: StopCheck | None = None,
    check_every: int = 64,
) -> list[list[int]]:
    """n sequences of at most max_tokens new tokens each, sampled in one batch.

    `prefix` (default [BOS]) primes every row; `state_hook` rewrites the state after each step
    (the neuron-steering genes); `stop` is asked every `check_every` tokens which rows are done
    (e.g. long enough in decoded seconds; EOS is then never sampled). BOS, EOS and the prefix are
    stripped from the result.
    """
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    prime = torch.tensor(prefix or [bos_id], dtype=torch.long, device=device).repeat(n, 1)  # [n, P]
    logits, state = net(prime[:, :-1], None) if prime.shape[1] > 1 else (None, None)
    token = prime[:, -1:]  # [n, 1]
    out = torch.empty(n, max_tokens, dtype=torch.long, device=device)
    finished = torch.zeros(n, dtype=torch.bool, device=device)
    length = 0
    for step in range(max_tokens):
        logits, state = net(token, state)  # [n, 1, V]
        if state_hook is not None:
            state = state_hook(state)
        logits = logits[:, -1] / max(temperature, 1e-5)  # [n, V]
        if stop is not None and eos_id is not None:
            logits[:, eos_id] = float("-inf")  # a length is asked for: the piece may not end early
        logits = top_p_filter(logits, top_p)
        token = torch.multinomial(logits.softmax(-1), 1, generator=generator)  # [n, 1]
        out[:, step] = token[:, 0]
        length = step + 1
        if eos_id is not None:
            finished |= token[:, 0] == eos_id
        if stop is not None and length % check_every == 0:
            open_rows = (~finished).nonzero()[:, 0]  # rows already done are not decoded again
            finished[open_rows] |= stop(out[open_rows, :length]).to(device)
        if bool(finished.all()):
            break
    net.train(was_training)
    sequences = []
    special = {bos_id, *(prefix or [])}
    for row in out[:, :length].tolist():
        if eos_id is not None and eos_id in row:
            row = row[: row.index(eos_id)]
        sequences.append([t for t in row if t not in special])
    return sequences
