"""Classification metrics (computed with scikit-learn), saving and text formatting.

:func:`classification_report` returns a plain, JSON-serialisable dict::

    {
      "num_examples": 120, "num_classes": 3, "class_names": ["neg", "neu", "pos"],
      "accuracy": 0.83,
      "precision_macro": ..., "recall_macro": ..., "f1_macro": ...,
      "precision_weighted": ..., "recall_weighted": ..., "f1_weighted": ...,
      # binary only (num_classes == 2): the positive class is index 1
      "positive_class": "pos", "precision": ..., "recall": ..., "f1": ...,
      "roc_auc": 0.91,            # binary only, and only when y_score was given
                                  # (None when y_true holds a single class)
      "per_class": {"neg": {"precision": ..., "recall": ..., "f1": ..., "support": 40}, ...},
      "confusion_matrix": [[32, 5, 3], ...],   # rows: true class, columns: predicted
    }

Every class in ``class_names`` is always scored (``labels=range(n)``), also when it
never occurs in ``y_true`` or ``y_pred``; undefined ratios count as 0
(``zero_division=0``), so no warnings are raised.

scikit-learn, numpy and pandas are imported lazily: ``import tfbert.metrics`` is
cheap and never imports TensorFlow.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from tfbert.errors import DataError
from tfbert.files import write_json, write_text

__all__ = ["classification_report", "save_report", "format_report"]

_AVERAGE_KEYS = ("precision", "recall", "f1")


def _to_indices(values: Any, class_names: list[str], what: str):
    """Labels as an int array of class indices; accepts indices or class names."""
    import numpy as np

    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise DataError(
            f"{what} must be a 1-D list of labels, got shape {arr.shape}; take argmax of scores first"
        )
    n = len(class_names)
    if arr.dtype.kind in "US" or arr.dtype == object:
        index = {name: i for i, name in enumerate(class_names)}
        try:
            arr = np.array([index[v] if isinstance(v, str) else int(v) for v in arr.tolist()], dtype=np.int64)
        except KeyError as exc:
            raise DataError(
                f"{what} holds label {exc.args[0]!r} that is not in class_names {class_names}; "
                "pass class indices or names from class_names"
            ) from None
        except (TypeError, ValueError):
            raise DataError(f"{what} must hold class indices (0..{n - 1}) or class names") from None
    if arr.dtype.kind == "b":
        arr = arr.astype(np.int64)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise DataError(
                f"{what} holds non-integer values; pass class indices (0..{n - 1}), not probabilities"
            )
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise DataError(f"{what} must hold class indices (0..{n - 1}) or class names, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        bad = int(arr.min()) if arr.min() < 0 else int(arr.max())
        raise DataError(
            f"{what} holds class index {bad} but there are {n} class names; "
            f"labels must be in 0..{n - 1}"
        )
    return arr


def _positive_scores(y_score: Any, n_examples: int):
    """Binary scores of the positive class: 1-D scores, or column 1 of (n, 2) scores."""
    import numpy as np

    try:
        scores = np.asarray(y_score, dtype=float)
    except (TypeError, ValueError):
        raise DataError("y_score must be numbers: positive-class scores or an (n, 2) array of class scores") from None
    if scores.ndim == 2 and scores.shape[1] == 2:
        scores = scores[:, 1]
    elif scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.ndim != 1 or scores.shape[0] != n_examples:
        raise DataError(
            f"y_score has shape {scores.shape} but there are {n_examples} examples; "
            "pass one positive-class score per example or an (n, 2) array"
        )
    if not np.all(np.isfinite(scores)):
        raise DataError("y_score holds NaN or infinite values; check the model outputs")
    return scores


def classification_report(
    y_true: Sequence[int] | Any,
    y_pred: Sequence[int] | Any,
    class_names: Sequence[str],
    y_score: Any = None,
) -> dict:
    """Accuracy, precision/recall/F1, per-class scores and the confusion matrix.

    ``y_true`` / ``y_pred`` hold class indices into ``class_names`` (class names
    are accepted too). For two classes the positive class is index 1 and
    ``precision``/``recall``/``f1`` refer to it; ``y_score`` (positive-class
    probabilities or logits, or an (n, 2) array) adds ``roc_auc``. ``y_score``
    is ignored for more than two classes. See the module doc for the keys.
    """
    from sklearn import metrics as skm

    names = _check_names(class_names)
    true, pred = _paired_indices(y_true, y_pred, names)
    labels = list(range(len(names)))
    report: dict[str, Any] = {
        "num_examples": int(true.shape[0]),
        "num_classes": len(names),
        "class_names": names,
        "accuracy": float(skm.accuracy_score(true, pred)),
    }
    for average in ("macro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(
            true, pred, labels=labels, average=average, zero_division=0
        )
        report[f"precision_{average}"] = float(p)
        report[f"recall_{average}"] = float(r)
        report[f"f1_{average}"] = float(f)

    p, r, f, s = skm.precision_recall_fscore_support(
        true, pred, labels=labels, average=None, zero_division=0
    )
    if len(names) == 2:
        report.update(_binary_scores(names, p, r, f, true, y_score))
    report["per_class"] = {
        name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, name in enumerate(names)
    }
    matrix = skm.confusion_matrix(true, pred, labels=labels)
    report["confusion_matrix"] = [[int(v) for v in row] for row in matrix]
    return report


def _check_names(class_names: Sequence[str]) -> list[str]:
    """Class names as strings; DataError for fewer than 2 or duplicates."""
    names = [str(c) for c in class_names]
    n = len(names)
    if n < 2:
        raise DataError(f"class_names has {n} name(s); a classifier needs at least 2 classes")
    if len(set(names)) != n:
        dupes = sorted({c for c in names if names.count(c) > 1})
        raise DataError(f"class_names has duplicates {dupes}; give each class a unique name")
    return names


def _paired_indices(y_true: Any, y_pred: Any, names: list[str]):
    """``(true, pred)`` index arrays of equal, non-zero length."""
    true = _to_indices(y_true, names, "y_true")
    pred = _to_indices(y_pred, names, "y_pred")
    if true.shape[0] != pred.shape[0]:
        raise DataError(
            f"y_true has {true.shape[0]} labels but y_pred has {pred.shape[0]}; pass one prediction per example"
        )
    if true.shape[0] == 0:
        raise DataError("no examples to score; y_true and y_pred are empty")
    return true, pred


def _binary_scores(names: list[str], p, r, f, true, y_score: Any) -> dict[str, Any]:
    """The positive class (index 1) scores, and ``roc_auc`` when ``y_score`` is given."""
    import numpy as np
    from sklearn import metrics as skm

    scores: dict[str, Any] = {
        "positive_class": names[1],
        "precision": float(p[1]),
        "recall": float(r[1]),
        "f1": float(f[1]),
    }
    if y_score is not None:
        positive = _positive_scores(y_score, true.shape[0])
        # ROC AUC is undefined when y_true holds one class only.
        scores["roc_auc"] = (
            float(skm.roc_auc_score(true, positive)) if np.unique(true).size == 2 else None
        )
    return scores


def _check_report(report: Any) -> None:
    if not isinstance(report, Mapping):
        raise DataError(f"report must be the dict from classification_report, got {type(report).__name__}")
    missing = [k for k in ("class_names", "per_class", "confusion_matrix", "accuracy") if k not in report]
    if missing:
        raise DataError(
            f"report is missing {', '.join(missing)}; pass the dict returned by classification_report"
        )


def save_report(report: Mapping[str, Any], folder: str | os.PathLike, prefix: str = "test") -> dict[str, Path]:
    """Write a report's files into ``folder`` (created if needed).

    Files and the returned keys:

    * ``metrics``: ``{prefix}_metrics.json`` -- the whole report
    * ``per_class``: ``{prefix}_per_class.csv`` -- columns class, precision, recall, f1, support
    * ``confusion_matrix_csv``: ``{prefix}_confusion_matrix.csv`` -- rows true class,
      columns predicted class, class names as index and header
      (read back with ``pandas.read_csv(path, index_col=0)``)
    * ``confusion_matrix_png``: ``{prefix}_confusion_matrix.png`` -- heat map of counts
    """
    import pandas as pd

    from tfbert.plotting import plot_confusion_matrix

    _check_report(report)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = [str(c) for c in report["class_names"]]
    paths = {
        "metrics": folder / f"{prefix}_metrics.json",
        "per_class": folder / f"{prefix}_per_class.csv",
        "confusion_matrix_csv": folder / f"{prefix}_confusion_matrix.csv",
        "confusion_matrix_png": folder / f"{prefix}_confusion_matrix.png",
    }

    write_json(paths["metrics"], dict(report))

    per_class = pd.DataFrame(
        [{"class": name, **{k: report["per_class"][name][k] for k in (*_AVERAGE_KEYS, "support")}}
         for name in names]
    )
    write_text(paths["per_class"], per_class.to_csv(index=False))

    matrix = pd.DataFrame(report["confusion_matrix"], index=names, columns=names)
    matrix.index.name = "true/predicted"
    write_text(paths["confusion_matrix_csv"], matrix.to_csv())

    plot_confusion_matrix(report["confusion_matrix"], names, paths["confusion_matrix_png"])
    return paths


def _clip(name: str, width: int) -> str:
    return name if len(name) <= width else name[: width - 3] + "..."


def format_report(report: Mapping[str, Any]) -> str:
    """A readable plain-text table of a report, for the CLI.

    Per-class precision/recall/F1/support (like scikit-learn's text report),
    macro and weighted averages, accuracy, the binary positive-class scores and
    ROC AUC when present, and the confusion matrix (rows true, columns predicted).
    """
    _check_report(report)
    names = [str(c) for c in report["class_names"]]
    width = min(max([len(n) for n in names] + [len("weighted avg")]), 30)
    n_examples = report.get("num_examples")
    if n_examples is None:
        n_examples = sum(int(v["support"]) for v in report["per_class"].values())

    def num(v: Any) -> str:
        return "   n/a" if v is None else f"{float(v):6.4f}"

    lines = [f"{n_examples} examples, {len(names)} classes", ""]
    header = f"{'':<{width}}  {'precision':>9}  {'recall':>9}  {'f1-score':>9}  {'support':>8}"
    lines.append(header)
    lines.append("")
    for name in names:
        row = report["per_class"][name]
        lines.append(
            f"{_clip(name, width):<{width}}  {num(row['precision']):>9}  {num(row['recall']):>9}  "
            f"{num(row['f1']):>9}  {int(row['support']):>8d}"
        )
    lines.append("")
    lines.append(f"{'accuracy':<{width}}  {'':>9}  {'':>9}  {num(report['accuracy']):>9}  {n_examples:>8d}")
    for average, label in (("macro", "macro avg"), ("weighted", "weighted avg")):
        if f"f1_{average}" in report:
            lines.append(
                f"{label:<{width}}  {num(report.get(f'precision_{average}')):>9}  "
                f"{num(report.get(f'recall_{average}')):>9}  {num(report.get(f'f1_{average}')):>9}  "
                f"{n_examples:>8d}"
            )

    if "positive_class" in report:
        lines.append("")
        lines.append(
            f"positive class {report['positive_class']!r}: precision {num(report.get('precision')).strip()}, "
            f"recall {num(report.get('recall')).strip()}, f1 {num(report.get('f1')).strip()}"
        )
    if "roc_auc" in report:
        auc = report["roc_auc"]
        lines.append(f"ROC AUC: {num(auc).strip()}" + (" (y_true holds one class only)" if auc is None else ""))

    matrix = report["confusion_matrix"]
    cell = max([len(str(v)) for row in matrix for v in row] + [len(_clip(n, 12)) for n in names] + [4])
    lines.append("")
    lines.append("Confusion matrix (rows: true class, columns: predicted class)")
    lines.append(f"{'':<{width}}  " + "  ".join(f"{_clip(n, 12):>{cell}}" for n in names))
    for name, row in zip(names, matrix):
        lines.append(f"{_clip(name, width):<{width}}  " + "  ".join(f"{int(v):>{cell}d}" for v in row))
    return "\n".join(lines)
