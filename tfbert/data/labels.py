"""Turn label values into integer class ids, and check ids against a model.

A model only ever sees ids ``0..N-1``; ``class_names[i]`` is the name of id
``i``. Training derives the class names from the training labels, and the same
list must be passed when encoding validation, test or prediction labels so that
every split uses the same ids.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from tfbert.errors import DataError, printable

# Values a label cell may hold when it is really empty (compared lower-case).
# Shared with the loaders so that files and in-memory lists agree. "none" and
# "null" are left out on purpose: they are plausible class names.
MISSING_LABEL_STRINGS = frozenset({"", "nan", "na", "n/a", "<na>", "#n/a"})


def _names(names: Sequence[str]) -> str:
    """Class names for a one-line message: line breaks and other
    non-printable characters escaped."""
    return ", ".join(printable(name) for name in names)


def _where(index: Sequence[Any] | None, position: int) -> str:
    """Names a row for an error message: its index label when there is one."""
    if index is not None:
        return f"row {index[position]!r}"
    return f"position {position} (0-based)"


def _normalize(value: Any, where: str) -> int | str | None:
    """Maps one raw label to an int, a str, or None for a missing label."""
    if isinstance(value, (bool, np.bool_)):
        # bool is an int subclass, but True/False read as names, not ids.
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return None
        if not float(value).is_integer():
            raise DataError(
                f"label {value!r} at {where} is not a class; labels must be "
                "class names or integer class ids (this is classification, "
                "not regression)"
            )
        # Int columns with a gap are read as floats (1.0), so accept those.
        return int(value)
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.lower() in MISSING_LABEL_STRINGS:
            return None
        return stripped
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    raise DataError(
        f"label at {where} has type {type(value).__name__}; labels must be "
        "class names (strings) or integer class ids"
    )


def _check_class_names(class_names: Sequence[Any]) -> list[str]:
    if isinstance(class_names, str):
        raise DataError(
            f"class_names must be a list of names, not the string "
            f"{class_names!r}; pass e.g. ['neg', 'pos']"
        )
    names = [str(name) for name in class_names]
    if len(names) < 2:
        raise DataError(
            f"class_names has {len(names)} name(s); a classifier needs at "
            "least 2 classes"
        )
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DataError(
            f"class_names repeats {_names(duplicates)}; each class name "
            "must appear once"
        )
    return names


def encode_labels(
    values: Sequence[Any] | np.ndarray | pd.Series,
    class_names: Sequence[Any] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Encodes labels as int32 class ids and returns the class names.

    Without ``class_names``: string labels get ids in sorted order; integer
    labels keep their order (``0..N-1`` map to themselves, other integers such
    as ``-1/1`` or ratings ``1..5`` map to ``0..N-1`` in sorted order and are
    named by their value).

    With ``class_names`` (e.g. from the training split, or ``df.attrs
    ["class_names"]`` set by the loaders): a string label must be one of the
    names; an integer label is matched by name when every integer is a name
    (``-1``, ``1``), otherwise it is a class id and must lie in
    ``0..len(class_names)-1``.

    Args:
        values: the labels, e.g. ``df["label"]``; ints, integral floats or
            strings, not mixed.
        class_names: the fixed list of classes, or None to derive it.

    Returns:
        ``(ids, class_names)``: an int32 array as long as ``values`` and the
        list of class names, ``class_names[id]`` naming each id.

    Raises:
        DataError: missing labels, mixed kinds, a single class, a label that
            is not one of ``class_names``, an id out of range.
    """
    index = list(values.index) if isinstance(values, pd.Series) else None
    raw = values.tolist() if hasattr(values, "tolist") else list(values)
    if not raw:
        raise DataError("no labels to encode; the data has zero rows")

    labels = _normalize_all(raw, index)
    integers = _check_one_kind(labels)
    if class_names is None:
        return _encode_derived(labels)

    names = _check_class_names(class_names)
    lookup = {name: i for i, name in enumerate(names)}
    if integers and not all(str(v) in lookup for v in labels):
        # Integers that are not all names are class ids.
        return _encode_ids(labels, names, index), names
    return _encode_names(labels, names, lookup, index), names


def _normalize_all(raw: list[Any], index: Sequence[Any] | None) -> list[int | str]:
    """Normalizes every label; DataError at the first missing one."""
    labels = []
    for position, value in enumerate(raw):
        label = _normalize(value, _where(index, position))
        if label is None:
            missing = sum(_normalize(v, "") is None for v in raw)
            raise DataError(
                f"missing label at {_where(index, position)} ({missing} "
                "missing in all); fill in the labels or drop those rows"
            )
        labels.append(label)
    return labels


def _check_one_kind(labels: list[int | str]) -> bool:
    """DataError when labels mix ints and strings; True when they are ints."""
    kinds = {type(label) for label in labels}
    if len(kinds) > 1:
        number = next(v for v in labels if isinstance(v, int))
        text = next(v for v in labels if isinstance(v, str))
        raise DataError(
            f"labels mix numbers and names (e.g. {number!r} and {text!r}); "
            "use all class ids 0..N-1 or all class names"
        )
    return kinds == {int}


def _encode_derived(labels: list[int | str]) -> tuple[np.ndarray, list[str]]:
    """Ids and class names derived from the labels themselves (sorted order)."""
    unique = sorted(set(labels))
    if len(unique) < 2:
        raise DataError(
            f"labels have a single class ({unique[0]!r}); a classifier "
            "needs at least 2 classes: check the label column and the data"
        )
    names = [str(u) for u in unique]
    lookup = {u: i for i, u in enumerate(unique)}
    ids = np.fromiter((lookup[v] for v in labels), np.int32, len(labels))
    return ids, names


def _encode_ids(labels: list[int], names: list[str], index: Sequence[Any] | None) -> np.ndarray:
    """Integer labels taken as class ids, checked against ``names``."""
    ids = np.asarray(labels, dtype=np.int64)
    bad = np.flatnonzero((ids < 0) | (ids >= len(names)))
    if bad.size:
        position = int(bad[0])
        raise DataError(
            f"label id {labels[position]} at {_where(index, position)} is "
            f"outside 0..{len(names) - 1} for the {len(names)} classes "
            f"{_names(names)}; integer labels must be class ids "
            "0..N-1, or pass class_names that match them"
        )
    return ids.astype(np.int32)


def _encode_names(
    labels: list[int | str], names: list[str], lookup: dict[str, int], index: Sequence[Any] | None
) -> np.ndarray:
    """Labels matched by name against ``names``."""
    ids = np.empty(len(labels), dtype=np.int32)
    for position, label in enumerate(labels):
        found = lookup.get(str(label))
        if found is None:
            raise DataError(
                f"label {label!r} at {_where(index, position)} is not one of "
                f"the {len(names)} classes {_names(names)}; fix the label "
                "or pass the full list of class names"
            )
        ids[position] = found
    return ids


def decode_labels(ids: Sequence[int] | np.ndarray, class_names: Sequence[str]) -> list[str]:
    """Maps class ids back to class names (e.g. for predictions).

    Args:
        ids: class ids in ``0..len(class_names)-1``.
        class_names: the names returned by :func:`encode_labels`.

    Returns:
        One class name per id.
    """
    array = np.asarray(ids)
    check_labels_in_range(array, len(class_names))
    return [str(class_names[i]) for i in array.tolist()]


def check_labels_in_range(ids: Sequence[int] | np.ndarray, num_classes: int) -> None:
    """Checks that every class id fits a model with ``num_classes`` outputs.

    Args:
        ids: integer class ids.
        num_classes: number of classes (model outputs).

    Raises:
        DataError: an id is negative or ``>= num_classes``, or ids are not
            integers.
    """
    array = np.asarray(ids)
    if array.size == 0:
        return
    if not np.issubdtype(array.dtype, np.integer):
        raise DataError(
            f"label ids have dtype {array.dtype}, expected integers; encode "
            "the labels with encode_labels first"
        )
    bad = np.flatnonzero((array < 0) | (array >= num_classes))
    if bad.size:
        position = int(bad[0])
        raise DataError(
            f"label id {int(array.flat[position])} at position {position} is "
            f"outside 0..{num_classes - 1} for a {num_classes}-class model "
            f"({bad.size} such ids); encode the labels with the model's class "
            "names or set the number of classes to match the data"
        )
