"""A sweep over worker processes: wall time of one 4-run sweep with --workers 2 vs --workers 1.

    python benchmarks/sweep_workers.py            # the measurement (a few minutes on 2 cores)
    python benchmarks/sweep_workers.py --quick    # a few texts, checks the code path

Both sweeps are the same ``tfbert train`` command (tiny 2-layer BERT from
``tfbert.testing``, toy texts, head ``dense``, 2 learning rates x 2 seeds), each
a fresh process into its own folder, run one after the other (``--repeats N``
alternates them N times). ``--workers 1`` trains the 4 runs one after another
on every core; ``--workers 2`` trains two at a time, each worker on half the
cores. The figure is the whole command's wall time, TensorFlow start-up of the
worker processes included.

Writes ``benchmarks/results/sweep_workers.{json,md}`` (``sweep_workers_quick.*``
with ``--quick``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from machine import machine_info, write_report  # noqa: E402

FULL = dict(train=800, test=200, epochs=3, seq_length=32)
QUICK = dict(train=64, test=32, epochs=1, seq_length=16)
WORKERS = (1, 2)


def prepare(work: Path, setting: dict) -> tuple[Path, Path]:
    """The tiny encoder (a registry file naming it) and the toy train/test files."""
    import pandas as pd

    from tfbert.testing import make_tiny_hf_bert, toy_texts

    encoder = work / "tiny_hf"
    if not (encoder / "config.json").exists():
        make_tiny_hf_bert(encoder)
    registry = work / "registry.yaml"
    registry.write_text(f"models:\n  - name: tiny-hf\n    backend: huggingface\n    encoder: {encoder}\n"
                        f"    max_seq_length: 128\n    layers: 2\n    hidden: 32\n    heads: 2\n    langs: [en]\n")
    for split, seed in (("train", 0), ("test", 1)):
        texts, labels = toy_texts(setting[split], seed=seed)
        pd.DataFrame({"text": texts, "label": labels}).to_csv(work / f"{split}.csv", index=False)
    return registry, work


def command(registry: Path, data: Path, out: Path, workers: int, setting: dict) -> list[str]:
    return [sys.executable, "-m", "tfbert.cli", "--registry", str(registry), "train", "--model", "tiny-hf",
            "--head", "dense", "--train", str(data / "train.csv"), "--test", str(data / "test.csv"),
            "--learning-rate", "1e-2", "3e-3", "--seed", "1", "2", "--epochs", str(setting["epochs"]),
            "--seq-length", str(setting["seq_length"]), "--batch-size", "16", "--no-export", "--no-tensorboard",
            "--no-resume", "--workers", str(workers), "--output-dir", str(out), "--verbose", "0"]


def sweep(registry: Path, data: Path, work: Path, workers: int, setting: dict, repeat: int) -> dict:
    import pandas as pd

    out, log = work / f"sweep_w{workers}_r{repeat}", work / f"sweep_w{workers}_r{repeat}.log"
    print(f"--workers {workers} (repeat {repeat}): running, log {log} ...", flush=True)
    start = time.perf_counter()
    with open(log, "w") as f:
        code = subprocess.run(command(registry, data, out, workers, setting), stdout=f, stderr=subprocess.STDOUT,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}).returncode
    wall = time.perf_counter() - start
    summary = pd.read_csv(out / "summary.csv") if (out / "summary.csv").exists() else pd.DataFrame()
    done = int((summary.get("status") == "done").sum()) if len(summary) else 0
    print(f"--workers {workers} (repeat {repeat}): {wall:.1f} s, {done}/4 runs done (exit code {code})", flush=True)
    return {"workers": workers, "repeat": repeat, "wall_s": round(wall, 2), "runs_done": done, "exit_code": code,
            "train_time_s_sum": float(summary["train_time_s"].sum()) if "train_time_s" in summary else None,
            "test_accuracy": summary["test_accuracy"].tolist() if "test_accuracy" in summary else None}


def markdown(report: dict) -> str:
    m, s = report["machine"], report["setting"]
    lines = ["# Sweep over worker processes: --workers 2 vs --workers 1", "",
             f"`python benchmarks/sweep_workers.py{' --quick' if report['quick'] else ''}` on {m['date']} "
             f"({m['cpu_model']}, {m['cpu_cores']} cores; load average at start {m['load_average_at_start'][0]:.1f}, "
             f"at end {report['load_end']:.1f}). One `tfbert train` sweep of 4 runs (tiny 2-layer BERT, head dense, "
             f"learning rate 1e-2 / 3e-3 x seed 1 / 2, {s['train']} train / {s['test']} test texts, "
             f"{s['epochs']} epoch(s), length {s['seq_length']}, batch 16), each command a fresh process.", "",
             "| repeat | --workers 1 wall s | --workers 2 wall s | speed-up | sum of runs' train s (1 / 2) | runs done |",
             "| ---: | ---: | ---: | ---: | --- | --- |"]
    for repeat in sorted({r["repeat"] for r in report["results"]}):
        one, two = (next(r for r in report["results"] if r["repeat"] == repeat and r["workers"] == w) for w in WORKERS)
        lines.append(f"| {repeat} | {one['wall_s']:.1f} | {two['wall_s']:.1f} | {one['wall_s'] / two['wall_s']:.2f}x | "
                     f"{one['train_time_s_sum']} / {two['train_time_s_sum']} | {one['runs_done']} / {two['runs_done']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few texts and 1 epoch: checks the code path")
    parser.add_argument("--repeats", type=int, default=1, help="alternate the two sweeps this many times")
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args()
    setting = QUICK if args.quick else FULL
    work = Path(f"/tmp/tfbert_sweep_workers{'_quick' if args.quick else ''}")
    work.mkdir(parents=True, exist_ok=True)
    report = {"quick": args.quick, "machine": machine_info(), "setting": setting, "results": []}
    print(f"CPU: {report['machine']['cpu_model']}, {report['machine']['cpu_cores']} cores; "
          f"load average {report['machine']['load_average_at_start']}", flush=True)
    registry, data = prepare(work, setting)
    for repeat in range(1, args.repeats + 1):
        for workers in WORKERS:
            report["results"].append(sweep(registry, data, work, workers, setting, repeat))
    report["load_end"] = os.getloadavg()[0]
    write_report(args.out, "sweep_workers_quick" if args.quick else "sweep_workers", report, markdown(report))


if __name__ == "__main__":
    main()
