"""Helpers shared by the loaders: path checks, the cache, labels from text."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from tfbert.data.labels import MISSING_LABEL_STRINGS
from tfbert.errors import DataError, printable  # noqa: F401 (printable: used by the loaders)
from tfbert.files import cache_root  # noqa: F401 (re-exported as tfbert.data.cache_root)

# Stored in DataFrame.attrs by loaders whose labels are integer ids with known
# names (IMDB, NSMC, the demo): pass it on as encode_labels(class_names=...).
CLASS_NAMES_ATTR = "class_names"

# ASCII digits only: "١" or "１" are names, not the id 1 (re's \d takes them).
_INT_PATTERN = re.compile(r"[+-]?[0-9]+(\.0*)?")
_INT64_DIGITS = len(str(2**63))  # 19


def _as_int64(text: str) -> int | None:
    """``"007"``, ``"+3"``, ``"1.0"`` as an int; None beyond int64."""
    digits = re.sub(r"\.0*$", "", text)
    if len(digits.lstrip("+-").lstrip("0")) > _INT64_DIGITS:
        return None  # also spares int() its 4300-digit limit
    number = int(digits)
    return number if -(2**63) <= number < 2**63 else None


def check_file(path: str | os.PathLike) -> Path:
    """Returns ``path`` as a Path, or raises DataError if it is not a file."""
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise DataError(f"data file not found: {path}; check the path")
    if not resolved.is_file():
        raise DataError(f"{path} is a folder, expected a file; pass a file path")
    return resolved


def check_dir(path: str | os.PathLike) -> Path:
    """Returns ``path`` as a Path, or raises DataError if it is not a folder."""
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise DataError(f"data folder not found: {path}; check the path")
    if not resolved.is_dir():
        raise DataError(f"{path} is a file, expected a folder; pass a folder path")
    return resolved


def natural_key(name: str) -> list:
    """Sort key that puts ``2_1.txt`` before ``10_1.txt``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def download(url: str, fname: str) -> Path:
    """Downloads ``url`` once into the cache and returns the local file.

    Extraction is left to the caller: ``get_file(extract=True)`` re-extracts
    the whole archive on every call, which for IMDB is 100k files.
    """
    # Imported here: TensorFlow takes seconds to import and most loaders
    # never need it.
    from tf_keras.utils import get_file

    try:
        local = get_file(
            fname, origin=url, cache_dir=str(cache_root()), cache_subdir="downloads"
        )
    except Exception as error:  # urllib and tf_keras raise bare Exceptions
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(
            f"could not download {url} ({reason}); check the network, or "
            "download it yourself and pass the local path"
        ) from error
    return Path(local)


def labels_from_strings(
    values: pd.Series,
    where: Callable[[int], str],
    source: str,
    column: str,
    check_missing: bool = True,
) -> pd.Series:
    """Turns a column of label strings into ints when they all look like ints.

    Files store every label as text; ``"1"`` and ``"1.0"`` become the int 1 so
    that 0/1 files give integer class ids, anything else stays a string (also
    when one integer does not fit int64: then they are names). Labels are
    stripped of surrounding whitespace.

    Args:
        values: raw label cells (str, or NaN for a short row).
        where: maps a 0-based row position to a description such as "line 5".
        source: the file, for messages.
        column: the label column's name in the file, for messages.
        check_missing: False where labels cannot be missing (folder names,
            where a class may well be called "NA").

    Raises:
        DataError: a row has no label.
    """
    stripped = values.fillna("").astype(str).str.strip()
    missing = stripped.str.lower().isin(MISSING_LABEL_STRINGS).to_numpy()
    if check_missing and missing.any():
        position = int(missing.argmax())
        raise DataError(
            f"missing label on {where(position)} of {source} (column "
            f"'{printable(column)}', {int(missing.sum())} row(s) without a label); fill "
            "in the labels or remove those rows"
        )
    if stripped.str.fullmatch(_INT_PATTERN).all():
        digits = stripped.str.replace(r"\.0*$", "", regex=True)
        if digits.str.lstrip("+-").str.lstrip("0").str.len().max() < _INT64_DIGITS:
            return digits.astype("int64")  # 18 digits or fewer always fit
        numbers = [_as_int64(text) for text in stripped.tolist()]
        if None not in numbers:
            return pd.Series(numbers, index=stripped.index, dtype="int64")
    return stripped
