"""Regression on real data: IMDB reviews' 1-10 star ratings (from the archive's file names) with MiniLM.

    python benchmarks/imdb_ratings.py           # 4,000 train / 2,000 test reviews, 2 epochs (~25 min, 2 cores)
    python benchmarks/imdb_ratings.py --quick   # a few reviews, checks the code path

Trains ``tfbert train --task regression`` (dense head, MSE) on a random sample
of the official train split (10% of it held out for validation) and scores a
random sample of the official test split; the settings are fixed up front,
nothing is tuned on the test sample. IMDB holds ratings 1-4 and 7-10 only.
Writes ``benchmarks/results/imdb_ratings.{json,md}`` (``_quick`` with --quick).
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from machine import machine_info, write_report  # noqa: E402

ARCHIVE = HERE.parent.parent / "shared" / "data" / "imdb" / "aclImdb_v1_labeled.tar.gz"
SEED = 42
FULL = dict(train=4000, test=2000, seq_length=256, epochs=2)
QUICK = dict(train=64, test=32, seq_length=32, epochs=1)


def write_samples(folder: Path, n_train: int, n_test: int) -> tuple[Path, Path]:
    from tfbert import data

    paths = []
    for split, n in (("train", n_train), ("test", n_test)):
        frame, _ = data.clean(data.load_imdb(ARCHIVE, split))
        sample = frame.sample(n=n, random_state=SEED)[["text", "rating"]]
        paths.append(folder / f"{split}.csv")
        sample.to_csv(paths[-1], index=False)
    return paths[0], paths[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    cfg = QUICK if args.quick else FULL

    from tfbert.config import RunConfig
    from tfbert.experiment import run_experiment

    with tempfile.TemporaryDirectory(prefix="imdb_ratings_") as tmp:
        train, test = write_samples(Path(tmp), cfg["train"], cfg["test"])
        config = RunConfig(model="minilm-l6-h384-uncased", head="dense", task="regression", train=str(train),
                           test=str(test), label_column="rating", seq_length=cfg["seq_length"],
                           epochs=cfg["epochs"], batch_size=32, seed=SEED, export=False, tensorboard=False,
                           output_dir=tmp)
        start = time.perf_counter()
        row = run_experiment(config, Path(tmp) / "run", verbose=2)
        wall = time.perf_counter() - start
        report = (Path(tmp) / "run" / "test_metrics.json").read_text()
    import json

    metrics = json.loads(report)
    result = {"benchmark": "imdb_ratings", "date": datetime.date.today().isoformat(), "machine": machine_info(),
              "settings": {**cfg, "model": config.model, "head": config.head, "loss": "mse",
                           "learning_rate": row["learning_rate"], "precision": row["precision"]},
              "test": {k: metrics[k] for k in ("num_examples", "pearson", "spearman", "rmse", "mae", "r2")},
              "best_val_pearson": row.get("best_val_pearson"), "train_time_s": row["train_time_s"],
              "wall_s": round(wall, 1)}
    t = result["test"]
    markdown = (f"# IMDB star ratings (1-10) as regression, {config.model} dense\n\n"
                f"CPU: {result['machine']['cpu_model']}, {result['machine']['cpu_cores']} cores; "
                f"precision {row['precision']}\n\n"
                f"| train | test | seq_length | epochs | test Pearson | test Spearman | RMSE | MAE | R² | train s |\n"
                f"|---|---|---|---|---|---|---|---|---|---|\n"
                f"| {cfg['train']} | {t['num_examples']} | {cfg['seq_length']} | {cfg['epochs']} | {t['pearson']:.3f} | "
                f"{t['spearman']:.3f} | {t['rmse']:.2f} | {t['mae']:.2f} | {t['r2']:.3f} | {row['train_time_s']:.0f} |\n")
    write_report(HERE / "results", "imdb_ratings_quick" if args.quick else "imdb_ratings", result, markdown)


if __name__ == "__main__":
    main()
