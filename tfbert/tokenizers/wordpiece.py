"""In-graph BERT WordPiece tokenizer that reproduces HuggingFace's ids exactly.

``tensorflow_text.BertTokenizer(lower_case=True)`` (what the TF-Hub BERT
preprocessing models use) lower-cases with NFKC case folding, which, among
other things, folds Korean compatibility jamo (``ㅋ ㅠ ㅡ``) into conjoining
jamo; HuggingFace keeps them.  On Korean review data about one string in eight
gets different ids.  :class:`WordPieceTokenizer` instead re-implements, with
TensorFlow / tensorflow-text ops only, the pipeline of HuggingFace's
``BertTokenizerFast`` (the Rust ``tokenizers`` library, which is what
``AutoTokenizer`` returns):

1. added/special tokens (``[CLS]``, ``[SEP]``, ``[PAD]``, ``[MASK]``,
   ``[UNK]``) written literally in the text are split off first and map to
   their ids (HF's default ``split_special_tokens=False``);
2. BertNormalizer: ``clean_text`` (drop NUL, U+FFFD, control/format/private
   use characters; map whitespace to a space), spaces around CJK ideographs,
   ``strip_accents`` (NFD, then drop non-spacing marks), then ``lowercase``
   (per character: no Greek final-sigma rule);
3. BertPreTokenizer: split on whitespace and isolate punctuation;
4. WordPiece: greedy longest-match-first with ``##`` continuations, ``[UNK]``
   for a word with no match or longer than ``max_input_chars_per_word``
   characters.

The character classes come from ``_unicode_tables.py``, measured from the
``tokenizers`` library code point by code point (its tables are older than
the Unicode versions of RE2 and ICU, so ``\\p{P}`` or ``\\p{Mn}`` would be
wrong for a few hundred characters).  See the module ``tfbert.tokenizers``
for the known differences from the *slow* ``BertTokenizer``.

Only TensorFlow and tensorflow-text ops are used, so a SavedModel that
contains the tokenizer loads with ``import tensorflow_text`` and without
tfbert.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import tensorflow as tf
import tensorflow_text as tf_text
import tf_keras as keras

from tfbert.errors import ConfigError, ExportError
from tfbert.tokenizers import _unicode_tables as _tables

logger = logging.getLogger(__name__)

# tensorflow-text's regex_split and tf.strings.lower stop at NUL, so NUL is
# replaced first: with clean_text by a private-use character (removed by
# clean_text just like NUL, and like NUL it never joins a special token), else
# by a noncharacter (a word with either becomes [UNK]).
_NUL_CLEAN_PLACEHOLDER = "\ue000"
_NUL_KEEP_PLACEHOLDER = "\ufdd0"
# ICU lower-cases a word-final capital sigma to final sigma; Rust (HF) maps
# every capital sigma to U+03C3.
_SIGMA_FIXUP = (0x03A3, "\u03c3")


def _char_class(ranges: Iterable[Sequence[int]]) -> str:
    """An RE2 character class for inclusive code point ranges."""
    parts = []
    for lo, hi in ranges:
        parts.append(f"\\x{{{lo:x}}}" if lo == hi else f"\\x{{{lo:x}}}-\\x{{{hi:x}}}")
    return "[" + "".join(parts) + "]"


def _literal(text: str) -> str:
    """An RE2 pattern matching ``text`` literally."""
    return "".join(f"\\x{{{ord(ch):x}}}" for ch in text)


_REMOVE = _char_class(_tables.REMOVE_RANGES)
_CLEAN_SPACE = _char_class([r for r in _tables.CLEAN_SPACE_RANGES if r != (32, 32)])
_PUNCT = _char_class(_tables.PUNCT_RANGES)
_CJK = _char_class(_tables.CJK_RANGES)
_MN = _char_class(_tables.MN_RANGES)
# tf.strings.split() splits on exactly the ASCII whitespace of the table.
assert [r for r in _tables.SPLIT_WHITESPACE_RANGES if r[0] < 128] == [(9, 13), (32, 32)]
_SPLIT_WS_NON_ASCII = _char_class([r for r in _tables.SPLIT_WHITESPACE_RANGES if r[0] > 127])
# Well-formed UTF-8 as RE2 decodes it (RE2 reads ill-formed bytes as U+FFFD
# but lets encoded surrogates through, hence the explicit ranges).
_VALID_UTF8 = "(?s)[\\x{0}-\\x{d7ff}\\x{e000}-\\x{10ffff}]*"


# No data-dependent Python control flow here: skip AutoGraph's slow conversion.
_no_autograph = tf.autograph.experimental.do_not_convert


class _Untracked:
    """Attribute bag that tf.Module / Keras tracking treats as an opaque leaf."""

    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)


def load_vocab(vocab_file: str) -> List[str]:
    """Reads a WordPiece vocab file the way HuggingFace does (one token a line)."""
    # HF: open(..., "r", encoding="utf-8").readlines() then rstrip("\n"), so
    # universal newlines ("\r\n" and "\r" end a line too).
    with open(vocab_file, "r", encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f.readlines()]


def _canonical_vocab_file(tokens: List[str], vocab_file: Optional[str]) -> str:
    """A vocab file with exactly ``tokens``, one a line, for use as an asset.

    Reuses ``vocab_file`` when its bytes already are that; otherwise writes
    one file per distinct vocabulary into ``$TFBERT_CACHE/vocab/`` (named by
    the content's hash, so runs reuse it instead of leaving a new temporary
    folder each time; it must outlive the layer, for ``tf.saved_model.save``
    to copy it into ``assets/``).
    """
    content = ("\n".join(tokens) + "\n").encode("utf-8")
    if vocab_file is not None:
        with open(vocab_file, "rb") as f:
            if f.read() == content:
                return vocab_file
    from tfbert.files import atomic_file, cache_root

    name = f"{hashlib.sha256(content).hexdigest()[:24]}.txt"
    for folder in (cache_root() / "vocab", Path(tempfile.gettempdir()) / "tfbert_vocab"):
        path = folder / name
        try:
            if not (path.is_file() and path.read_bytes() == content):
                with atomic_file(path) as tmp:  # other processes see the old file or the whole new one
                    tmp.write_bytes(content)
            return str(path)
        except OSError:  # a read-only cache (e.g. a serving container): the shared temp folder
            continue
    raise ConfigError(f"cannot write the vocabulary file {name} to {cache_root() / 'vocab'} or the temp folder; "
                      f"set $TFBERT_CACHE to a writable folder")


def _read_vocab(vocab: Union[str, os.PathLike, Sequence[str]]) -> Tuple[List[str], Optional[str]]:
    """``(tokens, vocab_file)`` from a vocab.txt path or a list of tokens (file None)."""
    if isinstance(vocab, (str, os.PathLike)):
        vocab_file = os.fspath(vocab)
        if not os.path.isfile(vocab_file):
            raise ConfigError(
                f"vocab file {vocab_file!r} does not exist; pass a vocab.txt path or a list of tokens")
        tokens = load_vocab(vocab_file)
    else:
        vocab_file = None
        tokens = [str(t) for t in vocab]
    if not tokens:
        raise ConfigError("the WordPiece vocab is empty; pass a vocab.txt path or a non-empty list of tokens")
    return tokens, vocab_file


def _check_options(implementation: str, max_input_chars_per_word: int) -> None:
    if implementation not in ("fast", "classic"):
        raise ConfigError(f"implementation must be 'fast' or 'classic', not {implementation!r}")
    if max_input_chars_per_word < 1:
        raise ConfigError("max_input_chars_per_word must be at least 1")


def _lower_fixups_for(vocab_chars: set) -> List[Tuple[int, str]]:
    """Lower-casing mappings to apply before ``tf.strings.lower`` for this vocab."""
    # ICU's lower-casing (tf.strings.lower) misses some mappings of Rust's
    # newer Unicode tables; apply those that can matter for this vocab
    # (for any other character the word becomes [UNK] either way).
    return sorted(
        (src, dst) for src, dst in list(_tables.LOWER_FIXUPS.items()) + [_SIGMA_FIXUP]
        if (set(chr(src)) | set(dst)) & vocab_chars or (src == 0x03A3 and "\u03c2" in vocab_chars)
    )


def _warn_nfd_mismatch(vocab_chars: set) -> None:
    """Warns about vocab characters whose NFD differs between TensorFlow and HF."""
    odd = sorted(chr(c) for c, nfd in _tables.NFD_MISMATCH.items() if (set(chr(c)) | set(nfd)) & vocab_chars)
    if odd:
        logger.warning(
            "vocab contains characters %r that TensorFlow's NFD decomposes but HuggingFace's "
            "does not; ids of words with them may differ from HuggingFace", odd)


class WordPieceTokenizer(keras.layers.Layer):
    """BERT WordPiece tokenizer in TF ops, id-for-id equal to HF ``BertTokenizerFast``.

    Args:
      vocab: path of a ``vocab.txt`` (one token a line) or a list of tokens;
        a token's id is its line number.
      lower_case: HF ``do_lower_case``.
      strip_accents: HF ``strip_accents``; ``None`` follows ``lower_case``.
      tokenize_chinese_chars: put spaces around CJK ideographs (HF default).
      clean_text: HF BertNormalizer ``clean_text`` (always on in HF's BERT
        tokenizers unless a ``tokenizer.json`` turns it off).
      unk_token, cls_token, sep_token, pad_token, mask_token: special tokens;
        each must be in the vocab (``unk_token`` always; the others when not
        ``None``).
      max_input_chars_per_word: a word longer than this many characters (after
        normalization) becomes ``unk_token``.
      split_special_tokens: HF's option of the same name.  ``False`` (HF's
        default): special tokens written in the text (e.g. ``"[SEP]"``) are
        recognised on the raw text and map to their ids; ``True``: they are
        tokenized like other text.
      extra_special_tokens: further vocab tokens that, like the special
        tokens, are matched on the raw text (HF "added tokens" with
        ``normalized=False``).
      suffix_indicator: WordPiece continuation prefix.
      implementation: ``"fast"`` (``tensorflow_text.FastWordpieceTokenizer``,
        default) or ``"classic"`` (``tensorflow_text.WordpieceTokenizer`` on a
        lookup table); both give the same ids.
      repair_utf8: replace invalid UTF-8 bytes by U+FFFD first (which
        ``clean_text`` then drops), like ``bytes.decode(errors="replace")``.

    Call the layer (or :meth:`tokenize`) on a string tensor of shape
    ``[batch]`` to get int32 ids as a ``tf.RaggedTensor`` ``[batch, (tokens)]``
    without ``[CLS]``/``[SEP]``; use :func:`pack_inputs` (or
    ``official.nlp.modeling.layers.BertPackInputs`` with
    :meth:`get_special_tokens_dict`) for model inputs.
    """

    def __init__(
        self,
        vocab: Union[str, os.PathLike, Sequence[str]],
        lower_case: bool = True,
        strip_accents: Optional[bool] = None,
        tokenize_chinese_chars: bool = True,
        clean_text: bool = True,
        unk_token: str = "[UNK]",
        cls_token: Optional[str] = "[CLS]",
        sep_token: Optional[str] = "[SEP]",
        pad_token: Optional[str] = "[PAD]",
        mask_token: Optional[str] = "[MASK]",
        max_input_chars_per_word: int = 100,
        split_special_tokens: bool = False,
        extra_special_tokens: Sequence[str] = (),
        suffix_indicator: str = "##",
        implementation: str = "fast",
        repair_utf8: bool = True,
        **kwargs,
    ):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.built = True  # no weights
        tokens, vocab_file = _read_vocab(vocab)
        _check_options(implementation, max_input_chars_per_word)

        # Plain Python containers kept out of Keras/tf.Module attribute tracking
        # (tracking wraps and walks 30k-entry lists, making saving slow).
        self._py = _Untracked(
            tokens=tokens,
            # HF builds a dict, so for a token listed twice the last id wins.
            vocab={t: i for i, t in enumerate(tokens)})
        self.lower_case = bool(lower_case)
        self.strip_accents = None if strip_accents is None else bool(strip_accents)
        self.tokenize_chinese_chars = bool(tokenize_chinese_chars)
        self.clean_text = bool(clean_text)
        self.unk_token = unk_token
        self.cls_token = cls_token
        self.sep_token = sep_token
        self.pad_token = pad_token
        self.mask_token = mask_token
        self.max_input_chars_per_word = int(max_input_chars_per_word)
        self.split_special_tokens = bool(split_special_tokens)
        self.extra_special_tokens = tuple(extra_special_tokens)
        self.suffix_indicator = suffix_indicator
        self.implementation = implementation
        self.repair_utf8 = bool(repair_utf8)

        self._special_pattern = self._special_tokens_pattern()
        self._do_strip = self.lower_case if self.strip_accents is None else self.strip_accents
        vocab_chars = set("".join(tokens)) | set(suffix_indicator)
        self._lower_fixups = _lower_fixups_for(vocab_chars)
        if self._do_strip:
            _warn_nfd_mismatch(vocab_chars)
        self._init_id_to_token(tokens, vocab_file)
        self._init_wordpiece(tokens)

    def _special_tokens_pattern(self) -> Optional[str]:
        """Checks the special tokens are in the vocab; returns the RE2 pattern matching them (or None)."""
        named = {"unk_token": self.unk_token, "cls_token": self.cls_token, "sep_token": self.sep_token,
                 "pad_token": self.pad_token, "mask_token": self.mask_token}
        for name, tok in named.items():
            if tok is not None and tok not in self._py.vocab:
                raise ConfigError(f"{name} {tok!r} is not in the vocab; pass the special token names this vocab uses")
        for tok in self.extra_special_tokens:
            if tok not in self._py.vocab:
                raise ConfigError(f"extra special token {tok!r} is not in the vocab")

        specials = [t for t in named.values() if t] + list(self.extra_special_tokens)
        specials = sorted(set(t for t in specials if t), key=lambda t: (-len(t), t))
        # Leftmost-longest like HF's Aho-Corasick matcher: RE2 alternation is
        # leftmost-first, so list longer tokens first.
        return (
            None if self.split_special_tokens or not specials
            else "|".join(_literal(t) for t in specials)
        )

    def _init_id_to_token(self, tokens: List[str], vocab_file: Optional[str]) -> None:
        """Creates the vocab asset and the id -> token table."""
        # Vocab asset: backs id_to_token()/detokenize() and the "classic"
        # implementation, and travels with a SavedModel as assets/vocab.txt.
        self._vocab_asset = tf.saved_model.Asset(_canonical_vocab_file(tokens, vocab_file))
        if "" in self._py.vocab:  # TF's text-file tables reject empty lines
            id_init = tf.lookup.KeyValueTensorInitializer(
                tf.range(len(tokens), dtype=tf.int64), tf.constant(tokens, tf.string))
        else:
            id_init = tf.lookup.TextFileInitializer(
                self._vocab_asset, key_dtype=tf.int64, key_index=tf.lookup.TextFileIndex.LINE_NUMBER,
                value_dtype=tf.string, value_index=tf.lookup.TextFileIndex.WHOLE_LINE)
        self._id_to_token_table = tf.lookup.StaticHashTable(id_init, default_value=self.unk_token)

    def _init_wordpiece(self, tokens: List[str]) -> None:
        """Creates the tensorflow-text WordPiece op of ``self.implementation``."""
        max_bytes = 4 * self.max_input_chars_per_word + 4
        if self.implementation == "fast":
            # Ids are positions in the list: hide earlier copies of a duplicated
            # token (HF keeps the last id) and empty lines.
            fw_vocab = list(tokens)
            for i, t in enumerate(tokens):
                if t == "" or self._py.vocab[t] != i:
                    fw_vocab[i] = f" [tfbert-unused-{i}] "  # contains a space: never matches a word
            self._wordpiece = tf_text.FastWordpieceTokenizer(
                vocab=fw_vocab, suffix_indicator=self.suffix_indicator, max_bytes_per_word=max_bytes,
                token_out_type=tf.int32, unknown_token=self.unk_token, no_pretokenization=True,
                support_detokenization=False)
        else:
            if len(self._py.vocab) != len(tokens) or "" in self._py.vocab:
                raise ConfigError("implementation='classic' needs a vocab without duplicate or empty lines")
            table = tf.lookup.StaticHashTable(
                tf.lookup.TextFileInitializer(
                    self._vocab_asset, key_dtype=tf.string, key_index=tf.lookup.TextFileIndex.WHOLE_LINE,
                    value_dtype=tf.int64, value_index=tf.lookup.TextFileIndex.LINE_NUMBER),
                default_value=-1)
            self._token_to_id_table = table
            self._wordpiece = tf_text.WordpieceTokenizer(
                table, suffix_indicator=self.suffix_indicator, max_bytes_per_word=max_bytes,
                max_chars_per_token=None, token_out_type=tf.int64, unknown_token=self.unk_token,
                split_unknown_characters=False)

    # ------------------------------------------------------------------ info
    @property
    def vocab_size(self) -> int:
        return len(self._py.tokens)

    @property
    def vocab(self) -> List[str]:
        """The tokens, by id."""
        return list(self._py.tokens)

    @property
    def vocab_file(self) -> str:
        """Path of the vocab asset (a ``vocab.txt``)."""
        return self._vocab_asset.asset_path.numpy().decode("utf-8")

    def token_to_id(self, token: str) -> int:
        """Python-side id of one vocab token (``KeyError`` if absent)."""
        return self._py.vocab[token]

    @property
    def unk_id(self) -> int:
        return self._py.vocab[self.unk_token]

    def get_special_tokens_dict(self) -> Dict[str, int]:
        """Same keys as ``official.nlp.modeling.layers.BertTokenizer.get_special_tokens_dict()``.

        ``vocab_size``, ``start_of_sequence_id`` ([CLS]), ``end_of_segment_id``
        ([SEP]), ``padding_id`` ([PAD]), ``mask_id`` ([MASK]); a token that is
        not configured is left out, as in tf-models.
        """
        result = {"vocab_size": len(self._py.tokens)}
        for key, tok in (("start_of_sequence_id", self.cls_token), ("end_of_segment_id", self.sep_token),
                         ("padding_id", self.pad_token), ("mask_id", self.mask_token)):
            if tok is not None and tok in self._py.vocab:
                result[key] = self._py.vocab[tok]
        return result

    # --------------------------------------------------------------- tokenize
    def _normalize(self, text: tf.Tensor) -> tf.Tensor:
        """HF BertNormalizer on a 1-D string tensor."""
        if self.clean_text:
            text = tf.strings.regex_replace(text, _REMOVE, "")
            text = tf.strings.regex_replace(text, _CLEAN_SPACE, " ")
        if self.tokenize_chinese_chars:
            text = tf.strings.regex_replace(text, "(" + _CJK + ")", r" \1 ")
        if self._do_strip:
            text = tf_text.normalize_utf8(text, "NFD")
            text = tf.strings.regex_replace(text, _MN, "")
        if self.lower_case:
            for src, dst in self._lower_fixups:
                text = tf.strings.regex_replace(text, _literal(chr(src)), dst)
            text = tf.strings.lower(text, encoding="utf-8")
        return text

    def _pre_tokenize(self, text: tf.Tensor) -> tf.RaggedTensor:
        """HF BertPreTokenizer: split on whitespace, isolate punctuation."""
        if not self.clean_text:
            # tf.strings.split() splits on ASCII " \t\n\v\f\r" only.
            text = tf.strings.regex_replace(text, _SPLIT_WS_NON_ASCII, " ")
        # (Same words as tf_text.regex_split(text, ws|punct, punct), 3x faster.)
        text = tf.strings.regex_replace(text, "(" + _PUNCT + ")", r" \1 ")
        return tf.strings.split(text)

    def _split_words_flat(self, strings: tf.Tensor) -> tf.RaggedTensor:
        """1-D strings -> ragged [batch, (words)] of normalized, pre-tokenized words."""
        if self.repair_utf8:
            # Invalid UTF-8 -> U+FFFD (dropped by clean_text), like Python's
            # bytes.decode(errors="replace"); transcoding only when needed.
            strings = tf.cond(
                tf.reduce_all(tf.strings.regex_full_match(strings, _VALID_UTF8)),
                lambda: tf.identity(strings),
                lambda: tf.strings.unicode_transcode(
                    strings, input_encoding="UTF-8", output_encoding="UTF-8", errors="replace",
                    replacement_char=0xFFFD, replace_control_characters=False))
        strings = tf.strings.regex_replace(
            strings, r"\x00", _NUL_CLEAN_PLACEHOLDER if self.clean_text else _NUL_KEEP_PLACEHOLDER)
        if self._special_pattern is None:
            return self._pre_tokenize(self._normalize(strings))
        return tf.cond(
            tf.reduce_any(tf.strings.regex_full_match(strings, "(?s).*(?:" + self._special_pattern + ").*")),
            lambda: self._split_words_with_specials(strings),
            lambda: self._pre_tokenize(self._normalize(strings)))

    def _split_words_with_specials(self, strings: tf.Tensor) -> tf.RaggedTensor:
        # Added tokens are matched on the raw text (HF AddedVocabulary with
        # normalized=False), the text between them is normalized and split.
        segments = tf_text.regex_split(strings, self._special_pattern, self._special_pattern)
        seg_text = segments.flat_values
        is_special = tf.strings.regex_full_match(seg_text, self._special_pattern)
        normal_text = tf.where(is_special, tf.constant("", tf.string), seg_text)
        words = self._pre_tokenize(self._normalize(normal_text))
        special_words = tf.RaggedTensor.from_row_lengths(
            tf.boolean_mask(seg_text, is_special), tf.cast(is_special, tf.int64))
        words = tf.concat([special_words, words], axis=1)
        return segments.with_flat_values(words).merge_dims(1, 2)

    def _tokenize_flat(self, strings: tf.Tensor) -> tf.RaggedTensor:
        words = self._split_words_flat(strings)
        flat = words.flat_values
        too_long = tf.strings.length(flat, unit="UTF8_CHAR") > self.max_input_chars_per_word
        flat = tf.where(too_long, tf.constant(self.unk_token, tf.string), flat)
        pieces = self._wordpiece.tokenize(flat)
        if pieces.dtype != tf.int32:
            pieces = tf.cast(pieces, tf.int32)
        return words.with_flat_values(pieces).merge_dims(1, 2)

    def _apply_flat(self, fn, strings) -> Union[tf.Tensor, tf.RaggedTensor]:
        strings = tf.convert_to_tensor(strings, dtype=tf.string)
        rank = strings.shape.rank
        if rank is None:
            raise ValueError("WordPieceTokenizer needs string input of known rank")
        if rank == 1:
            return fn(strings)
        result = fn(tf.reshape(strings, [-1]))
        if rank == 0:
            return result.values
        dims = tf.shape(strings, out_type=tf.int64)
        for axis in range(rank - 1, 0, -1):
            result = tf.RaggedTensor.from_uniform_row_length(result, dims[axis])
        return result

    @_no_autograph
    def tokenize(self, strings) -> Union[tf.Tensor, tf.RaggedTensor]:
        """Token ids (int32) without special tokens.

        ``strings`` of shape ``[batch]`` gives ``RaggedTensor [batch, (tokens)]``;
        a scalar gives a 1-D ``Tensor``; ``[d1, ..., dn]`` gives
        ``[d1, ..., dn, (tokens)]``.
        """
        return self._apply_flat(self._tokenize_flat, strings)

    @_no_autograph
    def split_words(self, strings) -> Union[tf.Tensor, tf.RaggedTensor]:
        """The normalized, pre-tokenized words (strings) that WordPiece sees (for debugging)."""
        return self._apply_flat(self._split_words_flat, strings)

    def call(self, inputs):
        return self.tokenize(inputs)

    # ------------------------------------------------------------- display
    @_no_autograph
    def id_to_token(self, ids) -> Union[tf.Tensor, tf.RaggedTensor]:
        """Token strings for ids (any shape, dense or ragged), from the vocab asset."""
        if isinstance(ids, tf.RaggedTensor):
            return ids.with_flat_values(self.id_to_token(ids.flat_values))
        ids = tf.convert_to_tensor(ids)
        return self._id_to_token_table.lookup(tf.cast(ids, tf.int64))

    @_no_autograph
    def detokenize(self, ids, skip_special_tokens: bool = False) -> tf.Tensor:
        """Readable text for ragged/dense ids ``[batch, tokens]`` -> ``[batch]``.

        Joins tokens with spaces and glues ``##`` continuations, like HF's
        ``convert_tokens_to_string``; lower-casing and accent stripping are
        of course not undone.  ``skip_special_tokens`` drops [CLS], [SEP],
        [PAD], [MASK] (not [UNK]), e.g. for dense packed ``input_word_ids``.
        """
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(tf.convert_to_tensor(ids))
        if skip_special_tokens:
            drop = [self._py.vocab[t] for t in (self.cls_token, self.sep_token, self.pad_token, self.mask_token)
                    if t is not None]
            keep = tf.reduce_all(
                tf.not_equal(tf.expand_dims(tf.cast(ids.flat_values, tf.int64), -1),
                             tf.constant(drop, tf.int64)), axis=-1)
            ids = tf.ragged.boolean_mask(ids, ids.with_flat_values(keep))
        tokens = self.id_to_token(ids)
        text = tf.strings.reduce_join(tokens, axis=-1, separator=" ")
        text = tf.strings.regex_replace(text, " " + _literal(self.suffix_indicator), "")
        return tf.strings.strip(text)

    # --------------------------------------------------------------- keras
    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            vocab=list(self._py.tokens), lower_case=self.lower_case, strip_accents=self.strip_accents,
            tokenize_chinese_chars=self.tokenize_chinese_chars, clean_text=self.clean_text,
            unk_token=self.unk_token, cls_token=self.cls_token, sep_token=self.sep_token,
            pad_token=self.pad_token, mask_token=self.mask_token,
            max_input_chars_per_word=self.max_input_chars_per_word,
            split_special_tokens=self.split_special_tokens,
            extra_special_tokens=list(self.extra_special_tokens),
            suffix_indicator=self.suffix_indicator, implementation=self.implementation,
            repair_utf8=self.repair_utf8)
        return config

    # ---------------------------------------------------------------- HF
    @classmethod
    def from_hf(cls, path_or_tokenizer, **overrides) -> "WordPieceTokenizer":
        """Builds the tokenizer of a HuggingFace BERT-family (WordPiece) tokenizer.

        ``path_or_tokenizer``: a local tokenizer folder (``vocab.txt`` +
        ``tokenizer_config.json``, and/or ``tokenizer.json``), a model name in
        the local HF cache, or a loaded ``BertTokenizerFast`` /
        ``BertTokenizer`` (or another WordPiece tokenizer of the same design:
        DistilBERT, ELECTRA, ...).  Settings (do_lower_case, strip_accents,
        tokenize_chinese_chars, clean_text, special tokens) are read from the
        tokenizer; ``overrides`` are passed on to the constructor.

        Raises ``tfbert.errors.ExportError`` for tokenizers that are not
        WordPiece (BPE, SentencePiece, ...) or use options this tokenizer
        cannot reproduce in-graph.
        """
        tok = path_or_tokenizer
        if isinstance(tok, (str, os.PathLike)):
            tok = _load_hf_tokenizer(os.fspath(tok))
        kwargs = _hf_settings(tok)
        kwargs.update(overrides)
        try:
            return cls(**kwargs)
        except ConfigError as err:
            name = getattr(tok, "name_or_path", None) or type(tok).__name__
            raise ExportError(f"tokenizer of {name!r} cannot be rebuilt in-graph: {err}") from None


# ------------------------------------------------------------------ HF glue
def _load_hf_tokenizer(name: str):
    try:
        from transformers import AutoTokenizer
    except ImportError as e:  # pragma: no cover - transformers is a dependency
        raise ConfigError(f"loading the tokenizer {name!r} needs the transformers package: {e}") from None
    try:
        return AutoTokenizer.from_pretrained(name, local_files_only=True)
    except Exception as e:  # noqa: BLE001 - HF raises many types; re-raise as one line
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"cannot load a HuggingFace tokenizer from {name!r}: {msg}") from None


_KIND_NAMES = {
    "BPE": "BPE",
    "Unigram": "SentencePiece Unigram",
    "WordLevel": "word-level",
}


def _not_wordpiece(name: str, kind: str) -> ExportError:
    return ExportError(
        f"tokenizer of {name!r} is {kind}, not WordPiece; it cannot run in-graph with tfbert's "
        "WordPieceTokenizer; use a BERT-family (WordPiece) model or tokenize outside the model")


def _hf_settings(tok) -> Dict[str, Any]:
    """Constructor kwargs for a loaded HF tokenizer; ExportError if impossible."""
    name = getattr(tok, "name_or_path", None) or type(tok).__name__
    specials = _hf_special_tokens(tok)
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is not None:  # a fast tokenizer: read what the Rust side really does
        return _hf_fast_settings(tok, name, json.loads(backend.to_str()), specials)
    # A slow (Python) tokenizer.
    return _hf_slow_settings(tok, name, specials)


def _hf_special_tokens(tok) -> Dict[str, Optional[str]]:
    """The special-token kwargs of a HF tokenizer (no ``unk_token`` key when it has none)."""
    specials = dict(
        unk_token=getattr(tok, "unk_token", None), cls_token=getattr(tok, "cls_token", None),
        sep_token=getattr(tok, "sep_token", None), pad_token=getattr(tok, "pad_token", None),
        mask_token=getattr(tok, "mask_token", None))
    specials = {k: (str(v) if v is not None else None) for k, v in specials.items()}
    if specials["unk_token"] is None:
        specials.pop("unk_token")
    return specials


def _hf_fast_settings(tok, name: str, state: Dict[str, Any], specials: Dict[str, Optional[str]]) -> Dict[str, Any]:
    """Constructor kwargs from a fast tokenizer's ``tokenizer.json`` state."""
    model = state.get("model") or {}
    _check_fast_pipeline(name, model, state.get("pre_tokenizer") or {})
    options = _fast_normalizer_options(name, state.get("normalizer"))
    vocab_map = model["vocab"]
    tokens = [None] * len(vocab_map)
    for t, i in vocab_map.items():
        if not 0 <= i < len(tokens) or tokens[i] is not None:
            raise ExportError(f"tokenizer of {name!r} has a vocab with gaps in its ids; it cannot run in-graph")
        tokens[i] = t
    unk = model.get("unk_token", specials.get("unk_token", "[UNK]"))
    specials["unk_token"] = unk
    options.update(
        vocab=tokens, suffix_indicator=model.get("continuing_subword_prefix", "##"),
        max_input_chars_per_word=int(model.get("max_input_chars_per_word", 100)))
    extra = _fast_extra_special_tokens(name, state, vocab_map, set(v for v in specials.values() if v))
    options.update(specials)
    options["extra_special_tokens"] = extra
    options["split_special_tokens"] = bool(getattr(tok, "split_special_tokens", False))
    return options


def _check_fast_pipeline(name: str, model: Dict[str, Any], pre: Dict[str, Any]) -> None:
    """ExportError unless the model is WordPiece and the pre-tokenizer BertPreTokenizer."""
    mtype = model.get("type")
    if mtype != "WordPiece":
        kind = _KIND_NAMES.get(mtype, str(mtype))
        if mtype == "BPE" and "ByteLevel" in json.dumps(pre):
            kind = "byte-level BPE"
        raise _not_wordpiece(name, kind)
    if pre.get("type") != "BertPreTokenizer":
        raise ExportError(
            f"tokenizer of {name!r} is WordPiece but pre-tokenizes with {pre.get('type')!r}, not "
            "BertPreTokenizer; it cannot run in-graph; tokenize outside the model")


def _fast_normalizer_options(name: str, norm: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """Normalization kwargs from a fast tokenizer's normalizer (None or BertNormalizer)."""
    if norm is None:
        return dict(lower_case=False, strip_accents=False, tokenize_chinese_chars=False, clean_text=False)
    if norm.get("type") == "BertNormalizer":
        return dict(lower_case=bool(norm.get("lowercase", True)), strip_accents=norm.get("strip_accents"),
                    tokenize_chinese_chars=bool(norm.get("handle_chinese_chars", True)),
                    clean_text=bool(norm.get("clean_text", True)))
    raise ExportError(
        f"tokenizer of {name!r} normalizes with {norm.get('type')!r}, not BertNormalizer; it cannot "
        "run in-graph; tokenize outside the model")


def _fast_extra_special_tokens(name: str, state: Dict[str, Any], vocab_map: Dict[str, int],
                               named: set) -> List[str]:
    """Added tokens of a fast tokenizer that are not named special tokens; checks each can be matched."""
    extra = []
    for added in state.get("added_tokens", []):
        content = added["content"]
        if vocab_map.get(content) != added["id"]:
            raise ExportError(
                f"tokenizer of {name!r} has added token {content!r} outside its WordPiece vocab; "
                "it cannot run in-graph; tokenize outside the model")
        if added.get("normalized") or added.get("lstrip") or added.get("rstrip") or added.get("single_word"):
            raise ExportError(
                f"tokenizer of {name!r} has added token {content!r} with normalized/lstrip/rstrip/"
                "single_word matching; it cannot run in-graph; tokenize outside the model")
        if content not in named:
            extra.append(content)
    return extra


def _hf_slow_settings(tok, name: str, specials: Dict[str, Optional[str]]) -> Dict[str, Any]:
    """Constructor kwargs from a slow (Python) BERT-style tokenizer."""
    _check_slow_tokenizer(tok, name)
    basic = tok.basic_tokenizer
    vocab_map = dict(tok.vocab)
    tokens = [None] * (max(vocab_map.values()) + 1)
    for t, i in vocab_map.items():
        tokens[i] = t
    if any(t is None for t in tokens):
        raise ExportError(f"tokenizer of {name!r} has a vocab with gaps in its ids; it cannot run in-graph")
    extra = []
    named = set(v for v in specials.values() if v)
    for i, added in getattr(tok, "added_tokens_decoder", {}).items():
        content = str(added)
        if vocab_map.get(content) != i:
            raise ExportError(
                f"tokenizer of {name!r} has added token {content!r} outside its WordPiece vocab; "
                "it cannot run in-graph; tokenize outside the model")
        if content not in named:
            extra.append(content)
    return dict(
        vocab=tokens, lower_case=bool(basic.do_lower_case), strip_accents=basic.strip_accents,
        tokenize_chinese_chars=bool(basic.tokenize_chinese_chars), clean_text=True,
        max_input_chars_per_word=int(tok.wordpiece_tokenizer.max_input_chars_per_word),
        extra_special_tokens=extra, split_special_tokens=bool(getattr(tok, "split_special_tokens", False)),
        **specials)


def _check_slow_tokenizer(tok, name: str) -> None:
    """ExportError unless a slow tokenizer is a WordPiece one whose options can run in-graph."""
    if not all(hasattr(tok, a) for a in ("vocab", "wordpiece_tokenizer", "basic_tokenizer")):
        if hasattr(tok, "sp_model") or hasattr(tok, "sp_model_kwargs"):
            kind = "SentencePiece"
        elif hasattr(tok, "byte_encoder"):
            kind = "byte-level BPE"
        elif hasattr(tok, "bpe_ranks"):
            kind = "BPE"
        else:
            kind = f"a {type(tok).__name__}"
        raise _not_wordpiece(name, kind)
    if not getattr(tok, "do_basic_tokenize", True):
        raise ExportError(f"tokenizer of {name!r} has do_basic_tokenize=False; it cannot run in-graph; "
                          "tokenize outside the model")
    basic = tok.basic_tokenizer
    if getattr(basic, "never_split", None):
        raise ExportError(f"tokenizer of {name!r} has never_split={sorted(basic.never_split)!r}; it cannot run "
                          "in-graph; tokenize outside the model")
    if getattr(basic, "do_split_on_punc", True) is False:
        raise ExportError(f"tokenizer of {name!r} has do_split_on_punc=False; it cannot run in-graph; "
                          "tokenize outside the model")


# ------------------------------------------------------------------ packing
def _hf_pair_lengths(n1: tf.Tensor, n2: tf.Tensor, budget: int):
    """Lengths HF's "longest_first" truncation keeps of a pair (tokenizers' Rust formula)."""
    total = n1 + n2
    swap = n1 > n2
    a = tf.where(swap, n2, n1)  # the shorter
    b = tf.where(swap, n1, n2)
    b2 = tf.where(a > budget, a, tf.maximum(a, budget - a))
    over = a + b2 > budget
    a3 = tf.where(over, tf.cast(budget // 2, a.dtype) * tf.ones_like(a), a)
    b3 = tf.where(over, tf.cast(budget // 2 + budget % 2, a.dtype) * tf.ones_like(a), b2)
    k1 = tf.where(swap, b3, a3)
    k2 = tf.where(swap, a3, b3)
    fits = total <= budget
    return tf.where(fits, n1, tf.minimum(n1, k1)), tf.where(fits, n2, tf.minimum(n2, k2))


def _as_segments(segments) -> List[tf.RaggedTensor]:
    if not isinstance(segments, (list, tuple)):
        segments = [segments]
    if len(segments) not in (1, 2):
        raise ConfigError(f"pack_inputs takes one or two segments, not {len(segments)}")
    segs = []
    for s in segments:
        if not isinstance(s, tf.RaggedTensor):
            s = tf.RaggedTensor.from_tensor(tf.convert_to_tensor(s))
        if s.ragged_rank > 1:
            s = s.merge_dims(1, -1)
        segs.append(tf.cast(s, tf.int32))
    return segs


@_no_autograph
def combine_segments(segments, seq_length: int, special_tokens: Dict[str, int]):
    """``[CLS] A [SEP] (B [SEP])`` truncated to ``seq_length`` like HF, unpadded.

    Args: as for :func:`pack_inputs`.

    Returns:
      (word ids, type ids): two ragged int32 ``[batch, (length)]`` tensors,
      type ids 0 on ``[CLS] A [SEP]`` and 1 on ``B [SEP]``.
    """
    segs = _as_segments(segments)
    budget = int(seq_length) - (len(segs) + 1)
    if budget < 0:
        raise ConfigError(f"seq_length {seq_length} is too short for {len(segs) + 1} special tokens")
    if len(segs) == 1:
        trimmed = [segs[0][:, :budget]]
    else:
        k1, k2 = _hf_pair_lengths(segs[0].row_lengths(), segs[1].row_lengths(), budget)
        trimmed = []
        for s, k in ((segs[0], k1), (segs[1], k2)):
            pos = tf.ragged.range(s.row_lengths())
            trimmed.append(tf.ragged.boolean_mask(s, pos < tf.expand_dims(k, 1)))
    combined, type_ids = tf_text.combine_segments(
        trimmed, start_of_sequence_id=int(special_tokens["start_of_sequence_id"]),
        end_of_segment_id=int(special_tokens["end_of_segment_id"]))
    return tf.cast(combined, tf.int32), tf.cast(type_ids, tf.int32)


@_no_autograph
def pack_inputs(segments, seq_length: int, special_tokens: Dict[str, int]) -> Dict[str, tf.Tensor]:
    """BERT model inputs from token ids, as HF ``tokenizer(..., truncation=True,
    max_length=seq_length, padding="max_length")`` builds them.

    Args:
      segments: a ragged ``[batch, (tokens)]`` int tensor of ids (from
        :meth:`WordPieceTokenizer.tokenize`), or a list of one or two of them
        (sentence pairs; truncated like HF's default ``"longest_first"``).
      seq_length: output length ``L``.
      special_tokens: :meth:`WordPieceTokenizer.get_special_tokens_dict` (needs
        ``start_of_sequence_id``, ``end_of_segment_id``, ``padding_id``).

    Returns:
      dict of int32 ``[batch, L]`` tensors ``input_word_ids`` (``[CLS] A [SEP]
      (B [SEP]) [PAD]...``), ``input_mask`` and ``input_type_ids``: the names
      tf-models' BERT encoders take (HF calls them input_ids, attention_mask,
      token_type_ids).
    """
    combined, type_ids = combine_segments(segments, seq_length, special_tokens)
    word_ids, mask = tf_text.pad_model_inputs(combined, seq_length, pad_value=int(special_tokens["padding_id"]))
    type_ids, _ = tf_text.pad_model_inputs(type_ids, seq_length, pad_value=0)
    shape = tf.stack([combined.nrows(out_type=tf.int32), tf.constant(int(seq_length), tf.int32)])
    return dict(input_word_ids=tf.reshape(tf.cast(word_ids, tf.int32), shape),
                input_mask=tf.reshape(tf.cast(mask, tf.int32), shape),
                input_type_ids=tf.reshape(tf.cast(type_ids, tf.int32), shape))


class PackInputs(keras.layers.Layer):
    """Keras layer around :func:`pack_inputs` (single sentences or pairs)."""

    def __init__(self, seq_length: int, special_tokens_dict: Dict[str, int], **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.seq_length = int(seq_length)
        self.special_tokens_dict = {k: int(v) for k, v in special_tokens_dict.items()}

    def call(self, inputs):
        return pack_inputs(inputs, self.seq_length, self.special_tokens_dict)

    def get_config(self):
        config = super().get_config()
        config.update(seq_length=self.seq_length, special_tokens_dict=dict(self.special_tokens_dict))
        return config
