"""Paper-preset throughput on this machine's CPU and GPU: training tokens/s and sampling tokens/s.

    python benchmarks/gpu_throughput.py [--model paper] [--steps 30] [--cpu-steps 3] [--tokens 512] [--out r.json]
    python benchmarks/gpu_throughput.py --show r.json     # the table of an earlier run

Training runs the real path (the Lightning module's step, AdamW, clipping at 1.0, Lightning's
precision plugin) on pre-built random batches of the preset's size: on the CPU in fp32, and on
CUDA in fp32 and bf16-mixed when a GPU is there (else the JSON says "no CUDA" and holds the CPU
alone). The first steps of each configuration (cuDNN set-up, allocator, thread pool) are not
timed. Sampling times moodgen's carried-state sampler at batch 1 and 64 on each device. Ratios
are against the CPU measured in the same run, so no number from another machine enters them.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from functools import partial
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import train_config
from lightning_throughput import VOCAB, make_module

from moodgen.generation.sampler import sample
from moodgen.models import LanguageModel
from moodgen.models.module import ARCHITECTURE_KEYS, quiet_trainer

EPOCH_TOKENS = 2_115_993  # VGMIDI's LM training tokens with REMI (experiments/default_run.md)
REPORT_EPOCH_SECONDS = 2 * 3600  # the report: ~2 h per epoch of the paper model on a Colab GPU
SAMPLING_BATCHES = (1, 64)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="paper", help="model preset (conf/model/<name>.yaml)")
    parser.add_argument("--steps", type=int, default=30, help="training steps per GPU configuration")
    parser.add_argument("--cpu-steps", type=int, default=3, help="training steps on the CPU (slow: keep small)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps of each GPU configuration")
    parser.add_argument("--tokens", type=int, default=512, help="tokens sampled per row")
    parser.add_argument("--batch-size", type=int, help="override the preset's batch size (dry runs)")
    parser.add_argument("--seq-len", type=int, help="override the preset's sequence length (dry runs)")
    parser.add_argument("--no-cuda", action="store_true", help="measure the CPU only")
    parser.add_argument("--out", type=Path, help="write the results here as JSON")
    parser.add_argument("--show", type=Path, help="print the table of an earlier --out file and exit")
    return parser.parse_args(argv)


def model_settings(args) -> dict:
    """The preset's model config, with the dry-run overrides of batch and sequence length."""
    model_cfg = OmegaConf.to_container(train_config(args.model).model, resolve=True)
    if args.batch_size:
        model_cfg["batch_size"] = args.batch_size
    if args.seq_len:
        model_cfg["seq_len"] = args.seq_len
    return model_cfg


def random_batches(model_cfg: dict, steps: int) -> list:
    generator = torch.Generator().manual_seed(0)
    shape = (model_cfg["batch_size"], model_cfg["seq_len"])
    return [
        (torch.randint(0, VOCAB, shape, generator=generator), torch.randint(0, VOCAB, shape, generator=generator))
        for _ in range(steps)
    ]


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class StepClock(pl.Callback):
    """The time at the end of every training batch, after the device has finished it."""

    def __init__(self, device: str):
        self.device, self.start, self.ends = device, 0.0, []

    def on_train_start(self, trainer, module):
        synchronize(self.device)
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        synchronize(self.device)
        self.ends.append(time.perf_counter())


def timed_span(clock: StepClock, warmup: int) -> tuple[int, float]:
    """(steps timed, seconds) after the first `warmup` steps; with one step, that step."""
    warmup = min(warmup, len(clock.ends) - 1)
    begin = clock.ends[warmup - 1] if warmup > 0 else clock.start
    return len(clock.ends) - warmup, clock.ends[-1] - begin


def train_throughput(model_cfg: dict, steps: int, warmup: int, device: str, precision: str) -> dict:
    """Tokens/s of Lightning training steps of the preset on one device and precision."""
    batches = random_batches(model_cfg, steps)
    clock = StepClock(device)
    trainer = quiet_trainer(
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
        precision=precision,
        max_steps=steps,
        max_epochs=1,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=[clock],
    )
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    trainer.fit(make_module(model_cfg), train_dataloaders=DataLoader(batches, batch_size=None))
    timed, seconds = timed_span(clock, warmup)
    tokens_per_s = timed * model_cfg["batch_size"] * model_cfg["seq_len"] / seconds
    result = {"steps_timed": timed, "seconds": round(seconds, 4), "tokens_per_s": round(tokens_per_s, 1)}
    if device == "cuda":
        result["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    return result


def sampling_throughput(model_cfg: dict, device: str, batch: int, tokens: int) -> dict:
    """Tokens/s of moodgen's sampler drawing `tokens` per row for `batch` rows (no early stop)."""
    torch.manual_seed(0)
    net = LanguageModel(VOCAB, **{k: model_cfg[k] for k in ARCHITECTURE_KEYS}).eval().to(device)
    # the sampler draws with the generator it is given, which must live on the net's device
    generator = torch.Generator(device=device).manual_seed(0)
    sample(net, batch, min(tokens, 8), 1, None, generator=generator)  # warm-up: kernels, allocator
    synchronize(device)
    start = time.perf_counter()
    sample(net, batch, tokens, 1, None, generator=generator)
    synchronize(device)
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 4), "tokens_per_s": round(batch * tokens / seconds, 1)}


def guarded(measure, **labels) -> dict:
    """One configuration's result; a failure (say bf16 unsupported) is recorded, and the others still run."""
    try:
        return {**labels, **measure()}
    except Exception as exc:  # a benchmark row, not a crash: the next configuration is independent
        line = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        print(f"gpu_throughput: {labels} failed: {line}", file=sys.stderr, flush=True)
        return {**labels, "error": line}


def training_configs(cuda: bool, args) -> list[tuple[str, str, int, int]]:
    """(device, precision, steps, untimed steps): the CPU needs one step to warm up, cuDNN a few.

    The GPU goes first: if the stage's time runs out, the scarce numbers are already saved.
    """
    gpu = [("cuda", precision, args.steps, args.warmup) for precision in ("bf16-mixed", "32-true")]
    return [*(gpu if cuda else []), ("cpu", "32-true", args.cpu_steps, 1)]


def rate(rows: list[dict], **match) -> float | None:
    for row in rows:
        if all(row.get(k) == v for k, v in match.items()) and "tokens_per_s" in row:
            return row["tokens_per_s"]
    return None


def ratios(result: dict) -> dict:
    """GPU over CPU (same run), bf16 over fp32, and each training config's epoch time vs the report's 2 h."""
    train, sampling = result["train"], result["sampling"]
    cpu = rate(train, device="cpu")
    out: dict = {}
    for precision in ("32-true", "bf16-mixed"):
        gpu = rate(train, device="cuda", precision=precision)
        if gpu and cpu:
            out[f"train_cuda_{precision}_over_cpu"] = round(gpu / cpu, 2)
    fp32, bf16 = rate(train, device="cuda", precision="32-true"), rate(train, device="cuda", precision="bf16-mixed")
    if fp32 and bf16:
        out["train_bf16_over_fp32"] = round(bf16 / fp32, 3)
    for batch in SAMPLING_BATCHES:
        gpu, cpu_s = rate(sampling, device="cuda", batch=batch), rate(sampling, device="cpu", batch=batch)
        if gpu and cpu_s:
            out[f"sampling_batch{batch}_cuda_over_cpu"] = round(gpu / cpu_s, 2)
    for row in train:
        if "tokens_per_s" in row:
            seconds = EPOCH_TOKENS / row["tokens_per_s"]
            out[f"epoch_seconds_{row['device']}_{row['precision']}"] = round(seconds, 1)
            out[f"report_epoch_over_{row['device']}_{row['precision']}"] = round(REPORT_EPOCH_SECONDS / seconds, 1)
    return out


def environment(cuda: bool) -> dict:
    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": pl.__version__,
        "cpu_threads": torch.get_num_threads(),
        "cuda": cuda,
    }
    if cuda:
        env |= {
            "gpu": torch.cuda.get_device_name(0),
            "cudnn": torch.backends.cudnn.version(),
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,  # nn.LSTM in fp32 uses TF32 when True
            "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        }
    return env


def train_row(model_cfg: dict, device: str, precision: str, steps: int, warmup: int) -> dict:
    measure = partial(train_throughput, model_cfg, steps, warmup, device, precision)
    return guarded(measure, device=device, precision=precision, steps=steps)


def sampling_row(model_cfg: dict, device: str, batch: int, tokens: int) -> dict:
    measure = partial(sampling_throughput, model_cfg, device, batch, tokens)
    return guarded(measure, device=device, batch=batch, tokens=tokens)


def save(result: dict, out: Path | None) -> dict:
    """The ratios of what is measured so far, written after every row: a stage cut short keeps its rows."""
    result["ratios"] = ratios(result)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
    return result


def measure_all(args) -> dict:
    cuda = torch.cuda.is_available() and not args.no_cuda
    if not cuda:
        print("gpu_throughput: no CUDA: measuring the CPU only", flush=True)
    model_cfg = model_settings(args)
    settings = {k: model_cfg[k] for k in ("name", "batch_size", "seq_len", "hidden_size", "num_layers")}
    result = {"environment": environment(cuda), "model": settings, "vocab": VOCAB, "train": [], "sampling": []}
    if not cuda:
        result["note"] = "no CUDA"
    for config in training_configs(cuda, args):
        result["train"].append(train_row(model_cfg, *config))
        save(result, args.out)
    for device in ["cuda", "cpu"] if cuda else ["cpu"]:
        for batch in SAMPLING_BATCHES:
            result["sampling"].append(sampling_row(model_cfg, device, batch, args.tokens))
            save(result, args.out)
    return save(result, args.out)


def cell(row: dict, key: str = "tokens_per_s") -> str:
    return f"error: {row['error'][:60]}" if "error" in row else f"{row[key]:,.0f}"


def table(result: dict) -> str:
    env, model = result["environment"], result["model"]
    lines = [
        f"model {model['name']}: batch {model['batch_size']} x {model['seq_len']} tokens; "
        f"torch {env['torch']}, {env['cpu_threads']} CPU threads, GPU: {env.get('gpu', 'no CUDA')}",
        "",
        "| training | steps timed | tokens/s |",
        "|---|---|---|",
    ]
    lines += [f"| {r['device']} {r['precision']} | {r.get('steps_timed', '-')} | {cell(r)} |" for r in result["train"]]
    lines += ["", "| sampling | tokens per row | tokens/s |", "|---|---|---|"]
    lines += [f"| {r['device']} batch {r['batch']} | {r['tokens']} | {cell(r)} |" for r in result["sampling"]]
    lines += ["", "| ratio | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in result["ratios"].items()]
    return "\n".join(lines)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.show:
        print(table(json.loads(args.show.read_text())))
        return
    print(table(measure_all(args)), flush=True)


if __name__ == "__main__":
    main()
