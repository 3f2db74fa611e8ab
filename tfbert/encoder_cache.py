"""Frozen encoders: run the encoder once, then train the head on its outputs.

A frozen encoder runs in inference mode (no dropout: see
``tfbert.encoders.huggingface.HFEncoder.call`` and ``hub.KerasLayer``), so
every epoch would recompute exactly the same encoder outputs. Computing them
once and fitting only the head makes every epoch after the first nearly free;
the head's layers are the model's own, so the trained model needs nothing else.

What is cached is what the head consumes: the sentence vector for ``dense``
and ``cls_bn`` (one vector per text), the token vectors for ``bilstm`` (kept
unpadded, batched by length like token ids).
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
import tf_keras as keras

from tfbert.errors import ConfigError
from tfbert.pipeline import EpochBatches, bucket_rows

# Token vectors take tokens x hidden x 2-4 bytes; past this the ids are fed
# to the encoder every epoch instead.
DEFAULT_LIMIT_MB = 4096


def limit_mb() -> float:
    return float(os.environ.get("TFBERT_ENCODER_CACHE_MB", DEFAULT_LIMIT_MB))


def split_at_head(core: keras.Model, head) -> tuple[keras.Model, keras.Model]:
    """(encoder part, head part) of a classifier's int-input core model.

    ``head`` is a ``tfbert.heads.HeadSpec``: its ``feature_layer`` is where the
    head starts. The encoder part maps the core's inputs to that layer's input;
    the head part maps that (plus ``input_mask`` for per-token heads) to the
    logits, sharing the core's layers.
    """
    if not head.feature_layer:
        raise ConfigError(f"head '{head.name}' names no feature_layer, so its encoder outputs cannot be "
                          f"cached; train with cache_encoder_outputs off")
    feature = core.get_layer(head.feature_layer).input
    features_model = keras.Model(core.inputs, feature, name=f"{head.name}_encoder_part")
    if not head.per_token:
        return features_model, keras.Model(feature, core.output, name=f"{head.name}_head_part")
    mask = core.input["input_mask"]
    try:
        head_model = keras.Model([feature, mask], core.output, name=f"{head.name}_head_part")
    except ValueError as err:  # a per-token head that ignores the mask: it still takes (vectors, mask) batches
        if "disconnected" not in str(err):
            raise
        inner = keras.Model(feature, core.output, name=f"{head.name}_head_only")
        vectors = keras.Input(feature.shape[1:], dtype=feature.dtype, name="token_vectors")
        mask_in = keras.Input((None,), dtype=mask.dtype, name="input_mask")
        head_model = keras.Model([vectors, mask_in], inner(vectors), name=f"{head.name}_head_part")
    return features_model, head_model


def feature_megabytes(model: keras.Model, num_tokens: int, num_texts: int) -> float:
    """Memory the cached outputs of ``num_texts`` texts (``num_tokens`` in all) would take."""
    itemsize = 2 if model.precision == "bfloat16" else 4
    rows = num_tokens if model.head_spec.per_token else num_texts
    hidden = model.spec.hidden or int(model.head_split()[0].output_shape[-1])  # entries may leave it unset
    return rows * hidden * itemsize / 2**20


def plan(model: keras.Model, texts_by_split, pairs_by_split=None) -> tuple[bool, float]:
    """Whether the encoder outputs of all these texts (with their second texts, for
    sentence pairs) fit under ``limit_mb()``, and their size in MB."""
    texts = [str(t) for split in texts_by_split if split is not None for t in split]
    pairs = None
    if pairs_by_split is not None and any(p is not None for p in pairs_by_split):
        pairs = [str(t) for split in pairs_by_split if split is not None for t in split]
    tokens = 0
    if model.head_spec.per_token:
        tokens = int(model.preprocessor.token_ids(texts, text_pairs=pairs).row_lengths().numpy().sum())
    megabytes = feature_megabytes(model, tokens, len(texts))
    return megabytes <= limit_mb(), megabytes


def compute_features(features_model: keras.Model, ids_ds: tf.data.Dataset, per_token: bool,
                     verbose: bool = True):
    """Run the encoder part once over a batched ids dataset.

    Returns (features, labels, batch_size): features is a tf.Tensor
    [n, hidden] or, per token, a tf.RaggedTensor [n, (length), hidden];
    labels a NumPy array or None; batch_size the largest batch seen.
    """
    # One trace for every batch shape (lengths and the last batch's size vary).
    signature = [{t.name.split(":")[0]: tf.TensorSpec([None, None], t.dtype) for t in features_model.inputs}]
    run = tf.function(lambda x: features_model(x, training=False), input_signature=signature)
    steps = int(ids_ds.cardinality())
    bar = keras.utils.Progbar(steps if steps > 0 else None, unit_name="batch") if verbose else None
    chunks, labels, batch_size = [], [], 0
    for element in ids_ds:
        inputs, y = element if isinstance(element, tuple) else (element, None)
        out = run(inputs)
        if per_token:
            out = tf.RaggedTensor.from_tensor(out, lengths=tf.reduce_sum(inputs["input_mask"], axis=1))
        chunks.append(out)
        if y is not None:
            labels.append(y.numpy())
        batch_size = max(batch_size, int(inputs["input_mask"].shape[0]))
        if bar:
            bar.add(1)
    features = tf.concat(chunks, axis=0)
    return features, (np.concatenate(labels) if labels else None), batch_size


def features_dataset(features, labels=None, batch_size: int = 32, shuffle: bool = False,
                     seed: int = 42) -> tf.data.Dataset:
    """Batches of cached features (and labels) in the head part's input layout."""
    rows = tf.data.Dataset.from_tensor_slices(features if labels is None else (features, labels))
    if shuffle:
        rows = rows.shuffle(_count(features), seed=seed, reshuffle_each_iteration=True)
    return _batch_features(rows, features, labels, batch_size)


def features_epochs(features, labels, batch_size: int = 32, seed: int = 42) -> EpochBatches:
    """``features_dataset`` for training, each epoch's order fixed by (seed, epoch) (``pipeline.EpochBatches``)."""
    rows = tf.data.Dataset.from_tensor_slices((features, labels))

    def make(epoch_seed: int) -> tf.data.Dataset:
        shuffled = rows.shuffle(_count(features), seed=epoch_seed, reshuffle_each_iteration=False)
        return _batch_features(shuffled, features, labels, batch_size)

    return EpochBatches(make, seed)


def _count(features) -> int:
    return int(features.nrows()) if isinstance(features, tf.RaggedTensor) else int(features.shape[0])


def _batch_features(ds: tf.data.Dataset, features, labels, batch_size: int) -> tf.data.Dataset:
    if not isinstance(features, tf.RaggedTensor):
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    # ragged rows -> plain [length, hidden] tensors plus their mask, which
    # padded batching turns into the head's input_mask
    def row(x):
        x = tf.identity(x)
        return x, tf.ones(tf.shape(x)[:1], tf.int32)

    ds = ds.map(row) if labels is None else ds.map(lambda x, y: (row(x), y))
    zeros = (tf.constant(0, features.dtype), tf.constant(0, tf.int32))
    padding = zeros if labels is None else (zeros, tf.constant(0, tf.as_dtype(labels.dtype)))
    ds = bucket_rows(ds, features.row_lengths().numpy(), batch_size, padding)
    if labels is None:  # Keras reads a pair as (inputs, labels): wrap the inputs alone
        ds = ds.map(lambda x, mask: ((x, mask),))
    return ds.prefetch(tf.data.AUTOTUNE)
