"""Write encoders and preprocess models as TF Hub-format SavedModels.

The layout is that of TF Hub's BERT models (see the "Text embeddings with
Transformer Encoders" SavedModel API): an encoder taking
``input_word_ids/input_mask/input_type_ids`` and returning ``pooled_output``,
``sequence_output``, ``encoder_outputs`` and ``default``; a preprocess model
callable on strings with ``tokenize`` and ``bert_pack_inputs`` sub-objects.
``hub.KerasLayer`` loads both, so written folders work wherever a TF Hub URL
does.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras


def save_hub_encoder(network: keras.layers.Layer, path: str, vocab_file: str | None = None,
                     do_lower_case: bool | None = None) -> str:
    """Save a Model Garden encoder network (e.g. ``BertEncoderV2``) in TF Hub layout.

    Args:
        network: keras layer. Called on the three standard int32 inputs (dict)
            it returns a dict with ``pooled_output`` and ``sequence_output``.
        path: str. Output folder.
        vocab_file: str or None. Kept as an asset, as TF Hub BERT encoders do.
        do_lower_case: bool or None. Stored next to the vocabulary.
    """
    inputs = {name: keras.Input(shape=(None,), dtype=tf.int32, name=name)
              for name in ("input_word_ids", "input_mask", "input_type_ids")}
    outputs = dict(network(inputs))
    outputs["default"] = outputs["pooled_output"]
    core = keras.Model(inputs=inputs, outputs=outputs)
    if vocab_file:
        core.vocab_file = tf.saved_model.Asset(vocab_file)
        core.do_lower_case = tf.Variable(bool(do_lower_case), trainable=False)
    core.save(path, include_optimizer=False, save_format="tf")
    return path


def save_hub_preprocess(path: str, vocab_file: str, do_lower_case: bool,
                        default_seq_length: int = 128, tokenizer=None) -> str:
    """Save a BERT preprocess model (strings -> packed ids) in TF Hub layout.

    Args:
        path: str. Output folder.
        vocab_file: str. WordPiece vocabulary, one token a line.
        do_lower_case: bool. Lower-case (and strip accents) before WordPiece.
        default_seq_length: int. Length used when the model is called directly.
        tokenizer: optional keras layer mapping strings -> ragged ids with
            ``get_special_tokens_dict()``; defaults to tf-models-official's
            ``BertTokenizer`` (TF Hub's own choice, not HF-exact on all text).
    """
    from official.nlp.modeling import layers as nlp_layers
    from official.nlp.tools import export_tfhub_lib

    if tokenizer is None:
        preprocessing = export_tfhub_lib.create_preprocessing(
            vocab_file=vocab_file, do_lower_case=do_lower_case,
            tokenize_with_offsets=False, default_seq_length=default_seq_length)
    else:
        sentences = keras.layers.Input(shape=(), dtype=tf.string, name="sentences")
        tokens = tokenizer(sentences)
        pack = nlp_layers.BertPackInputs(
            seq_length=default_seq_length,
            special_tokens_dict=tokenizer.get_special_tokens_dict())
        preprocessing = keras.Model(sentences, pack(tokens))
        preprocessing.tokenize = keras.Model(sentences, tokens)
        preprocessing.tokenize.get_special_tokens_dict = tf.train.Checkpoint()
        preprocessing.tokenize.get_special_tokens_dict.__call__ = tf.function(
            lambda: tokenizer.get_special_tokens_dict(), input_signature=[])
        preprocessing.bert_pack_inputs = export_tfhub_lib.BertPackInputsSavedModelWrapper(pack)
    preprocessing.save(path, include_optimizer=False, save_format="tf")
    return path
