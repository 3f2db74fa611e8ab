"""Input pipelines: tokenize once, batch by length, pad each batch to its own longest.

Most fine-tuning time on short texts goes into padding: NSMC reviews average
about 35 characters, yet the usual recipe pads every one to 128 tokens. Here
each text is tokenized once (ids kept unpadded, in memory: of the same order
as the texts themselves), batches are drawn from length buckets
(``tf.data.Dataset.bucket_by_sequence_length``) and padded only to their own
longest member.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from tfbert.errors import ConfigError, DataError


def bucket_boundaries(seq_length: int, width: int = 8) -> list[int]:
    """Upper bounds (exclusive) of the length buckets: 9, 17, ... below ``seq_length``."""
    return list(range(width + 1, seq_length, width))


def fitted_boundaries(lengths: np.ndarray, batch_size: int, width: int = 8,
                      min_batches: int = 4) -> list[int]:
    """8-token buckets, merged until each holds at least ``min_batches`` full batches.

    Every bucket flushes a partial batch at the end of an epoch, so on a small
    data set fixed-width buckets would turn many steps into tiny batches.
    """
    lengths = np.asarray(lengths)
    candidates = bucket_boundaries(max(int(lengths.max()), 2), width)
    need = batch_size * min_batches
    bounds, count = [], 0
    edges = candidates + [np.inf]
    counts = np.bincount(np.searchsorted(candidates, lengths, side="right"), minlength=len(edges))
    for edge, n in zip(edges, counts):
        count += n
        if count >= need and np.isfinite(edge):
            bounds.append(int(edge))
            count = 0
    if bounds and count < need:  # the last bucket is too small: merge it down
        bounds.pop()
    return bounds


def batches_per_epoch(lengths: np.ndarray, batch_size: int, boundaries: list[int] | None) -> int:
    """Exact number of batches bucketing yields: each bucket flushes its remainder."""
    if not boundaries:
        return math.ceil(len(lengths) / batch_size)
    counts = np.bincount(np.searchsorted(boundaries, lengths, side="right"),
                         minlength=len(boundaries) + 1)
    return int(sum(math.ceil(c / batch_size) for c in counts))


def to_model_inputs(ids: tf.Tensor, pad_id: int, input_names) -> dict:
    """Padded ids [batch, length] (or, for sentence pairs, [batch, length, 2]: ids and
    segment ids, as ``Preprocessor.token_ids`` makes them) -> the encoder's input dict."""
    type_ids = None
    if ids.shape.rank == 3:
        ids, type_ids = ids[..., 0], ids[..., 1]
    mask = tf.cast(tf.not_equal(ids, pad_id), tf.int32)
    out = {"input_word_ids": ids, "input_mask": mask}
    if "input_type_ids" in input_names:
        # padding filled the segment column with pad_id too: the mask zeroes it
        out["input_type_ids"] = tf.zeros_like(ids) if type_ids is None else type_ids * mask
    return out


def ids_dataset(token_ids: tf.RaggedTensor, labels=None, batch_size: int = 32, shuffle: bool = False,
                seed: int = 42, pad_id: int = 0, input_names=("input_word_ids", "input_mask"),
                bucketing: bool = True, pad_to: int | None = None,
                static_shapes: bool = False) -> tf.data.Dataset:
    """Batches of model inputs (and labels) from unpadded token ids.

    Args:
        token_ids: tf.RaggedTensor [n, (length)] with special tokens, or
            [n, (length), 2] ids and segment ids of sentence pairs.
        labels: array [n] or [n, 1], or None for prediction.
        batch_size: int. Examples per batch.
        shuffle: bool. Reshuffle every epoch (before bucketing); for an order
            fixed per epoch, which a resumed run can replay, see ``epoch_batches``.
        seed: int. Shuffle seed.
        pad_id: int. The vocabulary's padding id.
        input_names: the keys the encoder takes.
        bucketing: bool. Group examples by length (else batch in order).
        pad_to: int or None. Pad every batch to this fixed length (the usual
            recipe; for comparisons) instead of its longest member.
        static_shapes: bool. Few distinct batch shapes, for XLA: see
            ``batch_rows``.
    """
    rows = _id_rows(token_ids, labels)
    if shuffle:
        rows = rows.shuffle(int(token_ids.nrows()), seed=seed, reshuffle_each_iteration=True)
    return batch_rows(rows, token_ids.row_lengths().numpy(), labels, batch_size=batch_size, pad_id=pad_id,
                      input_names=input_names, bucketing=bucketing, pad_to=pad_to, static_shapes=static_shapes)


def _id_rows(token_ids: tf.RaggedTensor, labels) -> tf.data.Dataset:
    if int(token_ids.nrows()) == 0:
        raise DataError("no examples: the data set is empty; check the file and the cleaning options")
    elements = token_ids if labels is None else (token_ids, labels)
    ds = tf.data.Dataset.from_tensor_slices(elements)
    # Rows of a RaggedTensor come out as rank-0 ragged specs; padded_batch
    # wants plain tensors, which they are once passed through a map.
    return ds.map(tf.identity) if labels is None else ds.map(lambda ids, y: (tf.identity(ids), y))


def epoch_batches(token_ids: tf.RaggedTensor, labels, batch_size: int = 32, seed: int = 42, pad_id: int = 0,
                  input_names=("input_word_ids", "input_mask"), bucketing: bool = True,
                  static_shapes: bool = False, rows_of_epoch=None) -> "EpochBatches":
    """Shuffled training batches whose order in each epoch is fixed by (seed, epoch): see ``EpochBatches``.

    ``rows_of_epoch``: None (every row, every epoch) or function(epoch seed) ->
    indices of the rows that epoch trains on (``tfbert.long_text.sample_rows``:
    one window per document). Its rows must have the same lengths every epoch,
    so that the batch count is fixed. Other arguments as for ``ids_dataset``.
    """
    rows = _id_rows(token_ids, labels)
    lengths = token_ids.row_lengths().numpy()

    def make(epoch_seed: int) -> tf.data.Dataset:
        source, counts = rows, lengths
        if rows_of_epoch is not None:
            pick = np.asarray(rows_of_epoch(epoch_seed))
            source, counts = _id_rows(tf.gather(token_ids, pick), np.asarray(labels)[pick]), lengths[pick]
        shuffled = source.shuffle(len(counts), seed=epoch_seed, reshuffle_each_iteration=False)
        return batch_rows(shuffled, counts, labels, batch_size=batch_size, pad_id=pad_id, input_names=input_names,
                          bucketing=bucketing, static_shapes=static_shapes)

    return EpochBatches(make, seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """The shuffle seed of one epoch: a function of the run's seed and the epoch alone."""
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1)[0])


class EpochBatches:
    """Training batches in a new order every epoch, each epoch's order fixed by (seed, epoch).

    A run killed in epoch 3 and resumed in a new process must see the batches
    the uninterrupted run would have: with ``reshuffle_each_iteration`` the
    order of an epoch depends on how many times the dataset was iterated in
    this process, so here each epoch is its own dataset with its own seed
    (``epoch_seed``), and ``stream`` strings epochs together from any point.

    Args:
        make: function(shuffle seed) -> tf.data.Dataset of one epoch's batches.
        seed: int. The run's seed.
    """

    def __init__(self, make, seed: int):
        self._make, self.seed = make, int(seed)
        self.steps = int(self.epoch(0).cardinality())  # bucketed datasets know their exact count

    def epoch(self, epoch: int) -> tf.data.Dataset:
        """The batches of one epoch (0-based)."""
        return self._make(epoch_seed(self.seed, epoch))

    def stream(self, epochs: int, start_epoch: int = 0, skip: int = 0) -> tf.data.Dataset:
        """Epochs ``start_epoch`` .. ``epochs - 1`` one after another, less the first ``skip`` batches."""
        if not 0 <= start_epoch < epochs:
            raise ConfigError(f"start epoch {start_epoch} is outside the {epochs} epoch(s) of this run")
        ds = self.epoch(start_epoch).skip(skip)
        for epoch in range(start_epoch + 1, epochs):
            ds = ds.concatenate(self.epoch(epoch))
        return ds

    @property
    def element_spec(self):
        return self.epoch(0).element_spec


def batch_rows(rows: tf.data.Dataset, lengths: np.ndarray, labels=None, batch_size: int = 32,
               pad_id: int = 0, input_names=("input_word_ids", "input_mask"), bucketing: bool = True,
               pad_to: int | None = None, static_shapes: bool = False) -> tf.data.Dataset:
    """Batch a dataset of unpadded id rows (or (ids, label) pairs) into model inputs.

    Args:
        rows: tf.data.Dataset of int32 [length] ids, or (ids, label) pairs.
        lengths: array [n]. Every row's length, to fit the bucket boundaries
            (``fitted_boundaries``) and count the batches.
        labels: the labels ``rows`` carries (for their dtype and shape), or None.
        static_shapes: bool. XLA compiles once per input shape, so padding each
            batch to its own longest would compile for nearly every batch: pad
            bucketed batches to their bucket's upper bound, and unbucketed ones
            to a multiple of ``STATIC_MULTIPLE`` tokens, instead.
        Other arguments: see ``ids_dataset``.
    """
    lengths = np.asarray(lengths)
    pad = tf.constant(pad_id, tf.int32)
    padding = pad if labels is None else (pad, tf.constant(0, tf.as_dtype(np.asarray(labels).dtype)))
    if bucketing and pad_to is None:
        ds = bucket_rows(rows, lengths, batch_size, padding, static_shapes)
    else:
        ids_shape = [pad_to] + tf.nest.flatten(rows.element_spec)[0].shape[1:].as_list()  # pairs: [length, 2]
        shapes = ids_shape if labels is None else (ids_shape, [] if np.ndim(labels) == 1 else [1])
        ds = rows.padded_batch(batch_size, padded_shapes=shapes, padding_values=padding)
        if static_shapes and pad_to is None:
            if labels is None:
                ds = ds.map(lambda ids: pad_to_multiple(ids, STATIC_MULTIPLE, pad_id))
            else:
                ds = ds.map(lambda ids, y: (pad_to_multiple(ids, STATIC_MULTIPLE, pad_id), y))
    if labels is None:
        ds = ds.map(lambda ids: to_model_inputs(ids, pad_id, input_names))
    else:
        ds = ds.map(lambda ids, y: (to_model_inputs(ids, pad_id, input_names), y))
    return ds.prefetch(tf.data.AUTOTUNE)


STATIC_MULTIPLE = 32


def bucket_rows(rows: tf.data.Dataset, lengths: np.ndarray, batch_size: int, padding,
                static_shapes: bool = False) -> tf.data.Dataset:
    """Padded batches of rows grouped by length: the first axis of the element's first tensor.

    Boundaries come from ``fitted_boundaries(lengths, batch_size)``; the
    dataset's cardinality is set to the exact number of batches.
    """
    bounds = fitted_boundaries(lengths, batch_size)

    def length(*element):
        return tf.shape(tf.nest.flatten(element)[0])[0]

    if static_shapes:  # pad_to_bucket_boundary pads to bound - 1 and needs every row below the last bound
        fixed = bounds + [int(np.max(lengths)) + 1]
        ds = rows.bucket_by_sequence_length(length, fixed, [batch_size] * (len(fixed) + 1),
                                            padding_values=padding, pad_to_bucket_boundary=True)
    else:
        ds = rows.bucket_by_sequence_length(length, bounds, [batch_size] * (len(bounds) + 1),
                                            padding_values=padding)
    steps = batches_per_epoch(lengths, batch_size, bounds)
    return ds.apply(tf.data.experimental.assert_cardinality(steps))


def pad_to_multiple(ids: tf.Tensor, multiple: int, pad_id: int) -> tf.Tensor:
    """Right-pad [batch, length] (or [batch, length, 2]) ids so the length is a multiple of ``multiple``."""
    length = tf.shape(ids)[1]
    extra = (multiple - length % multiple) % multiple
    return tf.pad(ids, [[0, 0], [0, extra]] + [[0, 0]] * (ids.shape.rank - 2), constant_values=pad_id)


def sorted_batches(token_ids: tf.RaggedTensor, batch_size: int, pad_id: int, input_names,
                   static_shapes: bool = False):
    """Prediction batches in length order, plus the order to undo it.

    Batches keep a fixed number of texts: measured here, letting batches of
    short texts hold more texts (a token budget per batch) or padding lengths
    to multiples of 8 both cost more CPU time than exact padding.

    Returns (dataset, order): ``predictions[inverse(order)]`` restores input order.
    """
    lengths = token_ids.row_lengths().numpy()
    order = np.argsort(lengths, kind="stable")
    ds = ids_dataset(tf.gather(token_ids, order), batch_size=batch_size, pad_id=pad_id,
                     input_names=input_names, bucketing=False, static_shapes=static_shapes)
    return ds, order


def restore_order(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    out = np.empty_like(values)
    out[order] = values
    return out


def auto_seq_length(lengths, max_length: int, percentile: float = 99.0, multiple: int = 8) -> tuple[int, int]:
    """Smallest length (a multiple of 8, capped at the model's maximum) covering ``percentile``% of texts.

    Returns (length, number of texts it truncates).
    """
    lengths = np.asarray(lengths)
    if lengths.size == 0:
        raise DataError("no examples to choose a sequence length from")
    if not 0 < percentile <= 100:
        raise ConfigError(f"length percentile must be in (0, 100], got {percentile}")
    need = int(np.ceil(np.percentile(lengths, percentile)))
    length = min(max_length, max(multiple, int(math.ceil(need / multiple) * multiple)))
    return length, int((lengths > length).sum())
