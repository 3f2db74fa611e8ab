"""Compile and fit a classifier built by ``tfbert.create_classifier``."""

from __future__ import annotations

import os
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from tfbert import encoder_cache  # noqa: E402
from tfbert.errors import ConfigError, DataError  # noqa: E402
from tfbert.heads import HEAD_DEFAULTS  # noqa: E402
from tfbert.optimization import create_optimizer, current_learning_rate  # noqa: E402
from tfbert.pipeline import batch_rows, ids_dataset, restore_order, sorted_batches  # noqa: E402


def loss_and_metric(num_classes: int):
    """One logit + binary cross-entropy for two classes, N logits + sparse CE else."""
    if num_classes == 2:
        # threshold 0 because the model outputs logits, not probabilities
        return (keras.losses.BinaryCrossentropy(from_logits=True),
                keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0))
    return (keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"))


def compile_classifier(model: keras.Model, train_steps: int, learning_rate: float | None = None,
                       warmup_ratio: float = 0.1, weight_decay: float = 0.01,
                       clip_norm: float | None = 1.0, jit_compile: bool = False) -> keras.Model:
    """Compile with AdamW + linear warmup/decay and the loss that fits the labels.

    Args:
        model: keras.Model from ``create_classifier``.
        train_steps: int. Total optimizer steps, for the schedule.
        learning_rate: float or None. Peak rate; default per head
            (``tfbert.heads.HEAD_DEFAULTS``).
        warmup_ratio, weight_decay, clip_norm: see ``tfbert.optimization.create_optimizer``.
        jit_compile: bool. Compile train/predict steps with XLA.
    """
    info = model.tfbert
    if learning_rate is None:
        learning_rate = HEAD_DEFAULTS[info.head]["learning_rate"]
    optimizer = create_optimizer(learning_rate, train_steps, warmup_ratio=warmup_ratio,
                                 weight_decay=weight_decay, clip_norm=clip_norm)
    loss, metric = loss_and_metric(info.num_classes)
    model.compile(optimizer=optimizer, loss=loss, metrics=[metric], jit_compile=jit_compile)
    return model


def check_labels(labels, num_classes: int) -> np.ndarray:
    """Int class ids in [0, num_classes), else a DataError naming the bad value."""
    labels = np.asarray(labels)
    if labels.size == 0:
        raise DataError("no examples: the data set is empty; check the file and the cleaning options")
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"labels must be class ids (integers), got {labels.dtype} values such as {labels.flat[0]!r}; "
            f"encode string labels with tfbert.data.encode_labels")
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if bad.size:
        raise DataError(
            f"label {int(bad[0])} is out of range for {num_classes} classes (ids must be 0..{num_classes - 1}); "
            f"fix the labels or pass the right number of classes")
    return labels.astype(np.int32)


def make_dataset(model: keras.Model, texts, labels=None, batch_size: int = 32,
                 shuffle: bool = False, seed: int = 42, bucketing: bool = True,
                 cache_tokens: bool = True, pad_to: int | None = None,
                 static_shapes: bool = False, encoder_outputs: bool = False,
                 verbose: bool = True) -> tf.data.Dataset:
    """A batched ``tf.data.Dataset`` of model inputs (and labels) for ``texts``.

    By default each text is tokenized once, here, and batches group texts of
    similar length, each padded only to its own longest member (see
    ``tfbert.pipeline``). Such datasets feed ``model.tfbert.core`` (int inputs);
    ``train_classifier`` and ``predict_logits`` pick the right model.

    Args:
        model: keras.Model from ``create_classifier``.
        texts: sequence of str.
        labels: class ids, or None for prediction.
        batch_size: int. Examples per batch.
        shuffle: bool. Reshuffle every epoch.
        seed: int. Shuffle seed.
        bucketing: bool. Batch by length (off: batches in the given order).
        cache_tokens: bool. Tokenize once (off: tokenize in the pipeline every
            epoch, as the usual recipes do; batching is unchanged, so the two
            settings differ only in tokenizing; for comparisons).
        pad_to: int or None. Pad every batch to this length (the usual fixed
            padding; for comparisons).
        static_shapes: bool. Pad to a few fixed lengths (bucket bounds) so that
            XLA (``jit_compile``) compiles a handful of shapes, not one per batch.
        encoder_outputs: bool. For a frozen encoder: run it once, here, and
            yield its outputs, so that training fits only the head and skips
            the encoder every epoch (``tfbert.encoder_cache``). Check the size
            first with ``encoder_cache.feature_megabytes``.
        verbose: bool. Progress bar while computing encoder outputs.
    """
    info = model.tfbert
    texts = [str(t) for t in texts]
    if not texts:
        raise DataError("no examples: the data set is empty; check the file and the cleaning options")
    if labels is not None:
        labels = check_labels(labels, info.num_classes)
        if len(labels) != len(texts):
            raise DataError(f"{len(texts)} texts but {len(labels)} labels; give one label per text")
        if info.num_classes == 2:
            labels = labels.astype(np.float32)[:, None]
    pre = info.preprocessor
    options = dict(batch_size=batch_size, pad_id=pre.pad_id, input_names=pre.input_names,
                   bucketing=bucketing, pad_to=pad_to, static_shapes=static_shapes)
    if encoder_outputs:
        return _encoder_outputs_dataset(model, texts, labels, batch_size, shuffle, seed, verbose)
    if not cache_tokens:
        return _per_epoch_tokenizing_dataset(pre, texts, labels, shuffle, seed, pad_to, options)
    token_ids = pre.token_ids(texts)
    return ids_dataset(token_ids, labels, shuffle=shuffle, seed=seed, **options)


def _encoder_outputs_dataset(model, texts, labels, batch_size, shuffle, seed, verbose):
    info = model.tfbert
    if info.train_encoder:
        raise ConfigError("encoder_outputs=True needs a frozen encoder (train_encoder=False): "
                          "a trained encoder's outputs change every step")
    features_model, _ = info.head_split()
    pre = info.preprocessor
    ids = ids_dataset(pre.token_ids(texts), labels, batch_size=max(batch_size, 64), pad_id=pre.pad_id,
                      input_names=pre.input_names)
    features, labels, _ = encoder_cache.compute_features(
        features_model, ids, per_token=info.head in encoder_cache.PER_TOKEN_HEADS, verbose=verbose)
    return encoder_cache.features_dataset(features, labels, batch_size=batch_size, shuffle=shuffle, seed=seed)


def _per_epoch_tokenizing_dataset(pre, texts, labels, shuffle, seed, pad_to, options):
    """The usual recipe's pipeline: tokenize in tf.data, again every epoch.

    Texts are tokenized in chunks and split back into rows, so batching
    (bucketing included) is the same as on cached ids. Bucket boundaries need
    every text's length, so the texts are tokenized once up front for that.
    """
    length = pad_to or pre.seq_length
    lengths = pre.token_ids(texts, length).row_lengths().numpy()
    ds = tf.data.Dataset.from_tensor_slices(texts if labels is None else (texts, labels))
    if shuffle:
        ds = ds.shuffle(len(texts), seed=seed, reshuffle_each_iteration=True)

    def tokenize(batch):
        if pre.in_graph:
            ids = pre.token_ids_graph(batch, length)
        else:
            ids = tf.py_function(
                lambda b: pre.token_ids([t.decode("utf-8") for t in b.numpy()], length).to_tensor(
                    default_value=pre.pad_id), [batch], tf.int32)
            ids.set_shape([None, None])
        # Every row ends in a special token, so trailing pad ids are padding.
        return tf.RaggedTensor.from_tensor(ids, padding=pre.pad_id)

    chunk = 256
    if labels is None:
        ds = ds.batch(chunk).map(tokenize).unbatch().map(tf.identity)
    else:
        ds = ds.batch(chunk).map(lambda t, y: (tokenize(t), y)).unbatch().map(lambda ids, y: (tf.identity(ids), y))
    return batch_rows(ds, lengths, labels, **options)


def predict_logits(model: keras.Model, texts, batch_size: int = 64, verbose: int = 0,
                   static_shapes: bool = False) -> np.ndarray:
    """Logits for ``texts`` in their order, computed on length-sorted batches.

    ``static_shapes`` pads batches to multiples of 32 tokens (for XLA).
    """
    info = model.tfbert
    texts = [str(t) for t in texts]
    if not texts:
        return np.zeros((0, info.num_outputs), np.float32)
    token_ids = info.preprocessor.token_ids(texts)
    ds, order = sorted_batches(token_ids, batch_size, info.preprocessor.pad_id, info.preprocessor.input_names,
                               static_shapes=static_shapes)
    logits = info.core.predict(ds, verbose=verbose)
    return restore_order(np.asarray(logits, dtype=np.float32), order)


def _fit_target(model: keras.Model, dataset: tf.data.Dataset) -> keras.Model:
    """Int-input datasets train the core model, string datasets the full model,
    encoder-output datasets (``make_dataset(encoder_outputs=True)``) the head."""
    spec = dataset.element_spec
    features = spec[0] if isinstance(spec, tuple) else spec
    if isinstance(features, dict):
        return model.tfbert.core
    if isinstance(features, tf.TensorSpec) and features.dtype == tf.string:
        return model
    return model.tfbert.head_split()[1]


class EpochStats(keras.callbacks.Callback):
    """Adds the learning rate and the epoch's wall time to the logs (and History)."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = current_learning_rate(self.model.optimizer)
            logs["time"] = time.perf_counter() - self._start


def train_classifier(model: keras.Model, train_ds: tf.data.Dataset,
                     valid_ds: tf.data.Dataset | None = None, epochs: int = 3,
                     learning_rate: float | None = None, warmup_ratio: float = 0.1,
                     weight_decay: float = 0.01, clip_norm: float | None = 1.0,
                     seed: int | None = None, callbacks=None, verbose: int | str = "auto",
                     jit_compile: bool = False) -> keras.callbacks.History:
    """Compile ``model`` for ``epochs`` over ``train_ds`` and fit it.

    Args:
        model: keras.Model from ``create_classifier``.
        train_ds: tf.data.Dataset of (inputs, labels) batches (``make_dataset``).
        valid_ds: tf.data.Dataset or None. Evaluated after every epoch.
        epochs: int. Passes over ``train_ds``.
        learning_rate, warmup_ratio, weight_decay, clip_norm: optimizer settings.
        seed: int or None. Seeds Python, NumPy and TF before training.
        callbacks: list of Keras callbacks.
        verbose: Keras progress-bar setting.
        jit_compile: bool. XLA-compile the steps.

    Returns:
        keras.callbacks.History whose ``history`` has, per epoch, loss,
        accuracy, val_loss, val_accuracy, learning_rate and time.
    """
    if epochs < 1:
        raise ConfigError(f"epochs must be >= 1, got {epochs}")
    if seed is not None:
        keras.utils.set_random_seed(seed)
    steps = int(train_ds.cardinality())
    if steps == 0:
        raise DataError("no examples: the training set is empty")
    if steps < 0:  # unknown cardinality (e.g. after filter): count once
        steps = sum(1 for _ in train_ds)
    target = _fit_target(model, train_ds)
    target.tfbert = model.tfbert
    compile_classifier(target, steps * epochs, learning_rate=learning_rate,
                       warmup_ratio=warmup_ratio, weight_decay=weight_decay,
                       clip_norm=clip_norm, jit_compile=jit_compile)
    return target.fit(train_ds, validation_data=valid_ds, epochs=epochs,
                      callbacks=[EpochStats(), *(callbacks or [])], verbose=verbose)
