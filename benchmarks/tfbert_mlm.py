"""tfbert's side of benchmarks/mlm_speed.py: ``tfbert.pretrain`` with the harness' settings, one JSON line.

Runs ``--warmup-steps`` untimed steps then ``--steps`` timed ones (the history logs every
``--warmup-steps`` steps, so the timed steps are whole log windows; each window's clock stops
after its loss is read, so the steps have finished). Real tokens are the input mask's ones
([CLS] + word pieces + [SEP]), as on the KerasHub side; padded tokens come from replaying the
same (seeded) batches without training.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def hf_vocab_folder(vocab: Path, work: Path, lowercase: bool) -> str:
    """The harness' vocab.txt as a HuggingFace tokenizer folder (what tfbert pretrain --vocab takes)."""
    from transformers import BertTokenizerFast

    folder = work / "vocab"
    vocab_file = vocab / "vocab.txt" if vocab.is_dir() else vocab
    BertTokenizerFast(vocab_file=str(vocab_file), do_lower_case=lowercase, strip_accents=lowercase,
                      tokenize_chinese_chars=True).save_pretrained(str(folder))
    return str(folder)


def padded_tokens(settings, out_dir: Path, first: int, last: int) -> int:
    """batch x padded length over steps first+1..last of the run's own (seeded) batches."""
    from tfbert.pretraining import _prepare

    parts = _prepare(settings, out_dir)
    total = 0
    for step, (features, _) in enumerate(parts.batches.stream(0, last), start=1):
        if step > first:
            total += int(features["input_word_ids"].shape[0] * features["input_word_ids"].shape[1])
    return total


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    for flag, kind in (("--vocab", Path), ("--corpus", str), ("--texts", int), ("--layers", int),
                       ("--hidden", int), ("--heads", int), ("--seq-length", int), ("--batch-size", int),
                       ("--steps", int), ("--warmup-steps", int), ("--mask-rate", float),
                       ("--max-predictions", int), ("--learning-rate", float), ("--precision", str)):
        ap.add_argument(flag, type=kind, required=True)
    ap.add_argument("--lowercase", action="store_true")
    args = ap.parse_args(argv)

    import pandas as pd

    import tfbert
    from tfbert.pretraining import PretrainSettings

    work = Path(tempfile.mkdtemp(prefix="tfbert_mlm_"))
    total = args.warmup_steps + args.steps
    settings = PretrainSettings(
        corpus=[args.corpus], output=str(work / "run"), name="bench",
        vocab=hf_vocab_folder(args.vocab, work, args.lowercase),
        size=f"L-{args.layers}_H-{args.hidden}_A-{args.heads}", seq_length=args.seq_length,
        batch_size=args.batch_size, steps=total, learning_rate=args.learning_rate, mask_rate=args.mask_rate,
        max_texts=args.texts, precision=args.precision, log_every_steps=args.warmup_steps,
        save_every_steps=total, keep_checkpoints=1, verbose=0)
    tfbert.pretrain(**{k: getattr(settings, k) for k in settings.__dataclass_fields__})
    history = pd.read_csv(work / "run" / "history.csv")
    timed = history[history["step"] > args.warmup_steps]
    seconds = float(timed["seconds"].sum())
    real = int(round((timed["tokens_per_s"] * timed["seconds"]).sum()))
    padded = padded_tokens(settings, work / "replay", args.warmup_steps, total)
    print(json.dumps({
        "framework": "tfbert",
        "versions": {name: version(name) for name in ("tensorflow", "tf-keras", "tensorflow-text",
                                                      "tf-models-official")},
        "steps": args.steps, "seconds": round(seconds, 3), "real_tokens": real, "padded_tokens": padded,
        "tokens_per_s": round(real / seconds, 1), "padded_tokens_per_s": round(padded / seconds, 1),
        "examples_per_s": round(args.steps * args.batch_size / seconds, 2),
        "final_loss": round(float(history["loss"].iloc[-1]), 4),
        "peak_rss_mb": float(history["peak_rss_mb"].max()),
        "seq_length": args.seq_length, "batch_size": args.batch_size, "precision": args.precision,
        "max_predictions": args.max_predictions, "texts": args.texts,
        "note": "length-bucketed batches, each padded to its longest text; masks ceil(rate x tokens) a text",
    }))


if __name__ == "__main__":
    main()
