"""Cleaning (empty texts, duplicates) and a summary of a data set."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tfbert.data._common import CLASS_NAMES_ATTR
from tfbert.errors import DataError

Tokenize = Callable[[list[str]], Sequence[Sequence[int]]]

# Token windows worth knowing about when picking --max-length.
_WINDOWS = (64, 128, 256, 512)
_TOKENIZE_BATCH = 1000


@dataclass
class CleanReport:
    """What :func:`clean` removed.

    Attributes:
        rows_in: rows before cleaning.
        empty: rows removed because the text was empty or only whitespace.
        duplicates: rows removed because the same text came earlier.
        conflicting: of the duplicated texts, how many carried more than one
            label (a sign of label noise; the first label is kept).
        rows_out: rows after cleaning.
    """

    rows_in: int
    empty: int
    duplicates: int
    conflicting: int
    rows_out: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"{self.rows_in} rows -> {self.rows_out}: removed {self.empty} empty, "
            f"{self.duplicates} duplicate ({self.conflicting} duplicated texts "
            "had conflicting labels)"
        )


def _require_text(df: pd.DataFrame) -> None:
    if not isinstance(df, pd.DataFrame) or "text" not in df.columns:
        found = ", ".join(map(str, getattr(df, "columns", []))) or "(none)"
        raise DataError(
            f"expected a DataFrame with a 'text' column; columns found: {found}. "
            "Load data with tfbert.data.load_dataset"
        )


def _document_key(df: pd.DataFrame) -> pd.DataFrame:
    """What makes a document, stripped: the text, and with sentence pairs the second text too."""
    columns = ["text", "text_pair"] if "text_pair" in df.columns else ["text"]
    return pd.DataFrame({c: df[c].fillna("").astype(str).str.strip() for c in columns}, index=df.index)


def clean(
    df: pd.DataFrame, drop_empty: bool = True, drop_duplicates: bool = True
) -> tuple[pd.DataFrame, CleanReport]:
    """Drops empty texts and repeated texts.

    Texts are compared after stripping surrounding whitespace; the text itself
    is not changed. With a ``text_pair`` column (sentence pairs) the document
    is the pair: a row is empty when both texts are, and a duplicate when both
    match an earlier row's. Of repeated texts the first row is kept, even when a later
    copy has another label (counted in ``report.conflicting``).

    Args:
        df: a frame with a ``text`` column (and usually ``label``).
        drop_empty: drop rows whose text is empty or whitespace only.
        drop_duplicates: drop rows whose text appeared in an earlier row.

    Returns:
        ``(cleaned, report)``: the kept rows with a fresh 0..n-1 index and
        the frame's attrs, and a :class:`CleanReport`.
    """
    _require_text(df)
    key = _document_key(df)
    keep = pd.Series(True, index=df.index)

    empty_mask = (key == "").all(axis=1)
    if drop_empty:
        keep &= ~empty_mask

    duplicate_mask = key.duplicated(keep="first") & ~empty_mask
    conflicting = 0
    if drop_duplicates:
        keep &= ~duplicate_mask
        if "label" in df.columns and duplicate_mask.any():
            groups = key.groupby(list(key.columns), sort=False).ngroup()
            repeated = groups.isin(groups[duplicate_mask])
            labels = df.loc[repeated, "label"].astype(str)
            conflicting = int(labels.groupby(groups[repeated]).nunique().gt(1).sum())

    cleaned = df.loc[keep].reset_index(drop=True)
    cleaned.attrs = dict(df.attrs)
    report = CleanReport(
        rows_in=len(df),
        empty=int(empty_mask.sum()) if drop_empty else 0,
        duplicates=int(duplicate_mask.sum()) if drop_duplicates else 0,
        conflicting=conflicting,
        rows_out=len(cleaned),
    )
    return cleaned, report


def _length_stats(lengths: np.ndarray) -> dict[str, float]:
    """mean/median/p95/p99/max of a length array, as plain floats and ints."""
    if lengths.size == 0:
        return {"mean": 0.0, "median": 0.0, "p95": 0.0, "p99": 0.0, "max": 0}
    return {
        "mean": round(float(lengths.mean()), 1),
        "median": float(np.median(lengths)),
        "p95": float(np.percentile(lengths, 95)),
        "p99": float(np.percentile(lengths, 99)),
        "max": int(lengths.max()),
    }


@dataclass
class Summary:
    """Class balance and text lengths of a data set (see :func:`summarize`).

    Attributes:
        rows: number of rows.
        classes: one dict per label: ``label``, ``name`` (from
            ``df.attrs["class_names"]`` when the label is an id, else the
            label), ``count``, ``fraction``.
        chars: length statistics in characters.
        tokens: the same in tokens, or None without a tokenizer.
        over_window: fraction of texts longer than 64/128/256/512 tokens
            and than ``seq_length`` when given, or None without a tokenizer.
        seq_length: the length the model reads (longer texts are truncated), if known.
        values: regression labels' statistics (mean, std, min, median, max), else None;
            multi-label data list one ``classes`` row per tag (rows holding it).
        long_texts: how many texts each long-text strategy affects at the
            model's window (``tfbert.long_text.summary``: texts over the window,
            head/tail kept, windows per text), or None.
    """

    rows: int
    classes: list[dict[str, Any]] = field(default_factory=list)
    chars: dict[str, float] = field(default_factory=dict)
    tokens: dict[str, float] | None = None
    over_window: dict[str, float] | None = None
    seq_length: int | None = None
    values: dict[str, float] | None = None
    long_texts: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict."""
        return asdict(self)

    def to_json(self, path: str | os.PathLike) -> None:
        """Writes :meth:`to_dict` as JSON to ``path``."""
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(self.to_dict(), handle, indent=2, ensure_ascii=False)

    def tables(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(class balance table, length table) as DataFrames for printing."""
        balance = pd.DataFrame(self.classes, columns=["label", "name", "count", "fraction"])
        lengths = {"chars": self.chars}
        if self.tokens is not None:
            lengths["tokens"] = self.tokens
        return balance, pd.DataFrame(lengths).T

    def __str__(self) -> str:
        balance, lengths = self.tables()
        parts = [f"{self.rows} rows", balance.to_string(index=False), lengths.to_string()]
        if self.values is not None:
            parts[1] = "labels: " + ", ".join(f"{k} {v:.4g}" for k, v in self.values.items())
        if self.over_window:
            over = ", ".join(f">{k}: {v:.1%}" for k, v in self.over_window.items())
            parts.append(f"texts longer than these token windows: {over}")
            cut_at_end = not self.long_texts or self.long_texts["strategy"] == "truncate"
            if self.seq_length is not None and cut_at_end:
                share = self.over_window[str(self.seq_length)]
                parts.append(f"texts longer than seq_length {self.seq_length} (truncated): {share:.1%}")
        if self.long_texts:
            from tfbert.long_text import describe_summary
            parts.append(describe_summary(self.long_texts))
        return "\n\n".join(parts)


def _class_balance(df: pd.DataFrame) -> list[dict[str, Any]]:
    names = df.attrs.get(CLASS_NAMES_ATTR)
    rows = []
    for label, count in df["label"].value_counts(dropna=False).sort_index().items():
        label = label.item() if hasattr(label, "item") else label
        name = label
        if names is not None and isinstance(label, int) and 0 <= label < len(names):
            name = names[label]
        rows.append({"label": label if isinstance(label, (int, str)) else str(label), "name": str(name),
                     "count": int(count), "fraction": round(int(count) / len(df), 4)})
    return rows


def _label_values(summary: Summary, labels: pd.Series, label_kind: str, separator: str) -> None:
    """Regression statistics or per-tag counts (labels already checked by ``tfbert.tasks``)."""
    from tfbert.tasks import parse_tags

    if label_kind == "values":
        numbers = pd.to_numeric(labels, errors="coerce").to_numpy(dtype=float)
        summary.values = {"mean": float(np.nanmean(numbers)), "std": float(np.nanstd(numbers)),
                          "min": float(np.nanmin(numbers)), "median": float(np.nanmedian(numbers)),
                          "max": float(np.nanmax(numbers))}
        return
    counts = pd.Series([t for cell in labels for t in parse_tags(cell, separator)]).value_counts().sort_index()
    untagged = sum(1 for cell in labels if not parse_tags(cell, separator))
    rows = [(str(tag), int(count)) for tag, count in counts.items()] + [("(no tag)", untagged)]
    summary.classes = [{"label": tag, "name": tag, "count": count, "fraction": round(count / len(labels), 4)}
                       for tag, count in rows]
def _token_lengths(df: pd.DataFrame, tokenizer: Tokenize) -> np.ndarray:
    """Tokens per row (per pair, with a ``text_pair`` column), tokenized in batches."""
    values = df["text"].fillna("").astype(str).tolist()
    pairs = df["text_pair"].fillna("").astype(str).tolist() if "text_pair" in df.columns else None
    lengths: list[int] = []
    # Batches keep memory flat on 150k-row data sets.
    for start in range(0, len(values), _TOKENIZE_BATCH):
        chunk = slice(start, start + _TOKENIZE_BATCH)
        ids = tokenizer(values[chunk]) if pairs is None else tokenizer(values[chunk], pairs[chunk])
        lengths.extend(len(row) for row in ids)
    return np.asarray(lengths)


def summarize(
    df: pd.DataFrame, tokenizer: Tokenize | None = None, verbose: bool = False,
    seq_length: int | None = None, label_kind: str = "classes", separator: str = ",", long_text=None,
) -> Summary:
    """Describes class balance and text lengths.

    Args:
        df: a frame with ``text`` and optionally ``label``.
        tokenizer: optional callable mapping a list of texts to a list of
            token id lists; adds token length statistics. With a ``text_pair``
            column it is called with the texts and their second texts.
        verbose: also print the summary.
        seq_length: the model's length: its share of longer texts is reported too.
        label_kind: ``classes``; ``values`` (regression: label statistics) or
            ``tags`` (multi-label: rows per tag, tags split at ``separator``).
        long_text: a resolved ``tfbert.long_text.LongText`` (the model's): with a
            tokenizer, count the texts each strategy affects (``Summary.long_texts``).

    Returns:
        A :class:`Summary`; ``print(summary)`` shows tables,
        ``summary.to_json(path)`` saves it.
    """
    _require_text(df)
    texts = df["text"].fillna("").astype(str)
    summary = Summary(rows=len(df), seq_length=seq_length)

    if "label" in df.columns and len(df) and label_kind != "classes":
        _label_values(summary, df["label"], label_kind, separator)
    elif "label" in df.columns and len(df):
        summary.classes = _class_balance(df)

    summary.chars = _length_stats(texts.str.len().to_numpy())

    if tokenizer is not None:
        array = _token_lengths(df, tokenizer)
        summary.tokens = _length_stats(array)
        windows = sorted(set(_WINDOWS) | ({seq_length} if seq_length else set()))
        summary.over_window = {
            str(w): round(float((array > w).mean()) if array.size else 0.0, 4)
            for w in windows
        }
        if long_text is not None and seq_length and array.size:
            from tfbert.long_text import summary as long_text_summary
            summary.long_texts = long_text_summary(array, long_text, num_special=seq_length - long_text.capacity)

    if verbose:
        print(summary)
    return summary
