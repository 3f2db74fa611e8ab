"""Run and sweep folders: the one place that knows their file names.

A run folder (one training run, see ``tfbert.experiment``)::

    config.json / config.yaml   resolved settings (+ class names, registry entry)
    data_summary.json           class balance and text lengths
    history.csv / history.json  per epoch: loss, accuracy, val_*, learning_rate, time
    steps.csv                   with --eval-every-steps: step, val_loss, val_accuracy
    curves.png                  loss (top) and accuracy (bottom) per epoch
    test_metrics.json (+ test_per_class.csv, test_confusion_matrix.csv/.png)
    model/                      the exported model (see ``tfbert.export``)
    logs/                       TensorBoard: train/ and validation/ scalars per epoch
    checkpoints/                the training state while a run trains (``tfbert.checkpoints``)
    summary_row.json            the run's row of the sweep summary
    identity.json               the settings and data fingerprint a resumed run must match
    status.json                 done | failed (with the error) | interrupted
    error.txt                   the traceback of a failed run

A sweep folder holds one run folder per run, ``summary.csv`` (one row per
run) and ``sweep_curves.png`` (every run's validation curves); hidden,
``.claims/`` (which worker holds which run, ``tfbert.claims``) and
``.workers/`` (the logs of ``--workers`` processes, ``tfbert.workers``).

Files are written atomically (``tfbert.files``), so a run killed while
writing leaves the previous version or none, never half a file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from tfbert.files import TEMPORARY, read_json, write_json, write_text

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

DONE, FAILED, INTERRUPTED = "done", "failed", "interrupted"


class RunFolder:
    """The files of one run.

    Example:
        >>> run = RunFolder("runs/demo/minilm__dense__lr3e-05")
        >>> run.status()          # None before the run, then "done", "failed", ...
        >>> run.history_csv       # Path(".../history.csv")
    """

    CONFIG_JSON = "config.json"
    CONFIG_YAML = "config.yaml"
    DATA_SUMMARY = "data_summary.json"
    HISTORY_CSV = "history.csv"
    HISTORY_JSON = "history.json"
    STEPS_CSV = "steps.csv"
    CURVES = "curves.png"
    SUMMARY_ROW = "summary_row.json"
    STATUS = "status.json"
    ERROR = "error.txt"
    IDENTITY = "identity.json"
    MODEL = "model"
    LOGS = "logs"
    TEST_PREFIX = "test"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    def create(self) -> "RunFolder":
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    def start(self, keep_logs: bool = False) -> "RunFolder":
        """Make the folder ready for a (re)run: clear the last attempt's record (status, error,
        summary row, identity) and the temporary files a killed write left. ``keep_logs``: a run
        resuming from its checkpoints keeps its TensorBoard logs, whose curves it continues."""
        import shutil

        self.create()
        for name in (self.STATUS, self.ERROR, self.SUMMARY_ROW, self.IDENTITY):
            (self.path / name).unlink(missing_ok=True)
        if not keep_logs:
            shutil.rmtree(self.logs_dir, ignore_errors=True)  # TensorBoard would mix old and new event files
        for leftover in self.path.iterdir():
            if TEMPORARY.match(leftover.name):
                shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(missing_ok=True)
        return self

    def write_identity(self, identity: dict) -> None:
        """What a resumed run must match to reuse this finished one (see ``differences``)."""
        write_json(self.path / self.IDENTITY, identity)
    @property
    def config_json(self) -> Path:
        return self.path / self.CONFIG_JSON

    @property
    def history_csv(self) -> Path:
        return self.path / self.HISTORY_CSV

    @property
    def curves(self) -> Path:
        return self.path / self.CURVES

    @property
    def model_dir(self) -> Path:
        return self.path / self.MODEL

    @property
    def logs_dir(self) -> Path:
        return self.path / self.LOGS

    @property
    def error_file(self) -> Path:
        return self.path / self.ERROR

    # ------------------------------------------------------------------ writing
    def write_config(self, settings: dict) -> None:
        """The resolved settings, as JSON (exact) and YAML (to read, or to rerun with --config)."""
        import yaml

        from tfbert.files import json_safe

        write_json(self.config_json, settings)
        write_text(self.path / self.CONFIG_YAML,
                   yaml.safe_dump(json_safe(settings), sort_keys=False, allow_unicode=True))

    def write_data_summary(self, summary: dict) -> None:
        write_json(self.path / self.DATA_SUMMARY, summary)

    def write_history(self, frame: "pd.DataFrame") -> None:
        write_text(self.history_csv, frame.to_csv(index=False))
        write_json(self.path / self.HISTORY_JSON, frame.to_dict(orient="list"))

    def write_steps(self, frame: "pd.DataFrame") -> None:
        write_text(self.path / self.STEPS_CSV, frame.to_csv(index=False))

    def write_summary_row(self, row: dict) -> None:
        write_json(self.path / self.SUMMARY_ROW, row)

    def write_status(self, status: str, error: str | None = None) -> None:
        self.create()
        write_json(self.path / self.STATUS, {"status": status, **({"error": error} if error else {})})

    def write_error(self, text: str) -> None:
        write_text(self.error_file, text)

    # ------------------------------------------------------------------ reading
    def read_config(self) -> dict | None:
        config = read_json(self.config_json)
        return config if isinstance(config, dict) else None

    def status(self) -> str | None:
        """``done``, ``failed``, ``interrupted``, or None for a run that never got that far."""
        status = read_json(self.path / self.STATUS)
        return status.get("status") if isinstance(status, dict) else None

    def read_status(self) -> dict | None:
        """``{"status": ..., "error": ...}`` as written, None before the run recorded one."""
        status = read_json(self.path / self.STATUS)
        return status if isinstance(status, dict) else None

    def status_time(self) -> float | None:
        """When the status was written (the folder's clock), None without one."""
        try:
            return (self.path / self.STATUS).stat().st_mtime
        except FileNotFoundError:
            return None

    def summary_row(self) -> dict | None:
        row = read_json(self.path / self.SUMMARY_ROW)
        return row if isinstance(row, dict) else None

    def is_done(self) -> bool:
        """Finished, with its summary row written (what a resumed sweep skips)."""
        return self.status() == DONE and self.summary_row() is not None

    def has_history(self) -> bool:
        return self.history_csv.is_file()

    def differences(self, identity: dict) -> list[str] | None:
        """Keys of ``identity`` whose recorded values differ; None when nothing was recorded."""
        from tfbert.config import identity_differences

        recorded = read_json(self.path / self.IDENTITY)
        if not isinstance(recorded, dict):
            return None
        return identity_differences(recorded, identity)



class SweepFolder:
    """The files of a sweep: run folders, ``summary.csv``, ``sweep_curves.png``."""

    SUMMARY_CSV = "summary.csv"
    CURVES = "sweep_curves.png"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def create(self) -> "SweepFolder":
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    @property
    def summary_csv(self) -> Path:
        return self.path / self.SUMMARY_CSV

    @property
    def curves(self) -> Path:
        return self.path / self.CURVES

    def run(self, name: str) -> RunFolder:
        return RunFolder(self.path / name)

    def runs_with_history(self) -> list[RunFolder]:
        """Run sub-folders that recorded epochs, by name."""
        runs = (RunFolder(d) for d in sorted(self.path.iterdir(), key=lambda d: d.name) if d.is_dir())
        return [r for r in runs if r.has_history()]

    def write_summary(self, frame: "pd.DataFrame") -> None:
        write_text(self.summary_csv, frame.to_csv(index=False))
