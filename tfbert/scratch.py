"""Encoders from scratch: randomly initialised Model Garden ``BertEncoderV2`` networks.

Sizes are named as Google's Small BERT family names them: ``L-4_H-256`` is 4
layers of hidden size 256; heads default to ``H / 64`` and the feed-forward
width to ``4 H`` (as in BERT), or ``L-4_H-256_A-8`` sets the heads.
"""

from __future__ import annotations

import dataclasses
import re

from tfbert.errors import ConfigError

# The Small BERT grid (Turc et al. 2019) plus BERT-base; any L-n_H-m also works.
SMALL_BERT_SIZES = tuple(f"L-{layers}_H-{hidden}" for layers in (2, 4, 6, 8, 10, 12)
                         for hidden in (128, 256, 512, 768))

_SIZE = re.compile(r"^L-(\d+)_H-(\d+)(?:_A-(\d+))?$")


@dataclasses.dataclass(frozen=True)
class EncoderSize:
    """The shape of a BERT encoder."""

    layers: int
    hidden: int
    heads: int
    intermediate: int
    max_seq_length: int = 512

    @property
    def name(self) -> str:
        default_heads = max(1, self.hidden // 64)
        return f"L-{self.layers}_H-{self.hidden}" + ("" if self.heads == default_heads else f"_A-{self.heads}")


def parse_size(size: str, max_seq_length: int = 512) -> EncoderSize:
    """``"L-4_H-256"`` (or ``"L-4_H-256_A-4"``) -> :class:`EncoderSize`; a one-line error otherwise."""
    match = _SIZE.match(str(size).strip())
    if not match:
        raise ConfigError(f"bad encoder size '{size}'; write it as L-<layers>_H-<hidden>[_A-<heads>], "
                          f"e.g. L-4_H-256 (Small BERT sizes: {', '.join(SMALL_BERT_SIZES[:4])}, ...)")
    layers, hidden = int(match.group(1)), int(match.group(2))
    heads = int(match.group(3)) if match.group(3) else max(1, hidden // 64)
    if layers < 1 or hidden < 1 or heads < 1 or hidden % heads:
        raise ConfigError(f"bad encoder size '{size}': layers, hidden and heads must be positive and "
                          f"hidden ({hidden}) a multiple of heads ({heads})")
    if max_seq_length < 2:
        raise ConfigError(f"max_seq_length must be at least 2, got {max_seq_length}")
    return EncoderSize(layers, hidden, heads, 4 * hidden, int(max_seq_length))


def build_network(size: EncoderSize | str, vocab_size: int, seed: int = 0, dropout: float = 0.1):
    """A randomly initialised Model Garden ``BertEncoderV2`` (built, so its weights exist).

    The global TF seed is set to ``seed`` first, so the same (size, vocab_size, seed) gives the
    same weights. (A seeded Keras initialiser would not do: it repeats the same values in every
    layer of the same shape.)
    """
    import tensorflow as tf
    import tf_keras as keras
    from official.nlp.modeling import networks

    if isinstance(size, str):
        size = parse_size(size)
    if vocab_size < 1:
        raise ConfigError(f"vocab_size must be positive, got {vocab_size}")
    tf.random.set_seed(seed)
    network = networks.BertEncoderV2(
        vocab_size=int(vocab_size), hidden_size=size.hidden, num_layers=size.layers,
        num_attention_heads=size.heads, max_sequence_length=size.max_seq_length, type_vocab_size=2,
        inner_dim=size.intermediate, inner_activation="gelu",
        output_dropout=dropout, attention_dropout=dropout,
        initializer=keras.initializers.TruncatedNormal(stddev=0.02))
    ids = tf.zeros((1, 2), tf.int32)
    network(dict(input_word_ids=ids, input_mask=tf.ones_like(ids), input_type_ids=ids))
    return network
