"""What ``tfbert pretrain`` writes: its log (history.csv, TensorBoard, curves.png) and, at the end,
a TF Hub encoder + preprocess pair, the tokenizer files, ``pretrain.json`` and ``registry.yaml``.

Output folder layout::

    OUT/vocab.txt, tokenizer_config.json, ...  the tokenizer (HF files)
    OUT/checkpoints/                           tf.train.CheckpointManager: the last K, plus settings.json
    OUT/logs/train/                            TensorBoard scalars
    OUT/history.csv, OUT/curves.png            one row per log step
    OUT/encoder/, OUT/preprocess/              TF Hub-format SavedModels (at the end)
    OUT/pretrain.json, OUT/registry.yaml       summary; a registry entry for ``tfbert train``
"""

from __future__ import annotations

import csv
import os
import resource
from pathlib import Path

import yaml

from tfbert.files import atomic_dir, atomic_file, write_json

HISTORY = "history.csv"
COLUMNS = ("step", "epoch", "loss", "mlm_accuracy", "learning_rate", "tokens_per_s", "tokens_seen",
           "seconds", "rss_mb", "peak_rss_mb")


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident memory of this process in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        current = pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        current = float("nan")
    return current, peak


class History:
    """``history.csv`` and TensorBoard scalars, one row per log step; a resumed run drops rows after its checkpoint."""

    def __init__(self, out_dir: Path, resume_step: int):
        import tensorflow as tf

        self.path = out_dir / HISTORY
        rows = []
        if resume_step and self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as handle:
                rows = [r for r in csv.DictReader(handle) if int(r["step"]) <= resume_step]
        with atomic_file(self.path) as tmp:
            with open(tmp, "w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, COLUMNS)
                writer.writeheader()
                writer.writerows(rows)
        self.writer = tf.summary.create_file_writer(str(out_dir / "logs" / "train"))

    def add(self, row: dict) -> None:
        import tensorflow as tf

        with open(self.path, "a", newline="", encoding="utf-8") as handle:
            csv.DictWriter(handle, COLUMNS).writerow({k: row.get(k) for k in COLUMNS})
        with self.writer.as_default(step=int(row["step"])):
            for key in ("loss", "mlm_accuracy", "learning_rate", "tokens_per_s", "rss_mb"):
                tf.summary.scalar(key, row[key])
        self.writer.flush()

    def plot(self, out_dir: Path, title: str) -> Path | None:
        import pandas as pd

        from tfbert.plotting import plot_pretraining

        frame = pd.read_csv(self.path)
        return plot_pretraining(frame, out_dir / "curves.png", title) if len(frame) else None


def save_tokenizer(tokenizer_dir: str, out_dir: Path) -> str:
    """The tokenizer's HF files (vocab.txt, tokenizer_config.json, ...) in ``out_dir``; returns the folder."""
    from transformers import AutoTokenizer

    if Path(tokenizer_dir).resolve() != out_dir.resolve():
        AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(str(out_dir))
    return str(out_dir)


def export_hub(network, out_dir: Path, tokenizer, seq_length: int) -> None:
    """``OUT/encoder`` and ``OUT/preprocess`` in TF Hub format (float32 network; the in-graph HF-exact tokenizer)."""
    from tfbert.hub_format import save_hub_encoder, save_hub_preprocess

    vocab_file = str(out_dir / "vocab.txt")
    with atomic_dir(out_dir / "encoder") as tmp:
        save_hub_encoder(network, str(tmp), vocab_file=vocab_file, do_lower_case=tokenizer.lower_case)
    with atomic_dir(out_dir / "preprocess") as tmp:
        save_hub_preprocess(str(tmp), vocab_file=vocab_file, do_lower_case=tokenizer.lower_case,
                            default_seq_length=seq_length, tokenizer=tokenizer)


def write_registry(out_dir: Path, name: str, config: dict, tokenizer, langs, description: str) -> Path:
    """``OUT/registry.yaml``: one tfhub entry, so ``tfbert train --registry OUT/registry.yaml --model NAME`` works.

    Without ``langs`` (a new encoder) the languages are guessed from the vocabulary's scripts."""
    from tfbert.vocab import guess_langs

    langs = list(langs) or guess_langs(tokenizer.vocab)
    entry = dict(name=name, backend="tfhub", encoder=str((out_dir / "encoder").resolve()),
                 preprocess=str((out_dir / "preprocess").resolve()), langs=list(langs),
                 cased=not tokenizer.lower_case, layers=config["num_hidden_layers"],
                 hidden=config["hidden_size"], heads=config["num_attention_heads"],
                 max_seq_length=config["max_position_embeddings"], description=description)
    path = out_dir / "registry.yaml"
    with atomic_file(path) as tmp:
        tmp.write_text(yaml.safe_dump({"models": [entry]}, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def write_summary(out_dir: Path, summary: dict) -> Path:
    return write_json(out_dir / "pretrain.json", summary)
