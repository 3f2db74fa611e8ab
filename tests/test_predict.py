"""tfbert.predict (Predictor, files, CLI) on exported tiny models.

The exports come from ``tests/test_export.py`` (made once per session).
"""

import json
import logging

import numpy as np
import pandas as pd
import pytest

import tfbert
from tfbert.cli import main as cli_main
from tfbert.predict import load, read_texts
from tfbert.testing import toy_texts

from test_export import STRINGS, get_export, keras_probabilities  # noqa: E402  (shared exports)


@pytest.fixture(scope="session")
def predict_root(tmp_path_factory):
    return tmp_path_factory.mktemp("exports")


@pytest.fixture
def exported(tiny_models, tiny_hf_dir, predict_root):
    return lambda key: get_export(key, predict_root, tiny_hf_dir)


_PREDICTORS = {}


@pytest.fixture
def predictor(exported):
    """A loaded Predictor per export, shared by the tests (loading takes seconds)."""
    def get(key):
        if key not in _PREDICTORS:
            _PREDICTORS[key] = load(exported(key)[1])
        return _PREDICTORS[key]
    return get


def _cli(argv):
    """``tfbert ARGV`` in this process (one-line errors go to stderr, exit code 2)."""
    return cli_main(argv)


@pytest.mark.parametrize("key", ["hub2", "hf3"])
def test_predictor_returns_label_names_and_probabilities(exported, predictor, key):
    model, folder, class_names = exported(key)
    clf = predictor(key)
    assert clf.class_names == class_names and clf.seq_length == 16 and clf.takes_text
    assert clf.spec["name"] == model.spec.name and clf.config["epochs"] == 2
    texts = toy_texts(10, num_classes=len(class_names), seed=11)[0] + ["", "재밌어요 😀"]
    results = clf.predict(texts, batch_size=4)
    assert len(results) == len(texts)
    expected = keras_probabilities(model, texts)
    for result, row in zip(results, expected):
        assert set(result) == {"label", "score", "scores"}
        assert list(result["scores"]) == class_names
        assert result["label"] == class_names[int(np.argmax(row))]
        assert result["score"] == result["scores"][result["label"]] == max(result["scores"].values())
        np.testing.assert_allclose(list(result["scores"].values()), row, atol=1e-5)
    # one string in, one result out; __call__ is predict
    single = clf("good")
    assert len(single) == 1 and single[0]["label"] in class_names


def test_empty_and_too_long_texts_one_warning_line(exported, predictor, caplog):
    _, folder, class_names = exported("hf3")
    clf = predictor("hf3")
    long_text = " ".join(["the movie was really good"] * 50)
    caplog.set_level(logging.WARNING, logger="tfbert.predict")
    results = clf.predict(["", long_text, "bad", long_text + " again", ""], batch_size=2)
    assert [r["label"] in class_names for r in results] == [True] * 5
    assert results[0] == results[4]  # the empty string is predicted like any text
    records = [r for r in caplog.records if r.name == "tfbert.predict"]
    assert len(records) == 1
    message = records[0].getMessage()
    assert "2 of 5 text(s) are longer than the model's 16 tokens" in message and "\n" not in message
    caplog.clear()
    clf.predict(["good", "bad"])
    assert not [r for r in caplog.records if r.name == "tfbert.predict"]


def test_python_side_tokenizer_export_predicts_like_the_keras_model(exported, predictor, caplog):
    model, folder, class_names = exported("bpe2")
    clf = predictor("bpe2")
    assert not clf.takes_text
    texts = STRINGS + toy_texts(6, seed=4)[0]
    caplog.set_level(logging.WARNING, logger="tfbert.predict")
    probs = clf.predict_proba(texts, batch_size=5)
    np.testing.assert_allclose(probs, keras_probabilities(model, texts), atol=1e-5)
    records = [r for r in caplog.records if r.name == "tfbert.predict"]
    assert len(records) == 1 and "truncated" in records[0].getMessage()
    assert {r["label"] for r in clf.predict(texts)} <= set(class_names)


def test_progress_bar_for_many_texts(predictor, capsys):
    clf = predictor("hub2")
    clf.predict(["good"] * 5, progress=True)
    assert "predict" in capsys.readouterr().err
    clf.predict(["good"] * 5)  # few texts: no bar by default
    assert capsys.readouterr().err == ""


def test_bad_texts_and_folders(predictor, tmp_path):
    clf = predictor("hub2")
    with pytest.raises(tfbert.DataError, match="text 1 \\(0-based\\) is missing"):
        clf.predict(["good", None])
    with pytest.raises(tfbert.ConfigError, match="batch_size must be a positive integer"):
        clf.predict(["good"], batch_size=0)
    with pytest.raises(tfbert.ConfigError, match="model folder not found"):
        load(tmp_path / "nope")
    with pytest.raises(tfbert.ConfigError, match="is not a tfbert export"):
        load(tmp_path)


def test_read_texts_formats_and_non_utf8_line(tmp_path):
    txt = tmp_path / "in.txt"
    txt.write_bytes("\ufeffgood movie\r\n\nbad film\n".encode("utf-8"))
    assert read_texts(txt) == ["good movie", "", "bad film"]
    csv_file = tmp_path / "in.csv"
    pd.DataFrame({"id": [1, 2], "review": ["좋아요", "a, b"]}).to_csv(csv_file, index=False)
    assert read_texts(csv_file, text_column="review") == ["좋아요", "a, b"]
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"text": "x"}\n{"text": "y"}\n', encoding="utf-8")
    assert read_texts(jsonl) == ["x", "y"]
    with pytest.raises(tfbert.DataError, match="column 'text' not found"):
        read_texts(csv_file)
    bad = tmp_path / "bad.txt"
    bad.write_bytes("good\nbad\n".encode() + "재미없다\n".encode("cp949"))
    with pytest.raises(tfbert.DataError, match=r"line 3 of .*bad.txt is not UTF-8 text.*re-save"):
        read_texts(bad)
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_bytes(b"text\nok\nok\n" + "재미없다\n".encode("cp949"))
    with pytest.raises(tfbert.DataError, match="line 4 of .*bad.csv is not UTF-8"):
        read_texts(bad_csv)


def test_cli_predict_table_and_files(exported, tmp_path, capsys):
    _, folder, class_names = exported("hub2")
    assert _cli(["predict", str(folder), "a good movie", ""]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["label", "score", "text"] and len(out) == 3
    assert out[1].split()[0] in class_names and out[1].endswith("a good movie")

    inp = tmp_path / "texts.tsv"
    pd.DataFrame({"review": ["good", "bad", "the plot"]}).to_csv(inp, sep="\t", index=False)
    for name in ("preds.csv", "preds.jsonl"):
        assert _cli(["predict", str(folder), "--input", str(inp), "--text-column", "review",
                     "--output", str(tmp_path / name)]) == 0
        assert "3 predictions written to" in capsys.readouterr().out
    table = pd.read_csv(tmp_path / "preds.csv")
    assert list(table.columns) == ["text", "label", "score", "score_neg", "score_pos"]
    assert table["text"].tolist() == ["good", "bad", "the plot"]
    rows = [json.loads(line) for line in (tmp_path / "preds.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows[0]["text"] == "good" and set(rows[0]["scores"]) == set(class_names)
    assert table["label"].tolist() == [r["label"] for r in rows]

    assert _cli(["predict", str(folder), "x", "--output", str(tmp_path / "p.xlsx")]) == 2
    assert "name the output file .csv or .jsonl" in capsys.readouterr().err
    assert _cli(["predict", str(folder)]) == 2
    assert capsys.readouterr().err.startswith("error: nothing to predict")


def test_control_characters_are_escaped_in_the_table():
    from tfbert.predict import format_predictions
    pred = {"label": "pos\x07", "score": 0.9, "scores": {"pos": 0.9}}
    table = format_predictions(["red \x1b[31malert\x1b[0m"], [pred])
    assert "\x1b" not in table and "\x07" not in table
    assert "\\x1b[31malert" in table and "pos\\x07" in table


def test_non_utf8_text_is_one_line(exported, tmp_path, capsys):
    _, folder, _ = exported("hub2")
    # what Python makes of the argument $'Caf\xe9 tr\xe8s bon' on a UTF-8 system (surrogateescape)
    assert _cli(["predict", str(folder), "Caf\udce9 tr\udce8s bon"]) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: command-line argument 3 "Caf\\udce9 tr\\udce8s bon" is not valid UTF-8 '
                          "(byte 0xe9)") and err.count("\n") == 1, err
    assert _cli(["tokenize", "--model", "tiny-hf", "\udcff"]) == 2  # any command, any argument
    assert "argument 4" in capsys.readouterr().err
    # the same bytes reaching the Python API
    with pytest.raises(tfbert.DataError, match=r"text 1 \(0-based\) is not valid UTF-8 \(byte 0xe9\)"):
        load(folder).predict(["ok", "Caf\udce9"])


def test_unwritable_output_fails_before_loading_anything(tmp_path, capsys):
    # the model folder does not even exist: the output is checked first
    assert _cli(["predict", str(tmp_path / "no-model"), "x", "--output", "/proc/tfbert/x.csv"]) == 2
    assert "cannot write to the folder of output file /proc/tfbert" in capsys.readouterr().err
    (tmp_path / "adir.csv").mkdir()
    assert _cli(["predict", str(tmp_path / "no-model"), "x", "--output", str(tmp_path / "adir.csv")]) == 2
    assert "is a folder; pass a file path" in capsys.readouterr().err


def test_files_are_labelled_in_chunks_and_written_whole(exported, predictor, tmp_path):
    from tfbert.predict import predict_file
    _, folder, _ = exported("hub2")
    clf = predictor("hub2")
    texts, _ = toy_texts(23, seed=9)
    source = tmp_path / "in.txt"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    sizes = []
    real_predict = clf.predict

    def spy(texts, **kwargs):
        sizes.append(len(texts))
        return real_predict(texts, **kwargs)

    clf.predict = spy
    try:
        assert predict_file(clf, source, out, chunk_size=5) == 23
    finally:
        del clf.predict
    assert sizes == [5, 5, 5, 5, 3]  # never more than a chunk in memory
    table = pd.read_csv(out, keep_default_na=False)
    assert table["text"].tolist() == texts
    expected = clf.predict(texts)
    assert table["label"].tolist() == [p["label"] for p in expected]
    np.testing.assert_allclose(table["score"], [p["score"] for p in expected], atol=1e-5)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(("ok\n" * 7).encode() + b"caf\xe9\n")
    with pytest.raises(tfbert.DataError, match="line 8 of .*bad.txt is not UTF-8"):
        predict_file(clf, bad, tmp_path / "never.csv", chunk_size=5)
    assert not (tmp_path / "never.csv").exists() and not list(tmp_path.glob(".never.csv*"))


def test_many_texts_in_one_signature_call_come_back_in_order(exported):
    import tensorflow as tf
    _, folder, _ = exported("hf3")
    serve = tf.saved_model.load(str(folder)).signatures["serving_default"]
    texts, _ = toy_texts(150, num_classes=3, seed=10)
    texts = [t * (1 + i % 7) for i, t in enumerate(texts)]  # lengths vary, so sorting reorders them
    together = serve(text=tf.constant(texts))
    alone = [serve(text=tf.constant([t])) for t in texts[:12]]
    np.testing.assert_allclose(together["probabilities"].numpy()[:12],
                               np.concatenate([a["probabilities"].numpy() for a in alone]), atol=1e-5)
    assert together["num_tokens"].numpy().tolist()[:12] == [int(a["num_tokens"].numpy()[0]) for a in alone]
    assert together["probabilities"].shape == (150, 3)
    assert serve(text=tf.constant([], dtype=tf.string))["probabilities"].shape == (0, 3)
