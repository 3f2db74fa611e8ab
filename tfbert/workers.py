"""A sweep's worker processes on this machine (``--workers N``).

Each worker is a fresh Python process (``python -m tfbert.sweep_worker``; TensorFlow is not
fork-safe) pinned to its share of the CPU cores, with TensorFlow's thread pools sized to it, or
given one GPU. Workers share nothing but the sweep folder: they claim runs (``tfbert.claims``)
exactly as workers on other machines do. This process starts them, prints which worker runs which
run, and records the run of a worker that dies as failed, so no one waits for it.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from tfbert.claims import HELD, Claim, Worker, machine_key
from tfbert.errors import ConfigError
from tfbert.runs import DONE, FAILED

LOGS_DIR = ".workers"


@dataclasses.dataclass
class Slot:
    """A worker's share of this machine."""

    name: str
    cpus: list[int]
    gpu: str | None = None

    def describe(self) -> str:
        cores = f"CPU core{'s' if len(self.cpus) > 1 else ''} {','.join(map(str, self.cpus))}"
        return cores + (f", GPU {self.gpu}" if self.gpu is not None else "")


@dataclasses.dataclass
class WorkerJob:
    """What a worker process unpickles: the plan, and what the parent registered that it needs."""

    plan: Any  # tfbert.sweep_state.SweepPlan
    runner: Callable | None
    plugins: list[str]
    models: list  # ModelSpec of every model the runs use (registered here at run time, maybe)
    heads: list  # HeadSpec of every head the runs use


def visible_gpus() -> list[str]:
    """GPU ids a worker can be given: ``$CUDA_VISIBLE_DEVICES`` if set, else those TensorFlow sees."""
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given is not None:
        ids = [g.strip() for g in given.split(",") if g.strip()]
        return ids[:next((i for i, g in enumerate(ids) if g.startswith("-")), len(ids))]
    try:
        import tensorflow as tf

        return [str(i) for i in range(len(tf.config.list_physical_devices("GPU")))]
    except Exception:  # noqa: BLE001 - no usable GPU runtime: CPU workers
        return []


def worker_slots(n: int) -> list[Slot]:
    """N shares of this machine: contiguous CPU cores each, and one GPU each when GPUs are visible."""
    cpus = sorted(os.sched_getaffinity(0))
    gpus = visible_gpus()
    if not gpus and n > len(cpus):
        raise ConfigError(f"--workers {n} is more than the {len(cpus)} CPU core(s) this process may use; "
                          f"pass --workers {len(cpus)} or fewer")
    if gpus and n > len(gpus):
        print(f"note: {n} workers share {len(gpus)} GPU(s); each GPU trains several runs at once")
    return [Slot(f"w{i + 1}", cpus[i * len(cpus) // n:(i + 1) * len(cpus) // n] or [cpus[i % len(cpus)]],
                 gpus[i % len(gpus)] if gpus else None) for i in range(n)]


def _job(plan, runner, plugins) -> WorkerJob:
    from tfbert.heads import HEADS
    from tfbert.registry import get_spec

    heads = []
    for name in dict.fromkeys(run.config.head for run in plan.runs):
        try:
            pickle.dumps(HEADS[name])
            heads.append(HEADS[name])
        except Exception:  # noqa: BLE001 - defined where a new process cannot import it
            if not plugins:
                raise ConfigError(f"--workers: head '{name}' is defined where worker processes cannot import it "
                                  f"(e.g. in __main__); register it in a module or a --plugin file") from None
    models = [get_spec(m) for m in dict.fromkeys(run.config.model for run in plan.runs)]
    return WorkerJob(plan, runner, list(plugins), models, heads)


def _environment(slot: Slot) -> dict:
    """The worker's environment: TensorFlow reads its thread counts from it when it starts."""
    threads = str(len(slot.cpus))
    paths = [p or os.getcwd() for p in sys.path]  # the parent's imports (a test's runner, a plugin's module)
    env = {**os.environ, "TFBERT_WORKER_CPUS": ",".join(map(str, slot.cpus)), "TF_NUM_INTRAOP_THREADS": threads,
           "TF_NUM_INTEROP_THREADS": str(min(2, len(slot.cpus))), "OMP_NUM_THREADS": threads,
           "PYTHONPATH": os.pathsep.join(paths), "PYTHONUNBUFFERED": "1"}
    if slot.gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = slot.gpu
    return env


def _start(slot: Slot, job_path: Path, log: Path) -> subprocess.Popen:
    with open(log, "w", encoding="utf-8") as out:
        return subprocess.Popen([sys.executable, "-m", "tfbert.sweep_worker", str(job_path), slot.name],
                                env=_environment(slot), stdout=out, stderr=subprocess.STDOUT)


def run_workers(plan, slots: list[Slot], runner, plugins, on_change: Callable[[], Any]) -> None:
    """Run ``plan`` over one worker process per slot (fewer if fewer runs are left); returns when all
    have ended. ``on_change`` rewrites the summary after a worker dies."""
    todo = plan.unsettled()
    if not todo:
        return
    slots = slots[:len(todo)]
    logs = Path(plan.sweep_dir) / LOGS_DIR
    logs.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname()
    job_path = logs / f"job-{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}.pkl"
    job_path.write_bytes(pickle.dumps(_job(plan, runner, plugins)))
    procs = {}
    try:
        for slot in slots:
            log = logs / f"{host}-{slot.name}.log"
            procs[slot.name] = (slot, _start(slot, job_path, log), log)
            print(f"{slot.name}: pid {procs[slot.name][1].pid}, {slot.describe()}; log {log}", flush=True)
        _watch(plan, procs, on_change)
    except KeyboardInterrupt:
        _stop(procs)
        on_change()
        print(f"interrupted; finished runs are kept in {plan.sweep.summary_csv}; rerun to resume", flush=True)
        raise
    finally:
        job_path.unlink(missing_ok=True)


def _watch(plan, procs: dict, on_change) -> None:
    shown: dict[str, str] = {run.name: "settled" for run in plan.runs if run.ident is None or plan.settled(run)}
    alive = dict(procs)
    while alive:
        _show_progress(plan, shown)
        for name, (slot, proc, log) in list(alive.items()):
            code = proc.poll()
            if code is None:
                continue
            del alive[name]
            if code != 0:
                _worker_died(plan, slot, proc.pid, code, log)
                on_change()
        time.sleep(0.3)
    _show_progress(plan, shown)


def _show_progress(plan, shown: dict) -> None:
    """Print each run's moves: which worker took it, then how it ended and where its files are."""
    for run in plan.runs:
        if shown.get(run.name) == "settled":
            continue
        if plan.settled(run):
            folder = plan.folder(run)
            record = folder.read_status() or {}
            on = f" on {shown[run.name]}" if run.name in shown else ""
            if record.get("status") == DONE:
                row = folder.summary_row() or {}
                score = next((k for k in ("test_accuracy", "test_pearson", "test_f1_micro") if k in row), "")
                value = row.get(score)
                result = "done" + (f", {score.replace('_', ' ')} {value:.4f}" if isinstance(value, float) else "")
            else:
                result = f"{record.get('status')}: {record.get('error', '')}"
            print(f"{plan.where(run)}: {result}{on} -> {folder.path}", flush=True)
            shown[run.name] = "settled"
        elif (holder := plan.claim(run).holder(plan.timeout)) is not None and shown.get(run.name) != holder["name"]:
            shown[run.name] = holder["name"]
            print(f"{holder['name']} runs {plan.where(run)}", flush=True)


def _worker_died(plan, slot: Slot, pid: int, code: int, log: Path) -> None:
    """Record the run a dead worker held as failed and release it, so no other worker waits for it."""
    why = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
    me = Worker.here(f"launcher:{os.getpid()}")
    held = [run for run in plan.runs if _held_by(plan.claim(run).read(), pid)]
    for run in held:
        generation = (plan.claim(run).read() or {}).get("token")
        token = plan.claim(run).replace(str(generation), me, HELD) if generation else None
        if token is None:  # another worker took it over first: it runs again there
            continue
        folder = plan.folder(run)
        if not plan.settled(run):
            folder.write_status(FAILED, f"WorkerDied: worker {slot.name} (pid {pid}) {why} while running it")
            folder.write_error(f"worker {slot.name} (pid {pid}) {why}; its output is in {log}\n")
        Claim(plan.claim(run), me, token, None).release()
        print(f"{slot.name} (pid {pid}) {why} while running {plan.where(run)}; recorded as failed "
              f"(log: {log})", flush=True)
    if not held:
        print(f"{slot.name} (pid {pid}) {why}{_last_line(log)}; see its log {log}", flush=True)


def _last_line(log: Path) -> str:
    try:
        lines = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return f" ({lines[-1].strip()[:200]})" if lines else ""


def _held_by(data: dict | None, pid: int) -> bool:
    return bool(data) and data.get("state") == HELD and data.get("pid") == pid and data.get("machine") == machine_key()


def _stop(procs: dict) -> None:
    """Ctrl-C: each worker records its run as interrupted (as a one-process sweep does) and ends."""
    deadline = time.time() + 5  # Ctrl-C in a terminal reached them too; a second one would cut their cleanup
    for _, proc, _ in procs.values():
        try:
            proc.wait(timeout=max(0.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
    for slot, proc, _ in procs.values():
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            print(f"{slot.name} (pid {proc.pid}) did not stop within 60 s; killed")
            proc.kill()
            proc.wait()
