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

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from tfbert.errors import ConfigError  # noqa: E402
from tfbert.pipeline import bucket_rows  # noqa: E402

# The head layer whose input is the cached feature.
FEATURE_LAYER = {"dense": "head_dropout", "cls_bn": "head_batchnorm", "bilstm": "head_bilstm"}
PER_TOKEN_HEADS = {"bilstm"}
# Token vectors take tokens x hidden x 2-4 bytes; past this the ids are fed
# to the encoder every epoch instead.
DEFAULT_LIMIT_MB = 4096


def limit_mb() -> float:
    return float(os.environ.get("TFBERT_ENCODER_CACHE_MB", DEFAULT_LIMIT_MB))


def split_at_head(core: keras.Model, head: str) -> tuple[keras.Model, keras.Model]:
    """(encoder part, head part) of a classifier's int-input core model.

    The encoder part maps the core's inputs to the head's input; the head part
    maps that (plus ``input_mask`` for per-token heads) to the logits, sharing
    the core's layers.
    """
    if head not in FEATURE_LAYER:
        raise ConfigError(f"no encoder-output cache for head '{head}'; heads with one: {', '.join(FEATURE_LAYER)}")
    feature = core.get_layer(FEATURE_LAYER[head]).input
    features_model = keras.Model(core.inputs, feature, name=f"{head}_encoder_part")
    head_inputs = [feature, core.input["input_mask"]] if head in PER_TOKEN_HEADS else feature
    head_model = keras.Model(head_inputs, core.output, name=f"{head}_head_part")
    return features_model, head_model


def feature_megabytes(model: keras.Model, num_tokens: int, num_texts: int) -> float:
    """Memory the cached outputs of ``num_texts`` texts (``num_tokens`` in all) would take."""
    info = model.tfbert
    itemsize = 2 if info.precision == "bfloat16" else 4
    rows = num_tokens if info.head in PER_TOKEN_HEADS else num_texts
    return rows * info.spec.hidden * itemsize / 2**20


def plan(model: keras.Model, texts_by_split) -> tuple[bool, float]:
    """Whether the encoder outputs of all these texts fit under ``limit_mb()``, and their size in MB."""
    info = model.tfbert
    texts = [str(t) for split in texts_by_split if split is not None for t in split]
    tokens = 0
    if info.head in PER_TOKEN_HEADS:
        tokens = int(info.preprocessor.token_ids(texts).row_lengths().numpy().sum())
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
    per_token = isinstance(features, tf.RaggedTensor)
    n = int(features.nrows()) if per_token else int(features.shape[0])
    ds = tf.data.Dataset.from_tensor_slices(features if labels is None else (features, labels))
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    if not per_token:
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
