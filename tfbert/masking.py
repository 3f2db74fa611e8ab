"""Dynamic masking for masked-LM pretraining, seeded per batch.

BERT's recipe, with tensorflow-text's ops: ``mask_language_model`` picks
``rate`` of each row's selectable tokens (``RandomItemSelector``; [CLS],
[SEP], [PAD], [MASK] and [UNK] are never picked), then replaces 80% of the
picks by [MASK], 10% by a random token and keeps 10% (``MaskValuesChooser``).
With whole-word masking the selector picks words (a word piece and the
``##`` pieces that follow it) and every piece of a picked word is masked.

tensorflow-text draws with stateful ops (``tf.random.shuffle``/``uniform``),
so the masks a batch gets depend on how many batches the process masked
before it, and a resumed run would see other masks than the run it resumes.
Here every draw is a stateless op seeded by the batch's own seed (a function
of the run's seed, the epoch and the batch's index), so batch k of epoch e is
masked the same way in any process.

The number picked in a row is ``ceil(rate * selectable)`` (tensorflow-text's
rule), so a row of 3 tokens gets 1 mask (33%): on very short texts the
masked share is above ``rate``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from tfbert.errors import ConfigError

_SPECIAL = ("cls_token", "sep_token", "pad_token", "mask_token", "unk_token")


@dataclasses.dataclass(frozen=True)
class MaskingOptions:
    """What to mask and how: the share of tokens picked, and the share of picks replaced by [MASK] / a random token."""

    rate: float = 0.15
    mask_token_rate: float = 0.8
    random_token_rate: float = 0.1
    whole_word: bool = False

    def __post_init__(self):
        if not 0 < self.rate <= 1:
            raise ConfigError(f"--mask-rate must be in (0, 1], got {self.rate}")
        for name in ("mask_token_rate", "random_token_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be in [0, 1], got {getattr(self, name)}")
        if self.mask_token_rate + self.random_token_rate > 1 + 1e-9:
            raise ConfigError(f"--mask-token-rate ({self.mask_token_rate}) plus --random-token-rate "
                              f"({self.random_token_rate}) must be at most 1 (the rest keep their token)")


def _fold(seed: tf.Tensor, data) -> tf.Tensor:
    return tf.random.experimental.stateless_fold_in(seed, tf.cast(data, tf.int64))


def seeded_shuffle(seed: tf.Tensor):
    """A ``shuffle_fn`` for ``RandomItemSelector``: stateless, a new order for every row.

    The selector shuffles each row's selectable positions, which are indices
    into the batch's flat values and so differ from row to row: the first one
    tells rows apart, so rows of equal length are not shuffled alike.
    """
    def shuffle(positions):
        first = tf.concat([tf.reshape(positions, [-1])[:1], tf.constant([-1], positions.dtype)], 0)[0]
        return tf.random.experimental.stateless_shuffle(positions, _fold(seed, first))

    return shuffle


class SeededMaskValuesChooser(tf_text.MaskValuesChooser):
    """``MaskValuesChooser`` drawing with stateless ops seeded by ``seed`` (same rules: [MASK] / random / keep)."""

    def __init__(self, vocab_size, mask_token, mask_token_rate, random_token_rate, seed):
        super().__init__(vocab_size, mask_token, mask_token_rate, random_token_rate)
        self._seed = seed

    def get_mask_values(self, masked_lm_ids):
        flat = masked_lm_ids.flat_values
        shape = tf.shape(flat)
        draw = tf.random.stateless_uniform(shape, _fold(self._seed, 1))
        random_ids = tf.random.stateless_uniform(shape, _fold(self._seed, 2), minval=0,
                                                 maxval=self.vocab_size, dtype=flat.dtype)
        mask_rate = self._mask_token_rate  # (no public property for it)
        values = tf.where(draw < mask_rate, tf.cast(self.mask_token, flat.dtype), flat)
        inject = (draw >= mask_rate) & (draw < mask_rate + self.random_token_rate)
        return masked_lm_ids.with_flat_values(tf.where(inject, random_ids, values))


class WholeWordSelector(tf_text.RandomItemSelector):
    """Picks whole words of ``[batch, (words), (pieces)]`` ids: a word is selectable when its first piece is.

    Selection runs on the words' first pieces, a ``[batch, (words)]`` tensor,
    so the seeded shuffle sees distinct positions per row (as for tokens).
    """

    def get_selection_mask(self, input_ids, axis=1):
        first_pieces = tf.gather(input_ids.flat_values, input_ids.values.row_starts())
        words = tf.RaggedTensor.from_row_splits(first_pieces, input_ids.row_splits)
        return super().get_selection_mask(words, axis=1)


def group_words(ids: tf.RaggedTensor, continuation: tf.Tensor) -> tf.RaggedTensor:
    """``[batch, (tokens)]`` -> ``[batch, (words), (pieces)]``: a ``##`` piece joins the word before it.

    ``continuation``: bool ``[vocab_size]``, True for ``##`` pieces. A row's
    first token ([CLS]) always starts a word.
    """
    flat = ids.flat_values
    starts = tf.logical_not(tf.gather(continuation, flat))
    starts = tf.tensor_scatter_nd_update(starts, tf.expand_dims(ids.row_starts(), 1),
                                         tf.ones_like(ids.row_starts(), tf.bool))
    pieces = tf.RaggedTensor.from_row_starts(flat, tf.where(starts)[:, 0])
    words_per_row = tf.math.unsorted_segment_sum(tf.cast(starts, tf.int64), ids.value_rowids(), ids.nrows())
    return tf.RaggedTensor.from_row_lengths(pieces, words_per_row)


class Masker:
    """Masks batches of packed ids ([CLS] ... [SEP], padded) into BertPretrainerV2 inputs and MLM targets.

    Args:
        tokenizer: ``WordPieceTokenizer`` (its vocabulary and special tokens).
        options: ``MaskingOptions``.
        max_selections: most picks in one row (tensorflow-text's cap).
    """

    def __init__(self, tokenizer, options: MaskingOptions, max_selections: int):
        specials = tokenizer.get_special_tokens_dict()
        missing = [k for k in ("start_of_sequence_id", "end_of_segment_id", "padding_id", "mask_id") if k not in specials]
        if missing:
            raise ConfigError(f"the vocabulary lacks the special tokens pretraining needs ({', '.join(missing)}); "
                              f"use a vocabulary with [CLS], [SEP], [PAD] and [MASK]")
        self.options = options
        self.vocab_size = int(specials["vocab_size"])
        self.mask_id, self.pad_id = int(specials["mask_id"]), int(specials["padding_id"])
        self.special_ids = sorted({tokenizer.token_to_id(getattr(tokenizer, name)) for name in _SPECIAL
                                   if getattr(tokenizer, name) is not None})
        self.max_selections = int(max_selections)
        suffix = tokenizer.suffix_indicator
        self._continuation = tf.constant(np.array([t.startswith(suffix) and t != suffix for t in tokenizer.vocab]))

    def __call__(self, ids: tf.Tensor, seed: tf.Tensor):
        """``ids`` int32 ``[batch, length]`` padded with [PAD]; ``seed`` int64 ``[2]``.

        Returns (features, targets): ``input_word_ids/input_mask/input_type_ids/
        masked_lm_positions`` and ``masked_lm_ids/masked_lm_weights``.
        """
        opts = self.options
        ragged = tf.RaggedTensor.from_tensor(ids, padding=self.pad_id)
        selector_type = WholeWordSelector if opts.whole_word else tf_text.RandomItemSelector
        selector = selector_type(self.max_selections, opts.rate, unselectable_ids=self.special_ids,
                                 shuffle_fn=seeded_shuffle(_fold(seed, 0)))
        chooser = SeededMaskValuesChooser(self.vocab_size, self.mask_id, opts.mask_token_rate,
                                          opts.random_token_rate, _fold(seed, 1))
        inputs = group_words(ragged, self._continuation) if opts.whole_word else ragged
        masked, positions, targets = tf_text.mask_language_model(inputs, selector, chooser, axis=1)
        mask = tf.cast(tf.not_equal(ids, self.pad_id), tf.int32)
        features = {"input_word_ids": masked.to_tensor(self.pad_id, shape=tf.shape(ids)),
                    "input_mask": mask, "input_type_ids": tf.zeros_like(ids),
                    "masked_lm_positions": tf.cast(positions.to_tensor(0), tf.int32)}
        weights = tf.ones_like(targets, tf.float32).to_tensor(0.0)
        return features, {"masked_lm_ids": tf.cast(targets.to_tensor(0), tf.int32), "masked_lm_weights": weights}
