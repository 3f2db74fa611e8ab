"""Run a grid of configurations: resumable, failure-tolerant, over one or many workers.

The sweep folder (``tfbert.runs.SweepFolder``) holds one run folder per run,
``summary.csv`` (one row per run, rewritten after every run so a crash keeps
what finished) and ``sweep_curves.png`` comparing every run's validation curves.
Each run is claimed before it trains (``tfbert.claims``), so worker processes
(``workers=N``, ``tfbert.workers``) and other machines running the same sweep
into the same folder share the grid without running a run twice.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path

import pandas as pd

from tfbert.claims import Worker, heartbeat_interval
from tfbert.config import RunConfig, identity, identity_hash, resolve, run_name, validate, varying_settings
from tfbert.errors import ConfigError, TfbertError
from tfbert.experiment import data_fingerprint, load_splits, run_experiment
from tfbert.files import check_writable_dir
from tfbert.runs import DONE, FAILED, INTERRUPTED, RunFolder, SweepFolder
from tfbert.sweep_state import PlannedRun, SweepPlan, failed_row, folder_clock, write_plan_summary


def _error_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


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
              verbose: int | str = "auto", runner=None, workers: int | None = None,
              plugins: list[str] | tuple = ()) -> pd.DataFrame:
    """Run every config; finished runs are skipped on resume, failures recorded.

    Args:
        configs: list of RunConfig (``tfbert.config.expand_grid``).
        sweep_dir: folder for the sweep (default: the configs' ``output_dir``).
        resume: skip runs whose folder holds a finished run with the same settings and data
            (``identity.json``; default: the configs' ``resume``).
        verbose: Keras progress-bar setting.
        runner: the function running one config (default ``run_experiment``);
            tests inject failures through it (with workers, a module-level function).
        workers: worker processes on this machine (default: the configs' ``workers``); 1 runs here.
        plugins: Python files or modules each worker process imports first (``tfbert --plugin``).

    Returns:
        The summary table (also in ``summary.csv``).
    """
    varying = varying_settings(configs)  # as given: a head's own defaults do not count as varied
    configs = [validate(resolve(c)) for c in configs]  # every setting checked before any work
    workers = configs[0].workers if workers is None else workers
    slots = _slots(workers, configs[0].strategy)  # a bad --workers fails before any folder is written
    sweep = SweepFolder(check_writable_dir(sweep_dir or configs[0].output_dir, "--output-dir"))
    plan = SweepPlan(sweep.path, [], configs[0].resume if resume is None else resume, folder_clock(sweep.path),
                     configs[0].worker_timeout, verbose)
    data_cache: dict = {}
    print(f"sweep of {len(configs)} run(s) into {sweep.path}"
          + (f" over {workers} worker processes" if workers > 1 else ""))
    for i, config in enumerate(configs, 1):
        plan.runs.append(_plan_run(plan, i, len(configs), config, run_name(config, varying), data_cache))
    for run in plan.runs:
        if run.ident is not None and plan.resume and plan.settled(run):
            print(f"{plan.where(run)}: finished earlier with the same settings and data, skipped")
    if configs[0].strategy == "multi_worker":
        alongside = _lockstep(plan, runner or run_experiment, data_cache)
        if alongside is not None:  # a non-chief worker: its own account; the chief writes summary.csv
            print(f"trained every run alongside the chief, which writes {sweep.summary_csv}")
            return pd.DataFrame(alongside, columns=["run", "status", "error"])
    elif workers > 1:
        from tfbert.workers import run_workers

        run_workers(plan, slots, runner, plugins, on_change=lambda: write_plan_summary(plan))
    else:
        work_through(plan, Worker.here(), runner, data_cache, after_run=lambda: _refresh(plan))
    frame = write_plan_summary(plan)
    _report(frame, plan, plot_sweep_folder(sweep, frame.to_dict("records")))
    return frame


def _slots(workers: int, strategy: str):
    if workers <= 1:
        return []
    if strategy == "multi_worker":
        raise ConfigError(f"--workers {workers} and --strategy multi_worker do not mix: the machines in $TF_CONFIG "
                          f"train each run together; pass --workers 1")
    from tfbert.workers import worker_slots

    return worker_slots(workers)


def _plan_run(plan: SweepPlan, i: int, total: int, config: RunConfig, name: str, data_cache: dict) -> PlannedRun:
    """The run's folder and identity; a run whose data cannot be loaded is recorded failed here."""
    try:
        _, fingerprint = _splits(config, data_cache)
    except Exception as err:  # noqa: BLE001 - recorded like any failed run
        run = plan.sweep.run(name)
        record = run.status() != DONE  # a finished run's folder is never marked failed
        row = _failed(config, run, err, f"[{i}/{total}] {name}", record=record)
        plan.overrides[name] = row
        return PlannedRun(i, config, name, None)
    ident = {**identity(config), "data": fingerprint}
    return PlannedRun(i, config, _folder_for(plan.sweep, name, ident).name, ident)


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


def work_through(plan: SweepPlan, worker: Worker, runner, data_cache: dict, after_run=None,
                 prefix: str = "") -> None:
    """Claim and run every unsettled run of ``plan`` until none is left; runs that other workers
    hold are waited for, and taken over when their heartbeat stops for ``plan.timeout`` seconds."""
    waiting: set[str] = set()
    while todo := plan.unsettled():
        held = []
        for run in todo:
            claim = plan.claim(run).acquire(worker, plan.timeout)
            if claim is None:
                held.append(run)
                continue
            try:
                if plan.settled(run):  # another worker finished it between our look and our claim
                    continue
                if claim.taken_from:
                    print(f"{prefix}{plan.where(run)}: taken over from {claim.taken_from.get('name')} "
                          f"on {claim.taken_from.get('host')} (no heartbeat for over {plan.timeout:g} s)")
                print(f"{prefix}{plan.where(run)}")
                claim.heartbeat(heartbeat_interval(plan.timeout))
                _run_one(plan, run, runner or run_experiment, data_cache)
            finally:
                claim.release()
            if after_run:
                after_run()
        if len(held) == len(todo):  # nothing left but runs other workers hold
            _say_waiting(plan, held, waiting, prefix)
            time.sleep(min(2.0, heartbeat_interval(plan.timeout)))


def _lockstep(plan: SweepPlan, runner, data_cache: dict) -> list[dict] | None:
    """--strategy multi_worker: the machines of $TF_CONFIG train each run together, so every one
    goes through the same runs in grid order, unclaimed; only the chief writes the run folders.
    Returns None on the chief, else this worker's rows (run, status, error)."""
    from tfbert.distribute import placement

    todo = plan.unsettled()  # read before the cluster assembles: until then the chief writes nothing
    config = plan.runs[0].config
    chief = placement(config.strategy, config.worker_timeout).is_chief
    rows = []
    for run in todo:
        print(plan.where(run))
        if chief:
            _run_one(plan, run, runner, data_cache)
            _refresh(plan)
            continue
        try:
            splits, _ = _splits(run.config, data_cache)
            runner(run.config, plan.folder(run).path, splits, verbose=plan.verbose)
            rows.append({"run": run.name, "status": DONE, "error": ""})
        except Exception as err:  # noqa: BLE001 - the chief records the run; this worker goes on with the grid
            print(f"{plan.where(run)} FAILED on this worker: {_error_line(err)}")
            rows.append({"run": run.name, "status": FAILED, "error": _error_line(err)})
    return None if chief else rows


def _say_waiting(plan: SweepPlan, held: list[PlannedRun], waiting: set, prefix: str) -> None:
    for run in held:
        holder = plan.claim(run).holder(plan.timeout)
        if holder is not None and run.name not in waiting:
            waiting.add(run.name)
            print(f"{prefix}{plan.where(run)}: running on {holder.get('name')} ({holder.get('host')}); waiting "
                  f"(taken over if its heartbeat stops for {plan.timeout:g} s)", flush=True)


def _run_one(plan: SweepPlan, planned: PlannedRun, runner, data_cache: dict) -> None:
    """Train one run; a failure is recorded in its folder, an interrupt too (and stops the sweep)."""
    run = plan.folder(planned)
    try:
        splits, _ = _splits(planned.config, data_cache)
        run.start(keep_logs=True)  # run_experiment clears them, unless it resumes from a checkpoint
        row = runner(planned.config, run.path, splits, verbose=plan.verbose)
        if not run.is_done():  # a runner that only returned its row
            run.write_summary_row(row)
            run.write_status(DONE)
        run.write_identity(planned.ident)  # only a finished run is compared and skipped on resume
    except KeyboardInterrupt:
        run.write_status(INTERRUPTED, "KeyboardInterrupt")
        write_plan_summary(plan)
        print(f"interrupted; finished runs are kept in {plan.sweep.summary_csv}; rerun to resume")
        raise
    except Exception as err:  # a failed run must not stop the sweep
        _failed(planned.config, run, err, plan.where(planned))


def _refresh(plan: SweepPlan) -> None:
    frame = write_plan_summary(plan)
    plot_sweep_folder(plan.sweep, frame.to_dict("records"))


def _failed(config, run: RunFolder, err: Exception, where, record: bool = True) -> dict:
    line = _error_line(err)
    if record:
        run.write_status(FAILED, line)
        run.write_error(traceback.format_exc())
    hint = "" if isinstance(err, TfbertError) or not record else f" (traceback in {run.error_file})"
    print(f"{where} FAILED: {line}{hint}")
    return failed_row(config, run.name, FAILED, line)


def _report(frame: pd.DataFrame, plan: SweepPlan, figure: Path | None) -> None:
    sweep = plan.sweep
    scores = [c for c in frame if c.startswith("best_val_")] + ["best_epoch"] + \
        [c for c in frame if c.startswith("test_") and c != "test_f1_macro"]
    show = [c for c in ("run", "status", *scores, "train_time_s", "examples_per_s", "error") if c in frame]
    print("\n" + frame[show].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    left = [r.name for r in plan.unsettled()]
    if left:
        print(f"\n{len(left)} run(s) not finished: {', '.join(left)}; rerun the same command to resume them")
    print(f"\nsummary: {sweep.summary_csv}")
    if figure:
        print(f"validation curves of all runs: {figure}")
    for row in frame.to_dict("records"):
        if row.get("status") == DONE:
            print(f"curves: {sweep.run(row['run']).curves}")
