"""The IMDB Large Movie Review Dataset (Maas et al., 2011).

Layout: ``aclImdb/{train,test}/{pos,neg}/ID_RATING.txt``, 12,500 reviews per
class and split. Labels are ``0`` (neg) and ``1`` (pos).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path

import pandas as pd

from tfbert.data._common import CLASS_NAMES_ATTR, cache_root, check_dir, download, natural_key
from tfbert.errors import DataError

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_CLASS_NAMES = ("neg", "pos")
IMDB_SPLITS = ("train", "test")

_logger = logging.getLogger(__name__)

# Only the labelled reviews are extracted: the official archive also holds
# 50k unlabelled reviews (unsup/) and feature files that would double the time.
_LABELLED_MEMBER = re.compile(r"(?:^|/)(train|test)/(pos|neg)/[^/]+\.txt$")
_COMPLETE_MARKER = ".complete"


def _has_split_folders(folder: Path) -> bool:
    """True if ``folder`` looks like ``aclImdb/``: a split with pos and neg."""
    return any(
        (folder / split / "pos").is_dir() and (folder / split / "neg").is_dir()
        for split in IMDB_SPLITS
    )


def find_imdb_root(folder: Path) -> Path | None:
    """Returns the ``aclImdb``-like folder inside or at ``folder``, or None."""
    for candidate in (folder / "aclImdb", folder):
        if candidate.is_dir() and _has_split_folders(candidate):
            return candidate
    return None


def _extract_cached(archive: Path) -> Path:
    """Extracts the labelled reviews of ``archive`` once; returns the folder.

    The cache folder is keyed on the archive's path, size and mtime, so a
    replaced archive is extracted again. Extraction goes to a temporary folder
    that is renamed when complete, so an interrupted run is never reused.
    """
    stat = archive.stat()
    key = hashlib.sha1(
        f"{archive.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()
    ).hexdigest()[:12]
    stem = archive.name.split(".")[0] or "imdb"
    parent = cache_root() / "imdb"
    target = parent / f"{stem}-{key}"
    if (target / _COMPLETE_MARKER).exists():
        return target
    if not tarfile.is_tarfile(archive):
        raise DataError(
            f"{archive} is not a tar archive; pass aclImdb_v1.tar.gz or an "
            "extracted aclImdb folder"
        )

    parent.mkdir(parents=True, exist_ok=True)
    _logger.warning("Extracting %s into %s (once; later runs reuse it)", archive, target)
    partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=parent))
    try:
        try:
            with tarfile.open(archive) as tar:
                members = (
                    m for m in tar if m.isfile() and _LABELLED_MEMBER.search(m.name)
                )
                tar.extractall(partial, members=members, filter="data")
        except (tarfile.TarError, EOFError, OSError) as error:
            raise DataError(
                f"cannot extract {archive} ({error}); pass a valid "
                "aclImdb_v1.tar.gz or an extracted aclImdb folder"
            ) from error
        (partial / _COMPLETE_MARKER).touch()
        if target.exists():  # left over by an interrupted older version
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(partial, target)
        except OSError:
            # Another process finished the same extraction first.
            if not (target / _COMPLETE_MARKER).exists():
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def _resolve_source(source: str | os.PathLike | None) -> Path:
    """Turns ``source`` (None, URL, archive, folder) into an aclImdb folder."""
    if source is None:
        folder = _extract_cached(download(IMDB_URL, "aclImdb_v1.tar.gz"))
    elif str(source).startswith(("http://", "https://")):
        name = str(source).rstrip("/").rsplit("/", 1)[-1] or "aclImdb_v1.tar.gz"
        folder = _extract_cached(download(str(source), name))
    else:
        text = str(source)
        path = Path(text[len("file://"):] if text.startswith("file://") else text).expanduser()
        if not path.exists():
            raise DataError(
                f"IMDB data not found: {source}; pass aclImdb_v1.tar.gz, a "
                "folder with aclImdb/ in it, or nothing to download it"
            )
        if path.is_file():
            folder = _extract_cached(path)
        else:
            folder = check_dir(path)
    root = find_imdb_root(folder)
    if root is None:
        raise DataError(
            f"{source if source is not None else IMDB_URL} does not have the "
            "IMDB layout aclImdb/{train,test}/{pos,neg}/*.txt; pass the "
            "official archive or its extracted aclImdb folder"
        )
    return root


def _read_reviews(folder: Path) -> tuple[list[str], list[str]]:
    """Reads every ``*.txt`` in ``folder``; returns (file names, texts)."""
    # scandir avoids a stat per file: 12,500 files per class folder.
    names = sorted(
        (e.name for e in os.scandir(folder) if e.name.endswith(".txt") and e.is_file()),
        key=natural_key,
    )
    texts = []
    for name in names:
        try:
            with open(folder / name, encoding="utf-8") as handle:
                texts.append(handle.read())
        except UnicodeDecodeError as error:
            raise DataError(
                f"{folder / name} is not UTF-8 text ({error.reason}); re-save "
                "it as UTF-8"
            ) from error
    return names, texts


def load_imdb(source: str | os.PathLike | None = None, split: str = "train") -> pd.DataFrame:
    """Loads one split of IMDB: 25,000 reviews, labels 0 (neg) and 1 (pos).

    Args:
        source: None to download the official archive (cached under
            ``$TFBERT_CACHE`` or ``~/.cache/tfbert``); a URL; a local
            ``aclImdb_v1.tar.gz`` (extracted once into the cache); or a
            folder that is, or contains, ``aclImdb/``.
        split: ``"train"`` or ``"test"``.

    Returns:
        A DataFrame with columns ``text``, ``label`` (int 0/1), ``rating``
        (the 1-10 star rating from the file name) and ``file`` (path inside
        aclImdb); ``df.attrs["class_names"] == ["neg", "pos"]``. Rows are in
        folder order (neg then pos); shuffle before training.

    Raises:
        DataError: an unknown split, a missing source, a bad archive, or a
            folder without the IMDB layout.
    """
    if split not in IMDB_SPLITS:
        raise DataError(f"unknown IMDB split {split!r}; use 'train' or 'test'")
    root = _resolve_source(source)

    frames = []
    for label, class_name in enumerate(IMDB_CLASS_NAMES):
        folder = root / split / class_name
        if not folder.is_dir():
            raise DataError(
                f"{folder} is missing; the IMDB data at {source} has no "
                f"'{split}' split with {'/'.join(IMDB_CLASS_NAMES)} folders"
            )
        names, texts = _read_reviews(folder)
        # ID_RATING.txt: the rating is kept as a column, it is useful for
        # error analysis and costs nothing.
        ratings = pd.to_numeric(
            pd.Series([n[:-4].rpartition("_")[2] for n in names], dtype=object),
            errors="coerce",
        ).astype("Int64")
        frames.append(
            pd.DataFrame(
                {
                    "text": pd.Series(texts, dtype=str),
                    "label": label,
                    "rating": ratings,
                    "file": pd.Series([f"{split}/{class_name}/{n}" for n in names], dtype=str),
                }
            )
        )
    df = pd.concat(frames, ignore_index=True)
    if df.empty:
        raise DataError(
            f"the IMDB '{split}' split at {root} has no review files; pass "
            "the official archive or its extracted aclImdb folder"
        )
    df["label"] = df["label"].astype("int64")
    df.attrs[CLASS_NAMES_ATTR] = list(IMDB_CLASS_NAMES)
    return df
