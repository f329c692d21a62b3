"""Constrained decoding: token masks that keep sampled music inside what a mood asks for.

Each constraint is a switch of `steering=attributes` so its effect can be measured alone:
- scale: pitches outside the piece's key (tonic + the mood's major/minor scale) are masked
  (`scale=mask`) or pushed down by `scale_bias` logits (`scale=bias`);
- velocity_range / register_range: velocity and pitch tokens outside the mood's central range
  (its labelled phrases' 10th-90th percentiles) are masked; the pitch range may be one per row
  (register_window=phrase: each piece the register of one of the mood's phrases);
- max_chord: at most this many pitches at one position (0: no limit);
- tonic_bias: logits added to the pitches of the key's tonic triad, so the key is heard as the
  mood's (a natural minor scale holds the same pitch classes as its relative major: what tells
  them apart is which notes the music leans on); `lean_on=third_fifth` adds them to the third and
  fifth only, so the mode is heard without the tonic repeated more often.
The key, tonic bias and register choose which pitch a note gets, never whether a note comes: the
pitches' total probability is kept the LM's (`note_share_kept`, switch `keep_note_share`); only max_chord
removes notes.
Works on any tokenizer whose tokens are named Pitch_<p> / NoteOn_<p>, Velocity_<v>, and
Bar / Position / TimeShift for the moves in time that start a new onset.
"""

from __future__ import annotations

import numpy as np
import torch

from ..attributes.targets import SCALES

TIME_MOVES = ("Bar_", "Position_", "TimeShift_")
# the tonic chord's degrees a tonic bias leans on, by scale: the whole triad, or its third and fifth
LEAN_ON = {
    "triad": {"major": (0, 4, 7), "minor": (0, 3, 7)},
    "third_fifth": {"major": (4, 7), "minor": (3, 7)},
}


def token_values(vocab: dict[str, int], prefixes: tuple[str, ...]) -> dict[int, int]:
    """{token id: its number} for tokens like Pitch_60 (the number after the prefix)."""
    out = {}
    for name, token in vocab.items():
        for prefix in prefixes:
            if name.startswith(prefix) and name[len(prefix) :].isdigit():
                out[token] = int(name[len(prefix) :])
    return out


class Constraints:
    """Additive logit masks [n, V] for n rows, each with its own key and ranges; tracks chord sizes."""

    def __init__(self, vocab: dict[str, int], size: int, cfg, temperature: float = 1.0):
        self.size, self.cfg = size, cfg
        self.temperature = max(float(temperature), 1e-5)  # the sampler's, applied after: the note share is kept at it
        self.pitch = token_values(vocab, ("Pitch_", "NoteOn_"))
        self.velocity = token_values(vocab, ("Velocity_",))
        self.pitch_ids = torch.tensor(sorted(self.pitch), dtype=torch.long)
        self.moves = torch.zeros(size, dtype=torch.bool)
        self.moves[[t for name, t in vocab.items() if name.startswith(TIME_MOVES)]] = True
        self.is_pitch = torch.zeros(size, dtype=torch.bool)
        self.is_pitch[self.pitch_ids] = True
        self.base: torch.Tensor | None = None
        self.chord: torch.Tensor | None = None

    def start(
        self,
        tonic: np.ndarray,
        scale: str,
        velocity: np.ndarray,
        pitch: np.ndarray,
        tonic_bias: float | None = None,
        lean_on: str | None = None,
    ) -> None:
        """The fixed part of the mask for rows with these tonics, the mood's scale, ranges, tonic
        bias and the degrees it leans on (None: the config's)."""
        n, cfg = len(tonic), self.cfg
        tonic_bias = cfg.tonic_bias if tonic_bias is None else tonic_bias
        lean_on = cfg.lean_on if lean_on is None else lean_on
        base = torch.zeros(n, self.size)
        ids = np.array(sorted(self.pitch))
        values = np.array([self.pitch[t] for t in ids])
        if cfg.scale != "off":
            degrees = (values[None] - np.asarray(tonic)[:, None]) % 12  # [n, pitches]
            outside = torch.as_tensor(~np.isin(degrees, SCALES[scale]))
            penalty = float("-inf") if cfg.scale == "mask" else -float(cfg.scale_bias)
            base[:, ids] = torch.where(outside, penalty, 0.0)
        if tonic_bias:
            degrees = (values[None] - np.asarray(tonic)[:, None]) % 12
            leaned = np.isin(degrees, LEAN_ON[lean_on][scale])
            base[:, ids] += torch.as_tensor(leaned, dtype=torch.float) * float(tonic_bias)
        if cfg.register_range:
            pitch = np.broadcast_to(np.asarray(pitch), (n, 2))  # one range for all rows, or one per row
            outside = (values[None] < pitch[:, :1]) | (values[None] > pitch[:, 1:])  # [n, pitches]
            base[:, ids] = torch.where(torch.as_tensor(outside), float("-inf"), base[:, ids])
        if cfg.velocity_range and self.velocity:
            vids = np.array(sorted(self.velocity))
            vvalues = np.array([self.velocity[t] for t in vids])
            inside = (vvalues >= velocity[0]) & (vvalues <= velocity[1])
            if not inside.any():  # a range between two velocity steps: keep the nearest step
                inside = np.abs(vvalues - velocity.mean()) == np.abs(vvalues - velocity.mean()).min()
            base[:, vids[~inside]] = float("-inf")
        self.base, self.chord = base, torch.zeros(n, dtype=torch.long)

    def __call__(self, fed: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Logits [n, V] for the next token, given the token just fed [n]."""
        fed = fed.cpu()
        self.chord = torch.where(self.moves[fed], 0, self.chord + self.is_pitch[fed].long())
        out = logits + self.base.to(logits.device)
        ids = self.pitch_ids.to(logits.device)
        if self.cfg.keep_note_share:
            t = self.temperature
            out[:, ids] += t * note_share_kept(logits[:, ids] / t, out[:, ids] / t)
        if self.cfg.max_chord > 0:  # a full chord: no more notes at this onset (this one does change how many)
            full = (self.chord >= self.cfg.max_chord).to(logits.device)
            out[full[:, None] & self.is_pitch[None].to(logits.device)] = float("-inf")
        return out


def note_share_kept(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """[n, 1] logits to add to every pitch token so that the pitches' total probability is the LM's.

    The key, tonic bias and register choose *which* pitch a note gets, not *whether* a note comes:
    without this a tonic bias of 2 makes a pitch token e^2 times likelier than the LM's next move in
    time, about doubling the notes per onset and per beat (angry asked for about 3.4 notes a beat and
    got 7.3), and a register mask thins them out. Exact before top-p (applied later by the sampler) and
    up to the other masks (a velocity mask acts where the LM writes a velocity, not a pitch). A row
    whose pitches are all masked stays masked.
    """
    kept = torch.logsumexp(before, dim=1, keepdim=True)  # [n, 1] log P(a pitch), up to the shared normaliser
    now = torch.logsumexp(after, dim=1, keepdim=True)
    return torch.where(torch.isfinite(now), kept - now, torch.zeros_like(now))
