"""Lightning training throughput vs a bare PyTorch loop on the same model and batches.

    python benchmarks/lightning_throughput.py [--model lstm_small] [--steps 60] [--rounds 3]

Both sides run the module's own step (loss + token accuracy), AdamW and gradient clipping at
1.0 on identical pre-built batches; the Lightning side adds only what the framework adds
(hooks, self.log, the fit loop). Rounds alternate so drift on the machine hits both.
Goal: Lightning >= 0.95x the bare loop's tokens/s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import train_config

from moodgen.models.module import LanguageModelModule, quiet_trainer

VOCAB = 267  # REMI's vocabulary with the default tokenizer config


def make_module(model_cfg: dict) -> LanguageModelModule:
    torch.manual_seed(0)
    return LanguageModelModule(VOCAB, model_cfg)


def bare_loop(module: LanguageModelModule, batches: list) -> float:
    optimizer = module.configure_optimizers()
    module.train()
    start = time.perf_counter()
    for batch in batches:
        loss, _ = module._step(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        optimizer.step()
    return time.perf_counter() - start


class _Timer(pl.Callback):
    def on_train_start(self, trainer, module):
        self.start = time.perf_counter()

    def on_train_end(self, trainer, module):
        self.seconds = time.perf_counter() - self.start


def lightning_loop(module: LanguageModelModule, batches: list) -> float:
    timer = _Timer()
    trainer = quiet_trainer(
        max_steps=len(batches),
        max_epochs=1,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=[timer],
    )
    loader = DataLoader(batches, batch_size=None, shuffle=False)  # the same pre-built batches
    trainer.fit(module, train_dataloaders=loader)
    return timer.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lstm_small")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cfg = train_config(args.model)
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    generator = torch.Generator().manual_seed(0)
    shape = (cfg.model.batch_size, cfg.model.seq_len)
    batches = [
        (torch.randint(0, VOCAB, shape, generator=generator), torch.randint(0, VOCAB, shape, generator=generator))
        for _ in range(args.steps)
    ]
    tokens = args.steps * shape[0] * shape[1]
    bare_loop(make_module(model_cfg), batches[:5])  # warm-up: allocator, thread pool
    bare, lightning = [], []
    for _ in range(args.rounds):
        bare.append(tokens / bare_loop(make_module(model_cfg), batches))
        lightning.append(tokens / lightning_loop(make_module(model_cfg), batches))
    bare_tps, lightning_tps = sorted(bare)[len(bare) // 2], sorted(lightning)[len(lightning) // 2]
    print(f"model {args.model}: {args.steps} steps of {shape[0]}x{shape[1]} tokens, {args.rounds} rounds")
    print(f"bare PyTorch loop: {bare_tps:,.0f} tokens/s (median)")
    print(f"Lightning Trainer: {lightning_tps:,.0f} tokens/s (median)")
    print(f"ratio Lightning / bare: {lightning_tps / bare_tps:.3f}  (goal >= 0.95)")


if __name__ == "__main__":
    main()
