"""One worker process of a sweep: ``python -m tfbert.sweep_worker JOB_FILE NAME`` (started by
``tfbert.workers``; not a command to type).

It pins itself to the CPU cores in ``$TFBERT_WORKER_CPUS`` before TensorFlow starts (TensorFlow
sizes its thread pools from the cores a process may use and from ``$TF_NUM_INTRAOP_THREADS``),
loads what the parent had registered, then claims and runs runs until the sweep is settled.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def _pin() -> None:
    cpus = os.environ.get("TFBERT_WORKER_CPUS")
    if cpus:
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})


def _prepare(job) -> None:
    """The parent's plugins, models and heads, and TensorFlow's thread pools sized to this worker."""
    import tensorflow as tf

    from tfbert.cli import load_plugins
    from tfbert.heads import HEADS
    from tfbert.registry import register_model

    load_plugins(job.plugins)
    for spec in job.models:
        register_model(spec)
    for spec in job.heads:
        HEADS.setdefault(spec.name, spec)  # a plugin may have registered it already
    cores = len(os.sched_getaffinity(0))
    tf.config.threading.set_intra_op_parallelism_threads(cores)
    tf.config.threading.set_inter_op_parallelism_threads(min(2, cores))


def main(argv: list[str] | None = None) -> int:
    job_file, name = sys.argv[1:] if argv is None else argv
    _pin()  # first: before anything imports TensorFlow
    import pickle

    from tfbert.claims import Worker
    from tfbert.sweep import work_through
    from tfbert.sweep_state import write_plan_summary

    job = pickle.loads(Path(job_file).read_bytes())
    _prepare(job)
    print(f"{name}: pid {os.getpid()}, CPU cores {sorted(os.sched_getaffinity(0))}, "
          f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '(unset)')}", flush=True)
    try:
        work_through(job.plan, Worker.here(name), job.runner, {},
                     after_run=lambda: write_plan_summary(job.plan), prefix=f"{name} ")
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
