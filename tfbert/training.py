"""Compile and fit a classifier built by ``tfbert.create_classifier``."""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf
import tf_keras as keras

from tfbert import encoder_cache
from tfbert.accumulation import GradientAccumulation
from tfbert.errors import ConfigError, DataError
from tfbert.heads import resolve_head_settings
from tfbert.long_text import document_rows, pool, sample_rows
from tfbert.models import TextClassifier, resolve_long_text
from tfbert.optimization import create_optimizer, current_learning_rate
from tfbert.pipeline import EpochBatches, epoch_batches, ids_dataset, restore_order, sorted_batches


def compile_classifier(model: TextClassifier, train_steps: int, learning_rate: float | None = None,
                       warmup_ratio: float = 0.1, weight_decay: float = 0.01, warmup_steps: int | None = None,
                       clip_norm: float | None = 1.0, jit_compile: bool = False,
                       part: str = "model", accumulation_steps: int = 1, loss: str = "auto") -> keras.Model:
    """Compile one part of ``model`` with AdamW + linear warmup/decay and the loss that fits its task.

    Args:
        model: TextClassifier from ``create_classifier``.
        train_steps: int. Total optimizer steps, for the schedule.
        learning_rate: float or None. Peak rate; default per head
            (``tfbert.heads.resolve_head_settings``).
        warmup_ratio, warmup_steps, weight_decay, clip_norm: see ``tfbert.optimization.create_optimizer``
            (``warmup_steps``, when given, overrides ``warmup_ratio``).
        jit_compile: bool. Compile train/predict steps with XLA.
        part: str. What will be fitted (``TextClassifier.part``): ``model``
            (texts, or ids for HuggingFace entries), ``core`` (token ids) or
            ``head`` (cached encoder outputs).
        accumulation_steps: int. Average the gradients of this many batches
            per update (``tfbert.accumulation``); ``train_steps`` counts
            batches, the schedule counts updates.
        loss: str. ``auto`` (the task's: cross-entropy, or MSE for regression)
            or ``huber`` / ``mse`` for regression (``tfbert.tasks``).

    Returns:
        The compiled Keras model to fit: that part, or its accumulating wrapper.
    """
    learning_rate = resolve_head_settings(model.head_name, learning_rate=learning_rate)["learning_rate"]
    updates = -(-train_steps // accumulation_steps)
    optimizer = create_optimizer(learning_rate, updates, warmup_ratio=warmup_ratio, warmup_steps=warmup_steps,
                                 weight_decay=weight_decay, clip_norm=clip_norm)
    target = model.part(part)
    with target.distribute_strategy.scope():  # metrics and accumulated sums belong to the model's strategy
        task, names = model.task, model.class_names
        loss_fn, metrics = task.loss(names, loss), task.metrics(names)
        if accumulation_steps != 1:
            if tf.distribute.has_strategy():
                raise ConfigError("--accumulation-steps needs the default strategy: tf.distribute cannot apply an "
                                  "update inside a conditional step; under a strategy raise --batch-size instead "
                                  "(the replicas share it)")
            target = GradientAccumulation(target, accumulation_steps)
        target.compile(optimizer=optimizer, loss=loss_fn, metrics=metrics, jit_compile=jit_compile)
    return target


def _label_array(model: TextClassifier, labels, num_texts: int) -> np.ndarray:
    """Checked labels in the layout the task's loss takes (``Task.targets``)."""
    if len(labels) != num_texts:
        raise DataError(f"{num_texts} texts but {len(labels)} labels; give one label per text")
    return model.task.targets(labels, model.class_names)


def make_dataset(model: TextClassifier, texts, labels=None, batch_size: int = 32,
                 shuffle: bool = False, seed: int = 42, bucketing: bool = True,
                 static_shapes: bool = False, encoder_outputs: bool = False,
                 verbose: bool = True, by_epoch: bool = False, text_pairs=None) -> tf.data.Dataset | EpochBatches:
    """A batched ``tf.data.Dataset`` of model inputs (and labels) for ``texts``.

    Each text is tokenized once, here, and batches group texts of similar
    length, each padded only to its own longest member (see ``tfbert.pipeline``).
    The batches feed ``model.core`` (token ids in): fit them with
    ``train_classifier(..., part="core")``; with ``encoder_outputs=True`` they
    feed the head part (``part="head"``).

    Args:
        model: TextClassifier from ``create_classifier``.
        texts: sequence of str.
        labels: class ids (or names), regression values, multi-label tag lists
            or a multi-hot array; None for prediction.
        batch_size: int. Examples per batch.
        shuffle: bool. Reshuffle every epoch.
        seed: int. Shuffle seed.
        bucketing: bool. Batch by length (off: batches in the given order).
        static_shapes: bool. Pad to a few fixed lengths (bucket bounds) so that
            XLA (``jit_compile``) compiles a handful of shapes, not one per batch.
        encoder_outputs: bool. For a frozen encoder: run it once, here, and
            yield its outputs, so that training fits only the head and skips
            the encoder every epoch (``tfbert.encoder_cache``). Check the size
            first with ``encoder_cache.feature_megabytes``.
        verbose: bool. Progress bar while computing encoder outputs.
        by_epoch: bool. Training batches as ``tfbert.pipeline.EpochBatches``:
            each epoch's order fixed by (seed, epoch), so that a run resumed
            from a checkpoint sees the batches the uninterrupted run would
            (``train_classifier`` takes it like a dataset; needs labels).
        text_pairs: sequence of str or None. The second text of each example
            for a sentence-pair model (``create_classifier(..., text_pair=True)``):
            packed ``[CLS] text [SEP] pair [SEP]`` with segment ids 0 then 1,
            truncated as HuggingFace's ``longest_first`` does.

    Texts longer than the window follow ``model.long_text``: see ``_model_rows``.
    """
    texts = [str(t) for t in texts]
    if not texts:
        raise DataError("no examples: the data set is empty; check the file and the cleaning options")
    check_pair_input(model, text_pairs)
    if labels is not None:
        labels = _label_array(model, labels, len(texts))
    elif by_epoch:
        raise ConfigError("by_epoch=True makes training batches: pass the labels")
    pre = model.preprocessor
    ids, labels, rows_of_epoch = _model_rows(model, texts, labels, text_pairs, shuffle or by_epoch, by_epoch, seed)
    if encoder_outputs:
        return _encoder_outputs_dataset(model, ids, labels, batch_size, shuffle, seed, verbose, by_epoch,
                                        sampled=rows_of_epoch is not None)
    if by_epoch:
        return epoch_batches(ids, labels, batch_size=batch_size, seed=seed, pad_id=pre.pad_id,
                             input_names=pre.input_names, bucketing=bucketing, static_shapes=static_shapes,
                             rows_of_epoch=rows_of_epoch)
    return ids_dataset(ids, labels, batch_size=batch_size, shuffle=shuffle, seed=seed,
                       pad_id=pre.pad_id, input_names=pre.input_names, bucketing=bucketing,
                       static_shapes=static_shapes)


def _model_rows(model: TextClassifier, texts, labels, text_pairs, training: bool, by_epoch: bool, seed: int):
    """(token id rows, their labels, None or function(epoch seed) -> the rows an epoch trains on).

    ``model.long_text`` (``tfbert.long_text``): ``head_tail`` makes one row per
    text; ``windows`` one row per window, with its text's label. With
    ``window_training='sample'``, training batches (``shuffle`` or ``by_epoch``)
    hold one window per text: ``by_epoch`` draws them anew each epoch from
    (seed, epoch), a shuffled dataset draws once from ``seed``; evaluation
    batches hold every window.
    """
    settings = model.long_text
    if not settings.active:
        return model.preprocessor.token_ids(texts, text_pairs=text_pairs), labels, None
    ids, doc = document_rows(model.preprocessor, texts, settings)
    labels = None if labels is None else labels[doc]
    if not (training and settings.training == "sample"):
        return ids, labels, None
    if by_epoch:
        return ids, labels, lambda epoch_seed: sample_rows(doc, epoch_seed)
    pick = sample_rows(doc, seed)
    return tf.gather(ids, pick), None if labels is None else labels[pick], None


def start_output_bias(model: TextClassifier, labels) -> bool:
    """Set the ``logits`` layer's bias from the training labels where the task has a prior
    (``Task.output_bias``: the mean for regression, tag log-odds for multi-label).

    Returns whether it was set (False for classification, or a custom head whose last Dense
    layer is not called ``logits``)."""
    bias = model.task.output_bias(model.task.encode(labels, model.class_names))
    layer = next((layer for layer in model.core.layers if layer.name == "logits"), None)
    if bias is None or layer is None or getattr(layer, "bias", None) is None:
        return False
    layer.bias.assign(tf.cast(bias, layer.bias.dtype))
    return True


def check_pair_input(model: TextClassifier, text_pairs) -> None:
    """DataError when a sentence-pair model gets no second texts, or a single-text model gets some."""
    takes = model.takes_pairs
    if takes is None:  # a ready checkpoint: it reads either
        return
    if takes and text_pairs is None:
        raise DataError("this model reads sentence pairs: give the second texts too (text_pairs=, "
                        "--text-pair-column NAME, or --text-pair TEXT)")
    if not takes and text_pairs is not None:
        raise DataError("this model reads single texts, not pairs: drop the second texts (text_pairs, "
                        "--text-pair-column, --text-pair), or train a pair model (--text-pair-column)")


def _encoder_outputs_dataset(model, ids, labels, batch_size, shuffle, seed, verbose, by_epoch=False,
                             sampled=False):
    if sampled:
        raise ConfigError("window_training='sample' draws new windows every epoch, so a frozen encoder's "
                          "outputs cannot be cached: use window_training='all' or encoder_outputs=False")
    if model.train_encoder:
        raise ConfigError("encoder_outputs=True needs a frozen encoder (train_encoder=False): "
                          "a trained encoder's outputs change every step")
    features_model, _ = model.head_split()
    pre = model.preprocessor
    batches = ids_dataset(ids, labels, batch_size=max(batch_size, 64), pad_id=pre.pad_id,
                          input_names=pre.input_names)
    features, labels, _ = encoder_cache.compute_features(
        features_model, batches, per_token=model.head_spec.per_token, verbose=verbose)
    if by_epoch:
        return encoder_cache.features_epochs(features, labels, batch_size=batch_size, seed=seed)
    return encoder_cache.features_dataset(features, labels, batch_size=batch_size, shuffle=shuffle, seed=seed)


def predict_logits(model: TextClassifier, texts, batch_size: int = 64, verbose: int = 0,
                   static_shapes: bool = False, text_pairs=None, long_text=None) -> np.ndarray:
    """Logits for ``texts`` (and, for a sentence-pair model, their ``text_pairs``)
    in their order, computed on length-sorted batches.

    ``static_shapes`` pads batches to multiples of 32 tokens (for XLA).
    ``long_text``: None (the model's, ``model.long_text``), or a strategy name or
    ``tfbert.long_text.LongText`` to read long texts otherwise; ``windows`` runs
    every window (sorted with the other rows) and pools its text's logits.
    """
    texts = [str(t) for t in texts]
    check_pair_input(model, text_pairs)
    if not texts:
        return np.zeros((0, model.num_outputs), np.float32)
    pre = model.preprocessor
    settings = model.long_text if long_text is None else resolve_long_text(long_text, pre, model.seq_length,
                                                                            bool(model.takes_pairs))
    if settings.active:
        ids, doc = document_rows(pre, texts, settings)
    else:
        ids, doc = pre.token_ids(texts, text_pairs=text_pairs), None
    ds, order = sorted_batches(ids, batch_size, pre.pad_id, pre.input_names, static_shapes=static_shapes)
    logits = restore_order(np.asarray(model.core.predict(ds, verbose=verbose), dtype=np.float32), order)
    return logits if doc is None else pool(logits, doc, len(texts), settings.pooling).numpy()


class EpochStats(keras.callbacks.Callback):
    """Adds the learning rate, the epoch's wall time and (when known) examples/s to the logs
    (so History and TensorBoard get them: callbacks after this one see them).

    Its times go into checkpoints (``tfbert.checkpoints``), so a resumed epoch's time and
    examples/s cover the part trained before the kill, up to the checkpoint, and
    ``earlier_seconds`` is the training time the checkpoint carried (batches redone after a
    kill count once; the earlier start-up not at all).
    """

    def __init__(self, examples_per_epoch: int | None = None):
        super().__init__()
        self.examples_per_epoch = examples_per_epoch
        self.earlier_seconds = 0.0
        self._finished = 0.0  # seconds of the epochs done, every session's
        self._carried = 0.0  # seconds of the resumed epoch before its checkpoint
        self._start = None

    def _epoch_seconds(self) -> float:
        return self._carried + (time.perf_counter() - self._start if self._start is not None else 0.0)

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = self._epoch_seconds()
        self._finished += seconds
        self._carried, self._start = 0.0, None
        if logs is not None:
            logs["learning_rate"] = current_learning_rate(self.model.optimizer)
            logs["time"] = seconds
            if self.examples_per_epoch:
                logs["examples_per_s"] = self.examples_per_epoch / seconds

    def checkpoint_state(self) -> dict:
        return {"finished_seconds": self._finished, "epoch_seconds": self._epoch_seconds()}

    def restore_checkpoint_state(self, state: dict) -> None:
        self._finished, self._carried = float(state["finished_seconds"]), float(state["epoch_seconds"])
        self.earlier_seconds = self._finished + self._carried


class StepEvaluation(keras.callbacks.Callback):
    """Scores the validation set every ``every`` batches, without touching the epoch's training metrics.

    Keras' own ``evaluate`` would reset the compiled metrics mid-epoch, so this
    uses its own loss and metric objects (the model's task's). Results collect in
    ``rows`` (step, val_loss, val_<metric> for each metric: val_accuracy for
    classification) and, with ``logs_dir``, go to TensorBoard (``step_val_loss``, ...).
    """

    def __init__(self, valid_ds: tf.data.Dataset, model: TextClassifier, every: int, logs_dir=None,
                 loss: str = "auto"):
        super().__init__()
        self.valid_ds, self.every = valid_ds, int(every)
        self.loss, self.metrics = model.task.loss(model.class_names, loss), model.task.metrics(model.class_names)
        self.writer = tf.summary.create_file_writer(str(logs_dir)) if logs_dir else None
        self.rows: list[dict] = []
        self._batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self._batches += 1
        if self._batches % self.every == 0:
            self._score(self._batches)

    def checkpoint_state(self) -> dict:
        return {"rows": self.rows, "batches": self._batches}

    def restore_checkpoint_state(self, state: dict) -> None:
        self.rows, self._batches = list(state["rows"]), int(state["batches"])

    def _score(self, step: int) -> None:
        for metric in self.metrics:
            metric.reset_state()
        total, count = 0.0, 0
        for x, y in self.valid_ds:
            pred = self.model(x, training=False)
            n = int(tf.shape(y)[0])
            total += float(self.loss(y, pred)) * n
            count += n
            for metric in self.metrics:
                metric.update_state(y, pred)
        row = {"step": step, "val_loss": total / max(count, 1),
               **{f"val_{m.name}": float(m.result()) for m in self.metrics}}
        self.rows.append(row)
        if self.writer is not None:  # record_if: Keras' TensorBoard callback gates all summaries by its own step
            with self.writer.as_default(step=step), tf.summary.record_if(True):
                for key, value in row.items():
                    if key != "step":
                        tf.summary.scalar(f"step_{key}", value)
            self.writer.flush()


class ValidationSpearman(keras.callbacks.Callback):
    """Adds ``val_spearman`` (rank correlation of a regression model on the validation set) to each
    epoch's logs: ranks need every prediction at once, which no streaming Keras metric can hold."""

    def __init__(self, valid_ds: tf.data.Dataset):
        super().__init__()
        self.valid_ds = valid_ds

    def on_epoch_end(self, epoch, logs=None):
        from scipy import stats

        true, pred = [], []
        for x, y in self.valid_ds:
            pred.append(np.ravel(self.model(x, training=False)))
            true.append(np.ravel(y))
        true, pred = np.concatenate(true), np.concatenate(pred)
        ok = np.ptp(true) > 0 and np.ptp(pred) > 0
        if logs is not None:
            logs["val_spearman"] = float(stats.spearmanr(true, pred)[0]) if ok else 0.0


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras' EarlyStopping whose patience count survives a resume (``tfbert.checkpoints``)."""

    def checkpoint_state(self) -> dict:
        return {"wait": self.wait, "best": float(self.best), "best_epoch": self.best_epoch}

    def restore_checkpoint_state(self, state: dict) -> None:
        self.wait, self.best, self.best_epoch = int(state["wait"]), float(state["best"]), state["best_epoch"]


def train_classifier(model: TextClassifier, train_ds: tf.data.Dataset | EpochBatches,
                     valid_ds: tf.data.Dataset | None = None, epochs: int = 3,
                     learning_rate: float | None = None, warmup_ratio: float = 0.1, warmup_steps: int | None = None,
                     weight_decay: float = 0.01, clip_norm: float | None = 1.0,
                     seed: int | None = None, callbacks=None, verbose: int | str = "auto", jit_compile: bool = False,
                     part: str = "core", examples_per_epoch: int | None = None, accumulation_steps: int = 1,
                     checkpoint_dir=None, save_every_steps: int | None = None, keep_checkpoints: int = 1,
                     resume: bool = True, identity: dict | None = None, loss: str = "auto") -> keras.callbacks.History:
    """Compile one part of ``model`` for ``epochs`` over ``train_ds`` and fit it.

    Args:
        model: TextClassifier from ``create_classifier``.
        train_ds: tf.data.Dataset of (inputs, labels) batches for ``part``, or
            ``make_dataset(..., by_epoch=True)`` (exact resume: see below).
        part: str. The part the batches feed: ``core`` (token ids, what
            ``make_dataset`` yields), ``head`` (``make_dataset(encoder_outputs=True)``)
            or ``model`` (the model's own input: raw texts for TF Hub entries).
        examples_per_epoch: int or None. Adds ``examples_per_s`` to the logs.
        accumulation_steps: int. Batches whose gradients make one update (see ``compile_classifier``).
        valid_ds, epochs: evaluated after every epoch; passes over ``train_ds``.
        learning_rate, warmup_ratio, warmup_steps, weight_decay, clip_norm: optimizer settings.
        seed: int or None. Seeds Python, NumPy and TF before training.
        callbacks, verbose, jit_compile: Keras callbacks, progress-bar setting, XLA-compile the steps.
        checkpoint_dir: folder or None. Save the training state there at every epoch end and
            every ``save_every_steps`` batches, keeping ``keep_checkpoints`` (``tfbert.checkpoints``).
            With ``resume`` a checkpoint found there is continued: with ``EpochBatches`` the result
            equals an uninterrupted run's (a plain dataset resumes at the same batch count, in a new order).
        identity: dict or None. The run's settings, saved with checkpoints; a checkpoint of other settings is refused.
        loss: str. ``auto`` or a loss the model's task takes (``compile_classifier``).

    Returns:
        keras.callbacks.History whose ``history`` has, per epoch, loss, the
        task's metrics (accuracy; pearson and rmse; f1_micro and f1_macro),
        their val_ twins, learning_rate and time (a resumed run's includes the
        epochs before the resume); its ``earlier_seconds`` is the training time
        the checkpoint resumed from carried (0.0 without one).
    """
    if epochs < 1:
        raise ConfigError(f"epochs must be >= 1, got {epochs}")
    if seed is not None:
        keras.utils.set_random_seed(seed)
    steps = _steps_per_epoch(train_ds)
    target = compile_classifier(model, steps * epochs, learning_rate=learning_rate,
                                warmup_ratio=warmup_ratio, warmup_steps=warmup_steps, weight_decay=weight_decay,
                                clip_norm=clip_norm, jit_compile=jit_compile, part=part,
                                accumulation_steps=accumulation_steps, loss=loss)
    stats = EpochStats(examples_per_epoch)
    callbacks = [stats, *(callbacks or [])]
    if checkpoint_dir is None:
        data = train_ds.stream(epochs) if isinstance(train_ds, EpochBatches) else train_ds.repeat(epochs)
        history = target.fit(_replicated(target, data), validation_data=valid_ds, epochs=epochs,
                             callbacks=callbacks, verbose=verbose, steps_per_epoch=steps)
    else:
        saver = _checkpointing(checkpoint_dir, steps, save_every_steps, keep_checkpoints, resume, identity, callbacks)
        callbacks = [stats, saver.logs_fixer, *callbacks[1:], saver]
        history = _fit_resumable(target, train_ds, valid_ds, epochs, steps, callbacks, saver, verbose)
    history.earlier_seconds = stats.earlier_seconds
    return history


def _fit_resumable(target, train_ds, valid_ds, epochs, steps, callbacks, saver, verbose) -> keras.callbacks.History:
    """Fit from the saved position (or the start), with ``saver`` checkpointing along the way."""
    start = saver.resume_from
    start_epoch, skip = (start.epoch, start.step) if start else (0, 0)
    if start_epoch >= epochs or (start and start.stopped):  # killed after training: it holds the final weights
        return _finished_history(target, callbacks, saver)
    data = _replicated(target, _resumed_stream(train_ds, epochs, start_epoch, skip))
    history = target.fit(data, validation_data=valid_ds, epochs=epochs, initial_epoch=start_epoch,
                         steps_per_epoch=steps, callbacks=callbacks, verbose=verbose)
    return _with_earlier_epochs(history, saver)


def _replicated(target, data: tf.data.Dataset):
    """``data`` as ``fit`` takes it under the model's strategy (``tfbert.distribute.split_batches``)."""
    from tfbert.distribute import split_batches

    strategy = target.distribute_strategy
    return split_batches(strategy, data) if strategy.num_replicas_in_sync > 1 else data


def _steps_per_epoch(train_ds) -> int:
    steps = train_ds.steps if isinstance(train_ds, EpochBatches) else int(train_ds.cardinality())
    if steps == 0:
        raise DataError("no examples: the training set is empty")
    if steps == tf.data.INFINITE_CARDINALITY:
        raise DataError("the training dataset repeats forever; pass one epoch of batches (drop .repeat())")
    if steps < 0:  # unknown cardinality (e.g. after filter): count once
        steps = sum(1 for _ in train_ds)
    return steps


def _checkpointing(directory, steps, every, keep, resume, identity, callbacks):
    from tfbert import checkpoints

    position = None
    if resume:
        position = checkpoints.latest(directory)
        if position is not None:
            checkpoints.check_identity(position, identity, directory)
            print(f"resuming from {position.path}: {position.epoch} epoch(s) and {position.step} batch(es) done")
    else:
        checkpoints.clear(directory)
    return checkpoints.TrainingCheckpoints(directory, steps, every_steps=every, keep=keep, identity=identity,
                                           resume_from=position, callbacks=callbacks)


def _resumed_stream(train_ds, epochs: int, start_epoch: int, skip: int) -> tf.data.Dataset:
    """The batches left to fit after ``start_epoch`` epochs and ``skip`` batches."""
    if isinstance(train_ds, EpochBatches):
        return train_ds.stream(epochs, start_epoch, skip)
    if skip:
        print("note: a plain tf.data.Dataset resumes at the saved batch count but in a new order; "
              "make_dataset(..., by_epoch=True) replays the exact order")
    ds = train_ds.skip(skip)
    return ds.concatenate(train_ds.repeat(epochs - start_epoch - 1)) if epochs - start_epoch > 1 else ds


def _finished_history(target, callbacks, saver) -> keras.callbacks.History:
    history = keras.callbacks.History()
    for cb in callbacks:
        cb.set_model(target)
    for cb in callbacks:  # restores the weights (and, with best weights, their end-of-training swap)
        cb.on_train_begin()
    for cb in callbacks:
        cb.on_train_end()
    history.set_model(target)
    return _with_earlier_epochs(history, saver)


def _with_earlier_epochs(history, saver) -> keras.callbacks.History:
    """``history`` covering every epoch: those of the checkpoint and those this fit ran."""
    rows = saver.history
    keys = list(dict.fromkeys(k for row in rows for k in row))
    history.history = {k: [row.get(k) for row in rows] for k in keys}
    history.epoch = list(range(len(rows)))
    return history
