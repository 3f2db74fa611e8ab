"""Unlabelled corpora for vocabulary learning and masked-LM pretraining, streamed.

A corpus source is a plain text file, one text a line (``.gz`` allowed), or a
data set tfbert loads (``nsmc:PATH``, ``imdb:PATH``, a CSV/TSV/JSONL table,
``demo``), of which only the *train* split is read. Text files are read a line
at a time, so a 600k-line corpus is never held in memory as Python strings.

Test splits are refused: a vocabulary or an encoder that has seen the test
texts makes every later test figure optimistic.
"""

from __future__ import annotations

import gzip
import os
import re
import zlib
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from tfbert.errors import DataError

LINE_SUFFIXES = (".txt", ".text", ".lines")
_TEST_WORD = re.compile(r"(?:^|[^a-z0-9])test(?:set)?[0-9]*(?:[^a-z0-9]|$)")


def _as_sources(sources: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    out = [str(s).strip() for s in sources if str(s).strip()]
    if not out:
        raise DataError("no corpus given; pass one or more text files (one text a line, .gz allowed) "
                        "or data sets such as nsmc:PATH")
    return out


def _path_part(source: str) -> str:
    """The path inside a data set spec (``nsmc:PATH`` -> PATH), or the source itself."""
    name, colon, rest = source.partition(":")
    return rest if colon and name.lower() in ("nsmc", "imdb") else source


def check_not_test_split(source: str | os.PathLike) -> None:
    """Raises a one-line DataError when ``source`` names a test split.

    A test split is a file whose name has the word "test" (``ratings_test.txt``, ``test.csv``,
    ``test2.txt``, ``testset.csv``) or anything inside a folder named ``test`` (IMDB's
    ``aclImdb/test/pos``); other folder names with the word (``~/test_runs``) are a user's own and
    pass. A symlink is judged by the file it points to as well, and a file that is a test-named
    file of its own folder under another name (a hard link or a copy) is refused too.
    """
    path = Path(_path_part(str(source))).expanduser()
    for spelling in dict.fromkeys([path, path.resolve() if path.exists() else path]):
        part = _test_part(spelling)
        if part is not None:
            raise DataError(
                f"corpus {source} looks like a test split ('{part}'); vocabularies and pretraining must "
                f"never read test text (the test figures would be optimistic); use the train split or "
                f"unlabelled text, or rename the file if it is not a test split")
    twin = _test_twin(path)
    if twin is not None:
        raise DataError(f"corpus {source} holds the same bytes as the test split {twin}; vocabularies and "
                        f"pretraining must never read test text: use the train split or unlabelled text")


def _test_part(path: Path) -> str | None:
    """The name that makes ``path`` a test split, or None."""
    stem = path.name.lower()
    for suffix in (".gz", ".txt", ".tsv", ".csv", ".jsonl"):
        stem = stem.removesuffix(suffix)
    if _TEST_WORD.search(stem):
        return path.name
    return next((p.name for p in [path] + list(path.parents)[:2] if p.name.lower() == "test"), None)


def _test_twin(path: Path) -> Path | None:
    """A test-named file next to ``path`` that is the same file or has the same bytes."""
    import filecmp

    if not path.is_file():
        return None
    size = path.stat().st_size
    for other in path.parent.iterdir():
        if other.name == path.name or _test_part(other) is None or not other.is_file():
            continue
        if os.path.samefile(other, path) or (other.stat().st_size == size and filecmp.cmp(other, path, shallow=False)):
            return other
    return None


def is_line_file(source: str) -> bool:
    """Whether ``source`` is read as one text a line (a .txt/.text/.lines file, optionally gzipped)."""
    name = Path(source).name.lower().removesuffix(".gz")
    return Path(source).is_file() and name.endswith(LINE_SUFFIXES) and not _is_nsmc_table(Path(source))


def _is_nsmc_table(path: Path) -> bool:
    """NSMC's .txt files are tables (``id<TAB>document<TAB>label``), not one text a line."""
    try:
        with (gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")) as handle:
            first = handle.readline(200)
    except (OSError, EOFError, zlib.error):
        return False
    return first.lstrip(b"\xef\xbb\xbf").split(b"\t")[:2] == [b"id", b"document"]


def _lines(path: Path) -> Iterator[str]:
    from tfbert.files import utf8_lines

    for _, line in utf8_lines(path):
        line = line.strip()
        if line:
            yield line


def _dataset_texts(source: str, text_column: str) -> Iterator[str]:
    from tfbert.data.loaders import load_dataset

    frame = load_dataset(source, split="train", text_column=text_column, label_column=None)
    for text in frame["text"]:
        text = str(text).strip()
        if text:
            yield text


def check_sources(sources) -> list[str]:
    """The sources as a list, after checking each exists and is not a test split."""
    out = _as_sources(sources)
    for source in out:
        check_not_test_split(source)
        name = source.partition(":")[0].lower()
        if name not in ("nsmc", "imdb", "demo") and not Path(source).expanduser().exists():
            raise DataError(f"corpus not found: {source}; pass text files (one text a line, .gz allowed) "
                            f"or data sets such as nsmc:PATH")
    return out


def iter_texts(sources, max_texts: int | None = None, text_column: str = "text") -> Iterator[str]:
    """The non-empty texts of every source in turn (at most ``max_texts``), streamed."""
    count = 0
    for source in check_sources(sources):
        path = Path(source).expanduser()
        texts: Iterable[str] = _lines(path) if is_line_file(str(path)) else _dataset_texts(source, text_column)
        for text in texts:
            if max_texts is not None and count >= max_texts:
                return
            count += 1
            yield text
