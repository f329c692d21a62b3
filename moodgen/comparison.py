"""What a sweep's parent run shows: the arms side by side, their val-loss curves, Optuna's view."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from .tracking import ARM_TAG, tracking_uri

COLUMNS = ("arm", "run_id", "best_val_loss", "best_epoch", "train_val_gap", "clf_cv_acc", "status")
ERROR_TAG = "moodgen.error"  # why a sweep job failed, on its child run
FAILED_ARMS_TAG = "moodgen.failed_arms"  # on the parent: every failed arm with its reason


def _history(client: MlflowClient, run_id: str, key: str) -> list[float]:
    return [m.value for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


def arm_row(client: MlflowClient, run) -> dict:
    """One arm: best val loss, the epoch it came at, the last epoch's val - train loss, classifier CV."""
    run_id = run.info.run_id
    val = _history(client, run_id, "lm/val_loss")
    train = _history(client, run_id, "lm/train_loss_epoch")
    best_epoch = min(range(len(val)), key=val.__getitem__) + 1 if val else None
    cv = [v for k, v in run.data.metrics.items() if k.startswith("clf/mood4/") and k.endswith("/cv_acc")]
    return {
        "arm": run.data.tags.get(ARM_TAG, run.info.run_name),
        "run_id": run_id,
        "best_val_loss": min(val) if val else math.nan,
        "best_epoch": best_epoch,
        "train_val_gap": val[-1] - train[-1] if val and train else math.nan,
        "clf_cv_acc": max(cv) if cv else math.nan,
        "status": run.info.status,
        "_val_curve": val,
    }


def format_table(rows: list[dict], title: str) -> str:
    lines = [f"## {title}", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = [f"{row[c]:.4f}" if isinstance(row[c], float) else str(row[c]).replace("|", "/") for c in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def add_failures(client: MlflowClient, rows: list[dict], failures: list[dict]) -> None:
    """Each failed job (moodgen.sweeps.job_failed) as `failed: <why>` on its arm's row, whose child run
    is then FAILED with the reason as a tag; on a row of its own if it failed before its run opened."""
    for failure in failures:
        status = f"failed: {failure['error']}"
        same_arm = [r for r in rows if r["arm"] == failure["arm"] and not r["status"].startswith("failed")]
        if not same_arm:
            rows.append(
                {"arm": failure["arm"], "run_id": "-", "best_epoch": None, "status": status, "_val_curve": []}
                | dict.fromkeys(("best_val_loss", "train_val_gap", "clf_cv_acc"), math.nan)
            )
            continue
        row = same_arm[-1]  # the newest run of that arm
        client.set_tag(row["run_id"], ERROR_TAG, failure["error"])
        if row["status"] != "FAILED":  # e.g. trained, but without the metric the sweep optimises
            client.set_terminated(row["run_id"], "FAILED")
        row["status"] = status


def compare_children(config: DictConfig, parent_id: str, folder: Path, failures: list[dict] | None = None) -> str:
    """Write the comparison (Markdown + CSV + overlay plot) onto the parent run; return the table."""
    client = MlflowClient(tracking_uri=tracking_uri(config))
    parent = client.get_run(parent_id)
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'",
        order_by=["attributes.start_time ASC"],
    )
    rows = [arm_row(client, run) for run in children]
    failures = failures or []
    add_failures(client, rows, failures)
    if failures:
        arms = "; ".join(f"{f['arm']}: {f['error']}" for f in failures)
        client.set_tag(parent_id, FAILED_ARMS_TAG, arms[:5000])
    if not rows:
        client.set_terminated(parent_id, "FAILED")
        return ""
    title = f"{parent.info.run_name}: {len(rows)} arm(s)"
    table = format_table(rows, title)
    out = folder / "comparison"
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.md").write_text(table + "\n")
    with open(out / "comparison.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for row in rows:
        if row["_val_curve"]:
            ax.plot(range(1, len(row["_val_curve"]) + 1), row["_val_curve"], marker="o", label=(row["arm"] or "-")[:40])
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation loss")
    ax.set_title(title)
    if any(row["_val_curve"] for row in rows):
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "val_loss.png")
    plt.close(fig)
    client.log_artifacts(parent_id, str(out), "comparison")
    finished = [r for r in rows if not math.isnan(r["best_val_loss"])]
    if finished:
        best = min(finished, key=lambda r: r["best_val_loss"])
        client.log_metric(parent_id, "sweep/best_val_loss", best["best_val_loss"])
        client.set_tag(parent_id, "moodgen.best_arm", best["arm"])
    failed = any(r["status"] != "FINISHED" for r in rows)
    client.set_terminated(parent_id, "FAILED" if failed else "FINISHED")
    return table


def log_study(config: DictConfig, parent_id: str, study, folder: Path) -> None:
    """Best trial as params/metric on the parent, Optuna's history and importance plots as artifacts."""
    import optuna.visualization.matplotlib as ovm

    client = MlflowClient(tracking_uri=tracking_uri(config))
    complete = [t for t in study.trials if t.value is not None]
    if not complete:
        return
    best = study.best_trial
    # tags, not params: a continued study, or its next worker, finds another best (params never change);
    # metrics at step = finished trials, so the parent shows the newest view of a shared study
    for key, value in best.params.items():
        client.set_tag(parent_id, f"best.{key}", value)
    client.log_metric(parent_id, "study/best_value", best.value, step=len(complete))
    client.log_metric(parent_id, "study/trials", len(complete), step=len(complete))
    out = folder / "study"
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "trials.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["number", "state", "value", *best.params])
        for t in study.trials:
            writer.writerow([t.number, t.state.name, t.value, *(t.params.get(k) for k in best.params)])
    plots = {"optimization_history.png": ovm.plot_optimization_history}
    if len(complete) >= 2 and len(best.params) >= 2:
        plots["param_importances.png"] = ovm.plot_param_importances
    for name, plot in plots.items():
        try:
            axes = plot(study)
            axes.figure.tight_layout()
            axes.figure.savefig(out / name)
            plt.close(axes.figure)
        except (ValueError, RuntimeError):  # e.g. importances of a parameter that never varied
            continue
    client.log_artifacts(parent_id, str(out), "study")
