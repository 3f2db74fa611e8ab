"""What a model predicts from a text: one class, a number, or a set of tags.

The one owner of everything that differs between tasks: how labels become
training targets, the loss and training metrics, what the outputs mean
(probabilities, a value, chosen tags) and the score a sweep ranks runs by
(the test reports: ``tfbert.task_metrics.task_report``). Models, training,
export and prediction ask ``get_task(name)``.

* ``classification``: one class per text; softmax (sigmoid for two classes).
* ``regression``: one number per text (STS scores, ratings); MSE or Huber
  loss, Pearson / Spearman.
* ``multi_label``: any number of tags per text; a sigmoid per tag, tags chosen
  by thresholds (tunable on validation data, saved with the model).

``names`` is the list the model keeps with its weights: class names, the
regression target's name (one), or the tag names.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np

from tfbert.errors import ConfigError, DataError

TASKS = ("classification", "regression", "multi_label")
#: What ``--loss auto`` means for each task.
DEFAULT_LOSS = {"classification": "cross_entropy", "regression": "mse", "multi_label": "cross_entropy"}
LOSSES = {"classification": ("cross_entropy",), "regression": ("mse", "huber"), "multi_label": ("cross_entropy",)}


def _rows(index: Sequence[Any], positions, values=None, limit: int = 5) -> str:
    """'rows 3 ('good'), 9 ('bad') and 4 more': the data rows (1-based) a problem is on."""
    shown = [f"{int(index[p]) + 1 if isinstance(index[p], (int, np.integer)) else index[p]}"
             + (f" ({values[p]!r})" if values is not None else "") for p in positions[:limit]]
    more = f" and {len(positions) - limit} more" if len(positions) > limit else ""
    return f"row{'s' if len(positions) > 1 else ''} {', '.join(shown)}{more}"


def _index(values) -> list:
    return list(values.index) if hasattr(values, "index") and not callable(values.index) else list(range(len(values)))


class Task:
    """The interface; see the module doc. Subclasses are stateless singletons."""

    name = ""
    #: what the data loaders keep of a label cell (``tfbert.data.load_table``)
    label_kind = "classes"
    #: the validation figure a run's best epoch and a sweep's ranking use, and whether higher is better
    score = ("accuracy", "max")
    #: what ``outputs`` returns (an export adds ``logits`` and ``num_tokens``)
    output_names: tuple = ()

    def check_names(self, names: Sequence[Any]) -> list[str]:
        return [str(n) for n in names]

    def num_outputs(self, names: Sequence[str]) -> int:
        return len(names)

    def names_from_labels(self, values, target: str = "label") -> list[str]:
        raise NotImplementedError

    def encode(self, values, names: Sequence[str]) -> np.ndarray:
        """Checked labels as class ids [n], values [n] or a multi-hot [n, tags] array (encoded ones pass)."""
        raise NotImplementedError

    def targets(self, values, names: Sequence[str]) -> np.ndarray:
        """Checked labels in the layout the loss takes."""
        return self.encode(values, names)

    def loss(self, names: Sequence[str], name: str = "auto"):
        raise NotImplementedError

    def metrics(self, names: Sequence[str]) -> list:
        raise NotImplementedError

    def outputs(self, logits, names, thresholds=None) -> dict:
        """The exported model's outputs from logits (TF ops, float32 logits)."""
        raise NotImplementedError

    def describe(self, outputs: dict, names, row: int) -> dict:
        """One text's prediction (from the exported model's output arrays) as a plain dict."""
        raise NotImplementedError

    def output_bias(self, targets: np.ndarray) -> np.ndarray | None:
        """Where the output layer's bias should start for these (encoded) training labels; None: leave it."""
        return None

    def check_loss(self, loss: str) -> str:
        loss = DEFAULT_LOSS[self.name] if loss == "auto" else loss
        if loss not in LOSSES[self.name]:
            raise ConfigError(f"--loss {loss} does not fit --task {self.name}; choose auto or "
                              f"{' or '.join(LOSSES[self.name])}")
        return loss


class Classification(Task):
    name = "classification"
    label_kind = "classes"
    output_names = ("probabilities", "label_id", "label")

    def check_names(self, names):
        names = [str(n) for n in names]
        if len(names) < 2:
            raise ConfigError(f"a classifier needs at least 2 classes, got {len(names)}")
        return names

    def num_outputs(self, names):
        return 1 if len(names) == 2 else len(names)

    def names_from_labels(self, values, target="label"):
        from tfbert.data.labels import encode_labels

        return encode_labels(values)[1]

    def encode(self, values, names):
        from tfbert.data.labels import check_labels_in_range, encode_labels

        ids = np.asarray(values)
        if ids.dtype.kind not in "iu":  # names (or raw labels): through the label encoder
            ids = encode_labels(values, class_names=list(names))[0]
        check_labels_in_range(ids, len(names))
        return ids.astype(np.int32)

    def targets(self, values, names):
        ids = self.encode(values, names)
        return ids.astype(np.float32)[:, None] if len(names) == 2 else ids

    def loss(self, names, name="auto"):
        import tf_keras as keras

        self.check_loss(name)
        if len(names) == 2:  # one logit + sigmoid
            return keras.losses.BinaryCrossentropy(from_logits=True)
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def metrics(self, names):
        import tf_keras as keras

        # threshold 0: the model outputs logits, not probabilities
        return [keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0) if len(names) == 2
                else keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def outputs(self, logits, names, thresholds=None):
        import tensorflow as tf

        if len(names) == 2:
            p = tf.sigmoid(logits[:, 0])
            probabilities = tf.stack([1.0 - p, p], axis=1)
        else:
            probabilities = tf.nn.softmax(logits, axis=-1)
        label_id = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        return {"probabilities": probabilities, "label_id": label_id,
                "label": tf.gather(tf.constant(list(names)), label_id)}

    def describe(self, outputs, names, row):
        p = outputs["probabilities"][row]
        i = int(outputs["label_id"][row])
        return {"label": names[i], "score": float(p[i]), "scores": {n: float(v) for n, v in zip(names, p)}}


class Regression(Task):
    name = "regression"
    label_kind = "values"
    output_names = ("value",)
    score = ("pearson", "max")

    def check_names(self, names):
        names = [str(n) for n in names]
        if len(names) != 1:
            raise ConfigError(f"a regression model predicts one value; got {len(names)} target names")
        return names

    def names_from_labels(self, values, target="label"):
        self.encode(values, [target])  # the check
        return [target]

    def targets(self, values, names):
        return self.encode(values, names)[:, None]

    def encode(self, values, names):
        raw = list(np.ravel(values)) if isinstance(values, np.ndarray) else list(values)
        numbers = np.asarray([_as_float(v) for v in raw], dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(numbers))
        if len(bad):
            raise DataError(f"regression labels must be numbers: {_rows(_index(values), bad, raw)} "
                            f"({len(bad)} of {len(raw)}); fix those rows, or pass --task classification "
                            f"if the labels are classes")
        return numbers.astype(np.float32)

    def loss(self, names, name="auto"):
        import tf_keras as keras

        if self.check_loss(name) == "huber":
            return keras.losses.Huber(delta=1.0)
        return keras.losses.MeanSquaredError()

    def metrics(self, names):
        import tf_keras as keras

        from tfbert.keras_metrics import PearsonCorrelation

        return [PearsonCorrelation(name="pearson"), keras.metrics.RootMeanSquaredError(name="rmse")]

    def outputs(self, logits, names, thresholds=None):
        return {"value": logits[:, 0]}

    def describe(self, outputs, names, row):
        return {"value": float(outputs["value"][row])}

    def output_bias(self, targets):
        # Starting at the mean, the first steps learn the differences between texts instead of
        # spending the warmup walking the output from 0 to a 1-10 rating scale.
        return np.asarray([np.mean(targets)], np.float32)


class MultiLabel(Task):
    name = "multi_label"
    label_kind = "tags"
    output_names = ("probabilities", "label_ids", "labels")
    score = ("f1_micro", "max")
    separator = ","

    def names_from_labels(self, values, target="label"):
        tags = sorted({tag for row in values for tag in parse_tags(row, self.separator)})
        if not tags:
            raise DataError("no tags in the training labels: every row is empty; a multi-label task needs tags "
                            f"(a list, or tags joined by '{self.separator}': --label-separator)")
        return tags

    def encode(self, values, names):
        if isinstance(values, np.ndarray) and values.ndim == 2:  # multi-hot already
            if values.shape[1] != len(names) or not np.isin(values, (0, 1)).all():
                raise DataError(f"multi-hot labels must be 0/1 with one column per tag ({len(names)}), got shape "
                                f"{values.shape}")
            return values.astype(np.float32)
        lookup = {name: i for i, name in enumerate(names)}
        rows = [parse_tags(v, self.separator) for v in values]
        unknown = [i for i, tags in enumerate(rows) if any(t not in lookup for t in tags)]
        if unknown:
            found = sorted({t for i in unknown for t in rows[i] if t not in lookup})
            raise DataError(f"unknown tag(s) {', '.join(repr(t) for t in found[:8])} on "
                            f"{_rows(_index(values), unknown)}: the model knows {', '.join(names[:20])}"
                            f"{' ...' if len(names) > 20 else ''}; fix the labels or train with those tags")
        multi_hot = np.zeros((len(rows), len(names)), np.float32)
        for i, tags in enumerate(rows):
            multi_hot[i, [lookup[t] for t in tags]] = 1.0
        return multi_hot

    def loss(self, names, name="auto"):
        import tf_keras as keras

        self.check_loss(name)
        return keras.losses.BinaryCrossentropy(from_logits=True)

    def metrics(self, names):
        from tfbert.keras_metrics import F1FromLogits

        return [F1FromLogits("micro"), F1FromLogits("macro")]

    def outputs(self, logits, names, thresholds=None):
        import tensorflow as tf

        probabilities = tf.sigmoid(logits)
        cuts = tf.constant(resolve_thresholds(thresholds, len(names)), tf.float32)
        chosen = probabilities >= cuts
        tags = tf.where(chosen, tf.constant(list(names))[None, :], "")
        joined = tf.strings.regex_replace(tf.strings.reduce_join(tags, axis=1, separator="\x00"), "\x00+", ",")
        joined = tf.strings.regex_replace(joined, "^,|,$", "")
        return {"probabilities": probabilities, "label_ids": tf.cast(chosen, tf.int32), "labels": joined}

    def output_bias(self, targets):
        # Each tag's log-odds in the training data: rare tags start rare, as in detection heads.
        rate = np.clip(np.mean(targets, axis=0), 1e-3, 1 - 1e-3)
        return np.log(rate / (1 - rate)).astype(np.float32)

    def describe(self, outputs, names, row):
        p = outputs["probabilities"][row]
        chosen = outputs["label_ids"][row]
        return {"labels": [n for n, c in zip(names, chosen) if c], "scores": {n: float(v) for n, v in zip(names, p)}}


_TASKS = {task.name: task for task in (Classification(), Regression(), MultiLabel())}


def get_task(name: str, separator: str | None = None) -> Task:
    """The task called ``name``; with ``separator`` (multi-label) tags in strings are split at it."""
    if name not in _TASKS:
        raise ConfigError(f"unknown task '{name}'; choose one of: {', '.join(TASKS)}")
    task = _TASKS[name]
    if name == "multi_label" and separator is not None and separator != task.separator:
        task = MultiLabel()
        task.separator = separator
    return task


def _as_float(value) -> float:
    if isinstance(value, bool):
        return float("nan")
    try:
        return float(str(value).strip()) if not isinstance(value, (int, float, np.number)) else float(value)
    except ValueError:
        return float("nan")


def parse_tags(value, separator: str = ",") -> list[str]:
    """A multi-label cell as tags: a list, a JSON list string, or tags joined by ``separator``.

    An empty cell means no tag; tags are stripped, repeats count once."""
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
    elif value is None or (isinstance(value, float) and value != value):
        items = []
    else:
        text = str(value).strip()
        if text.startswith("[") and text.endswith("]"):
            try:
                items = json.loads(text)
            except ValueError:
                items = text[1:-1].split(separator)
        else:
            items = text.split(separator) if text else []
    tags = [str(t).strip() for t in items]
    return list(dict.fromkeys(t for t in tags if t))


def resolve_thresholds(thresholds, num_labels: int) -> list[float]:
    """Per-label cuts from None (0.5), one number, or a list of ``num_labels`` numbers."""
    if thresholds is None:
        return [0.5] * num_labels
    if np.ndim(thresholds) == 0:
        return [float(thresholds)] * num_labels
    cuts = [float(c) for c in thresholds]
    if len(cuts) != num_labels:
        raise ConfigError(f"{len(cuts)} thresholds for {num_labels} labels; give one, or one per label")
    return cuts


def sigmoid(logits) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


def probabilities(logits: np.ndarray) -> np.ndarray:
    """[n, num_classes] class probabilities from binary (one logit) or multi-class logits."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.shape[-1] == 1:
        p = sigmoid(logits[:, 0])
        return np.stack([1 - p, p], axis=1)
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)
