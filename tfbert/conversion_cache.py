"""Registry entries that name a conversion: ``converted:<registry name>/encoder``.

The first use converts that HuggingFace entry (:func:`tfbert.convert.convert_checkpoint`)
into ``$TFBERT_CACHE/converted/<name>`` (default ``~/.cache/tfbert/converted/<name>``,
``/`` in the name written ``--``); later uses reuse it while the source
checkpoint's files are unchanged. Encoder loading resolves these handles
(``tfbert.encoders.loading``); the registry itself keeps them as data.
"""

from __future__ import annotations

import logging
from pathlib import Path

from tfbert.convert import INFO_FILE, convert_checkpoint, source_fingerprint
from tfbert.errors import ConfigError
from tfbert.files import cache_root, file_lock, read_json

_logger = logging.getLogger(__name__)

HANDLE_PREFIX = "converted:"

_READY: dict[str, Path] = {}


def converted_dir(name: str) -> Path:
    """The cache folder of registry entry ``name`` (``/`` becomes ``--``)."""
    return cache_root() / "converted" / name.replace("/", "--")


def _is_current(folder: Path, fingerprint: str) -> bool:
    info = read_json(folder / INFO_FILE)
    return isinstance(info, dict) and info.get("fingerprint") == fingerprint


def ensure_converted(name: str, seq_length: int = 128) -> Path:
    """The converted folder of HuggingFace registry entry ``name``; converts on first use.

    Converting ahead of time is ``tfbert convert NAME ~/.cache/tfbert/converted/NAME``.
    Processes converting the same entry at once wait for each other (a lock
    file next to the folder).
    """
    if name in _READY:
        return _READY[name]
    from tfbert.registry import get_spec

    spec = get_spec(name)
    if spec.backend != "huggingface":
        raise ConfigError(f"'{HANDLE_PREFIX}{name}' must name a HuggingFace registry entry; "
                          f"'{name}' is a {spec.backend} entry")
    checkpoint = spec.encoder_path
    tokenizer = spec.tokenizer_path if spec.tokenizer else None
    fingerprint = source_fingerprint(checkpoint, tokenizer)
    folder = converted_dir(name)
    if not _is_current(folder, fingerprint):
        with file_lock(folder.with_name(f".{folder.name}.lock")):
            if not _is_current(folder, fingerprint):  # another process may have done it
                what = "is stale; converting again" if folder.exists() else \
                    "does not exist yet; converting (about a minute)"
                _logger.warning("the TF Hub conversion of '%s' in %s %s", name, folder, what)
                convert_checkpoint(checkpoint, folder, seq_length, tokenizer=tokenizer, overwrite=True,
                                   metadata={"registry_name": name})
    _READY[name] = folder
    return folder


def resolve_handle(handle: str | None) -> str | None:
    """``converted:NAME/encoder`` -> the encoder folder of NAME's cached conversion; other handles as they are.

    ``NAME`` is a HuggingFace registry entry (it may contain ``/``); the part
    after the last ``/`` is ``encoder`` or ``preprocess``.
    """
    if not handle or not handle.startswith(HANDLE_PREFIX):
        return handle
    name, _, part = handle[len(HANDLE_PREFIX):].rpartition("/")
    if part not in ("encoder", "preprocess") or not name:
        raise ConfigError(f"bad handle '{handle}'; use '{HANDLE_PREFIX}<registry name>/encoder' "
                          f"or '{HANDLE_PREFIX}<registry name>/preprocess'")
    return str(ensure_converted(name) / part)
