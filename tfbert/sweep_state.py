"""What a sweep is and where it stands, read from its folder: the planned runs, which of them are
settled, and the summary table built from the run folders.

Every worker (in this process, in worker processes, on other machines sharing the folder) reads
the same files, so they agree on what is left to do without talking to each other.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from pathlib import Path

import pandas as pd

from tfbert.claims import CLAIMS_DIR, ClaimFile
from tfbert.config import RunConfig
from tfbert.runs import DONE, RunFolder, SweepFolder

SUMMARY_COLUMNS = ["run", "status", "model", "head", "learning_rate", "seq_length", "epochs",
                   "epochs_run", "batch_size", "seed", "best_val_accuracy", "best_val_pearson", "best_val_f1_micro",
                   "best_epoch", "test_accuracy", "test_pearson", "test_spearman", "test_rmse", "test_f1_micro",
                   "test_f1_macro", "train_time_s", "examples_per_s", "error"]
RUNNING = "running"


@dataclasses.dataclass
class PlannedRun:
    """One run of the grid: its settings, folder name and identity (what resume compares)."""

    index: int
    config: RunConfig
    name: str
    ident: dict | None  # None: its data could not be loaded


@dataclasses.dataclass
class SweepPlan:
    """Everything a worker needs to work through a sweep (pickled for worker processes)."""

    sweep_dir: Path
    runs: list[PlannedRun]
    resume: bool
    started: float  # the sweep folder's clock when this sweep began: newer records are this sweep's
    timeout: float
    verbose: int | str = "auto"
    overrides: dict = dataclasses.field(default_factory=dict)  # rows decided before any worker ran

    @property
    def sweep(self) -> SweepFolder:
        return SweepFolder(self.sweep_dir)

    def folder(self, run: PlannedRun) -> RunFolder:
        return self.sweep.run(run.name)

    def claim(self, run: PlannedRun) -> ClaimFile:
        return ClaimFile(self.sweep_dir, run.name)

    def where(self, run: PlannedRun) -> str:
        return f"[{run.index}/{len(self.runs)}] {run.name}"

    def settled(self, run: PlannedRun) -> bool:
        """Finished for this sweep: recorded since it began, or (resuming) finished before."""
        folder = self.folder(run)
        when = folder.status_time()
        if when is None:
            return False
        if when >= self.started:
            return folder.status() is not None
        return self.resume and folder.is_done()

    def unsettled(self) -> list[PlannedRun]:
        return [r for r in self.runs if r.ident is not None and not self.settled(r)]


def folder_clock(sweep_dir: Path) -> float:
    """Now, by the clock that stamps the sweep folder's files (an NFS server's, on shared folders)."""
    stamp = Path(sweep_dir) / CLAIMS_DIR / f".now-{uuid.uuid4().hex[:8]}"
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.touch()
    try:
        return stamp.stat().st_mtime
    finally:
        stamp.unlink(missing_ok=True)


def failed_row(config: RunConfig, name: str, status: str, error: str) -> dict:
    return {"run": name, "status": status, "model": config.model, "head": config.head,
            "learning_rate": config.learning_rate, "seq_length": config.seq_length,
            "epochs": config.epochs, "batch_size": config.batch_size, "seed": config.seed,
            "error": error}


def summary_rows(plan: SweepPlan) -> list[dict]:
    """One row per run that finished in this sweep (or earlier, resuming) or is running now."""
    rows = []
    for run in plan.runs:
        folder = plan.folder(run)
        if run.name in plan.overrides:
            rows.append(plan.overrides[run.name])
        elif plan.settled(run) and folder.is_done():
            rows.append({**folder.summary_row(), "run": run.name, "status": DONE})
        elif plan.settled(run):
            record = folder.read_status() or {}
            rows.append(failed_row(run.config, run.name, record.get("status", "?"), record.get("error", "")))
        elif (holder := plan.claim(run).holder(plan.timeout)) is not None:
            rows.append(failed_row(run.config, run.name, RUNNING, f"on {holder.get('name')} ({holder.get('host')})"))
    return rows


def summary_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame = frame[[c for c in SUMMARY_COLUMNS if c in frame] + [c for c in frame if c not in SUMMARY_COLUMNS]]
    for column in frame:  # a failed run's missing values must not turn 64 into 64.0
        values = [r[column] for r in rows if r.get(column) is not None]
        if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            frame[column] = pd.array([r.get(column) for r in rows], dtype="Int64")
    return frame


@contextlib.contextmanager
def summary_lock(sweep_dir: Path):
    """One writer of summary.csv at a time, across processes and (NFS locks) machines: each writer
    reads the folders inside the lock, so the last file written is never older than another."""
    import fcntl

    path = Path(sweep_dir) / CLAIMS_DIR / "summary.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError:  # a filesystem without locks: writes stay atomic, only their order is not kept
            pass
        yield


def write_plan_summary(plan: SweepPlan) -> pd.DataFrame:
    """summary.csv from the run folders' current state; the frame it wrote."""
    with summary_lock(plan.sweep_dir):
        rows = summary_rows(plan)
        frame = summary_frame(rows) if rows else pd.DataFrame(columns=["run", "status"])
        plan.sweep.write_summary(frame)
    return frame

