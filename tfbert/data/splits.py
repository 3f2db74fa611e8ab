"""Stratified train/validation split."""

from __future__ import annotations

import math

import pandas as pd

from tfbert.errors import ConfigError, DataError


def _plain(value):
    """NumPy scalar to Python, so messages say 2 rather than np.int64(2)."""
    return value.item() if hasattr(value, "item") else value


def train_valid_split(
    df: pd.DataFrame, valid_fraction: float = 0.1, seed: int = 42, stratify: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Splits off a validation set with the same class proportions.

    Args:
        df: a frame with ``text`` and ``label``.
        valid_fraction: share of rows for validation, between 0 and 1.
        seed: random seed; the same seed and data give the same split.
        stratify: keep class proportions (False: a plain random split, for
            regression values and multi-label tag sets).

    Returns:
        ``(train, valid)``, shuffled, each with a fresh 0..n-1 index and the
        frame's attrs.

    Raises:
        ConfigError: ``valid_fraction`` outside (0, 1).
        DataError: no label column, missing labels, a single class, a class
            with one example, or too few rows for every class to appear in
            both parts.
    """
    _check_valid_fraction(valid_fraction)
    if stratify:
        _check_rows_per_class(len(df), valid_fraction, len(_class_counts(df)))
    elif len(df) < 2:
        raise DataError(f"{len(df)} row(s) cannot be split into training and validation data; add data")
    # Imported here: scikit-learn adds about a second to `import tfbert.data`.
    from sklearn.model_selection import train_test_split

    try:
        train, valid = train_test_split(
            df, test_size=valid_fraction, random_state=seed, shuffle=True,
            stratify=df["label"] if stratify else None
        )
    except ValueError as error:  # a case the checks above did not foresee
        raise DataError(f"cannot split the data: {error}; change valid_fraction or add data") from error
    train = train.reset_index(drop=True)
    valid = valid.reset_index(drop=True)
    train.attrs = dict(df.attrs)
    valid.attrs = dict(df.attrs)
    return train, valid


def _check_valid_fraction(valid_fraction: float) -> None:
    if not isinstance(valid_fraction, (int, float)) or not 0 < valid_fraction < 1:
        raise ConfigError(
            f"valid_fraction must be between 0 and 1 (exclusive), got "
            f"{valid_fraction!r}; e.g. 0.1 for 10%"
        )


def _class_counts(df: pd.DataFrame) -> pd.Series:
    """Rows per class; DataError unless every class can be stratified."""
    if "label" not in df.columns:
        raise DataError(
            "cannot stratify a split without a 'label' column; columns found: "
            f"{', '.join(map(str, df.columns))}"
        )
    labels = df["label"]
    if labels.isna().any():
        position = int(labels.isna().to_numpy().argmax())
        raise DataError(
            f"missing label at row {position} (0-based); fill in the labels "
            "or drop those rows before splitting"
        )
    counts = labels.value_counts()
    if len(counts) < 2:
        raise DataError(
            f"labels have a single class ({_plain(counts.index[0])!r}); a classifier "
            "needs at least 2 classes"
        )
    if counts.min() < 2:
        raise DataError(
            f"class {_plain(counts.idxmin())!r} has only 1 example; a stratified split "
            "needs at least 2 per class: add examples or drop that class"
        )
    return counts


def _check_rows_per_class(rows: int, valid_fraction: float, num_classes: int) -> None:
    """DataError unless both parts can hold at least one row of every class."""
    n_valid = math.ceil(valid_fraction * rows)  # sklearn rounds the same way
    if n_valid < num_classes or rows - n_valid < num_classes:
        raise DataError(
            f"valid_fraction={valid_fraction} of {rows} rows leaves "
            f"{n_valid} validation and {rows - n_valid} training rows for "
            f"{num_classes} classes; each part needs at least one row per "
            "class: change valid_fraction or add data"
        )
