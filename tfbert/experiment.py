"""One training run: settings -> data -> model -> fit -> test -> export.

``run_experiment`` goes through those phases, one function each; everything a
run produces goes into its run folder (``tfbert.runs.RunFolder`` lists the files).
"""

from __future__ import annotations

import gc
import hashlib
import os
import time
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf
import tf_keras as keras

from tfbert import data as tfdata
from tfbert import checkpoints, encoder_cache, long_text
from tfbert.config import RunConfig, identity, resolve, validate
from tfbert.distribute import Placement, placement
from tfbert.errors import ConfigError, DataError, WorkerError
from tfbert.export import export_classifier
from tfbert.metrics import save_report
from tfbert.models import create_classifier, create_preprocessor
from tfbert.pipeline import auto_seq_length
from tfbert.plotting import plot_history
from tfbert.registry import get_spec
from tfbert.runs import DONE, RunFolder
from tfbert.task_metrics import save_task_report, task_report, tune_thresholds
from tfbert.tasks import Task, get_task, sigmoid
from tfbert.training import (ResumableEarlyStopping, StepEvaluation, ValidationSpearman, make_dataset,
                             predict_logits, start_output_bias, train_classifier)


@dataclass
class Splits:
    """Cleaned train/valid/test frames and the label names."""

    train: pd.DataFrame
    valid: pd.DataFrame | None
    test: pd.DataFrame | None
    class_names: list[str]
    clean_report: dict


def task_of(config: RunConfig) -> Task:
    """The run's task, reading tag lists with its separator."""
    return get_task(config.task, separator=config.label_separator)


def _load(spec: str, split: str, config: RunConfig) -> pd.DataFrame:
    return tfdata.load_dataset(spec, split=split, text_column=config.text_column,
                               label_column=config.label_column, text_pair_column=config.text_pair_column,
                               label_kind=task_of(config).label_kind)


def load_splits(config: RunConfig) -> Splits:
    """Load, clean and split the data a config names (train/valid/test); every split's labels are
    checked here, before any training, so that a bad test label cannot cost a trained run."""
    task = task_of(config)
    stratify = task.name == "classification"
    if not config.data and not config.train:
        raise ConfigError("no training data: pass --data (demo, imdb:PATH, nsmc:PATH) or --train FILE")
    train = _load(config.train or config.data, "train", config)
    if not stratify:  # labels checked while rows still count as in the file
        class_names = task.names_from_labels(train["label"], target=config.label_column)
    test = None
    if config.test:
        test = _load(config.test, "test", config)
    elif config.data and not config.train:
        try:
            test = _load(config.data, "test", config)
        except DataError:
            test = None  # a single-split data set: no test part
    if stratify:
        class_names = train.attrs.get(tfdata.CLASS_NAMES_ATTR)
    train, report = tfdata.clean(train, drop_empty=config.drop_empty, drop_duplicates=config.drop_duplicates)
    if not len(train):
        raise DataError(f"no training examples left: the {report.rows_in} row(s) of "
                        f"{config.train or config.data} are all empty or duplicates "
                        f"({report.empty} empty, {report.duplicates} duplicate); check --text-column and the file")
    if config.valid:
        valid = _load(config.valid, "valid", config)
    elif config.valid_fraction > 0:
        train, valid = tfdata.train_valid_split(train, config.valid_fraction, seed=config.seed, stratify=stratify)
    else:
        valid = None
    if config.max_train_examples and len(train) > config.max_train_examples:
        train, _ = tfdata.train_valid_split(
            train, 1 - config.max_train_examples / len(train), seed=config.seed, stratify=stratify)
    if stratify:
        _, class_names = tfdata.encode_labels(train["label"], class_names=class_names)
    for frame, source in ((valid, config.valid or "the validation split"), (test, config.test or config.data)):
        try:
            if frame is not None and len(frame):
                task.encode(frame["label"], class_names)
        except DataError as err:
            raise DataError(f"{source}: {err}") from None
    return Splits(train, valid, test, class_names, report.to_dict())


def data_fingerprint(config: RunConfig, splits: Splits) -> str:
    """Changes when the data files or the rows a run uses change: the size of each data file or
    folder named, and a hash of every split's texts and labels in order. (Not the modification
    time: machines of one cluster hold the same files with their own times.)"""
    h = hashlib.sha256()
    for spec in (config.data, config.train, config.valid, config.test):
        path = _named_path(spec)
        if path is not None:
            st = path.stat()
            h.update(f"{spec}|{st.st_size}|".encode())
    for frame in (splits.train, splits.valid, splits.test):
        if frame is not None:
            for text, label in zip(_documents(frame), frame["label"].astype(str)):
                h.update(f"{len(text)}:{text}{len(label)}:{label}".encode("utf-8", "surrogatepass"))
        h.update(b"|")
    return h.hexdigest()[:16]


def _documents(frame: pd.DataFrame):
    """Each row's text, or for sentence pairs both texts (length-prefixed, so no two pairs read alike)."""
    texts = frame["text"].astype(str)
    if "text_pair" not in frame:
        return texts
    return [f"{len(a)}:{a}|{b}" for a, b in zip(texts, frame["text_pair"].astype(str))]


def pairs_of(frame: pd.DataFrame | None):
    """The second texts of a split (its ``text_pair`` column), or None for single texts."""
    return None if frame is None or "text_pair" not in frame else frame["text_pair"]


def _named_path(spec: str | None) -> Path | None:
    """The file or folder a data spec names (``train.csv``, ``nsmc:PATH``), or None (``demo``, ``imdb``)."""
    if not spec:
        return None
    for candidate in (spec, str(spec).partition(":")[2]):
        if candidate and Path(candidate).expanduser().exists():
            return Path(candidate).expanduser()
    return None


def label_targets(config: RunConfig, frame: pd.DataFrame, class_names: list[str]) -> np.ndarray:
    """A split's labels encoded for the run's task: class ids, values or multi-hot rows."""
    return task_of(config).encode(frame["label"], class_names)


class BestWeights(keras.callbacks.Callback):
    """Keeps the weights of the epoch with the lowest ``val_loss``; restores them at the end.

    The copy lives in variables, so a checkpoint (``tfbert.checkpoints``) saves it too.
    """

    def __init__(self):
        super().__init__()
        self.best, self.best_epoch, self._copy = np.inf, None, None

    def on_train_begin(self, logs=None):
        if self._copy is None:
            self._copy = [tf.Variable(w, trainable=False) for w in self.model.weights]

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get("val_loss")
        if value is not None and value < self.best:
            self.best, self.best_epoch = value, epoch + 1
            for copy, weight in zip(self._copy, self.model.weights):
                copy.assign(weight)

    def on_train_end(self, logs=None):
        if self.best_epoch is not None:
            self.model.set_weights([copy.numpy() for copy in self._copy])

    def checkpoint_state(self) -> dict:
        return {"best": float(self.best), "best_epoch": self.best_epoch}

    def restore_checkpoint_state(self, state: dict) -> None:
        self.best, self.best_epoch = float(state["best"]), state["best_epoch"]

    def checkpoint_variables(self) -> dict:
        return {f"w{i}": copy for i, copy in enumerate(self._copy or [])}


def _cache_fits(model, texts_by_split, pairs_by_split=None) -> bool:
    fits, megabytes = encoder_cache.plan(model, texts_by_split, pairs_by_split)
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


def run_experiment(config: RunConfig, run_dir: str | os.PathLike, splits: Splits | None = None,
                   verbose: int | str = "auto") -> dict:
    """Train and evaluate one configuration; write every output into ``run_dir``.

    Under ``--strategy multi_worker`` only the chief writes ``run_dir``; the
    other workers train alongside it (``_train_alongside``).

    Returns the run's summary row (settings, best validation accuracy and its
    epoch, test accuracy, train time, examples/second).
    """
    config = validate(resolve(config))
    place = placement(config.strategy, config.worker_timeout)
    if not place.is_chief:
        return _train_alongside(config, run_dir, splits, verbose, place)
    resuming = config.resume and checkpoints.latest(Path(run_dir) / checkpoints.DIRNAME) is not None
    folder = RunFolder(run_dir).start(keep_logs=resuming)
    splits = splits or load_splits(config)
    model, settings = _fresh_model(config, splits, place)
    folder.write_config(settings)
    summary = tfdata.summarize(splits.train, tokenizer=_token_counter(model), seq_length=model.seq_length,
                               label_kind=task_of(config).label_kind, separator=config.label_separator,
                               long_text=None if model.takes_pairs else model.long_text)
    folder.write_data_summary({**summary.to_dict(), "cleaning": splits.clean_report})
    cleaning = tfdata.CleanReport(**splits.clean_report)
    print(f"\n== {folder.name}\ncleaning: {cleaning}\ntraining data: {summary}\n")

    checkpoint_dir = folder.path / checkpoints.DIRNAME
    result = fit(model, config, splits, verbose, logs_dir=folder.logs_dir if config.tensorboard else None,
                 checkpoint_dir=checkpoint_dir, identity=_run_identity(config, splits), place=place)
    folder.write_history(result.history)
    if result.step_scores:
        folder.write_steps(pd.DataFrame(result.step_scores))
    plot_history(result.history, folder.curves, title=f"{config.model} / {config.head}")
    row = {**summary_row(folder, config, model, splits, result), "strategy": place.name, "replicas": place.replicas}
    model = _undistributed(model, config, splits, place)
    model.thresholds = choose_thresholds(model, config, splits)
    metrics = test(model, config, splits, folder)
    if metrics is not None:
        row.update({f"test_{key}": metrics[key] for key in TEST_COLUMNS[model.task.name]})
    if config.export:
        # overwrite: a rerun replaces the last attempt's export (atomically, once the new one is complete)
        export_classifier(model, folder.model_dir, metrics=metrics, config=settings, overwrite=True)
        row["model_dir"] = str(folder.model_dir)
    folder.write_summary_row(row)
    folder.write_status(DONE)
    checkpoints.clear(checkpoint_dir)  # they exist to resume this run, which is now done
    print(f"run {folder.name}: wrote history, curves, metrics and model to {folder.path}")
    return row


def _run_identity(config: RunConfig, splits: Splits) -> dict:
    return {**identity(config), "data": data_fingerprint(config, splits)}


def _fresh_model(config: RunConfig, splits: Splits, place: Placement):
    """The run's model, built from a clean Keras session under the run's strategy."""
    keras.backend.clear_session()
    gc.collect()
    keras.utils.set_random_seed(config.seed)
    with place.scope():
        model, settings = build(config, splits)
    return model, {**settings, "strategy": place.name, "replicas": place.replicas}


def _undistributed(model, config: RunConfig, splits: Splits, place: Placement):
    """The trained model outside any strategy, for testing and export: the same model
    rebuilt plainly with the trained weights, so exports look alike however a run trained."""
    if place.strategy is None:
        return model
    with Placement("none", None).scope():
        plain, _ = build(dataclasses.replace(config, seq_length=model.seq_length), splits)
    plain.set_weights(model.get_weights())
    return plain


def _train_alongside(config: RunConfig, run_dir, splits, verbose, place: Placement) -> dict:
    """A non-chief worker's part of a run: the same training, its files in a temporary folder.

    Resuming reads the chief's checkpoints (``run_dir`` must be on a shared filesystem)."""
    import shutil
    import tempfile

    splits = splits or load_splits(config)
    model, _ = _fresh_model(config, splits, place)
    with tempfile.TemporaryDirectory(prefix="tfbert_worker_") as tmp:
        chief_checkpoints = Path(run_dir) / checkpoints.DIRNAME
        if config.resume and chief_checkpoints.is_dir():
            shutil.copytree(chief_checkpoints, Path(tmp) / checkpoints.DIRNAME)
        fit(model, config, splits, verbose, checkpoint_dir=Path(tmp) / checkpoints.DIRNAME,
            identity=_run_identity(config, splits), place=place)
    print(f"worker {place.task}: trained {Path(run_dir).name} alongside the chief, which writes its folder")
    return {"run": Path(run_dir).name, "status": "worker", "task": place.task}


def build(config: RunConfig, splits: Splits):
    """The model for a resolved config, and the settings the run folder records (``config.json``)."""
    seq_length = config.seq_length or choose_seq_length(config, splits.train["text"], pairs_of(splits.train))
    model = create_classifier(
        config.model, head=config.head, class_names=splits.class_names, seq_length=seq_length,
        train_encoder=config.train_encoder, precision=config.precision, task=config.task,
        text_pair=config.text_pair_column is not None, long_text=long_text.from_config(config),
        **config.head_kwargs())
    settings = {**config.to_dict(), "class_names": splits.class_names, "registry_entry": model.spec.to_dict(),
                "train_encoder": model.train_encoder, "head_config": model.head_config,
                "seq_length": seq_length, "seq_length_auto": config.seq_length is None,
                "precision": model.precision, "long_text_resolved": model.long_text.to_dict(),
                "train_examples": len(splits.train),
                "valid_examples": 0 if splits.valid is None else len(splits.valid),
                "test_examples": 0 if splits.test is None else len(splits.test)}
    return model, settings


@dataclass
class FitResult:
    """What ``fit`` hands on: per-epoch history, the time it took, how it trained."""

    history: pd.DataFrame
    train_time_s: float  # a resumed run's includes the earlier sessions' checkpointed training time
    earlier_train_s: float  # that earlier part (0.0 for a run not resumed)
    encoder_outputs_cached: bool
    restored_epoch: int | None
    step_scores: list = dataclasses.field(default_factory=list)


def fit(model, config: RunConfig, splits: Splits, verbose: int | str = "auto",
        logs_dir: Path | None = None, checkpoint_dir: Path | None = None, identity: dict | None = None,
        place: Placement | None = None) -> FitResult:
    """Tokenize, batch and train; the time covers tokenizing and, for frozen encoders, the one encoder pass.

    With ``checkpoint_dir`` the training state is saved there (every epoch, and every
    ``config.save_every_steps`` batches) and, with ``config.resume``, a killed run continues from it.
    """
    start = time.perf_counter()
    has_valid = splits.valid is not None and len(splits.valid) > 0
    sampled = model.long_text.windowed and model.long_text.training == "sample"  # new windows every epoch
    cached = config.cache_encoder_outputs and not model.train_encoder and not sampled and _cache_fits(
        model, [splits.train["text"], splits.valid["text"] if has_valid else None],
        [pairs_of(splits.train), pairs_of(splits.valid) if has_valid else None])
    options = dict(bucketing=config.bucketing, static_shapes=config.jit_compile, encoder_outputs=cached,
                   verbose=bool(verbose))
    train_labels = label_targets(config, splits.train, splits.class_names)
    start_output_bias(model, train_labels)  # a resume restores it
    train_ds = make_dataset(model, splits.train["text"], train_labels,
                            batch_size=config.batch_size, shuffle=True, seed=config.seed, by_epoch=True,
                            text_pairs=pairs_of(splits.train), **options)
    valid_ds = None
    if has_valid:
        valid_ds = make_dataset(model, splits.valid["text"], label_targets(config, splits.valid, splits.class_names),
                                batch_size=max(config.batch_size, 64), text_pairs=pairs_of(splits.valid),
                                **options)
    callbacks, best, steps = _callbacks(config, model, valid_ds, logs_dir)
    try:
        history = train_classifier(model, train_ds, valid_ds, epochs=config.epochs,
                                   learning_rate=config.learning_rate, warmup_ratio=config.warmup_ratio,
                                   warmup_steps=config.warmup_steps,
                                   weight_decay=config.weight_decay, clip_norm=config.clip_norm,
                                   callbacks=callbacks, verbose=verbose, jit_compile=config.jit_compile,
                                   part="head" if cached else "core", examples_per_epoch=len(splits.train),
                                   accumulation_steps=config.accumulation_steps, checkpoint_dir=checkpoint_dir,
                                   save_every_steps=config.save_every_steps, keep_checkpoints=config.keep_checkpoints,
                                   resume=config.resume, identity=identity, loss=config.loss)
    except tf.errors.OpError as err:
        if place is None or place.name != "multi_worker":
            raise
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise WorkerError(f"a worker of the cluster failed during training ({type(err).__name__}: {first}); rerun "
                          f"the same command on every machine to continue from the last checkpoint") from None
    earlier = history.earlier_seconds
    return FitResult(history_frame(history.history), time.perf_counter() - start + earlier, earlier, cached,
                     best.best_epoch if best else None, steps.rows if steps else [])


def _callbacks(config: RunConfig, model, valid_ds, logs_dir):
    """(callbacks, best-weights keeper or None, step evaluation or None) for a run's settings."""
    callbacks = []
    if model.task.name == "regression" and valid_ds is not None:  # first: the callbacks after it see val_spearman
        callbacks.append(ValidationSpearman(valid_ds))
    if config.early_stopping and valid_ds is not None:
        callbacks.append(ResumableEarlyStopping(monitor="val_loss", patience=config.early_stopping))
    best = BestWeights() if config.restore_best and valid_ds is not None else None
    if best:
        callbacks.append(best)
    steps = None
    if config.eval_every_steps and valid_ds is not None:
        steps = StepEvaluation(valid_ds, model, config.eval_every_steps,
                               logs_dir=logs_dir / "validation_steps" if logs_dir is not None else None,
                               loss=config.loss)
        callbacks.append(steps)
    if logs_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(logs_dir), write_graph=False, profile_batch=0,
                                                     update_freq=config.log_every_steps or "epoch"))
    return callbacks, best, steps


def summary_row(folder: RunFolder, config: RunConfig, model, splits: Splits, result: FitResult) -> dict:
    """The run's row of the sweep summary (test figures are added by the caller)."""
    frame = result.history
    row = {"run": folder.name, "status": DONE, "model": config.model, "head": config.head,
           "learning_rate": config.learning_rate, "seq_length": model.seq_length,
           "precision": model.precision, "encoder_outputs_cached": result.encoder_outputs_cached,
           "epochs": config.epochs, "epochs_run": len(frame), "batch_size": config.batch_size,
           "seed": config.seed, "train_examples": len(splits.train),
           "train_time_s": round(result.train_time_s, 1), "train_time_earlier_s": round(result.earlier_train_s, 1),
           "examples_per_s": round(len(splits.train) * len(frame) / result.train_time_s, 2)}
    score, mode = model.task.score
    if f"val_{score}" in frame:
        column = frame[f"val_{score}"]
        best_row = frame.loc[column.idxmax() if mode == "max" else column.idxmin()]
        row.update({f"best_val_{score}": float(best_row[f"val_{score}"]), "best_epoch": int(best_row["epoch"])})
    if result.restored_epoch:
        row["restored_epoch"] = result.restored_epoch
    return row


def test(model, config: RunConfig, splits: Splits, folder: RunFolder) -> dict | None:
    """Predict the test split and save its report in the run folder; None without a test split."""
    if splits.test is None or not len(splits.test):
        return None
    y_true = label_targets(config, splits.test, splits.class_names)
    logits = predict_logits(model, splits.test["text"], batch_size=max(config.batch_size, 64),
                            static_shapes=config.jit_compile, text_pairs=pairs_of(splits.test))
    metrics = task_report(model.task, y_true, logits, splits.class_names, model.thresholds)
    if model.task.name == "classification":
        save_report(metrics, folder.path, prefix=RunFolder.TEST_PREFIX)
    else:
        save_task_report(metrics, folder.path, prefix=RunFolder.TEST_PREFIX)
    return metrics


#: The test figures a sweep's summary row carries, per task.
TEST_COLUMNS = {"classification": ("accuracy", "f1_macro"), "regression": ("pearson", "spearman", "rmse"),
                "multi_label": ("f1_micro", "f1_macro")}


def choose_thresholds(model, config: RunConfig, splits: Splits) -> list[float] | None:
    """A multi-label model's tag thresholds: ``--threshold`` as given, or tuned on the validation split."""
    from tfbert.config import threshold_value

    if model.task.name != "multi_label":
        return None
    fixed = threshold_value(config.threshold)
    names = splits.class_names
    if fixed is not None or splits.valid is None or not len(splits.valid):
        return [fixed or 0.5] * len(names)
    logits = predict_logits(model, splits.valid["text"], batch_size=max(config.batch_size, 64),
                            text_pairs=pairs_of(splits.valid))
    cuts = tune_thresholds(label_targets(config, splits.valid, names), sigmoid(logits),
                           per_label=config.threshold == "tune_per_label")
    print(f"thresholds tuned on the validation split ({config.threshold}): "
          + ", ".join(f"{n} {c:g}" for n, c in zip(names, cuts)))
    return cuts


def choose_seq_length(config: RunConfig, texts, text_pairs=None) -> int:
    """The automatic length: covers ``length_percentile``% of training texts (pairs: both texts together)."""
    spec = get_spec(config.model)
    pairs = None if text_pairs is None else list(text_pairs)
    pre = create_preprocessor(spec, spec.max_seq_length)
    lengths = pre.token_ids(list(texts), text_pairs=pairs).row_lengths().numpy()
    length, truncated = auto_seq_length(lengths, spec.max_seq_length, config.length_percentile)
    print(f"seq_length auto: {length} tokens covers {config.length_percentile:g}% of the "
          f"{len(lengths)} training texts; {truncated} ({truncated / len(lengths):.1%}) "
          + ("will be truncated" if config.long_text == "truncate" else f"are longer: --long-text {config.long_text}"))
    return length


def _token_counter(model):
    """Untruncated token ids of texts, for the length statistics of the data summary."""
    pre = model.preprocessor
    if hasattr(pre, "hf_tokenizer"):  # called directly it is fastest, and warns of nothing
        return lambda texts, *pairs: pre.hf_tokenizer(list(texts), *pairs, add_special_tokens=True)["input_ids"]
    return lambda texts, *pairs: pre.token_ids(list(texts), max_length=2**30,
                                                text_pairs=pairs[0] if pairs else None).to_list()
