"""Tests for tfbert.metrics against small examples computed by hand."""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest
from PIL import Image

from tfbert.errors import DataError
from tfbert.metrics import classification_report, format_report, save_report

# Binary, positive class = "pos" (index 1).
#   y_true: 0 0 0 0 1 1 1 1 1 0 1
#   y_pred: 0 0 1 0 1 1 0 1 1 1 1
# TN=3, FP=2, FN=1, TP=5 -> confusion [[3, 2], [1, 5]], accuracy 8/11
# pos: P=5/7, R=5/6, F1=2TP/(2TP+FP+FN)=10/13;  neg: P=3/4, R=3/5, F1=6/9=2/3
# macro F1 = (10/13 + 2/3) / 2 = 28/39
BIN_TRUE = [0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 1]
BIN_PRED = [0, 0, 1, 0, 1, 1, 0, 1, 1, 1, 1]

# Three classes.
#   y_true: 0 0 0 1 1 2 2 2 2
#   y_pred: 0 1 0 1 2 2 2 0 2
# confusion [[2, 1, 0], [0, 1, 1], [1, 0, 3]], accuracy 6/9 = 2/3
# F1: neg 4/6=2/3, neu 2/4=1/2, pos 6/8=3/4 -> macro 23/36; weighted (3*2/3+2*1/2+4*3/4)/9 = 2/3
TRI_TRUE = [0, 0, 0, 1, 1, 2, 2, 2, 2]
TRI_PRED = [0, 1, 0, 1, 2, 2, 2, 0, 2]
TRI_NAMES = ["neg", "neu", "pos"]


def test_binary_report():
    r = classification_report(BIN_TRUE, BIN_PRED, ["neg", "pos"])
    assert r["num_examples"] == 11
    assert r["accuracy"] == pytest.approx(8 / 11)
    assert r["positive_class"] == "pos"
    assert r["precision"] == pytest.approx(5 / 7)
    assert r["recall"] == pytest.approx(5 / 6)
    assert r["f1"] == pytest.approx(10 / 13)
    assert r["f1_macro"] == pytest.approx(28 / 39)
    assert r["confusion_matrix"] == [[3, 2], [1, 5]]
    assert r["per_class"]["neg"] == pytest.approx({"precision": 3 / 4, "recall": 3 / 5, "f1": 2 / 3, "support": 5})
    assert r["per_class"]["pos"]["support"] == 6
    assert "roc_auc" not in r
    json.dumps(r)  # plain Python types only


def test_binary_roc_auc():
    # Pairs (neg, pos): (0.1,0.35) ok, (0.1,0.8) ok, (0.4,0.35) wrong, (0.4,0.8) ok -> AUC 3/4
    scores = [0.1, 0.4, 0.35, 0.8]
    r = classification_report([0, 0, 1, 1], [0, 0, 0, 1], ["neg", "pos"], y_score=scores)
    assert r["roc_auc"] == pytest.approx(0.75)
    two_col = [[1 - s, s] for s in scores]
    assert classification_report([0, 0, 1, 1], [0, 0, 0, 1], ["neg", "pos"], y_score=two_col)["roc_auc"] == pytest.approx(0.75)
    # Only one class in y_true: AUC undefined -> None, no exception.
    assert classification_report([1, 1], [1, 0], ["neg", "pos"], y_score=[0.9, 0.2])["roc_auc"] is None


def test_three_class_report():
    r = classification_report(TRI_TRUE, TRI_PRED, TRI_NAMES)
    assert r["accuracy"] == pytest.approx(2 / 3)
    assert r["f1_macro"] == pytest.approx(23 / 36)
    assert r["f1_weighted"] == pytest.approx(2 / 3)
    assert r["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [1, 0, 3]]
    assert [r["per_class"][c]["support"] for c in TRI_NAMES] == [3, 2, 4]
    assert r["per_class"]["neu"]["f1"] == pytest.approx(1 / 2)
    assert "precision" not in r and "positive_class" not in r


def test_class_names_as_labels_match_indices():
    by_name = classification_report([TRI_NAMES[i] for i in TRI_TRUE], [TRI_NAMES[i] for i in TRI_PRED], TRI_NAMES)
    assert by_name == classification_report(TRI_TRUE, TRI_PRED, TRI_NAMES)


def test_absent_labels_scored_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = classification_report([0, 0, 1, 1], [0, 0, 0, 1], TRI_NAMES)
    assert r["per_class"]["pos"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert r["confusion_matrix"] == [[2, 0, 0], [1, 1, 0], [0, 0, 0]]


@pytest.mark.parametrize(
    "y_true, y_pred, names, match",
    [
        ([0, 1], [0], ["a", "b"], "one prediction per example"),
        ([0, 3], [0, 1], ["a", "b"], "class index 3"),
        ([0, 1], [0, 1], ["a"], "at least 2 classes"),
        ([0, 1], [0, 1], ["a", "a"], "duplicates"),
        (["a", "c"], ["a", "b"], ["a", "b"], "'c'"),
        ([0.2, 0.9], [0, 1], ["a", "b"], "non-integer"),
        ([], [], ["a", "b"], "no examples"),
    ],
)
def test_bad_input(y_true, y_pred, names, match):
    with pytest.raises(DataError, match=match):
        classification_report(y_true, y_pred, names)


def test_save_report_files_are_readable(tmp_path):
    r = classification_report(TRI_TRUE, TRI_PRED, TRI_NAMES)
    paths = save_report(r, tmp_path / "eval", prefix="test")
    assert {p.name for p in paths.values()} == {
        "test_metrics.json", "test_per_class.csv", "test_confusion_matrix.csv", "test_confusion_matrix.png"}

    loaded = json.loads(paths["metrics"].read_text())
    assert loaded["accuracy"] == pytest.approx(2 / 3)
    assert loaded["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [1, 0, 3]]

    per_class = pd.read_csv(paths["per_class"])
    assert list(per_class.columns) == ["class", "precision", "recall", "f1", "support"]
    assert per_class["class"].tolist() == TRI_NAMES
    assert per_class["support"].tolist() == [3, 2, 4]

    cm = pd.read_csv(paths["confusion_matrix_csv"], index_col=0)
    assert cm.index.tolist() == TRI_NAMES and cm.columns.tolist() == TRI_NAMES
    assert cm.loc["pos", "neg"] == 1  # true pos predicted neg
    assert cm.to_numpy().tolist() == [[2, 1, 0], [0, 1, 1], [1, 0, 3]]

    with Image.open(paths["confusion_matrix_png"]) as img:
        img.load()
        assert img.format == "PNG"


def test_format_report():
    text = format_report(classification_report(BIN_TRUE, BIN_PRED, ["neg", "pos"], y_score=[0.5] * 11))
    assert "accuracy" in text and f"{8 / 11:.4f}" in text
    assert "macro avg" in text and f"{28 / 39:.4f}" in text
    assert "positive class 'pos'" in text and "ROC AUC: 0.5000" in text
    assert "Confusion matrix" in text
    # Matrix rows (true class): neg -> 3 2, pos -> 1 5
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()[-2:]}
    assert rows == {"neg": ["3", "2"], "pos": ["1", "5"]}


def test_save_report_rejects_non_report(tmp_path):
    with pytest.raises(DataError, match="classification_report"):
        save_report({"accuracy": 1.0}, tmp_path)
