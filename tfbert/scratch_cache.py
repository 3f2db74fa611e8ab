"""Encoders from scratch, built on first use: ``scratch:SIZE@VOCAB_DIR`` -> a TF Hub encoder + preprocess pair.

The first use writes ``$TFBERT_CACHE/scratch/<size>-<hash>-s<seed>/{encoder,preprocess}``:
a randomly initialised ``BertEncoderV2`` (:func:`tfbert.scratch.build_network`)
and a preprocess model holding the exact in-graph tokenizer of the vocabulary
folder (``WordPieceTokenizer.from_hf``), so exports carry it. The hash covers
vocab.txt and the tokenizer settings, so an edited vocabulary gets a new
folder and an unchanged one (even moved) reuses the old. Same pattern as
``tfbert.conversion_cache``: a lock file, a fingerprint in ``scratch.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from pathlib import Path

from tfbert.errors import ConfigError
from tfbert.files import atomic_dir, cache_root, file_lock, read_json, write_json
from tfbert.scratch import ScratchHandle, bert_config, build_network, check_vocab_dir, is_handle, parse_handle

_logger = logging.getLogger(__name__)

INFO_FILE = "scratch.json"
BUILDER_VERSION = 1
# The parts of the HF tokenizer files that change what the tokenizer does (not e.g. its name).
_SETTING_KEYS = ("do_lower_case", "strip_accents", "tokenize_chinese_chars", "unk_token", "sep_token",
                 "pad_token", "cls_token", "mask_token", "additional_special_tokens")


def vocab_fingerprint(vocab_dir: str) -> str:
    """A hash of vocab.txt and the tokenizer settings of ``vocab_dir``."""
    folder = Path(vocab_dir)
    digest = hashlib.sha256((folder / "vocab.txt").read_bytes())
    if (folder / "tokenizer.json").is_file():  # the fast tokenizer's whole pipeline, its own vocabulary too
        digest.update((folder / "tokenizer.json").read_bytes())
    config = read_json(folder / "tokenizer_config.json") or {}
    digest.update(json.dumps({k: config.get(k) for k in _SETTING_KEYS}, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def scratch_dir(handle: ScratchHandle, fingerprint: str) -> Path:
    return cache_root() / "scratch" / f"{handle.size.name}-{fingerprint[:16]}-s{handle.seed}"


def _is_current(folder: Path, fingerprint: str) -> bool:
    info = read_json(folder / INFO_FILE)
    return (isinstance(info, dict) and info.get("fingerprint") == fingerprint
            and info.get("builder_version") == BUILDER_VERSION
            and (folder / "encoder").is_dir() and (folder / "preprocess").is_dir())


def _build(folder: Path, handle: ScratchHandle, fingerprint: str) -> None:
    """Writes vocab.txt, tokenizer/, encoder/ and preprocess/ into ``folder`` (atomically)."""
    from tfbert.hub_format import save_hub_encoder, save_hub_preprocess
    from tfbert.tokenizers import WordPieceTokenizer
    from tfbert.tokenizers.wordpiece import load_vocab

    start = time.time()
    with atomic_dir(folder) as tmp:
        shutil.copytree(handle.vocab_dir, tmp / "tokenizer",
                        ignore=shutil.ignore_patterns("registry.yaml", INFO_FILE, ".*"))
        tokenizer = WordPieceTokenizer.from_hf(str(tmp / "tokenizer"))
        vocab_file = str(tmp / "tokenizer" / "vocab.txt")
        if tokenizer.vocab != load_vocab(vocab_file):  # the encoder asset and the tokenizer must agree
            raise ConfigError(f"vocab.txt and the tokenizer files of {handle.vocab_dir} hold different "
                              f"vocabularies; write the folder again with tfbert vocab")
        network = build_network(bert_config(handle.size, tokenizer.vocab_size), seed=handle.seed)
        save_hub_encoder(network, str(tmp / "encoder"), vocab_file=vocab_file, do_lower_case=tokenizer.lower_case)
        save_hub_preprocess(str(tmp / "preprocess"), vocab_file=vocab_file, do_lower_case=tokenizer.lower_case,
                            tokenizer=tokenizer)
        write_json(tmp / INFO_FILE, {"handle": handle.handle, "fingerprint": fingerprint,
                                     "builder_version": BUILDER_VERSION, "size": handle.size,
                                     "seed": handle.seed, "vocab_dir": handle.vocab_dir,
                                     "vocab_size": tokenizer.vocab_size, "seconds": round(time.time() - start, 1)})


def ensure_built(handle: str | ScratchHandle) -> Path:
    """The cache folder of a scratch handle, built on first use (processes wait for each other)."""
    parsed = handle if isinstance(handle, ScratchHandle) else parse_handle(handle)
    check_vocab_dir(parsed.vocab_dir)
    fingerprint = vocab_fingerprint(parsed.vocab_dir)
    folder = scratch_dir(parsed, fingerprint)
    if not _is_current(folder, fingerprint):
        with file_lock(folder.with_name(f".{folder.name}.lock")):
            if not _is_current(folder, fingerprint):  # another process may have built it meanwhile
                _logger.warning("building the encoder from scratch %s in %s (seconds to a minute)",
                                parsed.handle, folder)
                _build(folder, parsed, fingerprint)
    return folder


def resolve_handle(handle: str | None, part: str) -> str | None:
    """``scratch:SIZE@DIR`` -> the ``part`` (``encoder`` or ``preprocess``) folder of its cache; others as they are."""
    if not is_handle(handle):
        return handle
    if part not in ("encoder", "preprocess"):
        raise ValueError(f"part must be encoder or preprocess, got {part!r}")
    return str(ensure_built(handle) / part)


def _vocab_size_of(handle: str) -> int | None:
    """Vocabulary size of a scratch handle, or of a local TF Hub folder's vocab asset; None if unknown."""
    if is_handle(handle):
        path = Path(parse_handle(handle).vocab_dir) / "vocab.txt"
    else:
        path = Path(str(handle)) / "assets" / "vocab.txt"
    if not path.is_file():
        return None
    with open(path, "r", encoding="utf-8") as handle_file:
        return sum(1 for _ in handle_file)


def check_pair(name: str, encoder: str, preprocess: str | None) -> None:
    """A one-line error when a scratch encoder or preprocess is paired with a vocabulary of another size."""
    if not preprocess or not (is_handle(encoder) or is_handle(preprocess)):
        return
    if is_handle(encoder) and is_handle(preprocess) and \
            parse_handle(encoder).vocab_dir == parse_handle(preprocess).vocab_dir:
        return
    sizes = _vocab_size_of(encoder), _vocab_size_of(preprocess)
    if None not in sizes and sizes[0] != sizes[1]:
        raise ConfigError(f"model '{name}': the encoder has a vocabulary of {sizes[0]} tokens but the preprocess "
                          f"model {sizes[1]}; point both at the same vocabulary folder")
