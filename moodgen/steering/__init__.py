"""Steering methods by name: each turns (model, mood, n) into n token sequences."""

from __future__ import annotations

from ..errors import MoodgenError
from .attributes import AttributeSteering
from .conditioned import MoodConditioned
from .neurons import EvolvedNeurons
from .none import NoSteering
from .rerank import Rerank

STEERING = {
    "none": NoSteering,
    "rerank": Rerank,
    "neurons": EvolvedNeurons,
    "conditioned": MoodConditioned,
    "attributes": AttributeSteering,
}


def make_steering(cfg):
    if cfg.name not in STEERING:
        raise MoodgenError(f"unknown steering {cfg.name!r}: use one of {', '.join(STEERING)}")
    return STEERING[cfg.name](cfg)
