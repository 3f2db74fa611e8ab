"""Score an exported classifier on labelled data and save the report next to it.

    >>> from tfbert.evaluate import evaluate
    >>> report = evaluate("runs/nsmc/export", "ratings_test.csv")
    >>> report["accuracy"], report["output_dir"]
    (0.87, 'runs/nsmc/export/eval_ratings_test')

Files written to ``MODEL_DIR/eval_<data name>/`` (or ``output_dir``), by
:func:`tfbert.metrics.save_report` plus the predictions:

* ``<name>_metrics.json``: the whole report (accuracy, macro/weighted and
  per-class precision/recall/F1, confusion matrix, ROC AUC for two classes)
* ``<name>_per_class.csv``, ``<name>_confusion_matrix.csv``,
  ``<name>_confusion_matrix.png`` (class names on both axes)
* ``predictions.csv``: text, label, predicted, score, correct
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from tfbert.errors import DataError
from tfbert.files import check_writable_dir, write_text
from tfbert.tasks import get_task

__all__ = ["evaluate"]


def _write_predictions(path: Path, texts, pairs, y_true, y_pred, probs, class_names) -> None:
    """predictions.csv: text, [text_pair,] label, predicted, score, correct."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(["text", *(["text_pair"] if pairs is not None else []), "label", "predicted", "score",
                     "correct"])
    for i, (text, t, p, row) in enumerate(zip(texts, y_true, y_pred, probs)):
        given = [text] if pairs is None else [text, pairs[i]]
        writer.writerow([*given, class_names[int(t)], class_names[int(p)], f"{row[int(p)]:.6f}", int(t == p)])
    write_text(path, buffer.getvalue())


def _data_name(data) -> str:
    if not isinstance(data, (str, os.PathLike)):
        return "data"
    text = str(data).strip().rstrip("/\\")
    path = Path(text).expanduser()
    if path.exists():
        name = path.name
        for suffix in (".gz", ".csv", ".tsv", ".tab", ".jsonl", ".ndjson", ".json", ".txt"):
            if name.lower().endswith(suffix):
                name = name[: -len(suffix)]
    else:  # "demo", "nsmc:PATH", "imdb:PATH"
        kind, _, rest = text.partition(":")
        name = kind + ("_" + Path(rest).name.split(".")[0] if rest else "")
    return re.sub(r"[^\w.-]+", "_", name).strip("._") or "data"


def _load(data, text_column: str, label_column: str, text_pair_column: str | None = None,
          label_kind: str = "classes"):
    """(texts, labels, source, second texts or None)."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        wanted = [c for c in (text_column, label_column, text_pair_column) if c is not None]
        missing = [c for c in wanted if c not in data.columns]
        if missing:
            raise DataError(
                f"column {missing[0]!r} not found in the DataFrame; columns found: "
                f"{', '.join(map(str, data.columns))}. Pass text_column=/label_column=/text_pair_column= "
                f"names that exist")
        pairs = None if text_pair_column is None else data[text_pair_column].tolist()
        return data[text_column].tolist(), data[label_column].tolist(), "DataFrame", pairs
    if not isinstance(data, (str, os.PathLike)):
        raise DataError(f"data must be a file path or a pandas DataFrame, got {type(data).__name__}")
    from tfbert.data import load_dataset
    from tfbert.predict import check_utf8

    path = Path(str(data)).expanduser()
    if path.is_file():
        check_utf8(path)  # names the line of a non-UTF-8 byte
    df = load_dataset(data, split="test", text_column=text_column, label_column=label_column,
                      text_pair_column=text_pair_column, label_kind=label_kind)
    pairs = None if text_pair_column is None else df["text_pair"].tolist()
    return df["text"].tolist(), df["label"].tolist(), str(data), pairs


def _as_int(value) -> int | None:
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        return int(value.strip())
    return None


def _check_known(labels, class_names: list[str], source: str, model_dir) -> None:
    """DataError listing the model's classes when a label is neither a name nor an id."""
    names = set(class_names)
    n = len(class_names)
    unknown: dict[str, int] = {}
    first_row = None
    for row, value in enumerate(labels):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue  # encode_labels reports missing labels
        if str(value).strip() in names:
            continue
        as_int = _as_int(value)
        if as_int is not None and 0 <= as_int < n:
            continue
        key = str(value)
        unknown[key] = unknown.get(key, 0) + 1
        if first_row is None:
            first_row = row
    if unknown:
        shown = ", ".join(repr(k) for k in list(unknown)[:5]) + (", ..." if len(unknown) > 5 else "")
        raise DataError(
            f"{sum(unknown.values())} label(s) in {source} are not classes of the model in {model_dir} "
            f"({shown}; first at data row {first_row}); its classes are {', '.join(class_names)} "
            f"(or ids 0..{n - 1}): fix the labels or evaluate a model trained on these classes")


def evaluate(model_dir: str | os.PathLike, data, text_column: str = "text", label_column: str = "label",
             output_dir: str | os.PathLike | None = None, batch_size: int | None = None,
             progress: bool | None = None, predictor=None,
             text_pair_column: str | None = None) -> dict[str, Any]:
    """Predict ``data`` with an exported model, score it and save the report.

    Args:
        model_dir: folder written by :func:`tfbert.export.export_classifier`.
        data: a file (``.csv``/``.tsv``/``.jsonl``, NSMC ``.txt``), any
            :func:`tfbert.data.load_dataset` spec (``demo``, ``nsmc:PATH``, a
            folder; its test split), or a pandas DataFrame.
        text_column, label_column: columns of a table or DataFrame. Labels may
            be class names or class ids (``0..N-1``) of the model.
        output_dir: where the files go; default ``MODEL_DIR/eval_<data name>``.
        batch_size: texts per model call (default: see ``Predictor.predict``).
        progress: tqdm bar (default: for 1000 texts or more).
        predictor: a loaded :class:`tfbert.predict.Predictor` to reuse.
        text_pair_column: the second-text column of sentence pairs, for a
            pair model (``predictions.csv`` then has a ``text_pair`` column).

    Returns:
        dict: :func:`tfbert.metrics.classification_report` plus ``model_dir``,
        ``data`` and ``output_dir`` (also saved as ``<name>_metrics.json``).

    Raises:
        DataError: unreadable data, missing columns, a label that is not one
            of the model's classes (the message lists them).
    """
    from tfbert.export import read_export_info
    from tfbert.metrics import save_report
    from tfbert.predict import load
    from tfbert.task_metrics import save_task_report

    # Check the output folder, and the data against the saved class names, before loading the model.
    info = read_export_info(model_dir) if predictor is None else \
        getattr(predictor, "info", None) or {"class_names": predictor.class_names}  # ready HF models: classes
    name = _data_name(data)
    out = Path(output_dir).expanduser() if output_dir is not None else Path(model_dir).expanduser() / f"eval_{name}"
    check_writable_dir(out, "--output-dir")
    task = get_task(info.get("task", "classification"),
                    separator=(info.get("config") or {}).get("label_separator"))
    texts, labels, source, pairs = _load(data, text_column, label_column, text_pair_column, task.label_kind)
    if not texts:
        raise DataError(f"no examples in {source}; check the file and the column names")
    given = {"texts": texts, "pairs": pairs, "labels": labels, "source": source, "model_dir": model_dir}
    classes = task.name == "classification"
    report = (_score_classes if classes else _score_values)(
        task, info, given, lambda: predictor or load(model_dir), dict(batch_size=batch_size, progress=progress),
        out / "predictions.csv")
    report.update(model_dir=str(model_dir), data=source, output_dir=str(out))
    (save_report if classes else save_task_report)(report, out, prefix=name)
    return report


def _score_classes(task, info, given, get_predictor, options, predictions_csv) -> dict:
    """A classification report of ``given`` (texts, pairs, labels); labels are checked before the model loads."""
    from tfbert.data import encode_labels
    from tfbert.metrics import classification_report

    class_names = [str(c) for c in info["class_names"]]
    _check_known(given["labels"], class_names, given["source"], given["model_dir"])
    y_true, _ = encode_labels(given["labels"], class_names=class_names)
    probs, y_pred, _ = get_predictor().predict_arrays(given["texts"], text_pairs=given["pairs"], **options)
    _write_predictions(predictions_csv, given["texts"], given["pairs"], y_true, y_pred, probs, class_names)
    return classification_report(y_true, y_pred, class_names, y_score=probs[:, 1] if len(class_names) == 2 else None)


def _score_values(task, info, given, get_predictor, options, predictions_csv) -> dict:
    """A regression or multi-label report (``tfbert.task_metrics``) of ``given``."""
    from tfbert.task_metrics import task_report

    class_names = [str(c) for c in info["class_names"]]
    try:
        y_true = task.encode(given["labels"], class_names)
    except DataError as err:
        raise DataError(f"{given['source']}: {err}") from None
    texts, pairs = given["texts"], given["pairs"]
    outputs, _ = get_predictor().predict_outputs(texts, text_pairs=pairs, **options)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    first = ["text", *(["text_pair"] if pairs is not None else [])]
    regression = task.name == "regression"
    writer.writerow([*first, *(["label", "predicted", "error"] if regression else ["labels", "predicted", "exact"])])
    for i, (text, t) in enumerate(zip(texts, y_true)):
        given_texts = [text] if pairs is None else [text, pairs[i]]
        if regression:
            p = float(outputs["value"][i])
            writer.writerow([*given_texts, f"{t:g}", f"{p:.6f}", f"{p - t:.6f}"])
        else:
            tags = [",".join(n for n, on in zip(class_names, row) if on) for row in (t, outputs["label_ids"][i])]
            writer.writerow([*given_texts, *tags, int(tags[0] == tags[1])])
    write_text(predictions_csv, buffer.getvalue())
    return task_report(task, y_true, outputs["logits"], class_names, info.get("thresholds"))
