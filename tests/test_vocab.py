"""tfbert vocab / learn_vocab: a WordPiece vocabulary learnt from a corpus, loaded alike by HF and in-graph."""

import gzip
import json

import pytest

import tfbert
from tfbert.testing import toy_bilingual_texts, toy_texts

ODD_TEXTS = ["Café naïve RÉSUMÉ", "北京大学 東京 日本語", "emoji 😀 👍🏽 here", "literal [SEP] and [CLS] in text",
             "", "   ", "ＡＢＣ full width", "ㅋㅋㅋ ㅠㅠ 재밌다!!", "tab\there\u200bzero width", "영화가 정말 최고 GREAT movie",
             "Ǆ ß İstanbul ΣΑΣ", "한국어와 English가 섞인 문장입니다."]


def _corpus(path, n=300):
    texts = toy_bilingual_texts(n, seed=1)[0] + toy_texts(n // 3, seed=2)[0] + ["Café naïve résumé 東京"] * 3
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def work(tmp_path_factory):
    """A fresh folder whose path does not contain "test" (pytest's tmp_path does: corpus.py would
    take corpora under it for test splits)."""
    return tmp_path_factory.mktemp("work")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return _corpus(tmp_path_factory.mktemp("corpus") / "corpus.txt")


@pytest.fixture(scope="module")
def learnt(corpus, tmp_path_factory):
    """Vocabularies learnt with each normalisation: name -> (folder, report)."""
    root = tmp_path_factory.mktemp("vocabs")
    # "nostrip" by default: a Korean corpus keeps its accents (Hangul syllables) unless told otherwise
    settings = {"strip": dict(lowercase=True, strip_accents=True), "nostrip": dict(lowercase=True),
                "cased": dict(lowercase=False)}
    return {name: (root / name, tfbert.learn_vocab(str(corpus), root / name, size=400, verbose=False, **kw))
            for name, kw in settings.items()}


@pytest.mark.parametrize("name", ["strip", "nostrip", "cased"])
def test_hf_and_in_graph_tokenizers_give_the_same_ids(learnt, name):
    from transformers import AutoTokenizer

    from tfbert.tokenizers import WordPieceTokenizer

    folder, report = learnt[name]
    texts = toy_bilingual_texts(20, seed=9)[0] + ODD_TEXTS
    hf = AutoTokenizer.from_pretrained(str(folder))
    expected = [hf(t, add_special_tokens=False)["input_ids"] for t in texts]
    assert WordPieceTokenizer.from_hf(str(folder)).tokenize(texts).to_list() == expected
    vocab = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] and len(vocab) <= 400
    assert hf.convert_tokens_to_ids(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]) == [0, 1, 2, 3, 4]
    assert hf.do_lower_case is (name != "cased")
    info = json.loads((folder / "tfbert_vocab.json").read_text(encoding="utf-8"))
    assert info["vocab_size"] == len(vocab) == report.vocab_size and info["texts_read"] == 403
    assert 0 <= info["stats"]["unk_token_rate"] < 0.05 and info["stats"]["tokens_per_text_mean"] > 3
    assert set(info["langs"]) == {"ko", "en"} and (folder / "registry.yaml").is_file()


def test_korean_syllables_survive_without_stripping_and_the_warning_fires(learnt, corpus, work, capsys):
    def jamo(tokens):
        return [t for t in tokens if any(0x1100 <= ord(c) <= 0x11FF for c in t)]

    def syllables(tokens):
        return [t for t in tokens if any(0xAC00 <= ord(c) <= 0xD7A3 for c in t)]

    nostrip = (learnt["nostrip"][0] / "vocab.txt").read_text(encoding="utf-8").splitlines()
    strip = (learnt["strip"][0] / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert len(syllables(nostrip)) > 30 and not jamo(nostrip)
    assert jamo(strip) and not syllables(strip)
    assert learnt["strip"][1].warnings and not learnt["nostrip"][1].warnings and not learnt["cased"][1].warnings
    assert learnt["nostrip"][1].settings["strip_accents"] is False
    report = tfbert.learn_vocab(str(corpus), work / "v", size=300, strip_accents=True, verbose=False)
    err = capsys.readouterr().err
    assert "breaks every Hangul syllable into 2-3 jamo" in err and "--no-strip-accents" in err
    assert err.count("\n") == 1 and report.warnings
    english = work / "english.txt"  # no Hangul: HuggingFace's rule, lower-casing strips accents
    english.write_text("\n".join(toy_texts(120, seed=5)[0] + ["Café naïve résumé"] * 3) + "\n", encoding="utf-8")
    assert tfbert.learn_vocab(str(english), work / "en", size=300, verbose=False).settings["strip_accents"] is True
    tfbert.learn_vocab(str(corpus), work / "ko", size=300, verbose=True)
    assert "Korean corpus (Hangul in the texts sampled): accents are kept" in capsys.readouterr().out


def test_gz_corpus_and_max_texts(corpus, work):
    gz = work / "corpus.txt.gz"
    gz.write_bytes(gzip.compress(corpus.read_bytes()))
    report = tfbert.learn_vocab(str(gz), work / "gz", size=300, strip_accents=False, verbose=False)
    assert report.texts_read == 403 and report.stats["texts_measured"] == 403
    report = tfbert.learn_vocab([str(gz), str(corpus)], work / "few", size=300, max_texts=50,
                                strip_accents=False, verbose=False)
    assert report.texts_read == 50
    info = json.loads((work / "few" / "tfbert_vocab.json").read_text(encoding="utf-8"))
    assert info["texts_read"] == 50 and len(info["sources"]) == 2 and info["max_texts"] == 50


def test_cli_writes_the_folder_and_prints_a_summary(corpus, work, capsys):
    from tfbert.cli import main

    out = work / "ko-vocab"
    code = main(["vocab", str(corpus), "--output", str(out), "--size", "300", "--no-strip-accents",
                 "--max-texts", "200", "--min-frequency", "1", "--langs", "ko"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert str(out) in captured.out and "read 200 texts" in captured.out and "[UNK]" in captured.out
    info = json.loads((out / "tfbert_vocab.json").read_text(encoding="utf-8"))
    assert info["settings"]["strip_accents"] is False and info["settings"]["min_frequency"] == 1
    assert info["langs"] == ["ko"] and info["texts_read"] == 200
    assert {"vocab.txt", "tokenizer.json", "tokenizer_config.json", "registry.yaml"} <= {p.name for p in out.iterdir()}
    assert main(["vocab", str(corpus), "--output", str(out), "--size", "300"]) == 2  # exists: --overwrite
    assert "--overwrite" in capsys.readouterr().err
    # --corpus is the same as the positional form (tfbert pretrain takes both too)
    assert main(["vocab", "--corpus", str(corpus), "--output", str(out), "--size", "300", "--overwrite",
                 "--special-tokens", "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<extra>"]) == 0
    assert (out / "vocab.txt").read_text(encoding="utf-8").splitlines()[5] == "<extra>"


def test_bad_input_is_one_line(corpus, work, capsys, monkeypatch):
    from tfbert.cli import main

    def fails(error, match, source, **kw):
        with pytest.raises(error, match=match) as info:
            tfbert.learn_vocab(str(source), work / "out", verbose=False, **{"size": 300, **kw})
        assert "\n" not in str(info.value)

    (work / "empty.txt").write_text("\n  \n\n", encoding="utf-8")
    fails(tfbert.DataError, "0 non-empty text\\(s\\); a vocabulary needs at least 10", work / "empty.txt")
    (work / "few.txt").write_text("one\ntwo\nthree\n", encoding="utf-8")
    fails(tfbert.DataError, "3 non-empty text\\(s\\)", work / "few.txt")
    (work / "nowords.txt").write_text("\u200b\n" * 20, encoding="utf-8")
    fails(tfbert.DataError, "no words", work / "nowords.txt")
    fails(tfbert.ConfigError, "--size 40 is too small: .* pass --size \\d+ or more", corpus, size=40)
    fails(tfbert.ConfigError, "--size 5 leaves no room", corpus, size=5)
    fails(tfbert.ConfigError, "--size 60 is too small: the corpus needs", corpus, size=60, limit_alphabet=1000,
          strip_accents=False)
    (work / "cp949.txt").write_bytes("한국어 문장\n".encode("cp949") * 20)
    fails(tfbert.DataError, "not UTF-8", work / "cp949.txt")
    fails(tfbert.ConfigError, "special tokens must include \\[PAD\\] \\[UNK\\] \\[CLS\\] \\[SEP\\] \\[MASK\\].*missing: "
          "\\[MASK\\]", corpus, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"])
    # a bad line after the texts sampled up front: found while the trainer reads the stream
    monkeypatch.setattr("tfbert.vocab.SAMPLE_TEXTS", 20)
    (work / "late.txt").write_bytes(corpus.read_bytes() + "나쁜 줄\n".encode("cp949"))
    fails(tfbert.DataError, "line 404 of .*late.txt is not UTF-8", work / "late.txt")
    monkeypatch.undo()
    test_split = work / "test.txt"
    test_split.write_bytes(corpus.read_bytes())
    fails(tfbert.DataError, "looks like a test split", test_split)
    (work / "a_file").write_text("x", encoding="utf-8")
    with pytest.raises(tfbert.ConfigError, match="cannot write|is a file"):
        tfbert.learn_vocab(str(corpus), work / "a_file" / "out", size=300, verbose=False)
    (work / "mine").mkdir()
    (work / "mine" / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(tfbert.ConfigError, match="is not a tfbert vocabulary"):
        tfbert.learn_vocab(str(corpus), work / "mine", size=300, verbose=False)
    assert (work / "mine" / "notes.txt").read_text(encoding="utf-8") == "keep me"
    assert main(["vocab", str(work / "missing.txt"), "--output", str(work / "o")]) == 2
    assert "corpus not found" in capsys.readouterr().err
    assert main(["vocab", "--output", str(work / "o")]) == 2
    err = capsys.readouterr().err
    assert "no corpus given; name its files: tfbert vocab FILE" in err and len(err.strip().splitlines()) == 1
    assert not (work / "out").exists() and not (work / "o").exists()
