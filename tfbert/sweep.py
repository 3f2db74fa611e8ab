"""Run a grid of configurations one after another; resumable, failure-tolerant.

The sweep folder (``tfbert.runs.SweepFolder``) holds one run folder per run,
``summary.csv`` (one row per run, rewritten after every run so a crash keeps
what finished) and ``sweep_curves.png`` comparing every run's validation curves.
"""

from __future__ import annotations

import traceback
from pathlib import Path

import pandas as pd

from tfbert.config import RunConfig, resolve, run_name, varying_settings
from tfbert.errors import TfbertError
from tfbert.runs import DONE, FAILED, INTERRUPTED, RunFolder, SweepFolder

SUMMARY_COLUMNS = ["run", "status", "model", "head", "learning_rate", "seq_length", "epochs",
                   "epochs_run", "batch_size", "seed", "best_val_accuracy", "best_epoch",
                   "test_accuracy", "test_f1_macro", "train_time_s", "examples_per_s", "error"]


def _failed_row(config: RunConfig, run: RunFolder, status: str, error: str) -> dict:
    return {"run": run.name, "status": status, "model": config.model, "head": config.head,
            "learning_rate": config.learning_rate, "seq_length": config.seq_length,
            "epochs": config.epochs, "batch_size": config.batch_size, "seed": config.seed,
            "error": error}


def _error_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


def write_summary(rows: list[dict], sweep: SweepFolder) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame = frame[[c for c in SUMMARY_COLUMNS if c in frame] + [c for c in frame if c not in SUMMARY_COLUMNS]]
    sweep.write_summary(frame)
    return frame


def plot_sweep_folder(sweep: SweepFolder, rows: list[dict]) -> Path | None:
    from tfbert.plotting import plot_sweep

    runs = [sweep.run(r["run"]) for r in rows if r.get("status") == DONE]
    histories = {run.name: run.history_csv for run in runs if run.has_history()}
    if not histories:
        return None
    return plot_sweep(histories, sweep.curves, title=f"sweep: {sweep.path.name}")


def _data_key(config: RunConfig) -> tuple:
    """The settings that decide a run's data: runs that share them share one load."""
    return (config.data, config.train, config.valid, config.test, config.text_column,
            config.label_column, config.valid_fraction, config.max_train_examples,
            config.drop_empty, config.drop_duplicates, config.seed)


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
    from tfbert.experiment import run_experiment

    sweep = SweepFolder(sweep_dir or configs[0].output_dir).create()
    resume = configs[0].resume if resume is None else resume
    varying = varying_settings(configs)
    rows: list[dict] = []
    data_cache: dict = {}
    print(f"sweep of {len(configs)} run(s) into {sweep.path}")
    for i, config in enumerate(configs, 1):
        config = resolve(config)
        run = sweep.run(run_name(config, varying))
        where = f"[{i}/{len(configs)}] {run.name}"
        if resume and run.is_done():
            print(f"{where}: finished earlier, skipped")
            rows.append({**run.summary_row(), "status": DONE})
            continue
        print(where)
        rows.append(_run_one(config, run, runner or run_experiment, data_cache, verbose, sweep, rows, where))
        write_summary(rows, sweep)
        plot_sweep_folder(sweep, rows)
    frame = write_summary(rows, sweep)
    _report(frame, sweep, rows, plot_sweep_folder(sweep, rows))
    return frame


def _run_one(config, run: RunFolder, runner, data_cache, verbose, sweep, rows, where) -> dict:
    """One run's summary row; a failure is recorded in its folder and becomes a failed row."""
    from tfbert.experiment import load_splits

    try:
        key = _data_key(config)
        if key not in data_cache:
            data_cache[key] = load_splits(config)
        return runner(config, run.path, data_cache[key], verbose=verbose)
    except KeyboardInterrupt:
        run.write_status(INTERRUPTED)
        write_summary(rows + [_failed_row(config, run, INTERRUPTED, "KeyboardInterrupt")], sweep)
        print(f"interrupted; finished runs are kept in {sweep.summary_csv}; rerun to resume")
        raise
    except Exception as err:  # a failed run must not stop the sweep
        line = _error_line(err)
        run.write_status(FAILED, line)
        run.write_error(traceback.format_exc())
        hint = "" if isinstance(err, TfbertError) else f" (traceback in {run.error_file})"
        print(f"{where} FAILED: {line}{hint}")
        return _failed_row(config, run, FAILED, line)


def _report(frame: pd.DataFrame, sweep: SweepFolder, rows: list[dict], figure: Path | None) -> None:
    show = [c for c in ("run", "status", "best_val_accuracy", "best_epoch", "test_accuracy",
                        "train_time_s", "examples_per_s", "error") if c in frame]
    print("\n" + frame[show].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"\nsummary: {sweep.summary_csv}")
    if figure:
        print(f"validation curves of all runs: {figure}")
    for row in rows:
        if row.get("status") == DONE:
            print(f"curves: {sweep.run(row['run']).curves}")
