"""Writes the small IMDB sample shipped in ``tfbert/demo_data/imdb_sample/``.

The sample lets the quick start and tests of the CLI run without a download:
balanced short English movie reviews drawn with a fixed seed from IMDB train
(for ``train.tsv.gz``) and IMDB test (for ``test.tsv.gz``). Only short reviews
are eligible so that short token windows (128-256) see most of each review.

Usage::

    python scripts/make_demo_sample.py \
        [--archive ../shared/data/imdb/aclImdb_v1_labeled.tar.gz] \
        [--out tfbert/demo_data/imdb_sample] [--max-chars 1200] \
        [--train 2000] [--test 1000] [--seed 42]

The output is deterministic: the same archive and options give the same bytes.
"""

from __future__ import annotations

import argparse
import gzip
import io
import re
import tarfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ARCHIVE = ROOT.parent / "shared" / "data" / "imdb" / "aclImdb_v1_labeled.tar.gz"
DEFAULT_OUT = ROOT / "tfbert" / "demo_data" / "imdb_sample"
CLASS_NAMES = ("neg", "pos")
MEMBER = re.compile(r"(?:^|/)(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")

README = """\
# IMDB demo sample

A small, balanced sample of the IMDB Large Movie Review Dataset (Maas et al.,
2011, "Learning Word Vectors for Sentiment Analysis", ACL), shipped so that
tfbert's quick start runs without a download. Load it with
`tfbert.data.load_demo("train")` / `load_demo("test")` or `--data demo`.

| file | rows | drawn from | balance |
| --- | --- | --- | --- |
| `train.tsv.gz` | {train_rows} | IMDB train | {train_balance} |
| `test.tsv.gz` | {test_rows} | IMDB test | {test_balance} |

- Columns: `text`, `label`. Labels are class ids: `0` = `neg`, `1` = `pos`
  (class names, in order: `neg,pos`).
- Only reviews of at most {max_chars} characters were eligible (mean length
  here {mean_chars:.0f} characters, versus about 1,300 in full IMDB), so that
  short token windows (128-256 tokens) see most of each review. Review text is unchanged
  (including the `<br />` tags of the original).
- No review appears twice, within or across the two files.
- Gzipped TSV written by pandas: standard CSV quoting with a tab separator.
- Rebuild with `python scripts/make_demo_sample.py` (seed {seed}).
"""


def read_reviews(archive: Path, max_chars: int) -> pd.DataFrame:
    """Reads every labelled review of at most ``max_chars`` characters."""
    rows = []
    with tarfile.open(archive) as tar:
        for member in tar:
            match = MEMBER.search(member.name)
            if not match or not member.isfile():
                continue
            text = tar.extractfile(member).read().decode("utf-8")
            if len(text) <= max_chars:
                split, class_name, review_id, _rating = match.groups()
                rows.append((split, class_name, int(review_id), text))
    frame = pd.DataFrame(rows, columns=["split", "class_name", "id", "text"])
    # IMDB repeats some reviews, also across train and test: drop every copy so
    # the sample has no duplicates and no test review is also a train review.
    frame = frame[~frame["text"].duplicated(keep=False)]
    # Archive order is not guaranteed: sort so that sampling is reproducible.
    return frame.sort_values(["split", "class_name", "id"], ignore_index=True)


def sample(reviews: pd.DataFrame, split: str, size: int, seed: int) -> pd.DataFrame:
    """Draws ``size`` reviews of ``split``, half per class, shuffled."""
    per_class = size // len(CLASS_NAMES)
    parts = []
    for label, class_name in enumerate(CLASS_NAMES):
        pool = reviews[(reviews["split"] == split) & (reviews["class_name"] == class_name)]
        if len(pool) < per_class:
            raise SystemExit(
                f"only {len(pool)} {split}/{class_name} reviews are short enough; "
                "raise --max-chars or lower the sample size"
            )
        chosen = pool.sample(n=per_class, random_state=seed)
        parts.append(pd.DataFrame({"text": chosen["text"], "label": label}))
    return pd.concat(parts).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def write_tsv_gz(frame: pd.DataFrame, path: Path) -> None:
    """Writes a gzipped TSV with a fixed gzip timestamp (same bytes each run)."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9, mtime=0) as handle:
        handle.write(frame.to_csv(sep="\t", index=False, lineterminator="\n").encode("utf-8"))
    path.write_bytes(buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", type=Path, default=DEFAULT_ARCHIVE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--max-chars", type=int, default=1200)
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    reviews = read_reviews(args.archive, args.max_chars)
    args.out.mkdir(parents=True, exist_ok=True)
    frames = {
        "train": sample(reviews, "train", args.train, args.seed),
        "test": sample(reviews, "test", args.test, args.seed),
    }
    for split, frame in frames.items():
        path = args.out / f"{split}.tsv.gz"
        write_tsv_gz(frame, path)
        counts = frame["label"].value_counts().sort_index().tolist()
        print(
            f"{path}: {len(frame)} rows, {path.stat().st_size} bytes, "
            f"balance {counts}, mean {frame['text'].str.len().mean():.0f} chars"
        )

    def balance(frame: pd.DataFrame) -> str:
        counts = frame["label"].value_counts().sort_index()
        return " / ".join(f"{counts[i]} {name}" for i, name in enumerate(CLASS_NAMES))

    every = pd.concat(frames.values())
    (args.out / "README.md").write_text(
        README.format(
            train_rows=len(frames["train"]),
            test_rows=len(frames["test"]),
            train_balance=balance(frames["train"]),
            test_balance=balance(frames["test"]),
            max_chars=args.max_chars,
            mean_chars=every["text"].str.len().mean(),
            seed=args.seed,
        ),
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
