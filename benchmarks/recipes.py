"""The usual fine-tuning recipe's input pipelines, for comparing against tfbert's.

tfbert tokenizes every text once and pads each batch to its own longest
member (``tfbert.training.make_dataset``). The recipes below are what the
common tutorials do instead; ``benchmarks/speed.py`` times them side by side
and ``tests/test_benchmark_recipes.py`` checks that each differs from
tfbert's pipeline only in what it is meant to measure.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfbert.pipeline import batch_rows, ids_dataset


def _labels(model, labels):
    if labels is None:
        return None
    labels = np.asarray(labels)
    return labels.astype(np.float32)[:, None] if model.num_classes == 2 else labels.astype(np.int32)


def fixed_padding_dataset(model, texts, labels=None, batch_size: int = 32, shuffle: bool = False,
                          seed: int = 42, pad_to: int | None = None) -> tf.data.Dataset:
    """Tokenized once, batched in order, every batch padded to ``pad_to`` (default: the model's length)."""
    pre = model.preprocessor
    return ids_dataset(pre.token_ids([str(t) for t in texts]), _labels(model, labels), batch_size=batch_size,
                       shuffle=shuffle, seed=seed, pad_id=pre.pad_id, input_names=pre.input_names,
                       bucketing=False, pad_to=pad_to or model.seq_length)


def per_epoch_tokenizing_dataset(model, texts, labels=None, batch_size: int = 32, shuffle: bool = False,
                                 seed: int = 42, bucketing: bool = True,
                                 pad_to: int | None = None) -> tf.data.Dataset:
    """Texts tokenized in tf.data, again every epoch, as the usual recipes do.

    Texts are tokenized in chunks and split back into rows, so batching
    (bucketing included) is the same as on tfbert's cached ids: the two differ
    only in tokenizing. Bucket boundaries need every text's length, so the
    texts are tokenized once up front for that.
    """
    pre = model.preprocessor
    texts = [str(t) for t in texts]
    labels = _labels(model, labels)
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
    return batch_rows(ds, lengths, labels, batch_size=batch_size, pad_id=pre.pad_id,
                      input_names=pre.input_names, bucketing=bucketing, pad_to=pad_to)
