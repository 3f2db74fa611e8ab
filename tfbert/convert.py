"""Convert HuggingFace BERT checkpoints into TF Hub-format SavedModels.

:func:`convert_checkpoint` loads a BERT checkpoint with ``transformers``
(TensorFlow side), copies its weights into a TF Model Garden
``BertEncoderV2`` and writes, under ``out_dir``::

    encoder/                 TF Hub encoder SavedModel (input_word_ids,
                             input_mask, input_type_ids -> pooled_output,
                             sequence_output, encoder_outputs, default)
    preprocess/              TF Hub preprocess SavedModel (strings -> packed
                             ids; ``tokenize`` and ``bert_pack_inputs``)
    vocab.txt                the WordPiece vocabulary
    tfbert_conversion.json   source, config, date, differences measured

The folder is a valid model name (``create_classifier(out_dir)``), and
``hub.KerasLayer`` loads either SavedModel.

Registry entries can name converted models with the handle
``converted:<registry name>/encoder`` (and ``.../preprocess``): the first use
converts that HuggingFace entry into ``$TFBERT_CACHE/converted/<name>``
(default ``~/.cache/tfbert/converted/<name>``); see ``tfbert.conversion_cache``.

Only BERT-architecture checkpoints with a WordPiece vocabulary are
supported (``model_type == "bert"``, a ``BertTokenizer``).
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import os
import time
from pathlib import Path

from tfbert.errors import ConfigError, ExportError
from tfbert.files import atomic_dir, write_json
from tfbert.scratch import HF_ACTIVATIONS

_logger = logging.getLogger(__name__)

#: Bumped when the written format changes, so cached conversions are redone.
CONVERTER_VERSION = 1
INFO_FILE = "tfbert_conversion.json"
_SUPPORTED = "BERT with a WordPiece vocabulary only"


# Sentences pushed through both models at conversion time (the full check is
# scripts/check_conversion.py).
_CHECK_SENTENCES = [
    "The movie was surprisingly good, and the ending was great!",
    "Café déjà vu: naïve façades, RÉSUMÉ of Zoë's coöperation.",
    "영화가 정말 재미있었어요. 배우들의 연기도 훌륭했습니다.",
    "",
    "Numbers 3.14, e-mail: someone@example.com; URL https://example.org/a?b=c",
    "中文字符和日本語のテキスト mixed with English.",
    "a " * 300,
    "Don't stop -- won't stop!!! (really?) [yes] {no} <maybe>",
]


# ---------------------------------------------------------------------------
# Inspecting the checkpoint


def _one_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _quiet_transformers():
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()


def load_config(checkpoint: str, label: str, action: str = "convert"):
    """The HuggingFace config of ``checkpoint``; errors say "cannot <action> '<label>'"."""
    from transformers import AutoConfig
    try:
        return AutoConfig.from_pretrained(checkpoint)
    except Exception as err:  # noqa: BLE001 (HF raises OSError, ValueError, ...)
        raise ConfigError(
            f"cannot {action} '{label}': could not read its HuggingFace config from '{checkpoint}': "
            f"{_one_line(err)}; pass a save_pretrained folder (this machine may be offline)") from None


def check_config(config, label: str, seq_length: int, action: str = "convert") -> str:
    """Raises ConfigError for anything the Model Garden BERT encoder cannot express, or a bad ``seq_length``.

    Returns the Keras activation name for the feed-forward layers.
    """
    def unsupported(what: str, why: str = _SUPPORTED):
        raise ConfigError(f"cannot {action} '{label}': {what} is not supported ({why})")

    model_type = getattr(config, "model_type", None)
    if model_type != "bert":
        unsupported(f"model type '{model_type}'")
    act = getattr(config, "hidden_act", "gelu")
    if not isinstance(act, str) or act not in HF_ACTIVATIONS:
        unsupported(f"activation '{act}'", "use gelu, gelu_new or relu")
    pos = getattr(config, "position_embedding_type", "absolute")
    if pos != "absolute":
        unsupported(f"position embedding type '{pos}'", "absolute positions only")
    if getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False):
        unsupported("a decoder BERT", "encoders only")
    eps = float(getattr(config, "layer_norm_eps", 1e-12))
    if abs(eps - 1e-12) > 1e-15:
        unsupported(f"layer_norm_eps {eps:g}", "Model Garden's BERT encoder uses 1e-12")
    if config.hidden_size % config.num_attention_heads:
        unsupported(f"hidden size {config.hidden_size} with {config.num_attention_heads} heads",
                    "the hidden size must divide evenly into heads")
    if not isinstance(seq_length, int) or not 2 <= seq_length <= config.max_position_embeddings:
        raise ConfigError(f"seq_length must be an integer from 2 to {config.max_position_embeddings} "
                          f"(the checkpoint's positions), got {seq_length!r}")
    return HF_ACTIVATIONS[act]


def _load_tokenizer(checkpoint: str, label: str):
    from transformers import AutoTokenizer, BertTokenizer, BertTokenizerFast
    try:
        tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    except Exception as err:  # noqa: BLE001
        raise ConfigError(
            f"cannot convert '{label}': could not load its tokenizer from '{checkpoint}': "
            f"{_one_line(err)}") from None
    if not isinstance(tokenizer, (BertTokenizer, BertTokenizerFast)):
        raise ConfigError(
            f"cannot convert '{label}': tokenizer {type(tokenizer).__name__} is not supported "
            f"({_SUPPORTED})")
    return tokenizer


def _write_vocab(tokenizer, folder: Path, label: str) -> tuple[Path, list[str]]:
    """Writes the tokenizer's WordPiece vocabulary as ``folder/vocab.txt``."""
    vocab = tokenizer.get_vocab()
    by_id = sorted(vocab.items(), key=lambda kv: kv[1])
    if [i for _, i in by_id] != list(range(len(by_id))):
        raise ConfigError(
            f"cannot convert '{label}': its vocabulary ids are not contiguous from 0 "
            f"(added tokens?); {_SUPPORTED}")
    tokens = [t for t, _ in by_id]
    path = folder / "vocab.txt"
    path.write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
    return path, tokens


# ---------------------------------------------------------------------------
# Building the Model Garden encoder and copying weights


def build_encoder_network(config, activation: str = "gelu"):
    """A Model Garden ``BertEncoderV2`` with ``config``'s sizes (random weights)."""
    from tfbert.scratch import network_from_config

    return network_from_config(config, activation)


def _strip_scope(name: str, scope: str) -> str:
    """'tf_bert_model/bert/embeddings/x:0' -> 'embeddings/x' (scope 'bert/')."""
    name = name.split(":")[0]
    head, sep, tail = name.partition(scope)
    if not sep:
        raise ExportError(f"unexpected weight name '{name}' (no '{scope}' in it)")
    return tail


def _weight_map(num_layers: int) -> dict[str, str]:
    """Model Garden weight name -> HF TFBertModel weight name (both scope-stripped)."""
    m = {
        "word_embeddings/embeddings": "embeddings/word_embeddings/weight",
        "position_embedding/embeddings": "embeddings/position_embeddings/embeddings",
        "type_embeddings/embeddings": "embeddings/token_type_embeddings/embeddings",
        "embeddings/layer_norm/gamma": "embeddings/LayerNorm/gamma",
        "embeddings/layer_norm/beta": "embeddings/LayerNorm/beta",
        "pooler_transform/kernel": "pooler/dense/kernel",
        "pooler_transform/bias": "pooler/dense/bias",
    }
    for i in range(num_layers):
        mg, hf = f"transformer/layer_{i}/", f"encoder/layer_._{i}/"
        for part in ("kernel", "bias"):
            for qkv in ("query", "key", "value"):
                m[f"{mg}self_attention/{qkv}/{part}"] = f"{hf}attention/self/{qkv}/{part}"
            m[f"{mg}self_attention/attention_output/{part}"] = f"{hf}attention/output/dense/{part}"
            m[f"{mg}intermediate/{part}"] = f"{hf}intermediate/dense/{part}"
            m[f"{mg}output/{part}"] = f"{hf}output/dense/{part}"
        for part in ("gamma", "beta"):
            m[f"{mg}self_attention_layer_norm/{part}"] = f"{hf}attention/output/LayerNorm/{part}"
            m[f"{mg}output_layer_norm/{part}"] = f"{hf}output/LayerNorm/{part}"
    return m


def copy_weights(hf_model, network) -> int:
    """Copies every weight of a ``TFBertModel`` into a ``BertEncoderV2``.

    EinsumDense kernels are reshaped: q/k/v [hidden, hidden] -> [hidden,
    heads, head_dim] (biases -> [heads, head_dim]); the attention output
    [hidden, hidden] -> [heads, head_dim, hidden]. Returns the number of
    tensors copied; raises ExportError if any weight on either side is left
    unmatched or a shape disagrees.
    """
    import numpy as np

    base = getattr(hf_model, hf_model.base_model_prefix, hf_model)
    hf = {_strip_scope(w.name, "bert/"): w for w in base.weights}
    prefix = network.name + "/"
    mg = {_strip_scope(w.name, prefix): w for w in network.weights}
    mapping = _weight_map(len(base.encoder.layer))
    unmatched_mg = sorted(set(mg) - set(mapping))
    unmatched_hf = sorted(set(hf) - set(mapping.values()))
    missing_hf = sorted(v for v in mapping.values() if v not in hf)
    if unmatched_mg or unmatched_hf or missing_hf:
        raise ExportError(
            "weights do not line up between the HF model and the Model Garden encoder: "
            f"Model Garden only {unmatched_mg[:3]}, HF only {unmatched_hf[:3]}, "
            f"HF missing {missing_hf[:3]}")
    pairs = []
    for mg_name, var in mg.items():
        value = hf[mapping[mg_name]].numpy()
        target = tuple(var.shape)
        if value.shape != target:
            if value.size != int(np.prod(target)):
                raise ExportError(
                    f"shape mismatch copying {mapping[mg_name]} {value.shape} -> {mg_name} {target}")
            value = value.reshape(target)  # row-major: hidden = heads x head_dim
        pairs.append((var, value))
    for var, value in pairs:
        var.assign(value)
    return len(pairs)


# ---------------------------------------------------------------------------
# The HF-exact in-graph tokenizer


def _exact_tokenizer(hf_tokenizer, label: str):
    """``tfbert.tokenizers.WordPieceTokenizer`` reproducing ``hf_tokenizer``'s ids.

    (tf-models-official's BertTokenizer is not HF-exact: it NFKC-folds.)
    """
    from tfbert.tokenizers import WordPieceTokenizer
    try:
        return WordPieceTokenizer.from_hf(hf_tokenizer)
    except ExportError as err:
        raise ConfigError(f"cannot convert '{label}': {err}") from None


# ---------------------------------------------------------------------------
# Measuring


def _hf_inputs(tokenizer, texts, seq_length, padding):
    import numpy as np
    enc = tokenizer(list(texts), truncation=True, max_length=seq_length, padding=padding,
                    return_token_type_ids=True, return_attention_mask=True, return_tensors="np")
    return {"input_word_ids": enc["input_ids"].astype(np.int32),
            "input_mask": enc["attention_mask"].astype(np.int32),
            "input_type_ids": enc["token_type_ids"].astype(np.int32)}


def compare_encoders(hf_model, encoder, inputs: dict) -> dict:
    """Max abs differences between HF outputs and a TF Hub-style encoder's.

    ``encoder`` is called on the standard dict (``hub.KerasLayer`` or the
    Model Garden network). Sequence outputs are compared on non-padding
    positions only.
    """
    import numpy as np

    out_hf = hf_model(input_ids=inputs["input_word_ids"], attention_mask=inputs["input_mask"],
                      token_type_ids=inputs["input_type_ids"], training=False)
    out = encoder(inputs, training=False)
    mask = inputs["input_mask"].astype(bool)
    seq = np.abs(out["sequence_output"].numpy() - out_hf.last_hidden_state.numpy())[mask]
    pooled = np.abs(out["pooled_output"].numpy() - out_hf.pooler_output.numpy())
    return {"sequence_output": float(seq.max()) if seq.size else 0.0,
            "pooled_output": float(pooled.max()) if pooled.size else 0.0}


def preprocess_ids(preprocess, texts, seq_length: int) -> dict:
    """Runs a loaded TF Hub preprocess model (``tokenize`` + ``bert_pack_inputs``)."""
    import tensorflow as tf
    tokens = preprocess.tokenize(tf.constant(list(texts), dtype=tf.string))
    packed = preprocess.bert_pack_inputs([tokens], seq_length=tf.constant(seq_length))
    return {k: packed[k].numpy() for k in ("input_word_ids", "input_mask", "input_type_ids")}


def count_id_mismatches(preprocess, tokenizer, texts, seq_length: int) -> tuple[int, list[int]]:
    """Number of texts whose packed ids differ from the HF tokenizer's (and their indexes)."""
    import numpy as np
    ours = preprocess_ids(preprocess, texts, seq_length)
    ref = _hf_inputs(tokenizer, texts, seq_length, padding="max_length")
    bad = np.zeros(len(texts), dtype=bool)
    for key in ours:
        bad |= (ours[key] != ref[key]).any(axis=1)
    return int(bad.sum()), [int(i) for i in np.flatnonzero(bad)]


# ---------------------------------------------------------------------------
# Conversion


def _resolve_source(hf_checkpoint: str) -> tuple[str, str | None]:
    """A registry name (HF backend) or ``hf:ID`` -> (checkpoint, tokenizer)."""
    from tfbert.registry import get_spec, is_model
    name = str(hf_checkpoint)
    if name.startswith("hf:"):
        name = name[3:]
    if not os.path.isdir(os.path.expanduser(name)) and is_model(name):
        spec = get_spec(name)
        if spec.backend != "huggingface":
            raise ConfigError(
                f"cannot convert '{name}': it is a {spec.backend} entry; give a HuggingFace "
                f"checkpoint (registry entry with backend huggingface, hub id or folder)")
        if spec.tokenizer_type != "wordpiece":
            raise ConfigError(f"cannot convert '{name}': tokenizer type '{spec.tokenizer_type}' is "
                              f"not supported ({_SUPPORTED})")
        tok = spec.tokenizer_path if spec.tokenizer else None
        return spec.encoder_path, tok
    return os.path.expanduser(name), None


def convert_checkpoint(hf_checkpoint: str, out_dir: str | os.PathLike, seq_length: int = 128, *,
                       tokenizer: str | None = None, overwrite: bool = False,
                       tolerance: float = 1e-3, metadata: dict | None = None) -> dict:
    """Converts a HuggingFace BERT checkpoint to a TF Hub encoder + preprocess pair.

    Args:
        hf_checkpoint: str. A ``save_pretrained`` folder, a hub id, ``hf:<id>``
            or a registry name whose backend is ``huggingface``.
        out_dir: str or path. Folder to create; gets ``encoder/``,
            ``preprocess/``, ``vocab.txt`` and ``tfbert_conversion.json``.
        seq_length: int. The preprocess model's default packed length (when
            called directly; ``bert_pack_inputs`` takes any length).
        tokenizer: str or None. Tokenizer folder/id, if not the checkpoint's own.
        overwrite: bool. Replace an existing ``out_dir``.
        tolerance: float. Fail if the converted encoder differs from the HF
            model by more than this on the check sentences.
        metadata: dict or None. Extra keys for ``tfbert_conversion.json``.

    Returns:
        dict. What ``tfbert_conversion.json`` holds (plus ``out_dir``).

    Raises:
        ConfigError: unsupported checkpoint (not BERT + WordPiece), unreadable
            checkpoint, bad ``seq_length`` or an existing ``out_dir``.
        ExportError: the converted model does not match the original.

    The folder appears atomically (``tfbert.files.atomic_dir``), so a crash
    leaves no half conversion behind.
    """
    start = time.time()
    label = str(hf_checkpoint)
    out_dir = _check_out_dir(out_dir, overwrite)
    checkpoint, spec_tokenizer = _resolve_source(hf_checkpoint)
    tokenizer_source = tokenizer or spec_tokenizer or checkpoint
    config = load_config(checkpoint, label)
    activation = check_config(config, label, seq_length)
    _quiet_transformers()
    hf_tokenizer = _load_tokenizer(tokenizer_source, label)
    hf_model, missing = load_hf_model(checkpoint, label)

    with atomic_dir(out_dir) as tmp:
        vocab, copied = _write_hub_folders(tmp, config, activation, hf_model, hf_tokenizer, seq_length, label)
        check = _check_written(tmp, hf_model, hf_tokenizer, seq_length, tolerance, label)
        info = {
            "source": label,
            "checkpoint": str(checkpoint),
            "tokenizer_source": str(tokenizer_source),
            "converter_version": CONVERTER_VERSION,
            "fingerprint": source_fingerprint(str(checkpoint), tokenizer or spec_tokenizer),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            **_model_record(config, hf_tokenizer, vocab, copied, missing, seq_length),
            "check": check,
            "seconds": round(time.time() - start, 1),
            **(metadata or {}),
        }
        write_json(tmp / INFO_FILE, info)
    return {**info, "out_dir": str(out_dir)}


def _model_record(config, hf_tokenizer, vocab, copied: int, missing: list, seq_length: int) -> dict:
    """What was converted: the source config, the tokenizer, the target network."""
    return {
        "config": {k: getattr(config, k) for k in _CONFIG_KEYS},
        "tokenizer": _tokenizer_info(hf_tokenizer, vocab),
        "encoder": "official.nlp.modeling.networks.BertEncoderV2",
        "weights_copied": copied,
        "missing_in_checkpoint": missing,
        "default_seq_length": seq_length,
    }


_CONFIG_KEYS = ("model_type", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                "intermediate_size", "max_position_embeddings", "type_vocab_size", "hidden_act",
                "layer_norm_eps")


def _check_out_dir(out_dir, overwrite: bool) -> Path:
    out_dir = Path(os.path.expanduser(str(out_dir))).absolute()
    if out_dir.exists() and not overwrite and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ConfigError(f"output folder '{out_dir}' already exists; remove it or pass overwrite "
                          f"(--overwrite)")
    return out_dir


def load_hf_model(checkpoint: str, label: str, action: str = "convert"):
    """The TF BERT model and the names of weights the checkpoint lacks."""
    from transformers import TFBertModel

    try:
        hf_model, loading_info = TFBertModel.from_pretrained(checkpoint, output_loading_info=True)
    except Exception as err:  # noqa: BLE001
        raise ConfigError(f"cannot {action} '{label}': could not load its weights from "
                          f"'{checkpoint}': {_one_line(err)}") from None
    missing = sorted(loading_info.get("missing_keys", []) or [])
    if missing:
        _logger.warning("'%s' lacks %d weight(s) (e.g. %s); HF initialised them at random and "
                        "the conversion copies those values", label, len(missing), missing[0])
    return hf_model, missing


def _write_hub_folders(folder: Path, config, activation, hf_model, hf_tokenizer, seq_length, label):
    """vocab.txt, encoder/ and preprocess/ in ``folder``; returns (vocabulary, weights copied)."""
    from tfbert.hub_format import save_hub_encoder, save_hub_preprocess

    vocab_file, vocab = _write_vocab(hf_tokenizer, folder, label)
    do_lower_case = bool(getattr(hf_tokenizer, "do_lower_case", False))
    network = build_encoder_network(config, activation)
    copied = copy_weights(hf_model, network)
    save_hub_encoder(network, str(folder / "encoder"), vocab_file=str(vocab_file),
                     do_lower_case=do_lower_case)
    save_hub_preprocess(str(folder / "preprocess"), vocab_file=str(vocab_file),
                        do_lower_case=do_lower_case, default_seq_length=seq_length,
                        tokenizer=_exact_tokenizer(hf_tokenizer, label))
    return vocab, copied


def _check_written(folder: Path, hf_model, hf_tokenizer, seq_length, tolerance, label) -> dict:
    """Load what was written, as users will, and compare it with the HF model and tokenizer."""
    import tensorflow_hub as hub
    import tensorflow_text  # noqa: F401  (ops used by the preprocess model)

    encoder = hub.KerasLayer(str(folder / "encoder"))
    inputs = _hf_inputs(hf_tokenizer, _CHECK_SENTENCES, seq_length, padding=True)
    diff = compare_encoders(hf_model, encoder, inputs)
    preprocess = hub.load(str(folder / "preprocess"))
    mismatches, _ = count_id_mismatches(preprocess, hf_tokenizer, _CHECK_SENTENCES, seq_length)
    if mismatches:
        _logger.warning("the preprocess model of '%s' gives other ids than the HF tokenizer on "
                        "%d of %d check sentences", label, mismatches, len(_CHECK_SENTENCES))
    worst = max(diff.values())
    if not worst <= tolerance:
        raise ExportError(
            f"converted '{label}' differs from the HuggingFace model by {worst:.3g} "
            f"(tolerance {tolerance:g}); the conversion was not written")
    return {"sentences": len(_CHECK_SENTENCES), "max_abs_diff": diff, "id_mismatches": mismatches}


def _tokenizer_info(hf_tokenizer, vocab) -> dict:
    init = getattr(hf_tokenizer, "init_kwargs", {})
    return {
        "class": type(hf_tokenizer).__name__,
        "vocab_size": len(vocab),
        "do_lower_case": bool(getattr(hf_tokenizer, "do_lower_case", False)),
        "strip_accents": init.get("strip_accents"),
        "tokenize_chinese_chars": init.get("tokenize_chinese_chars", True),
        "in_graph": "tfbert.tokenizers.WordPieceTokenizer",
    }


def source_fingerprint(checkpoint: str, tokenizer: str | None) -> str:
    """Changes when the converter or the source files change, so a stale cached conversion is redone."""
    h = hashlib.sha256(f"v{CONVERTER_VERSION}|{checkpoint}|{tokenizer}".encode())
    for source in {checkpoint, tokenizer} - {None}:
        folder = Path(source)
        if folder.is_dir():
            for f in sorted(folder.iterdir()):
                if f.is_file():
                    st = f.stat()
                    h.update(f"|{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def conversion_summary(info: dict) -> str:
    """One line about a conversion (``convert_checkpoint``'s result), for the CLI."""
    check = info.get("check", {})
    diff = check.get("max_abs_diff", {})
    return (f"converted '{info.get('source')}' to {info.get('out_dir', '')} in "
            f"{info.get('seconds')} s: max |diff| sequence_output "
            f"{diff.get('sequence_output', float('nan')):.2g}, pooled_output "
            f"{diff.get('pooled_output', float('nan')):.2g}, id mismatches "
            f"{check.get('id_mismatches')} of {check.get('sentences')} check sentences")
