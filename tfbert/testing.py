"""Tiny encoders and a toy task, for tests and offline demos.

The encoders are saved in the same formats as real remote models (a TF Hub
encoder + preprocess SavedModel pair, and a HuggingFace ``save_pretrained``
folder) so that tests load them through the real registry and loaders.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
POSITIVE = ["good", "great", "excellent", "wonderful", "superb"]
NEGATIVE = ["bad", "awful", "terrible", "boring", "poor"]
NEUTRAL = ["okay", "average", "fine", "plain", "so-so"]
FILLER = ["the", "movie", "film", "was", "really", "plot", "actor", "story", "and", "a",
          "this", "it", "very", "quite", "scene", "music", "ending", "i", "thought", "overall"]


def toy_vocab() -> list[str]:
    """A small lower-case WordPiece vocabulary covering the toy task and ASCII."""
    words = sorted(set(POSITIVE + NEGATIVE + NEUTRAL + FILLER) - {"so-so"}) + ["so", "-"]
    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789.,!?'\"")
    chars = [c for c in chars if c not in words]
    return SPECIAL_TOKENS + words + chars + ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"]


def write_vocab(path: str | os.PathLike, vocab: list[str] | None = None) -> str:
    Path(path).write_text("\n".join(vocab or toy_vocab()) + "\n", encoding="utf-8")
    return str(path)


def toy_texts(n: int = 64, num_classes: int = 2, seed: int = 0):
    """A learnable task: the label is the sentiment word hidden among filler words.

    Returns (texts, labels) with labels 0..num_classes-1 (negative, positive,
    neutral); classes are balanced.
    """
    rng = np.random.default_rng(seed)
    keywords = [NEGATIVE, POSITIVE, NEUTRAL][:num_classes]
    texts, labels = [], []
    for i in range(n):
        label = i % num_classes
        words = list(rng.choice(FILLER, size=rng.integers(3, 9)))
        words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(keywords[label])))
        texts.append(" ".join(words))
        labels.append(label)
    order = rng.permutation(n)
    return [texts[i] for i in order], np.asarray(labels, dtype=np.int32)[order]


def make_tiny_hf_bert(folder: str | os.PathLike, hidden_size: int = 32, num_layers: int = 2,
                      num_heads: int = 2, max_positions: int = 128, seed: int = 0) -> str:
    """A random tiny BERT saved with ``save_pretrained`` (weights + tokenizer)."""
    import tensorflow as tf
    from transformers import BertConfig, BertTokenizerFast, TFBertModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab_file = write_vocab(folder / "vocab.txt")
    tf.random.set_seed(seed)
    config = BertConfig(vocab_size=len(toy_vocab()), hidden_size=hidden_size,
                        num_hidden_layers=num_layers, num_attention_heads=num_heads,
                        intermediate_size=hidden_size * 2, max_position_embeddings=max_positions)
    model = TFBertModel(config)
    model(model.dummy_inputs)
    model.save_pretrained(folder)
    BertTokenizerFast(vocab_file=vocab_file, do_lower_case=True,
                      model_max_length=max_positions).save_pretrained(folder)
    return str(folder)


def make_tiny_tfhub_bert(folder: str | os.PathLike, hidden_size: int = 32, num_layers: int = 2,
                         num_heads: int = 2, max_positions: int = 128, seed: int = 0) -> str:
    """A random tiny BERT as a TF Hub pair: ``folder/encoder`` and ``folder/preprocess``."""
    import tensorflow as tf
    from official.nlp.modeling import networks

    from tfbert.hub_format import save_hub_encoder, save_hub_preprocess

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab_file = write_vocab(folder / "vocab.txt")
    tf.random.set_seed(seed)
    network = networks.BertEncoderV2(
        vocab_size=len(toy_vocab()), hidden_size=hidden_size, num_layers=num_layers,
        num_attention_heads=num_heads, max_sequence_length=max_positions, type_vocab_size=2,
        inner_dim=hidden_size * 2)
    save_hub_encoder(network, str(folder / "encoder"), vocab_file=vocab_file, do_lower_case=True)
    save_hub_preprocess(str(folder / "preprocess"), vocab_file=vocab_file, do_lower_case=True)
    return str(folder)
