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


def bert_config(size: EncoderSize | str, vocab_size: int, dropout: float = 0.1) -> dict:
    """HuggingFace ``BertConfig`` fields of an encoder of ``size`` (BERT's choices: GELU, 2 segments,
    initialiser stddev 0.02), as :func:`build_network` takes them."""
    if isinstance(size, str):
        size = parse_size(size)
    if vocab_size < 1:
        raise ConfigError(f"a vocabulary of {vocab_size} tokens: its vocab.txt is empty; make one with "
                          f"'tfbert vocab CORPUS --output DIR'")
    return dict(vocab_size=int(vocab_size), hidden_size=size.hidden, num_hidden_layers=size.layers,
                num_attention_heads=size.heads, intermediate_size=size.intermediate,
                max_position_embeddings=size.max_seq_length, type_vocab_size=2, hidden_act="gelu",
                hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout, initializer_range=0.02)


# HF ``hidden_act`` -> the activation name tfbert builds with. HF "gelu" is the exact
# (erf) GELU; Model Garden's default is the tanh approximation, so it is always passed.
HF_ACTIVATIONS = {
    "gelu": "gelu",  # tf_keras gelu(approximate=False)
    "gelu_new": "approx_gelu",
    "gelu_pytorch_tanh": "approx_gelu",
    "relu": "relu",
}


def keras_activation(name: str):
    """The Keras activation for a value of HF_ACTIVATIONS ("approx_gelu": Model Garden's tanh GELU)."""
    from official.modeling import activations as mg_activations

    return mg_activations.gelu if name == "approx_gelu" else name


def network_from_config(config, activation: str = "gelu"):
    """A Model Garden ``BertEncoderV2`` with ``config``'s sizes (an HF ``BertConfig`` or a namespace of its
    fields), random weights, built."""
    import tensorflow as tf
    import tf_keras as keras
    from official.nlp.modeling import networks

    network = networks.BertEncoderV2(
        vocab_size=config.vocab_size, hidden_size=config.hidden_size,
        num_layers=config.num_hidden_layers, num_attention_heads=config.num_attention_heads,
        max_sequence_length=config.max_position_embeddings,
        type_vocab_size=config.type_vocab_size, inner_dim=config.intermediate_size,
        inner_activation=keras_activation(activation),
        output_dropout=config.hidden_dropout_prob,
        attention_dropout=config.attention_probs_dropout_prob,
        initializer=keras.initializers.TruncatedNormal(stddev=config.initializer_range))
    ids = tf.zeros((1, 2), tf.int32)
    network(dict(input_word_ids=ids, input_mask=tf.ones_like(ids), input_type_ids=ids))
    return network


def build_network(config: dict, seed: int = 0):
    """A randomly initialised ``BertEncoderV2`` of BERT ``config`` fields (a dict), seeded.

    ``keras.utils.set_random_seed`` seeds Python's, NumPy's and TF's generators:
    Keras initialisers without a seed draw their op seeds from Python's ``random``,
    so ``tf.random.set_seed`` alone gives other weights in every process (and a
    seeded initialiser would repeat the same values in every layer of a shape).
    """
    import types

    import tf_keras as keras

    keras.utils.set_random_seed(seed)
    config = types.SimpleNamespace(**config)
    return network_from_config(config, HF_ACTIVATIONS[config.hidden_act])


# ------------------------------------------------------------------ handles

HANDLE_PREFIX = "scratch:"
# The sizes tfbert vocab lists in a vocabulary's registry.yaml: tiny to BERT-base.
REGISTRY_SIZES = ("L-2_H-128", "L-4_H-256", "L-4_H-512", "L-6_H-384", "L-8_H-512", "L-12_H-768")


@dataclasses.dataclass(frozen=True)
class ScratchHandle:
    """``scratch:SIZE[,seed=N]@VOCAB_DIR``: a random encoder of SIZE on the vocabulary in VOCAB_DIR."""

    size: EncoderSize
    vocab_dir: str
    seed: int = 0

    @property
    def handle(self) -> str:
        seed = f",seed={self.seed}" if self.seed else ""
        return f"{HANDLE_PREFIX}{self.size.name}{seed}@{self.vocab_dir}"


def is_handle(handle) -> bool:
    return isinstance(handle, str) and handle.startswith(HANDLE_PREFIX)


def parse_handle(handle: str, base_dir: str | None = None) -> ScratchHandle:
    """``scratch:L-4_H-256@DIR`` (or ``scratch:L-4_H-256,seed=1@DIR``) -> :class:`ScratchHandle`.

    A relative DIR is taken from ``base_dir`` (a registry file's folder), else the working folder,
    and made absolute here so the handle means the same in every process.
    """
    import os

    body = handle[len(HANDLE_PREFIX):] if is_handle(handle) else handle
    size_part, at, folder = body.partition("@")
    if not at or not folder.strip():
        raise ConfigError(f"bad handle '{handle}'; write {HANDLE_PREFIX}<size>@<vocabulary folder>, "
                          f"e.g. {HANDLE_PREFIX}L-4_H-256@runs/ko-vocab (a folder written by tfbert vocab)")
    size_text, *options = size_part.split(",")
    seed = 0
    for option in options:
        key, eq, value = option.partition("=")
        if key.strip() != "seed" or not eq or not value.strip().isdigit():
            raise ConfigError(f"bad option '{option}' in '{handle}'; the only option is seed=<integer>, "
                              f"e.g. {HANDLE_PREFIX}L-4_H-256,seed=1@DIR")
        seed = int(value)
    folder = os.path.expanduser(folder.strip())
    if not os.path.isabs(folder):
        folder = os.path.join(base_dir or os.getcwd(), folder)
    return ScratchHandle(parse_size(size_text), os.path.normpath(os.path.abspath(folder)), seed)


def check_vocab_dir(folder: str) -> None:
    """A one-line error unless ``folder`` holds vocab.txt and the HuggingFace tokenizer settings."""
    from pathlib import Path

    path = Path(folder)
    fix = f"make one with 'tfbert vocab CORPUS --output {folder}'"
    if not path.is_dir():
        raise ConfigError(f"vocabulary folder {folder} does not exist; {fix}")
    if not (path / "vocab.txt").is_file():
        raise ConfigError(f"vocabulary folder {folder} has no vocab.txt; {fix}")
    if not ((path / "tokenizer_config.json").is_file() or (path / "tokenizer.json").is_file()):
        raise ConfigError(f"vocabulary folder {folder} has no tokenizer_config.json or tokenizer.json (the "
                          f"lower-casing settings); {fix}, or save a BertTokenizerFast there")


def vocab_size(folder: str) -> int:
    """The number of tokens in the vocabulary folder ``folder`` (checked as check_vocab_dir does)."""
    import os

    from tfbert.tokenizers.wordpiece import load_vocab

    folder = os.path.expanduser(str(folder))
    check_vocab_dir(folder)
    size = len(load_vocab(f"{folder}/vocab.txt"))
    if not size:
        raise ConfigError(f"vocabulary folder {folder} has an empty vocab.txt; make one with "
                          f"'tfbert vocab CORPUS --output {folder} --overwrite'")
    return size


def spec_fields(handle: str, base_dir: str | None = None) -> dict:
    """The registry fields (backend, encoder, preprocess, sizes, cased, langs) of a scratch handle."""
    from tfbert.files import read_json

    parsed = parse_handle(handle, base_dir)
    check_vocab_dir(parsed.vocab_dir)
    config = read_json(f"{parsed.vocab_dir}/tokenizer_config.json") or {}
    info = read_json(f"{parsed.vocab_dir}/tfbert_vocab.json") or {}
    lower = config.get("do_lower_case")
    return {"backend": "tfhub", "encoder": parsed.handle, "preprocess": parsed.handle,
            "langs": tuple(info.get("langs") or ()), "cased": None if lower is None else not lower,
            "layers": parsed.size.layers, "hidden": parsed.size.hidden, "heads": parsed.size.heads,
            "max_seq_length": parsed.size.max_seq_length,
            "description": f"from scratch (random weights), {parsed.size.name} on {parsed.vocab_dir}"}


def registry_yaml(name: str, langs, cased: bool, sizes=REGISTRY_SIZES) -> str:
    """A registry file with one scratch entry per size on the vocabulary in the file's own folder."""
    import yaml

    models = []
    for text in sizes:
        size = parse_size(text)
        handle = f"{HANDLE_PREFIX}{size.name}@."  # '.' is this file's folder: the vocabulary moves with it
        models.append({"name": f"{name}-scratch-l{size.layers}-h{size.hidden}", "encoder": handle,
                       "preprocess": handle, "layers": size.layers, "hidden": size.hidden, "heads": size.heads,
                       "description": f"from scratch (random weights), {size.name} on the {name} vocabulary; "
                                      f"pretrain or fine-tune it"})
    data = {"defaults": {"backend": "tfhub", "langs": list(langs), "cased": bool(cased), "max_seq_length": 512},
            "models": models}
    return ("# Encoders from scratch on this vocabulary (written by tfbert vocab). Scratch paths are\n"
            "# relative to this file. Use: tfbert --registry THIS_FILE models\n"
            + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
