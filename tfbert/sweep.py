"""Run a grid of configurations one after another; resumable, failure-tolerant.

The sweep folder holds one sub-folder per run (see ``tfbert.experiment``),
``summary.csv`` (one row per run, rewritten after every run so a crash keeps
what finished) and ``sweep_curves.png`` comparing every run's validation curves.
"""

from __future__ import annotations

import json
import traceback
from pathlib import Path

import pandas as pd

from tfbert.config import RunConfig, run_name, varying_settings
from tfbert.errors import TfbertError

SUMMARY_COLUMNS = ["run", "status", "model", "head", "learning_rate", "seq_length", "epochs",
                   "epochs_run", "batch_size", "seed", "best_val_accuracy", "best_epoch",
                   "test_accuracy", "test_f1_macro", "train_time_s", "examples_per_s", "error"]


def _status(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "status.json").read_text())["status"]
    except (FileNotFoundError, KeyError, json.JSONDecodeError):
        return None


def _failed_row(config: RunConfig, run_dir: Path, status: str, error: str) -> dict:
    return {"run": run_dir.name, "status": status, "model": config.model, "head": config.head,
            "learning_rate": config.learning_rate, "seq_length": config.seq_length,
            "epochs": config.epochs, "batch_size": config.batch_size, "seed": config.seed,
            "error": error}


def _error_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


def write_summary(rows: list[dict], sweep_dir: Path) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame = frame[[c for c in SUMMARY_COLUMNS if c in frame] + [c for c in frame if c not in SUMMARY_COLUMNS]]
    frame.to_csv(sweep_dir / "summary.csv", index=False)
    return frame


def plot_sweep_folder(sweep_dir: Path, rows: list[dict]) -> Path | None:
    from tfbert.plotting import plot_sweep
    histories = {r["run"]: sweep_dir / r["run"] / "history.csv" for r in rows if r.get("status") == "done"}
    histories = {k: v for k, v in histories.items() if v.exists()}
    if not histories:
        return None
    return plot_sweep(histories, sweep_dir / "sweep_curves.png", title=f"sweep: {sweep_dir.name}")


def run_sweep(configs: list[RunConfig], sweep_dir: str | Path | None = None, resume: bool | None = None,
              verbose: int | str = "auto", runner=None) -> pd.DataFrame:
    """Run every config; finished runs are skipped on resume, failures recorded.

    Args:
        configs: list of RunConfig (``tfbert.config.expand_grid``).
        sweep_dir: folder for the sweep (default: the configs' ``output_dir``).
        resume: skip runs whose folder says done (default: the configs' ``resume``).
        verbose: Keras progress-bar setting.
        runner: the function running one config (default ``run_experiment``);
            tests inject failures through it.

    Returns:
        The summary table (also in ``summary.csv``).
    """
    from tfbert.experiment import load_splits, run_experiment

    runner = runner or run_experiment
    sweep_dir = Path(sweep_dir or configs[0].output_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    resume = configs[0].resume if resume is None else resume
    varying = varying_settings(configs)
    rows: list[dict] = []
    data_cache: dict = {}
    total = len(configs)
    print(f"sweep of {total} run(s) into {sweep_dir}")
    for i, config in enumerate(configs, 1):
        run_dir = sweep_dir / run_name(config, varying)
        if resume and _status(run_dir) == "done" and (run_dir / "summary_row.json").exists():
            print(f"[{i}/{total}] {run_dir.name}: finished earlier, skipped")
            rows.append({**json.loads((run_dir / "summary_row.json").read_text()), "status": "done"})
            continue
        print(f"[{i}/{total}] {run_dir.name}")
        try:
            key = (config.data, config.train, config.valid, config.test, config.text_column,
                   config.label_column, config.valid_fraction, config.max_train_examples,
                   config.drop_empty, config.drop_duplicates, config.seed)
            if key not in data_cache:
                data_cache[key] = load_splits(config)
            rows.append(runner(config, run_dir, data_cache[key], verbose=verbose))
        except KeyboardInterrupt:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "status.json").write_text(json.dumps({"status": "interrupted"}))
            rows.append(_failed_row(config, run_dir, "interrupted", "KeyboardInterrupt"))
            write_summary(rows, sweep_dir)
            print(f"interrupted; finished runs are kept in {sweep_dir}/summary.csv; rerun to resume")
            raise
        except Exception as err:  # a failed run must not stop the sweep
            run_dir.mkdir(parents=True, exist_ok=True)
            line = _error_line(err)
            (run_dir / "status.json").write_text(json.dumps({"status": "failed", "error": line}))
            (run_dir / "error.txt").write_text(traceback.format_exc())
            rows.append(_failed_row(config, run_dir, "failed", line))
            where = "" if isinstance(err, TfbertError) else f" (traceback in {run_dir}/error.txt)"
            print(f"[{i}/{total}] {run_dir.name} FAILED: {line}{where}")
        write_summary(rows, sweep_dir)
        plot_sweep_folder(sweep_dir, rows)
    frame = write_summary(rows, sweep_dir)
    figure = plot_sweep_folder(sweep_dir, rows)
    show = [c for c in ("run", "status", "best_val_accuracy", "best_epoch", "test_accuracy",
                        "train_time_s", "examples_per_s", "error") if c in frame]
    print("\n" + frame[show].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"\nsummary: {sweep_dir / 'summary.csv'}")
    if figure:
        print(f"validation curves of all runs: {figure}")
    for row in rows:
        if row.get("status") == "done":
            print(f"curves: {sweep_dir / row['run'] / 'curves.png'}")
    return frame
