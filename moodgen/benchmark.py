"""`python -m moodgen.benchmark steering=<method>`: honest steering accuracy, one MLflow run with its pieces."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from .cli import hydra_entry


def benchmark(cfg: DictConfig) -> float:
    from .bench.run import benchmark as run_benchmark
    from .bench.run import check_options
    from .generation.bundle import VGMIDI, from_run
    from .tracking import make_tracker

    check_options(cfg)  # before the model loads
    # the folds' own probes and judges steer and judge: of the model run only VGMIDI's phrases are needed
    bundle = from_run(cfg, cfg.model_run, needs=[VGMIDI], purpose="the steering benchmark")
    out = Path(cfg.out_dir or Path(cfg.paths.output_dir) / "benchmark").expanduser().resolve()
    methods = ", ".join(dict.fromkeys([*cfg.compare, cfg.steering.name]))
    tracker = make_tracker(cfg, f"benchmark {methods}")
    try:
        tracker.set_tags({"moodgen.model_run": bundle.run_id})
        result = run_benchmark(cfg, bundle, out)
        tracker.log_metrics(result["metrics"])
        tracker.log_artifact(out, "benchmark")
    except BaseException:
        tracker.end("FAILED")
        raise
    tracker.end("FINISHED")
    print(result["summary"].read_text(), flush=True)
    print(f"moodgen: benchmark of {methods} in {out} (model run {bundle.run_id})", flush=True)
    return result["metrics"][f"bench/{cfg.steering.name}/accuracy"]


main = hydra_entry("benchmark", benchmark)

if __name__ == "__main__":
    main()
