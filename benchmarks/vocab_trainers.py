"""Two WordPiece vocabulary learners side by side on the same corpus sample.

    python benchmarks/vocab_trainers.py                  # 200k NSMC reviews, 32k tokens, 10k held out
    python benchmarks/vocab_trainers.py --quick          # 3k reviews, 4k tokens, 500 held out: a smoke run

* ``tokenizers``: HuggingFace's Rust WordPieceTrainer, as ``tfbert vocab`` runs it (BERT normaliser:
  lower-case without stripping accents, so Hangul syllables stay whole);
* ``tensorflow_text``: ``tensorflow_text.tools.wordpiece_vocab.bert_vocab_from_dataset``.
  Its BertTokenizer cannot lower-case without NFD (which splits every Hangul syllable into
  jamo), so it runs without lower-casing here; the report says so.

``bert_vocab_from_dataset`` searches for a count threshold that gives about ``--size`` tokens
and may land well below it (2463 for 4000 in a --quick smoke run); when it does, ``tokenizers``
learns a second vocabulary of the size it landed on, so the two are also compared at one size.

Both learn from the first ``--texts`` lines of the corpus and are scored on its last
``--held-out`` lines (never learnt from), each with its own tokenizer: wall time of learning,
[UNK] rate (tokens, and texts with any) and tokens per text. Writes
``benchmarks/results/vocab_trainers.{json,md}`` (``vocab_trainers_quick.*`` with --quick).
"""

from __future__ import annotations

import argparse
import collections
import gzip
import itertools
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))  # the tfbert of this tree, also where another is installed

from machine import machine_info, write_report  # noqa: E402

CORPUS = HERE.parent.parent / "shared" / "data" / "nsmc" / "unlabeled_reviews.txt.gz"
RESERVED = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Its defaults keep only the 1,000 most frequent characters (Korean uses a few thousand syllables:
# the rest become [UNK]) and never go below a count of 10 in the threshold search (a small
# vocabulary on a small corpus): set as `tfbert vocab` runs `tokenizers` (every character, merges
# seen at least twice).
TF_TEXT_LEARN = dict(max_unique_chars=100_000, lower_thresh=2)


def split_corpus(path: Path, texts: int, held_out: int) -> tuple[list, list]:
    """(the first ``texts`` lines, the last ``held_out`` lines), never overlapping."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        lines = (line.strip() for line in handle)
        tail, total = collections.deque(maxlen=held_out), 0
        for line in filter(None, lines):
            tail.append(line)
            total += 1
    with opener(path, "rt", encoding="utf-8") as handle:
        head = list(itertools.islice(filter(None, (line.strip() for line in handle)), min(texts, total - held_out)))
    return head, list(tail)


def learn_tokenizers(texts: list, size: int, out: Path) -> tuple[float, object]:
    from tfbert.tokenizers import WordPieceTokenizer
    from tfbert.vocab import learn_vocab

    corpus = out / "corpus.txt"
    corpus.write_text("\n".join(texts) + "\n", encoding="utf-8")
    start = time.perf_counter()
    learn_vocab(str(corpus), out / "tokenizers", size=size, strip_accents=False, overwrite=True, verbose=False)
    seconds = time.perf_counter() - start  # includes writing the folder and its statistics
    tokenizer = WordPieceTokenizer.from_hf(str(out / "tokenizers"))
    return seconds, lambda batch: tokenizer.tokenize(batch).to_list(), tokenizer.unk_id, tokenizer.vocab_size


def learn_tensorflow_text(texts: list, size: int, out: Path):
    import tensorflow as tf
    import tensorflow_text as tf_text
    from tensorflow_text.tools.wordpiece_vocab.bert_vocab_from_dataset import bert_vocab_from_dataset

    params = dict(lower_case=False)
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(1000).prefetch(2)
    start = time.perf_counter()
    vocab = bert_vocab_from_dataset(dataset, vocab_size=size, reserved_tokens=RESERVED, bert_tokenizer_params=params,
                                    learn_params=TF_TEXT_LEARN)
    seconds = time.perf_counter() - start
    (out / "tensorflow_text_vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = tf_text.BertTokenizer(str(out / "tensorflow_text_vocab.txt"), **params)
    return seconds, lambda batch: tokenizer.tokenize(batch).merge_dims(-2, -1).to_list(), vocab.index("[UNK]"), len(vocab)


def score(tokenize, unk: int, texts: list) -> dict:
    lengths, unk_tokens, unk_texts = [], 0, 0
    for start in range(0, len(texts), 1000):
        for row in tokenize(texts[start:start + 1000]):
            lengths.append(len(row))
            hits = sum(1 for i in row if i == unk)
            unk_tokens, unk_texts = unk_tokens + hits, unk_texts + bool(hits)
    ordered = sorted(lengths)
    return {"unk_token_rate": unk_tokens / max(1, sum(lengths)), "unk_text_rate": unk_texts / len(lengths),
            "tokens_per_text_mean": sum(lengths) / len(lengths), "tokens_per_text_median": statistics.median(lengths),
            "tokens_per_text_p95": ordered[int(0.95 * (len(ordered) - 1))]}


def markdown(report: dict) -> str:
    rows = ["| trainer | vocab | learn s | [UNK] tokens | texts with [UNK] | tokens/text mean | median | p95 |",
            "|---|---|---|---|---|---|---|---|"]
    for name, r in report["trainers"].items():
        rows.append(f"| {name} | {r['vocab_size']} | {r['seconds']:.1f} | {r['unk_token_rate']:.3%} | "
                    f"{r['unk_text_rate']:.2%} | {r['tokens_per_text_mean']:.1f} | {r['tokens_per_text_median']:g} | "
                    f"{r['tokens_per_text_p95']} |")
    s = report["setup"]
    return (f"# WordPiece trainers\n\n{s['texts']} texts of {s['corpus']} learnt, {s['held_out']} held-out texts "
            f"scored; target size {s['size']}. CPU: {report['machine']['cpu_model']} "
            f"({report['machine']['cpu_cores']} cores).\n{s['note']}\n\n" + "\n".join(rows) + "\n")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--texts", type=int, default=200_000)
    parser.add_argument("--held-out", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=32_000)
    parser.add_argument("--quick", action="store_true", help="3000 texts, 4000 tokens, 500 held out")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    if args.quick:
        args.texts, args.held_out, args.size = 3000, 500, 4000
    import tempfile

    machine = machine_info()
    learn, held = split_corpus(args.corpus, args.texts, args.held_out)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, trainer in (("tokenizers", learn_tokenizers), ("tensorflow_text", learn_tensorflow_text)):
            seconds, tokenize, unk, vocab_size = trainer(learn, args.size, Path(tmp))
            results[name] = {"seconds": seconds, "vocab_size": vocab_size, **score(tokenize, unk, held)}
            print(f"{name}: {seconds:.1f}s, {vocab_size} tokens", flush=True)
        landed = results["tensorflow_text"]["vocab_size"]
        if landed != results["tokenizers"]["vocab_size"]:  # compare at one size too
            seconds, tokenize, unk, vocab_size = learn_tokenizers(learn, landed, Path(tmp))
            results[f"tokenizers at {landed}"] = {"seconds": seconds, "vocab_size": vocab_size,
                                                  **score(tokenize, unk, held)}
    report = {"setup": {"corpus": str(args.corpus), "texts": len(learn), "held_out": len(held), "size": args.size,
                        "note": "tokenizers: lower-cased, accents kept (Hangul whole); tensorflow_text: not "
                                "lower-cased (its lower_case=True applies NFD, which splits Hangul into jamo), "
                                f"learn_params {TF_TEXT_LEARN}. Each scored with its own tokenizer. tokenizers' time includes writing the "
                                "folder and its corpus statistics."},
              "machine": machine, "trainers": results}
    write_report(args.out, "vocab_trainers_quick" if args.quick else "vocab_trainers", report, markdown(report))


if __name__ == "__main__":
    main()
