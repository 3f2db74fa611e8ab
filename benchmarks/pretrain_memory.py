"""Memory of masked-LM pretraining over steps: does the resident memory stay flat?

    python benchmarks/pretrain_memory.py --quick    # a few dozen steps of a tiny encoder, checks the code path
    python benchmarks/pretrain_memory.py            # L-2_H-128, 600 steps on the NSMC unlabelled reviews

Runs ``tfbert pretrain`` on ``../shared/data/nsmc/unlabeled_reviews.txt.gz`` with
a character-level WordPiece vocabulary made from the corpus (no vocabulary
tool needed), reads the RSS the run records in ``history.csv`` every log
step and writes ``benchmarks/results/pretrain_memory{_quick}.{json,md}``.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from machine import machine_info, write_report  # noqa: E402

CORPUS = HERE.parent.parent / "shared" / "data" / "nsmc" / "unlabeled_reviews.txt.gz"
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def char_vocab(corpus: Path, folder: Path, lines: int = 20000, min_count: int = 5) -> str:
    """A character WordPiece vocabulary (each character, and as a ``##`` piece) from the corpus' first lines."""
    from collections import Counter

    from transformers import BertTokenizerFast

    counts = Counter()
    with gzip.open(corpus, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            if number >= lines:
                break
            counts.update(ch for ch in line.strip() if not ch.isspace())
    chars = sorted(ch for ch, n in counts.items() if n >= min_count)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "v.txt").write_text("\n".join(SPECIAL + chars + ["##" + ch for ch in chars]) + "\n", encoding="utf-8")
    # cased: lower-casing would also strip accents, and NFD splits Hangul into jamo
    BertTokenizerFast(vocab_file=str(folder / "v.txt"), do_lower_case=False).save_pretrained(str(folder))
    return str(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--corpus", default=str(CORPUS))
    args = parser.parse_args()
    import pandas as pd

    import tfbert

    setting = (dict(size="L-2_H-32_A-2", steps=60, batch_size=16, seq_length=64, max_texts=5000, log_every_steps=5)
               if args.quick else
               dict(size="L-2_H-128", steps=600, batch_size=64, seq_length=128, max_texts=None, log_every_steps=20))
    with tempfile.TemporaryDirectory() as tmp:
        vocab = char_vocab(Path(args.corpus), Path(tmp) / "vocab")
        started = time.time()
        summary = tfbert.pretrain([args.corpus], Path(tmp) / "out", "memory-check", vocab=vocab,
                                  save_every_steps=10**9, verbose=1, **setting)
        seconds = time.time() - started
        history = pd.read_csv(Path(tmp) / "out" / "history.csv")
    rss = history[["step", "rss_mb", "peak_rss_mb", "tokens_per_s", "loss"]].to_dict("records")
    half = len(history) // 2
    growth = float(history["rss_mb"].iloc[-1] - history["rss_mb"].iloc[half]) if len(history) > 1 else 0.0
    report = {"machine": machine_info(), "setting": setting, "corpus": args.corpus, "seconds": round(seconds, 1),
              "corpus_texts": summary["corpus_texts"], "corpus_tokens": summary["corpus_tokens"],
              "rss_growth_second_half_mb": round(growth, 1), "peak_rss_mb": summary["peak_rss_mb"], "log": rss}
    name = "pretrain_memory_quick" if args.quick else "pretrain_memory"
    lines = [f"# Masked-LM pretraining memory over steps{' (quick)' if args.quick else ''}\n",
             f"CPU: {report['machine'].get('cpu_model')}\n",
             f"{setting['size']}, seq {setting['seq_length']}, batch {setting['batch_size']}, {setting['steps']} steps, "
             f"{summary['corpus_texts']} texts; {seconds:.0f} s\n",
             "| step | RSS MiB | peak RSS MiB | tokens/s | loss |", "|---|---|---|---|---|",
             *[f"| {r['step']} | {r['rss_mb']:.0f} | {r['peak_rss_mb']:.0f} | {r['tokens_per_s']:.0f} | {r['loss']:.3f} |"
               for r in rss],
             f"\nRSS change over the second half of the steps: {growth:+.1f} MiB"]
    write_report(HERE / "results", name, report, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
