"""Fine-tuned HuggingFace classification checkpoints used as they are: predict, evaluate, export.

The checkpoints are tiny ``TFBertForSequenceClassification`` models the tests
save themselves, with ``id2label`` names; tfbert's answers must equal running
the HF model directly.
"""

import csv

import numpy as np
import pytest
import tensorflow as tf
from transformers import BertConfig, BertTokenizerFast, TFBertForSequenceClassification

import tfbert
import tfbert.predict
from tfbert.cli import main as cli_main
from tfbert.hf_classifier import ReadyPredictor, load_hf_classifier
from tfbert.testing import toy_texts

TEXTS = ["the movie was great", "awful and boring plot", "", "a superb story, really wonderful",
         "so-so ending " * 60]


def _save_checkpoint(folder, tiny_hf_dir, labels, seed=0):
    config = BertConfig.from_pretrained(tiny_hf_dir, num_labels=len(labels),
                                        id2label=dict(enumerate(labels)),
                                        label2id={name: i for i, name in enumerate(labels)})
    tf.random.set_seed(seed)
    model = TFBertForSequenceClassification(config)
    model(model.dummy_inputs)
    model.save_pretrained(folder)
    BertTokenizerFast.from_pretrained(tiny_hf_dir).save_pretrained(folder)
    return str(folder)


def _hf_probabilities(folder, texts, seq_length=128):
    model = TFBertForSequenceClassification.from_pretrained(folder)
    enc = BertTokenizerFast.from_pretrained(folder)(texts, truncation=True, max_length=seq_length,
                                                     padding=True, return_tensors="tf")
    return tf.nn.softmax(model(**enc).logits, axis=-1).numpy()


@pytest.fixture(scope="module")
def sst2_dir(tmp_path_factory, tiny_hf_dir):
    return _save_checkpoint(tmp_path_factory.mktemp("sst2"), tiny_hf_dir, ["negative", "positive"])


def test_checkpoint_predicts_with_its_id2label_names_as_hf_does(sst2_dir):
    model = load_hf_classifier(f"hf:{sst2_dir}")
    assert model.class_names == ["negative", "positive"] and model.seq_length == 128
    predictor = ReadyPredictor(model)
    np.testing.assert_allclose(predictor.predict_proba(TEXTS), _hf_probabilities(sst2_dir, TEXTS), atol=1e-5)
    first = predictor.predict(TEXTS[:1])[0]
    assert first["label"] in ("negative", "positive") and set(first["scores"]) == {"negative", "positive"}


def test_three_label_checkpoint_uses_softmax(tmp_path, tiny_hf_dir):
    folder = _save_checkpoint(tmp_path / "three", tiny_hf_dir, ["neg", "neu", "pos"], seed=1)
    predictor = ReadyPredictor(load_hf_classifier(f"hf:{folder}", seq_length=32))
    np.testing.assert_allclose(predictor.predict_proba(TEXTS), _hf_probabilities(folder, TEXTS, 32), atol=1e-5)


def test_cli_predict_evaluate_and_export_the_checkpoint_as_it_is(sst2_dir, tmp_path, capsys):
    assert cli_main(["predict", f"hf:{sst2_dir}", "the movie was great", "awful"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["label", "score", "text"]
    assert all(line.split()[0] in ("negative", "positive") for line in out.splitlines()[1:])

    texts, labels = toy_texts(20, seed=2)
    data = tmp_path / "test.csv"
    with open(data, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["text", "label"]] + [[t, ["negative", "positive"][y]] for t, y in zip(texts, labels)])
    report_dir = tmp_path / "report"
    assert cli_main(["evaluate", f"hf:{sst2_dir}", "--data", str(data), "--output-dir", str(report_dir)]) == 0
    assert "accuracy" in capsys.readouterr().out and (report_dir / "predictions.csv").is_file()

    out_dir = tmp_path / "export"
    assert cli_main(["export", f"hf:{sst2_dir}", str(out_dir)]) == 0
    capsys.readouterr()
    exported = tfbert.predict.load(out_dir)
    assert exported.class_names == ["negative", "positive"] and exported.takes_text
    np.testing.assert_allclose(exported.predict_proba(TEXTS), _hf_probabilities(sst2_dir, TEXTS), atol=1e-5)


def test_data_labels_that_are_not_the_checkpoints_are_one_line(sst2_dir, tmp_path, capsys):
    data = tmp_path / "stars.csv"
    data.write_text("text,label\ngood film,5 stars\nbad film,1 star\n", encoding="utf-8")
    assert cli_main(["evaluate", f"hf:{sst2_dir}", "--data", str(data), "--output-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "'5 stars'" in err and "its classes are negative, positive" in err


def test_a_base_checkpoint_is_not_taken_for_a_classifier(tiny_hf_dir):
    with pytest.raises(tfbert.ConfigError) as err:
        load_hf_classifier(f"hf:{tiny_hf_dir}")
    message = str(err.value)
    assert "not a fine-tuned classification checkpoint" in message and "tfbert train" in message
    assert "\n" not in message


@pytest.mark.parametrize("problem", ["regression", "multi_label_classification"])
def test_regression_and_multi_label_checkpoints_predict_as_hf_does(problem, tmp_path, tiny_hf_dir):
    labels = ["similarity"] if problem == "regression" else ["toxic", "insult"]
    config = BertConfig.from_pretrained(tiny_hf_dir, num_labels=len(labels), id2label=dict(enumerate(labels)),
                                        label2id={n: i for i, n in enumerate(labels)}, problem_type=problem)
    tf.random.set_seed(3)
    hf = TFBertForSequenceClassification(config)
    hf(hf.dummy_inputs)
    hf.save_pretrained(tmp_path)
    BertTokenizerFast.from_pretrained(tiny_hf_dir).save_pretrained(tmp_path)
    enc = BertTokenizerFast.from_pretrained(tiny_hf_dir)(TEXTS, truncation=True, max_length=128, padding=True,
                                                         return_tensors="tf")
    logits = hf(**enc).logits.numpy()

    predictor = ReadyPredictor(load_hf_classifier(f"hf:{tmp_path}"))
    outputs, _ = predictor.predict_outputs(TEXTS)
    first = predictor.predict(TEXTS[:1])[0]
    if problem == "regression":
        assert predictor.task.name == "regression" and predictor.class_names == ["similarity"]
        np.testing.assert_allclose(outputs["value"], logits[:, 0], atol=1e-5)
        assert first == {"value": pytest.approx(float(logits[0, 0]), abs=1e-5)}
    else:  # two labels stay two sigmoids, not one softmax pair
        np.testing.assert_allclose(outputs["probabilities"], tf.sigmoid(logits).numpy(), atol=1e-5)
        assert first["labels"] == [n for n, p in zip(labels, tf.sigmoid(logits[0]).numpy()) if p >= 0.5]
