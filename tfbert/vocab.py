"""Learn a WordPiece vocabulary from a corpus: ``tfbert vocab`` and :func:`learn_vocab`.

The ``tokenizers`` library's WordPiece trainer reads the corpus as a stream
(``tfbert.data.corpus.iter_texts``); the folder written holds ``vocab.txt``,
the HuggingFace tokenizer files (so ``AutoTokenizer`` and
``WordPieceTokenizer.from_hf`` load it, id for id alike), ``tfbert_vocab.json``
(settings, sources, corpus statistics) and ``registry.yaml`` (encoders from
scratch on this vocabulary, see ``tfbert.scratch``).

Korean: BERT's "strip accents" is NFD then dropping combining marks, and NFD
splits every Hangul syllable into its 2-3 conjoining jamo. Lower-casing alone
(``strip_accents=False``) leaves syllables whole.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from tfbert.errors import ConfigError, DataError

DEFAULT_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
INFO_FILE = "tfbert_vocab.json"
# Texts kept in memory for the Hangul check, the alphabet check and the statistics: enough for
# stable rates, small enough to tokenize in seconds.
SAMPLE_TEXTS = 20_000
# Fewer texts than this teach nothing a vocabulary could be used for (and usually mean a wrong file).
MIN_TEXTS = 10
PROGRESS_EVERY = 100_000
_HANGUL_SYLLABLE = re.compile("[\uac00-\ud7a3]")
_LATIN_LETTER = re.compile("[A-Za-z\u00c0-\u024f]")


@dataclasses.dataclass
class VocabReport:
    """What :func:`learn_vocab` wrote and measured."""

    output_dir: Path
    vocab_size: int
    texts_read: int
    seconds: float
    settings: dict
    stats: dict
    warnings: list

    def summary(self) -> str:
        s = self.stats
        return (f"vocabulary of {self.vocab_size} tokens learnt from {self.texts_read} texts in "
                f"{self.seconds:.1f}s, written to {self.output_dir}\n"
                f"  [UNK]: {s['unk_token_rate']:.3%} of tokens, {s['unk_text_rate']:.2%} of texts; tokens per "
                f"text: mean {s['tokens_per_text_mean']:.1f}, median {s['tokens_per_text_median']:g}, "
                f"p95 {s['tokens_per_text_p95']:g}, p99 {s['tokens_per_text_p99']:g} "
                f"(first {s['texts_measured']} texts)\n"
                f"  encoders from scratch on it: tfbert --registry {self.output_dir / 'registry.yaml'} models")


def _check_settings(size: int, special_tokens: Sequence[str], min_frequency: int, max_texts) -> None:
    if len(set(special_tokens)) != len(special_tokens) or not all(str(t).strip() for t in special_tokens):
        raise ConfigError(f"special tokens {list(special_tokens)} must be distinct and non-empty")
    missing = [t for t in DEFAULT_SPECIAL_TOKENS if t not in special_tokens]
    if missing:
        raise ConfigError(f"special tokens must include {' '.join(DEFAULT_SPECIAL_TOKENS)} (padding, unknown "
                          f"words, the sentence marks, masking), in any order, beside any of your own; "
                          f"missing: {' '.join(missing)}")
    if int(size) <= len(special_tokens):
        raise ConfigError(f"--size {size} leaves no room beside the {len(special_tokens)} special tokens; "
                          f"pass e.g. --size 32000 (8000 for a small corpus)")
    if min_frequency < 1:
        raise ConfigError(f"--min-frequency must be at least 1, got {min_frequency}")
    if max_texts is not None and max_texts < MIN_TEXTS:
        raise ConfigError(f"--max-texts {max_texts} is below the minimum of {MIN_TEXTS} texts")


def check_output_dir(path, overwrite: bool = False) -> Path:
    """The output folder, checked before the corpus is read: writable, and not someone else's folder."""
    from tfbert.files import check_writable_dir

    path = Path(path).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"output {path} is a file; pass a folder path")
    if path.is_dir() and any(path.iterdir()):
        if not (path / INFO_FILE).exists():
            raise ConfigError(f"output folder {path} exists and is not a tfbert vocabulary; pass a new or "
                              f"empty folder")
        if not overwrite:
            raise ConfigError(f"output folder {path} already holds a vocabulary; pass --overwrite to replace it")
    check_writable_dir(path.parent, what="the folder of the output")  # atomic_dir writes a sibling
    return path


class _Progress:
    """The corpus stream, counted, with a line every ``PROGRESS_EVERY`` texts."""

    def __init__(self, texts: Iterable[str], verbose: bool):
        self.texts, self.verbose, self.count = texts, verbose, 0

    def __iter__(self) -> Iterator[str]:
        for text in self.texts:
            self.count += 1
            if self.verbose and self.count % PROGRESS_EVERY == 0:
                print(f"read {self.count} texts", flush=True)
            yield text


def script_counts(texts: Iterable[str]) -> dict:
    """Hangul syllables and Latin letters in ``texts`` (what the Korean advice and langs go by)."""
    hangul = latin = 0
    for text in texts:
        hangul += len(_HANGUL_SYLLABLE.findall(text))
        latin += len(_LATIN_LETTER.findall(text))
    return {"hangul_syllables": hangul, "latin_letters": latin}


def hangul_warning(counts: dict, strip: bool) -> str | None:
    """The one-line warning for a Korean corpus whose accents would be stripped, else None."""
    if not strip or not counts["hangul_syllables"]:
        return None
    return (f"the corpus has Hangul ({counts['hangul_syllables']} syllables in the texts sampled) and accents "
            f"are stripped: stripping (NFD) breaks every Hangul syllable into 2-3 jamo, so the vocabulary "
            f"learns jamo pieces; pass --no-strip-accents (lower-casing without stripping keeps syllables "
            f"whole, as HuggingFace does with strip_accents=False)")


def _default_strip(lowercase: bool, counts: dict, verbose: bool) -> bool:
    """HuggingFace's rule (strip accents when lower-casing), except for a Korean corpus: its
    syllables must stay whole (stripping is NFD, which splits each into jamo)."""
    if lowercase and "ko" in _guess_langs(counts):
        if verbose:
            print("Korean corpus (Hangul in the texts sampled): accents are kept so Hangul syllables stay "
                  "whole (pass --strip-accents to strip them)", flush=True)
        return False
    return bool(lowercase)


def guess_langs(texts: Iterable[str]) -> list:
    """Language codes from the scripts in ``texts`` (Hangul -> ko, Latin -> en, each >= 5% of the letters)."""
    return _guess_langs(script_counts(texts))


def _guess_langs(counts: dict) -> list:
    total = counts["hangul_syllables"] + counts["latin_letters"]
    langs = []
    if total and counts["hangul_syllables"] / total >= 0.05:
        langs.append("ko")
    if total and counts["latin_letters"] / total >= 0.05:
        langs.append("en")
    return langs


def _pipeline(settings: dict):
    """An untrained ``tokenizers`` WordPiece pipeline with BERT's normalizer and pre-tokenizer."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]", continuing_subword_prefix="##"))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=settings["strip_accents"],
        lowercase=settings["lowercase"])
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return tokenizer


def _alphabet(sample: Sequence[str], tokenizer) -> tuple[int, int]:
    """(words, pieces the sample's characters need: each first character, and each later one as ``##c``)."""
    first, later, words = set(), set(), 0
    for text in sample:
        normalized = tokenizer.normalizer.normalize_str(text)
        for word, _ in tokenizer.pre_tokenizer.pre_tokenize_str(normalized):
            words += 1
            first.add(word[0])
            later.update(word[1:])
    return words, len(first) + len(later)


def _check_sample(sample: Sequence[str], tokenizer, settings: dict) -> None:
    """Fail fast, before the full pass: too few texts, no words, or a --size below the alphabet."""
    if len(sample) < MIN_TEXTS:
        raise DataError(f"the corpus has {len(sample)} non-empty text(s); a vocabulary needs at least "
                        f"{MIN_TEXTS} (and tens of thousands to be useful); pass more text")
    words, pieces = _alphabet(sample, tokenizer)
    if not words:
        raise DataError("the corpus has no words (only spaces or control characters); pass text")
    needed = len(settings["special_tokens"]) + pieces
    if settings["limit_alphabet"] is None and needed > settings["size"]:
        raise ConfigError(_size_message(settings, needed, "the first texts alone need"))


def _size_message(settings: dict, needed: int, what: str) -> str:
    return (f"--size {settings['size']} is too small: {what} {needed} tokens ({len(settings['special_tokens'])} "
            f"special tokens + every character, also as a ##continuation); pass --size {needed} or more "
            f"(a useful vocabulary is several times that), or cap the characters with --limit-alphabet")


def _train(texts: Iterable[str], settings: dict):
    """The trained ``tokenizers`` pipeline; raises when the vocabulary came out bigger than --size."""
    from tokenizers import trainers

    tokenizer = _pipeline(settings)
    limit = {} if settings["limit_alphabet"] is None else {"limit_alphabet": settings["limit_alphabet"]}
    trainer = trainers.WordPieceTrainer(
        vocab_size=settings["size"], min_frequency=settings["min_frequency"],
        special_tokens=list(settings["special_tokens"]), continuing_subword_prefix="##", show_progress=False,
        **limit)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    vocab = [token for token, _ in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])]
    if len(vocab) > settings["size"]:  # the trainer never drops characters to meet the size
        raise ConfigError(_size_message(settings, len(vocab), "the corpus needs"))
    if vocab[:len(settings["special_tokens"])] != list(settings["special_tokens"]):
        raise ConfigError(f"the special tokens did not get the first ids (got {vocab[:5]}); "
                          f"a corpus token may collide with one of {list(settings['special_tokens'])}: "
                          f"pass --special-tokens that do not occur in the text")
    return vocab


def _write_tokenizer_files(folder: Path, vocab: list, settings: dict) -> None:
    """vocab.txt and HuggingFace's tokenizer files (what AutoTokenizer and from_hf read)."""
    from transformers import BertTokenizerFast

    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("".join(f"{token}\n" for token in vocab), encoding="utf-8")
    specials = settings["special_tokens"]
    roles = {role: token for role, token in zip(("pad_token", "unk_token", "cls_token", "sep_token", "mask_token"),
                                                DEFAULT_SPECIAL_TOKENS) if token in specials}
    extra = [t for t in specials if t not in DEFAULT_SPECIAL_TOKENS]
    tokenizer = BertTokenizerFast(
        vocab_file=str(vocab_file), do_lower_case=settings["lowercase"], strip_accents=settings["strip_accents"],
        tokenize_chinese_chars=True, model_max_length=512, additional_special_tokens=extra, **roles)
    tokenizer.save_pretrained(str(folder))
    if (folder / "vocab.txt").read_text(encoding="utf-8").splitlines() != vocab:
        raise ConfigError(f"the tokenizer files in {folder} do not keep the learnt vocabulary's ids (this "
                          f"transformers version writes vocab.txt its own way); install transformers==4.53.3")


def _percentile(values: list, share: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))])


def corpus_stats(folder, texts: Sequence[str], batch_size: int = 1024) -> dict:
    """[UNK] rates and tokens per text (no [CLS]/[SEP]) of ``texts`` with the in-graph tokenizer of ``folder``."""
    from tfbert.tokenizers import WordPieceTokenizer

    tokenizer = WordPieceTokenizer.from_hf(str(folder))
    unk, lengths, unk_tokens, unk_texts = tokenizer.unk_id, [], 0, 0
    for start in range(0, len(texts), batch_size):
        ids = tokenizer.tokenize(list(texts[start:start + batch_size]))
        for row in ids.to_list():
            lengths.append(len(row))
            hits = sum(1 for i in row if i == unk)
            unk_tokens += hits
            unk_texts += bool(hits)
    total = max(1, sum(lengths))
    return {"texts_measured": len(lengths), "unk_token_rate": unk_tokens / total,
            "unk_text_rate": unk_texts / max(1, len(lengths)),
            "tokens_per_text_mean": sum(lengths) / max(1, len(lengths)),
            "tokens_per_text_median": float(statistics.median(lengths)) if lengths else 0.0,
            "tokens_per_text_p95": _percentile(lengths, 0.95) if lengths else 0.0,
            "tokens_per_text_p99": _percentile(lengths, 0.99) if lengths else 0.0,
            "measured_on": "the first texts of the corpus (also used to learn the vocabulary), in-graph tokenizer"}


def _settings(size, lowercase, strip_accents, special_tokens, min_frequency, limit_alphabet) -> dict:
    return {"size": int(size), "lowercase": bool(lowercase),
            # None: chosen once the corpus is sampled (_default_strip)
            "strip_accents": None if strip_accents is None else bool(strip_accents),
            "special_tokens": [str(t) for t in special_tokens], "min_frequency": int(min_frequency),
            "limit_alphabet": None if limit_alphabet is None else int(limit_alphabet),
            "tokenize_chinese_chars": True, "clean_text": True, "continuing_subword_prefix": "##"}


def learn_vocab(sources, output_dir, size: int = 32000, lowercase: bool = True, strip_accents: bool | None = None,
                special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS, max_texts: int | None = None,
                min_frequency: int = 2, limit_alphabet: int | None = None, text_column: str = "text",
                langs: Sequence[str] | None = None, overwrite: bool = False, verbose: bool = True) -> VocabReport:
    """Learn a WordPiece vocabulary from ``sources`` and write it to ``output_dir`` (atomically).

    Args:
        sources: a corpus or a list of them: text files (one text a line, ``.gz`` allowed) or data
            sets (``nsmc:PATH``, tables with ``text_column``), of which only the train split is read.
        size: target vocabulary size, special tokens included.
        lowercase / strip_accents: BERT normalisation; ``strip_accents`` None follows ``lowercase``
            (as HuggingFace) except on a Korean corpus (Hangul >= 5% of the letters sampled), where
            accents are kept: stripping splits Hangul syllables into jamo.
        special_tokens: the first ids, in order ([PAD]=0, [UNK]=1, ...).
        min_frequency: pairs seen fewer times are not merged.
        limit_alphabet: keep at most this many characters (None: all; a word with a character
            left out becomes [UNK] as a whole).
        langs: language codes for the registry entries (default: guessed from the scripts seen).
    """
    from tfbert.data.corpus import check_sources, iter_texts
    from tfbert.files import atomic_dir, write_json

    start = time.time()
    settings = _settings(size, lowercase, strip_accents, special_tokens, min_frequency, limit_alphabet)
    _check_settings(settings["size"], settings["special_tokens"], settings["min_frequency"], max_texts)
    sources = check_sources(sources)
    out = check_output_dir(output_dir, overwrite)
    stream = iter_texts(sources, max_texts=max_texts, text_column=text_column)
    sample = list(itertools.islice(stream, SAMPLE_TEXTS))
    counts = script_counts(sample)
    if settings["strip_accents"] is None:
        settings["strip_accents"] = _default_strip(settings["lowercase"], counts, verbose)
    warnings = [w for w in [hangul_warning(counts, settings["strip_accents"])] if w]
    for warning in warnings:  # on stderr, so it shows even when the output is piped away
        print(f"WARNING: {warning}", file=sys.stderr, flush=True)
    _check_sample(sample, _pipeline(settings), settings)
    progress = _Progress(itertools.chain(sample, stream), verbose)
    vocab = _train(progress, settings)
    if verbose:
        print(f"read {progress.count} texts; learnt {len(vocab)} tokens", flush=True)
    with atomic_dir(out) as tmp:
        _write_tokenizer_files(tmp, vocab, settings)
        stats = corpus_stats(tmp, sample)
        report = VocabReport(out, len(vocab), progress.count, round(time.time() - start, 2), settings, stats, warnings)
        langs = list(langs) if langs else _guess_langs(counts)
        write_json(tmp / INFO_FILE, {"settings": settings, "sources": sources, "text_column": text_column,
                                     "max_texts": max_texts, "vocab_size": len(vocab), "texts_read": progress.count,
                                     "seconds": report.seconds, "scripts": counts, "langs": langs,
                                     "stats": stats, "warnings": warnings})
        _write_registry(tmp, out.name, langs, settings)
    return report


def _write_registry(folder: Path, name: str, langs: list, settings: dict) -> None:
    from tfbert.files import write_text
    from tfbert.scratch import registry_yaml

    write_text(folder / "registry.yaml", registry_yaml(name, langs, cased=not settings["lowercase"]))
