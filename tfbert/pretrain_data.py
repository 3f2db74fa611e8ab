"""The masked-LM input pipeline: a corpus tokenized once, then batches in a seeded order, masked per batch.

Texts stream from ``tfbert.data.corpus.iter_texts`` through ``tf.data``
(1024 at a time through the in-graph WordPiece tokenizer) and only their ids
are kept: one flat int32 array and its row splits, a few bytes a token, never
the texts. Each epoch then reads the rows in an order fixed by (seed, epoch) (a stateless shuffle),
adds [CLS]/[SEP], batches them from length buckets (each batch padded to its
own longest row, as fine-tuning does) and masks each batch with a seed of
(epoch, batch index): see ``tfbert.masking``. A resumed run skips the batches
it has trained on and sees exactly the batches, and masks, that the
uninterrupted run would have.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from tfbert.data.corpus import check_sources, iter_texts
from tfbert.errors import DataError, TfbertError
from tfbert.pipeline import batches_per_epoch, bucket_rows, fitted_boundaries

_CHUNK = 1024  # texts per tokenizer call


@dataclasses.dataclass
class TokenizedCorpus:
    """Token ids of every non-empty text (without [CLS]/[SEP]), as flat values and row splits."""

    values: np.ndarray
    splits: np.ndarray
    texts: int  # texts read, empty ones included

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.splits)

    @property
    def rows(self) -> int:
        return len(self.splits) - 1

    @property
    def tokens(self) -> int:
        return int(self.splits[-1])


def tokenize_corpus(sources, tokenizer, seq_length: int, max_texts: int | None = None,
                    text_column: str = "text") -> TokenizedCorpus:
    """Tokenize the corpus once: ids truncated to ``seq_length - 2``, [PAD] tokens dropped, empty texts left out."""
    sources = check_sources(sources)
    failure: list[TfbertError] = []

    def texts():
        try:
            yield from iter_texts(sources, max_texts, text_column)
        except TfbertError as err:  # tf.data would wrap it in a multi-line op error: re-raise it below
            failure.append(err)

    pad_id = tokenizer.get_special_tokens_dict().get("padding_id", -1)

    def ids_of(batch):
        ids = tokenizer.tokenize(batch)
        ids = tf.ragged.boolean_mask(ids, tf.not_equal(ids, pad_id))[:, :seq_length - 2]
        return ids.flat_values, ids.row_lengths()

    ds = tf.data.Dataset.from_generator(texts, output_signature=tf.TensorSpec((), tf.string))
    ds = ds.batch(_CHUNK).map(ids_of, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)
    values, lengths = [], []
    for flat, row_lengths in ds.as_numpy_iterator():
        values.append(flat.astype(np.int32))
        lengths.append(row_lengths)
    if failure:
        raise failure[0]
    lengths = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
    kept = lengths[lengths > 0]
    splits = np.concatenate([[0], np.cumsum(kept)]).astype(np.int64)
    values = np.concatenate(values) if values else np.zeros(0, np.int32)
    return TokenizedCorpus(values, splits, int(len(lengths)))


def check_corpus(corpus: TokenizedCorpus, batch_size: int, sources) -> None:
    if corpus.rows == 0:
        raise DataError(f"the corpus {', '.join(map(str, sources))} has no text with tokens ({corpus.texts} "
                        f"lines read); pass a text file with one text a line")
    if corpus.rows < batch_size:
        raise DataError(f"the corpus has only {corpus.rows} texts, fewer than one batch (--batch-size "
                        f"{batch_size}); pass a larger corpus or a smaller --batch-size")


class PretrainBatches:
    """Masked-LM batches of a tokenized corpus, epoch by epoch.

    Args:
        corpus: ``TokenizedCorpus``.
        tokenizer: its ``WordPieceTokenizer`` (special token ids).
        masker: ``tfbert.masking.Masker``.
        batch_size: int. Texts per batch.
        seed: int. The run's seed: row order and masks follow from it.
    """

    def __init__(self, corpus: TokenizedCorpus, tokenizer, masker, batch_size: int, seed: int):
        specials = tokenizer.get_special_tokens_dict()
        self._cls, self._sep = int(specials["start_of_sequence_id"]), int(specials["end_of_segment_id"])
        self._pad = int(specials["padding_id"])
        self._values = tf.constant(corpus.values)
        self._splits = tf.constant(corpus.splits)
        self.lengths = corpus.lengths + 2  # with [CLS] and [SEP]
        self.masker, self.batch_size, self.seed = masker, int(batch_size), int(seed)
        bounds = fitted_boundaries(self.lengths, self.batch_size)
        self.steps_per_epoch = batches_per_epoch(self.lengths, self.batch_size, bounds)

    def _row(self, index):
        ids = self._values[self._splits[index]:self._splits[index + 1]]
        return tf.concat([[self._cls], ids, [self._sep]], 0)

    def _epoch_batches(self, epoch):
        """One epoch's padded batches with (epoch, index): rows in an order fixed by (seed, epoch)."""
        seed = tf.stack([tf.constant(self.seed, tf.int64), epoch])
        order = tf.random.experimental.stateless_shuffle(tf.range(len(self.lengths), dtype=tf.int64), seed)
        rows = tf.data.Dataset.from_tensor_slices(order).map(self._row)
        batches = bucket_rows(rows, self.lengths, self.batch_size, tf.constant(self._pad, tf.int32))
        return batches.enumerate().map(lambda index, ids: (epoch, index, ids))

    def _mask(self, epoch, index, ids):
        seed = tf.random.experimental.stateless_fold_in(tf.stack([tf.constant(self.seed, tf.int64), epoch]), index)
        return self.masker(ids, seed)

    def stream(self, start_step: int = 0, total_steps: int | None = None) -> tf.data.Dataset:
        """``(features, targets)`` batches from global step ``start_step`` on, epoch after epoch.

        One dataset for the whole run (its functions are traced once); batch k
        of epoch e is the same, with the same masks, whatever step it starts at.
        """
        total_steps = total_steps or start_step + self.steps_per_epoch
        first, skip = divmod(int(start_step), self.steps_per_epoch)
        last = -(-int(total_steps) // self.steps_per_epoch)
        ds = tf.data.Dataset.range(first, max(last, first + 1)).flat_map(self._epoch_batches).skip(skip)
        ds = ds.map(self._mask, num_parallel_calls=tf.data.AUTOTUNE)
        return ds.take(max(int(total_steps) - int(start_step), 0)).prefetch(tf.data.AUTOTUNE)
