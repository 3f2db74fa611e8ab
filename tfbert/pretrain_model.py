"""The model of masked-LM pretraining: an encoder to start from, and Model Garden's BertPretrainerV2 around it.

An encoder starts as one of:

* a random ``BertEncoderV2`` of a size (``tfbert.scratch``), for a vocabulary;
* a HuggingFace BERT (a registry entry or ``hf:FOLDER``), its weights copied
  into the Model Garden network (``tfbert.convert``), with the checkpoint's
  own MLM head when it has one (``TFBertForMaskedLM``), else a fresh head;
* the output folder of an earlier ``tfbert pretrain`` (its last checkpoint).

The MLM head (``layers.MaskedLM`` in ``BertPretrainerV2``) predicts through the
encoder's word embedding table, so its output is tied to the input embeddings.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import tensorflow as tf
import tf_keras as keras

from tfbert.errors import ConfigError, UnknownModelError
from tfbert.files import read_json

logger = logging.getLogger(__name__)

SUMMARY = "pretrain.json"
# HF TFBertForMaskedLM head weight (after "predictions/") -> Model Garden MaskedLM weight (after "predictions/").
_HEAD_MAP = {"transform/dense/kernel": "transform/dense/kernel", "transform/dense/bias": "transform/dense/bias",
             "transform/LayerNorm/gamma": "transform/LayerNorm/gamma",
             "transform/LayerNorm/beta": "transform/LayerNorm/beta", "bias": "output_bias/bias"}


@dataclasses.dataclass
class Start:
    """Where pretraining starts: the encoder's config, its tokenizer folder, and how to fill the weights."""

    config: dict  # BERT config fields (vocab_size, hidden_size, ...): rebuilds the network
    tokenizer_dir: str
    kind: str  # "scratch", "huggingface" or "pretrained"
    source: str
    langs: tuple = ()
    hf_path: str | None = None
    checkpoint: str | None = None  # an earlier run's checkpoint


CONFIG_KEYS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
               "max_position_embeddings", "type_vocab_size", "hidden_act", "hidden_dropout_prob",
               "attention_probs_dropout_prob", "initializer_range")


def resolve_start(model: str | None, vocab: str | None, size: str | None, seq_length: int,
                  dropout: float | None) -> Start:
    """Check the choice of encoder (one-line errors) and say where it starts."""
    from tfbert.scratch import bert_config, parse_size, vocab_size

    scratch = _scratch_handle(model)
    if scratch is not None:  # scratch:SIZE@DIR, or a registry entry made of one: a new encoder
        if vocab or size:
            raise ConfigError(f"'{model}' names its size and vocabulary already; drop --vocab/--size")
        model, vocab, size = None, scratch.vocab_dir, scratch.size.name
    if model is None:
        if not (vocab and size):
            raise ConfigError("pass --vocab DIR and --size L-n_H-m to pretrain a new encoder, or --model NAME "
                              "to continue pretraining an existing one")
        config = bert_config(size, vocab_size(vocab), 0.1 if dropout is None else dropout)
        start = Start(config, str(vocab), "scratch", f"random {parse_size(size).name}")
    elif size:
        raise ConfigError("--size builds a new encoder; drop it when continuing from --model")
    elif (Path(model).expanduser() / SUMMARY).is_file():
        start = _earlier_run(Path(model).expanduser(), dropout)
    else:
        start = _huggingface(model, dropout)
    if vocab and start.kind != "scratch":
        given = vocab_size(vocab)
        if given != start.config["vocab_size"]:
            raise ConfigError(f"the vocabulary {vocab} has {given} tokens but {model}'s word embeddings have "
                              f"{start.config['vocab_size']} rows; continued pretraining uses the model's own "
                              f"vocabulary: drop --vocab")
        start.tokenizer_dir = str(vocab)
    positions = start.config["max_position_embeddings"]
    if seq_length <= 2:
        raise ConfigError(f"--seq-length {seq_length} leaves no room for text between [CLS] and [SEP]; "
                          f"pass a --seq-length from 3 to {positions}")
    if seq_length > positions:
        raise ConfigError(f"--seq-length {seq_length} is beyond the encoder's position table ({positions} "
                          f"positions); pass a --seq-length from 3 to {positions}")
    return start


def _scratch_handle(model: str | None):
    """The ScratchHandle ``model`` stands for (itself, or a registry entry's encoder), else None."""
    from tfbert import scratch
    from tfbert.registry import get_spec

    if model is None or (Path(model).expanduser() / SUMMARY).is_file():
        return None
    if scratch.is_handle(model):
        return scratch.parse_handle(model)
    try:
        encoder = get_spec(model).encoder
    except UnknownModelError:  # _huggingface says so in one line
        return None
    return scratch.parse_handle(encoder) if scratch.is_handle(encoder) else None


def _earlier_run(folder: Path, dropout: float | None) -> Start:
    summary = read_json(folder / SUMMARY) or {}
    if not isinstance(summary.get("encoder_config"), dict):
        raise ConfigError(f"{folder / SUMMARY} has no encoder_config (not written by tfbert pretrain, or "
                          f"damaged); pass the --output folder of a finished tfbert pretrain run as --model")
    config = dict(summary["encoder_config"])
    if dropout is not None:
        config.update(hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    checkpoint = tf.train.latest_checkpoint(str(folder / "checkpoints"))
    if not checkpoint:
        raise ConfigError(f"{folder} has no checkpoint to continue from (checkpoints/ is empty); "
                          f"pass the folder of a finished tfbert pretrain run")
    return Start(config, str(folder), "pretrained", str(folder), tuple(summary.get("langs", ())),
                 checkpoint=checkpoint)


def _huggingface(model: str, dropout: float | None) -> Start:
    from tfbert import convert
    from tfbert.registry import get_spec

    spec = get_spec(model)  # UnknownModelError names close matches
    if spec.backend != "huggingface":
        raise ConfigError(f"'{model}' is a {spec.backend} entry; continued pretraining needs a HuggingFace BERT "
                          f"entry (or hf:FOLDER) or the folder of an earlier tfbert pretrain run")
    path = spec.encoder_path
    hf = convert.load_config(path, model, action="pretrain from")
    convert.check_config(hf, model, 2, action="pretrain from")
    config = {k: getattr(hf, k) for k in CONFIG_KEYS}
    if dropout is not None:
        config.update(hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    return Start(config, spec.tokenizer_path, "huggingface", model, spec.langs, hf_path=path)


def build_network(start: Start, seed: int):
    """The Model Garden encoder of ``start.config`` (random weights, seeded; see tfbert.scratch)."""
    from tfbert import scratch

    return scratch.build_network(start.config, seed)


def build_pretrainer(network, hidden_act: str = "gelu"):
    """``BertPretrainerV2`` (encoder + MLM head tied to its word embeddings), built.

    The head's transform uses the encoder's activation, as HF's ``TFBertForMaskedLM``
    does (Model Garden's "gelu" would be the tanh approximation), so a copied HF head
    predicts what it predicted there.
    """
    from official.nlp.modeling import models

    from tfbert.scratch import HF_ACTIVATIONS, keras_activation

    pretrainer = models.BertPretrainerV2(
        encoder_network=network, mlm_activation=keras_activation(HF_ACTIVATIONS[hidden_act]),
        mlm_initializer=keras.initializers.TruncatedNormal(stddev=0.02), name="bert")
    ids = tf.zeros((1, 4), tf.int32)
    pretrainer(dict(input_word_ids=ids, input_mask=tf.ones_like(ids), input_type_ids=ids,
                    masked_lm_positions=tf.zeros((1, 1), tf.int32)))
    return pretrainer


def fill_weights(start: Start, pretrainer) -> str:
    """Put the starting weights in; returns a line for the log saying what was loaded."""
    if start.kind == "scratch":
        return f"encoder: {start.source} (vocabulary {start.config['vocab_size']}); MLM head: fresh"
    if start.kind == "pretrained":
        tf.train.Checkpoint(model=pretrainer).restore(start.checkpoint).expect_partial()
        return f"encoder and MLM head: {start.checkpoint}"
    from tfbert import convert

    hf_model, _ = convert.load_hf_model(start.hf_path, start.source, action="pretrain from")
    copied = convert.copy_weights(hf_model, pretrainer.encoder_network)
    head = _copy_hf_head(start.hf_path, pretrainer)
    return (f"encoder: {start.source} ({copied} tensors copied); MLM head: "
            + ("the checkpoint's own (TFBertForMaskedLM)" if head else "fresh (the checkpoint has none)"))


def _copy_hf_head(path: str, pretrainer) -> bool:
    """Copy a ``TFBertForMaskedLM`` head into the MaskedLM layer when the checkpoint has one."""
    from transformers import TFBertForMaskedLM

    try:
        hf, info = TFBertForMaskedLM.from_pretrained(path, output_loading_info=True)
    except Exception:  # noqa: BLE001 - no MLM weights readable: a fresh head
        return False
    if any("predictions" in key or "mlm" in key for key in info.get("missing_keys", [])):
        return False
    theirs = {w.name.split("predictions/", 1)[1].split(":")[0]: w for w in hf.weights if "predictions/" in w.name}
    ours = {w.name.split("predictions/", 1)[1].split(":")[0]: w for w in pretrainer.masked_lm.weights
            if "predictions/" in w.name}
    if set(_HEAD_MAP) - set(theirs) or set(_HEAD_MAP.values()) - set(ours):
        return False
    for hf_name, mg_name in _HEAD_MAP.items():
        ours[mg_name].assign(theirs[hf_name].numpy())
    return True


def mlm_loss_and_accuracy(logits, ids, weights):
    """Mean cross-entropy over the masked positions (weights 1; 0 for padding) and the share predicted right."""
    logits = tf.cast(logits, tf.float32)
    losses = keras.losses.sparse_categorical_crossentropy(ids, logits, from_logits=True)
    total = tf.maximum(tf.reduce_sum(weights), 1.0)
    right = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), ids), tf.float32)
    return tf.reduce_sum(losses * weights) / total, tf.reduce_sum(right * weights) / total
