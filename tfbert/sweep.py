"""Run a grid of configurations one after another; resumable, failure-tolerant.

The sweep folder (``tfbert.runs.SweepFolder``) holds one run folder per run,
``summary.csv`` (one row per run, rewritten after every run so a crash keeps
what finished) and ``sweep_curves.png`` comparing every run's validation curves.
"""

from __future__ import annotations

import traceback
from pathlib import Path

import pandas as pd

from tfbert.config import RunConfig, identity, identity_hash, resolve, run_name, validate, varying_settings
from tfbert.errors import TfbertError
from tfbert.experiment import data_fingerprint, load_splits, run_experiment
from tfbert.files import check_writable_dir
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
    for column in frame:  # a failed run's missing values must not turn 64 into 64.0
        values = [r[column] for r in rows if r.get(column) is not None]
        if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            frame[column] = pd.array([r.get(column) for r in rows], dtype="Int64")
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
        resume: skip runs whose folder holds a finished run with the same settings and data
            (``identity.json``; default: the configs' ``resume``).
        verbose: Keras progress-bar setting.
        runner: the function running one config (default ``run_experiment``);
            tests inject failures through it.

    Returns:
        The summary table (also in ``summary.csv``).
    """
    varying = varying_settings(configs)  # as given: a head's own defaults do not count as varied
    configs = [validate(resolve(c)) for c in configs]  # every setting checked before any work
    sweep = SweepFolder(check_writable_dir(sweep_dir or configs[0].output_dir, "--output-dir"))
    resume = configs[0].resume if resume is None else resume
    rows: list[dict] = []
    data_cache: dict = {}
    print(f"sweep of {len(configs)} run(s) into {sweep.path}")
    for i, config in enumerate(configs, 1):
        name = run_name(config, varying)
        try:
            splits, fingerprint = _splits(config, data_cache)
        except Exception as err:  # noqa: BLE001 - recorded like any failed run
            run = sweep.run(name)  # its folder is written only if it holds no finished run
            rows.append(_failed(config, run, err, sweep, rows, f"[{i}/{len(configs)}] {name}",
                                record=run.status() != DONE))
            continue
        ident = {**identity(config), "data": fingerprint}
        run = _folder_for(sweep, name, ident)
        where = f"[{i}/{len(configs)}] {run.name}"
        if resume and run.is_done():
            print(f"{where}: finished earlier with the same settings and data, skipped")
            rows.append({**run.summary_row(), "status": DONE})
            continue
        print(where)
        rows.append(_run_one(config, run, ident, splits, runner or run_experiment, verbose, sweep, rows, where))
        write_summary(rows, sweep)
        plot_sweep_folder(sweep, rows)
    frame = write_summary(rows, sweep)
    _report(frame, sweep, rows, plot_sweep_folder(sweep, rows))
    return frame


def _splits(config: RunConfig, data_cache: dict):
    """(splits, data fingerprint), loaded and hashed once for all runs that share the data settings."""
    key = _data_key(config)
    if key not in data_cache:
        splits = load_splits(config)
        data_cache[key] = (splits, data_fingerprint(config, splits))
    return data_cache[key]


def _folder_for(sweep: SweepFolder, name: str, ident: dict) -> RunFolder:
    """The run's readable folder, unless it holds a run with other settings or data: then the
    same name with a short hash of the full settings, so no finished result is ever reused
    for different settings or overwritten."""
    run = sweep.run(name)
    differ = run.differences(ident)
    if differ == [] or (differ is None and run.status() != DONE):  # same run, or nothing finished to keep
        return run
    other = sweep.run(f"{name}__{identity_hash(ident)}")
    what = ", ".join(differ) if differ else "settings not recorded (an older tfbert)"
    print(f"{name} holds a run with other settings ({what}); this run goes into {other.name}")
    return other


def _run_one(config, run: RunFolder, ident, splits, runner, verbose, sweep, rows, where) -> dict:
    """One run's summary row; a failure is recorded in its folder and becomes a failed row."""
    try:
        run.start()
        row = runner(config, run.path, splits, verbose=verbose)
        run.write_identity(ident)  # only a finished run is compared and skipped on resume
        return row
    except KeyboardInterrupt:
        run.write_status(INTERRUPTED)
        write_summary(rows + [_failed_row(config, run, INTERRUPTED, "KeyboardInterrupt")], sweep)
        print(f"interrupted; finished runs are kept in {sweep.summary_csv}; rerun to resume")
        raise
    except Exception as err:  # a failed run must not stop the sweep
        return _failed(config, run, err, sweep, rows, where)


def _failed(config, run: RunFolder, err: Exception, sweep, rows, where, record: bool = True) -> dict:
    line = _error_line(err)
    if record:
        run.write_status(FAILED, line)
        run.write_error(traceback.format_exc())
    hint = "" if isinstance(err, TfbertError) or not record else f" (traceback in {run.error_file})"
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
