"""Checks a HuggingFace -> TF Hub conversion against the original, on real text.

Converts a BERT checkpoint (default: the installed all-MiniLM-L6-v2, registry
entry ``minilm-l6-h384-uncased``) with ``tfbert.convert.convert_checkpoint``,
or takes an existing conversion (``--converted DIR``), then for a few hundred
varied texts (English reviews, accents, punctuation, Korean, CJK, emoji,
control characters, the empty string, long text) compares, end to end:

* ids: the converted ``preprocess`` SavedModel (tokenize + bert_pack_inputs)
  against the HF tokenizer (``truncation=True, padding="max_length"``); they
  must be equal;
* outputs: HF tokenizer -> ``TFBertModel`` against preprocess -> converted
  ``encoder`` (both through the SavedModels as ``hub`` loads them):
  ``sequence_output`` vs ``last_hidden_state`` on non-padding positions, and
  ``pooled_output`` vs ``pooler_output``; the max abs difference must be
  within ``--tolerance`` (1e-4).

A second pass runs the longest texts at ``--long-seq-length`` (512) so every
position embedding row is exercised.

Prints the figures and writes them to ``--json`` (default
``build/conversion_check.json``). Exit status 0 when all pass, else 1.

Usage::

    python scripts/check_conversion.py [--model minilm-l6-h384-uncased]
        [--converted DIR] [--seq-length 128] [--json build/conversion_check.json]

Also run by ``pytest tests/test_convert.py --run-slow``.
"""

from __future__ import annotations

import argparse
import gzip
import csv
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent

# Hand-written texts aimed at tokenizer corner cases.
TRICKY = [
    "",
    " ",
    "\t\n  \r\n",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "I didn't like it... at ALL!!! 10/10 would NOT watch again :-(",
    "Café, naïve, façade, résumé, coöperate, Zoë, Ångström, jalapeño, crème brûlée.",
    "Cafe\u0301 with a combining accent (decomposed), and Å vs A\u030a.",
    "ÀÁÂÃÄÅ àáâãäå ÈÉÊË ÌÍÎÏ ÒÓÔÕÖ ÙÚÛÜ Ññ Çç ß Œœ Ææ Øø",
    "Straße, Fußball, İstanbul, ǅ, ﬁnance, ﬂoor (ligatures), ½ ² ³ ™ ℃ Ⅻ",
    "Fullwidth: ＡＢＣ１２３！？ and halfwidth katakana ｶﾀｶﾅ",
    "Zero\u200bwidth\u200cjoiners\u200d and soft\u00adhyphen and BOM\ufeff here",
    "Control chars: a\x00b\x01c\x7fd\u0085e",
    "Quotes “curly” ‘single’ «guillemets» „low“ — em dash – en dash … ellipsis",
    "Math: x² + y² = z², ∑∫√∞ ≤ ≥ ≠ ± × ÷ → ⇒ ∀∃",
    "Emoji: 😀🎬🍿👍🏽👨‍👩‍👧 ❤️ ★★★★☆",
    "e-mail someone@example.com, URL https://example.org/path?q=1&r=2#frag",
    "Numbers: 3.14159, 1,000,000, -42, 1e-5, $19.99, 50%, #1, 24/7",
    "C++, C#, .NET, Node.js, TensorFlow 2.20, ids_with_underscores, camelCaseWords",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "[CLS] [SEP] [MASK] [PAD] [UNK] literally typed special tokens [cls] [mask]",
    "<br /><br />HTML <b>tags</b> &amp; entities &lt;3",
    "영화가 정말 재미있었어요. 배우들의 연기도 훌륭했습니다.",
    "ㅋㅋㅋㅋ 진짜 웃기다 ㅎㅎ ㅠㅠ",
    "이 영화는 10점 만점에 9점! 강력 추천합니다~~",
    "한국어와 English가 섞인 문장, 그리고 숫자 123.",
    "\u1100\u1161\u11a8 conjoining jamo vs 각 precomposed",
    "中文字符测试：我喜欢这部电影。",
    "日本語のテキスト、カタカナとひらがな。",
    "Русский текст: фильм был отличный!",
    "Ελληνικά: η ταινία ήταν καλή.",
    "العربية: كان الفيلم رائعًا",
    "עברית: הסרט היה מצוין",
    "हिन्दी: फिल्म बहुत अच्छी थी",
    "ไทย: หนังดีมาก",
    "Tiếng Việt: bộ phim rất hay",
    "Polski: film był świetny, żółć, źdźbło",
    "Türkçe: film çok güzeldi, ığüşöç",
    "   leading and trailing spaces   ",
    "multiple     spaces\tand\ttabs\nand\nnewlines",
    "!!!???...,,,;;;:::---___***",
    "'quoted' \"double\" `backtick` (parens) [brackets] {braces} <angles>",
    "ALL CAPS SENTENCE WITH SHOUTING",
    "MiXeD cAsE tExT",
    "a",
    ".",
    "🎬",
    "word " * 200,
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 20,
]


def build_texts(n_imdb: int = 200) -> list[str]:
    """TRICKY + NSMC (Korean) + IMDB demo reviews + mixed variants, deterministic."""
    texts = list(TRICKY)
    nsmc = ROOT / "tests" / "fixtures" / "data" / "nsmc_small.txt"
    if nsmc.exists():
        rows = list(csv.reader(io.StringIO(nsmc.read_text(encoding="utf-8")), delimiter="\t"))
        texts += [r[1] for r in rows[1:] if len(r) > 1]
    imdb = ROOT / "tfbert" / "demo_data" / "imdb_sample" / "test.tsv.gz"
    reviews = []
    if imdb.exists():
        with gzip.open(imdb, "rt", encoding="utf-8") as f:
            reviews = [row["text"] for row in csv.DictReader(f, delimiter="\t")][:n_imdb]
    texts += reviews
    # Variants: sentences with accents / Korean / case changes spliced in.
    inserts = ["café", "naïve", "영화", "ㅋㅋ", "😀", "—", "ﬁ", "Ⅻ", "ＡＢＣ"]
    for i, review in enumerate(reviews[:60]):
        first = review.split(".")[0][:200]
        variant = [first.upper(), first.lower(), f"{first} {inserts[i % len(inserts)]}!"][i % 3]
        texts.append(variant)
    return texts


def _batches(items, size):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def compare(hf_model, hf_tokenizer, encoder, preprocess, texts, seq_length, batch_size=32):
    """End-to-end comparison; returns figures for ``texts`` at ``seq_length``."""
    import numpy as np
    import tensorflow as tf

    from tfbert.convert import preprocess_ids

    keys = ("input_word_ids", "input_mask", "input_type_ids")
    seq_max = pooled_max = 0.0
    seq_sum = 0.0
    seq_count = 0
    hidden = hf_model.config.hidden_size
    mismatched = []
    for start, batch in zip(range(0, len(texts), batch_size), _batches(texts, batch_size)):
        enc = hf_tokenizer(list(batch), truncation=True, max_length=seq_length, padding="max_length",
                           return_token_type_ids=True, return_tensors="np")
        ref = {"input_word_ids": enc["input_ids"], "input_mask": enc["attention_mask"],
               "input_type_ids": enc["token_type_ids"]}
        ours = preprocess_ids(preprocess, batch, seq_length)
        bad = np.zeros(len(batch), dtype=bool)
        for k in keys:
            bad |= (ours[k] != ref[k]).any(axis=1)
        mismatched += [start + int(i) for i in np.flatnonzero(bad)]

        out_hf = hf_model(input_ids=ref["input_word_ids"], attention_mask=ref["input_mask"],
                          token_type_ids=ref["input_type_ids"], training=False)
        out = encoder({k: tf.constant(ours[k], tf.int32) for k in keys}, training=False)
        mask = ref["input_mask"].astype(bool) & ~bad[:, None]
        diff = np.abs(out["sequence_output"].numpy() - out_hf.last_hidden_state.numpy())[mask]
        if diff.size:
            seq_max = max(seq_max, float(diff.max()))
            seq_sum += float(diff.sum())
            seq_count += int(mask.sum())
        pdiff = np.abs(out["pooled_output"].numpy() - out_hf.pooler_output.numpy())[~bad]
        if pdiff.size:
            pooled_max = max(pooled_max, float(pdiff.max()))
    return {
        "seq_length": seq_length,
        "sentences": len(texts),
        "tokens_compared": seq_count,
        "max_abs_diff_sequence_output": seq_max,
        "mean_abs_diff_sequence_output": seq_sum / max(seq_count * hidden, 1),
        "max_abs_diff_pooled_output": pooled_max,
        "id_mismatches": len(mismatched),
        "id_mismatch_examples": [
            {"index": i, "text": texts[i][:120],
             "hf": hf_tokenizer.convert_ids_to_tokens(
                 hf_tokenizer(texts[i], truncation=True, max_length=seq_length)["input_ids"])[:40]}
            for i in mismatched[:5]],
    }


def run_check(model: str = "minilm-l6-h384-uncased", converted: str | None = None,
              seq_length: int = 128, long_seq_length: int = 512, n_long: int = 16,
              tolerance: float = 1e-4, json_path: str | None = None, verbose: bool = True) -> dict:
    """Runs the check; returns the figures (``passed`` says whether all hold)."""
    import tensorflow_hub as hub
    import tensorflow_text  # noqa: F401
    from transformers import AutoTokenizer, TFBertModel
    from transformers.utils import logging as hf_logging

    from tfbert.convert import _resolve_source, convert_checkpoint

    hf_logging.set_verbosity_error()
    checkpoint, tokenizer_path = _resolve_source(model)
    tmp = None
    conversion_seconds = None
    if converted is None:
        tmp = tempfile.TemporaryDirectory(prefix="tfbert_check_")
        converted = os.path.join(tmp.name, "converted")
        t0 = time.time()
        convert_checkpoint(model, converted, seq_length=seq_length)
        conversion_seconds = time.time() - t0
    info_file = Path(converted) / "tfbert_conversion.json"
    info = json.loads(info_file.read_text(encoding="utf-8")) if info_file.exists() else {}
    if conversion_seconds is None:
        conversion_seconds = info.get("seconds")

    hf_model = TFBertModel.from_pretrained(checkpoint)
    hf_tokenizer = AutoTokenizer.from_pretrained(tokenizer_path or checkpoint)
    encoder = hub.KerasLayer(os.path.join(converted, "encoder"))
    preprocess = hub.load(os.path.join(converted, "preprocess"))

    texts = build_texts()
    t0 = time.time()
    main = compare(hf_model, hf_tokenizer, encoder, preprocess, texts, seq_length)
    long_seq_length = min(long_seq_length, hf_model.config.max_position_embeddings)
    long_texts = sorted(texts, key=len, reverse=True)[:n_long]
    long = compare(hf_model, hf_tokenizer, encoder, preprocess, long_texts, long_seq_length, 8)
    figures = {
        "model": model,
        "checkpoint": checkpoint,
        "converted": "(a temporary folder, removed)" if tmp is not None else str(converted),
        "conversion_seconds": None if conversion_seconds is None else round(conversion_seconds, 1),
        "compare_seconds": round(time.time() - t0, 1),
        "tolerance": tolerance,
        "main": main,
        "long": long,
    }
    worst = max(main["max_abs_diff_sequence_output"], main["max_abs_diff_pooled_output"],
                long["max_abs_diff_sequence_output"], long["max_abs_diff_pooled_output"])
    figures["max_abs_diff"] = worst
    figures["id_mismatches"] = main["id_mismatches"] + long["id_mismatches"]
    figures["passed"] = worst <= tolerance and figures["id_mismatches"] == 0
    if verbose:
        for label, r in (("main", main), ("long", long)):
            print(f"{label}: {r['sentences']} texts at seq_length {r['seq_length']}, "
                  f"{r['tokens_compared']} tokens: max|diff| sequence_output "
                  f"{r['max_abs_diff_sequence_output']:.3g} (mean {r['mean_abs_diff_sequence_output']:.3g}), "
                  f"pooled_output {r['max_abs_diff_pooled_output']:.3g}; "
                  f"id mismatches {r['id_mismatches']}")
        print(f"conversion {figures['conversion_seconds']} s; tolerance {tolerance:g}; "
              f"{'PASSED' if figures['passed'] else 'FAILED'}")
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n",
                                   encoding="utf-8")
        if verbose:
            print(f"wrote {json_path}")
    if tmp is not None:
        tmp.cleanup()
    return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="minilm-l6-h384-uncased",
                        help="HF registry name, hub id or save_pretrained folder")
    parser.add_argument("--converted", default=None,
                        help="an existing conversion folder (default: convert into a temp folder)")
    parser.add_argument("--seq-length", type=int, default=128)
    parser.add_argument("--long-seq-length", type=int, default=512)
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("--json", default=str(ROOT / "build" / "conversion_check.json"))
    args = parser.parse_args(argv)
    figures = run_check(args.model, args.converted, args.seq_length, args.long_seq_length,
                        tolerance=args.tolerance, json_path=args.json)
    return 0 if figures["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
