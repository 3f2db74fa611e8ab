"""Test reports of regression and multi-label models (scikit-learn / scipy), their files and text tables.

Classification reports live in ``tfbert.metrics``; these follow the same rules:
plain JSON-serialisable dicts, undefined ratios count as 0, numpy / sklearn
imported lazily.

``regression_report``::

    {"task": "regression", "num_examples": 500, "target": "score",
     "mse": ..., "rmse": ..., "mae": ..., "r2": ..., "pearson": ..., "spearman": ...}

``multi_label_report``::

    {"task": "multi_label", "num_examples": 500, "label_names": [...], "thresholds": [...],
     "f1_micro": ..., "f1_macro": ..., "precision_micro": ..., "recall_micro": ...,
     "precision_macro": ..., "recall_macro": ..., "subset_accuracy": ..., "hamming_loss": ...,
     "per_label": {"toxic": {"precision": ..., "recall": ..., "f1": ..., "support": 40}, ...}}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from tfbert.errors import DataError
from tfbert.files import write_json, write_text

#: Candidate cuts for tuning multi-label thresholds on validation data.
THRESHOLD_GRID = tuple(round(0.05 * i, 2) for i in range(1, 20))


def _pair(y_true, y_pred):
    import numpy as np

    true = np.asarray(y_true, dtype=np.float64)
    pred = np.asarray(y_pred, dtype=np.float64)
    if true.shape != pred.shape:
        raise DataError(f"{true.shape[0]} targets but {pred.shape[0]} predictions; pass one prediction per example")
    if true.shape[0] == 0:
        raise DataError("no examples to score; the targets are empty")
    if not (np.isfinite(true).all() and np.isfinite(pred).all()):
        raise DataError("targets or predictions hold NaN or infinite values; check the data and the model outputs")
    return true, pred


def _correlation(kind: str, true, pred) -> float | None:
    """Pearson or Spearman r; None where it is undefined (a constant series)."""
    import numpy as np
    from scipy import stats

    if np.ptp(true) == 0 or np.ptp(pred) == 0:
        return None
    fn = stats.pearsonr if kind == "pearson" else stats.spearmanr
    return float(fn(true, pred)[0])


def regression_report(y_true: Sequence[float], y_pred: Sequence[float], target: str = "value") -> dict:
    """Error and correlation figures of predicted values against true ones."""
    import numpy as np
    from sklearn import metrics as skm

    true, pred = _pair(np.ravel(y_true), np.ravel(y_pred))
    mse = float(skm.mean_squared_error(true, pred))
    return {"task": "regression", "num_examples": int(true.shape[0]), "target": str(target),
            "mse": mse, "rmse": mse ** 0.5, "mae": float(skm.mean_absolute_error(true, pred)),
            "r2": float(skm.r2_score(true, pred)) if true.shape[0] > 1 else None,
            "pearson": _correlation("pearson", true, pred), "spearman": _correlation("spearman", true, pred)}


def multi_label_report(y_true, probabilities, label_names: Sequence[str], thresholds) -> dict:
    """Per-label and micro/macro precision, recall and F1 of tags chosen by ``thresholds``."""
    import numpy as np
    from sklearn import metrics as skm

    true, probs = _pair(y_true, probabilities)
    names = [str(n) for n in label_names]
    cuts = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (len(names),))
    pred = (probs >= cuts).astype(int)
    true = true.astype(int)
    report: dict[str, Any] = {"task": "multi_label", "num_examples": int(true.shape[0]), "label_names": names,
                              "thresholds": [float(c) for c in cuts]}
    for average in ("micro", "macro"):
        p, r, f, _ = skm.precision_recall_fscore_support(true, pred, average=average, zero_division=0)
        report.update({f"precision_{average}": float(p), f"recall_{average}": float(r), f"f1_{average}": float(f)})
    report["subset_accuracy"] = float(skm.accuracy_score(true, pred))
    report["hamming_loss"] = float(skm.hamming_loss(true, pred))
    p, r, f, s = skm.precision_recall_fscore_support(true, pred, average=None, zero_division=0)
    report["per_label"] = {name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                                  "support": int(s[i])} for i, name in enumerate(names)}
    return report


def tune_thresholds(y_true, probabilities, per_label: bool = False) -> list[float]:
    """Cuts from ``THRESHOLD_GRID`` that maximise F1 on (validation) data.

    One cut for all labels maximising micro-F1, or (``per_label``) each label's
    own F1: steadier with few examples per label, sharper with many. Ties go
    to the cut nearest 0.5.
    """
    from sklearn import metrics as skm

    true, probs = _pair(y_true, probabilities)
    true = true.astype(int)
    grid = sorted(THRESHOLD_GRID, key=lambda c: abs(c - 0.5))

    def best(score):
        return max(grid, key=lambda c: (round(score(c), 12), -abs(c - 0.5)))

    if per_label:
        return [best(lambda c, j=j: skm.f1_score(true[:, j], probs[:, j] >= c, zero_division=0))
                for j in range(true.shape[1])]
    cut = best(lambda c: skm.f1_score(true, probs >= c, average="micro", zero_division=0))
    return [cut] * true.shape[1]


def task_report(task, targets, logits, names: Sequence[str], thresholds=None) -> dict:
    """The test report of a ``tfbert.tasks`` task from encoded labels (``Task.encode``) and logits."""
    import numpy as np

    from tfbert.tasks import probabilities, resolve_thresholds, sigmoid

    logits = np.asarray(logits)
    if task.name == "regression":
        return regression_report(np.ravel(targets), logits[:, 0], target=names[0])
    if task.name == "multi_label":
        return multi_label_report(targets, sigmoid(logits), names, resolve_thresholds(thresholds, len(names)))
    from tfbert.metrics import classification_report

    probs = probabilities(logits)
    return classification_report(np.ravel(targets).astype(int), probs.argmax(1), list(names),
                                 y_score=probs[:, 1] if probs.shape[1] == 2 else None)


def save_task_report(report: Mapping[str, Any], folder: str | os.PathLike, prefix: str = "test") -> dict[str, Path]:
    """``{prefix}_metrics.json`` and, for multi-label, ``{prefix}_per_label.csv``."""
    import pandas as pd

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"metrics": folder / f"{prefix}_metrics.json"}
    write_json(paths["metrics"], dict(report))
    if report.get("task") == "multi_label":
        paths["per_label"] = folder / f"{prefix}_per_label.csv"
        rows = [{"label": name, **scores} for name, scores in report["per_label"].items()]
        write_text(paths["per_label"], pd.DataFrame(rows).to_csv(index=False))
    return paths


def _num(value) -> str:
    return "n/a" if value is None else f"{float(value):.4f}"


def format_task_report(report: Mapping[str, Any]) -> str:
    """A plain-text table of a regression or multi-label report, for the CLI."""
    n = report["num_examples"]
    if report.get("task") == "regression":
        keys = ("pearson", "spearman", "rmse", "mae", "mse", "r2")
        return (f"{n} examples, target '{report['target']}'\n"
                + "\n".join(f"{k:<10}{_num(report[k]):>10}" for k in keys))
    width = min(max(len(name) for name in report["label_names"] + ["macro avg"]), 30)
    lines = [f"{n} examples, {len(report['label_names'])} labels, thresholds "
             + ", ".join(f"{c:g}" for c in sorted(set(report["thresholds"]))), "",
             f"{'':<{width}}  {'precision':>9}  {'recall':>9}  {'f1-score':>9}  {'support':>8}"]
    for name, row in report["per_label"].items():
        lines.append(f"{name[:width]:<{width}}  {_num(row['precision']):>9}  {_num(row['recall']):>9}  "
                     f"{_num(row['f1']):>9}  {row['support']:>8d}")
    lines.append("")
    for average in ("micro", "macro"):
        lines.append(f"{average + ' avg':<{width}}  {_num(report[f'precision_{average}']):>9}  "
                     f"{_num(report[f'recall_{average}']):>9}  {_num(report[f'f1_{average}']):>9}")
    lines.append(f"subset accuracy {_num(report['subset_accuracy'])}, hamming loss {_num(report['hamming_loss'])}")
    return "\n".join(lines)
