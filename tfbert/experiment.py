"""One training run: data -> model -> fit -> history, curves, test report, export.

Everything a run produces goes into its own folder:

    config.json / config.yaml   resolved settings (+ class names, registry entry)
    data_summary.json           class balance and text lengths
    history.csv / history.json  per epoch: loss, accuracy, val_*, learning_rate, time
    curves.png                  loss (top) and accuracy (bottom) per epoch
    test_metrics.json (+ per-class CSV, confusion matrix CSV/PNG)
    model/                      the trained model (see tfbert.export)
    status.json                 done | failed (with the error) | interrupted
"""

from __future__ import annotations

import gc
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tf_keras as keras  # noqa: E402
import yaml  # noqa: E402

from tfbert import data as tfdata  # noqa: E402
from tfbert import encoder_cache  # noqa: E402
from tfbert.config import RunConfig  # noqa: E402
from tfbert.errors import ConfigError, DataError  # noqa: E402


@dataclass
class Splits:
    """Cleaned train/valid/test frames and the label names."""

    train: pd.DataFrame
    valid: pd.DataFrame | None
    test: pd.DataFrame | None
    class_names: list[str]
    clean_report: dict


def _load(spec: str, split: str, config: RunConfig) -> pd.DataFrame:
    return tfdata.load_dataset(spec, split=split, text_column=config.text_column,
                               label_column=config.label_column)


def load_splits(config: RunConfig) -> Splits:
    """Load, clean and split the data a config names (train/valid/test)."""
    if not config.data and not config.train:
        raise ConfigError("no training data: pass --data (demo, imdb:PATH, nsmc:PATH) or --train FILE")
    train = _load(config.train or config.data, "train", config)
    test = None
    if config.test:
        test = _load(config.test, "test", config)
    elif config.data and not config.train:
        try:
            test = _load(config.data, "test", config)
        except DataError:
            test = None  # a single-split data set: no test part
    class_names = train.attrs.get(tfdata.CLASS_NAMES_ATTR)
    train, report = tfdata.clean(train, drop_empty=config.drop_empty, drop_duplicates=config.drop_duplicates)
    if config.valid:
        valid = _load(config.valid, "valid", config)
    elif config.valid_fraction > 0:
        train, valid = tfdata.train_valid_split(train, config.valid_fraction, seed=config.seed)
    else:
        valid = None
    if config.max_train_examples and len(train) > config.max_train_examples:
        train, _ = tfdata.train_valid_split(
            train, 1 - config.max_train_examples / len(train), seed=config.seed)
    _, class_names = tfdata.encode_labels(train["label"], class_names=class_names)
    return Splits(train, valid, test, class_names, report.to_dict() if hasattr(report, "to_dict") else dict(vars(report)))


def label_ids(frame: pd.DataFrame, class_names: list[str]) -> np.ndarray:
    ids, _ = tfdata.encode_labels(frame["label"], class_names=class_names)
    return ids


class BestWeights(keras.callbacks.Callback):
    """Keeps the weights of the epoch with the lowest ``val_loss``; restores them at the end."""

    def __init__(self):
        super().__init__()
        self.best, self.best_epoch, self.weights = np.inf, None, None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get("val_loss")
        if value is not None and value < self.best:
            self.best, self.best_epoch, self.weights = value, epoch + 1, self.model.get_weights()

    def on_train_end(self, logs=None):
        if self.weights is not None:
            self.model.set_weights(self.weights)


def _cache_fits(model, texts_by_split) -> bool:
    fits, megabytes = encoder_cache.plan(model, texts_by_split)
    if fits:
        print(f"frozen encoder: computing its outputs once ({megabytes:,.0f} MB), then training only the head on them")
    else:
        print(f"frozen encoder: its outputs would take {megabytes:,.0f} MB, over the {encoder_cache.limit_mb():,.0f} MB "
              f"cap ($TFBERT_ENCODER_CACHE_MB); running the encoder every epoch instead")
    return fits


def history_frame(history: dict) -> pd.DataFrame:
    frame = pd.DataFrame(history)
    frame.insert(0, "epoch", np.arange(1, len(frame) + 1))
    columns = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "time"]
    return frame[[c for c in columns if c in frame] + [c for c in frame if c not in columns]]


def probabilities(logits: np.ndarray) -> np.ndarray:
    """[n, num_classes] probabilities from binary (one logit) or multi-class logits."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.shape[-1] == 1:
        p = 1.0 / (1.0 + np.exp(-logits[:, 0]))
        return np.stack([1 - p, p], axis=1)
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str), encoding="utf-8")


def run_experiment(config: RunConfig, run_dir: str | os.PathLike, splits: Splits | None = None,
                   verbose: int | str = "auto") -> dict:
    """Train and evaluate one configuration; write every output into ``run_dir``.

    Returns the run's summary row (settings, best validation accuracy and its
    epoch, test accuracy, train time, examples/second).
    """
    import tfbert
    from tfbert.metrics import classification_report, save_report
    from tfbert.plotting import plot_history
    from tfbert.training import make_dataset, predict_logits, train_classifier

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    splits = splits or load_splits(config)
    keras.backend.clear_session()
    gc.collect()
    keras.utils.set_random_seed(config.seed)

    seq_length = config.seq_length or choose_seq_length(config, splits.train["text"])
    model = tfbert.create_classifier(
        config.model, head=config.head, class_names=splits.class_names, seq_length=seq_length,
        train_encoder=config.train_encoder, precision=config.precision, **config.head_kwargs())
    info = model.tfbert
    resolved = {**config.to_dict(), "class_names": splits.class_names, "registry_entry": info.spec.to_dict(),
                "train_encoder": info.train_encoder, "head_config": info.head_config,
                "seq_length": seq_length, "seq_length_auto": config.seq_length is None,
                "precision": info.precision,
                "learning_rate": config.learning_rate or tfbert.heads.HEAD_DEFAULTS[config.head]["learning_rate"],
                "train_examples": len(splits.train),
                "valid_examples": 0 if splits.valid is None else len(splits.valid),
                "test_examples": 0 if splits.test is None else len(splits.test)}
    _write_json(run_dir / "config.json", resolved)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(json.loads(json.dumps(resolved, default=str)),
                                                        sort_keys=False, allow_unicode=True))
    summary = tfdata.summarize(splits.train, tokenizer=_token_counter(info))
    summary.to_json(run_dir / "data_summary.json")
    print(f"\n== {run_dir.name}\ntraining data: {summary}\n")

    # Train time covers tokenizing and, for frozen encoders, the one encoder pass.
    start = time.perf_counter()
    has_valid = splits.valid is not None and len(splits.valid) > 0
    cached = config.cache_encoder_outputs and not info.train_encoder and _cache_fits(
        model, [splits.train["text"], splits.valid["text"] if has_valid else None])
    options = dict(bucketing=config.bucketing, static_shapes=config.jit_compile, encoder_outputs=cached,
                   verbose=bool(verbose))
    train_ds = make_dataset(model, splits.train["text"], label_ids(splits.train, splits.class_names),
                            batch_size=config.batch_size, shuffle=True, seed=config.seed, **options)
    valid_ds = None
    if has_valid:
        valid_ds = make_dataset(model, splits.valid["text"], label_ids(splits.valid, splits.class_names),
                                batch_size=max(config.batch_size, 64), **options)
    callbacks = []
    if config.early_stopping and valid_ds is not None:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.early_stopping))
    best = BestWeights() if config.restore_best and valid_ds is not None else None
    if best:
        callbacks.append(best)

    history = train_classifier(model, train_ds, valid_ds, epochs=config.epochs,
                               learning_rate=resolved["learning_rate"], warmup_ratio=config.warmup_ratio,
                               weight_decay=config.weight_decay, clip_norm=config.clip_norm,
                               callbacks=callbacks, verbose=verbose, jit_compile=config.jit_compile)
    train_time = time.perf_counter() - start
    frame = history_frame(history.history)
    frame.to_csv(run_dir / "history.csv", index=False)
    _write_json(run_dir / "history.json", frame.to_dict(orient="list"))
    plot_history(frame, run_dir / "curves.png", title=f"{config.model} / {config.head}")

    row = {"run": run_dir.name, "status": "done", "model": config.model, "head": config.head,
           "learning_rate": resolved["learning_rate"], "seq_length": seq_length,
           "precision": info.precision, "encoder_outputs_cached": cached,
           "epochs": config.epochs, "epochs_run": len(frame), "batch_size": config.batch_size,
           "seed": config.seed, "train_examples": len(splits.train),
           "train_time_s": round(train_time, 1),
           "examples_per_s": round(len(splits.train) * len(frame) / train_time, 2)}
    if "val_accuracy" in frame:
        best_row = frame.loc[frame["val_accuracy"].idxmax()]
        row.update(best_val_accuracy=float(best_row["val_accuracy"]), best_epoch=int(best_row["epoch"]))
    if best and best.best_epoch:
        row["restored_epoch"] = best.best_epoch

    metrics = None
    if splits.test is not None and len(splits.test):
        y_true = label_ids(splits.test, splits.class_names)
        probs = probabilities(predict_logits(model, splits.test["text"], batch_size=max(config.batch_size, 64),
                                             static_shapes=config.jit_compile))
        metrics = classification_report(y_true, probs.argmax(1), splits.class_names,
                                        y_score=probs[:, 1] if probs.shape[1] == 2 else None)
        save_report(metrics, run_dir, prefix="test")
        row["test_accuracy"] = metrics["accuracy"]
        row["test_f1_macro"] = metrics["f1_macro"]
    if config.export:
        row["model_dir"] = str(save_model(model, run_dir / "model", resolved, metrics))
    _write_json(run_dir / "summary_row.json", row)
    _write_json(run_dir / "status.json", {"status": "done"})
    print(f"run {run_dir.name}: wrote history, curves, metrics and model to {run_dir}")
    return row


def choose_seq_length(config: RunConfig, texts) -> int:
    """The automatic length: covers ``length_percentile``% of training texts."""
    from tfbert.models import create_preprocessor
    from tfbert.pipeline import auto_seq_length
    from tfbert.registry import get_spec

    spec = get_spec(config.model)
    lengths = create_preprocessor(spec, spec.max_seq_length).token_ids(list(texts)).row_lengths().numpy()
    length, truncated = auto_seq_length(lengths, spec.max_seq_length, config.length_percentile)
    print(f"seq_length auto: {length} tokens covers {config.length_percentile:g}% of the "
          f"{len(lengths)} training texts; {truncated} ({truncated / len(lengths):.1%}) will be truncated")
    return length


def _token_counter(info):
    """Token-length statistics need the tokenizer; HF tokenizers are cheap to call."""
    pre = info.preprocessor
    if hasattr(pre, "hf_tokenizer"):
        return lambda texts: pre.hf_tokenizer(list(texts), add_special_tokens=True)["input_ids"]
    return None


def save_model(model, folder: Path, config: dict, metrics: dict | None) -> Path:
    """Export as a raw-string SavedModel when tfbert.export is available, else Keras weights."""
    try:
        from tfbert.export import export_classifier
    except ImportError:
        folder.mkdir(parents=True, exist_ok=True)
        model.save_weights(str(folder / "weights.h5"))
        _write_json(folder / "tfbert_config.json", config)
        return folder
    export_classifier(model, folder, metrics=metrics, config=config)
    return folder
