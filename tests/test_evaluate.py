"""tfbert.evaluate: score an exported model on labelled data (Python and CLI), one-line errors.

The exports come from ``tests/test_export.py`` (made once per session).
"""

import json

import pandas as pd
import pytest

import tfbert
from tfbert.cli import main as cli_main
from tfbert.evaluate import evaluate
from tfbert.testing import toy_texts

from test_predict import exported, predict_root, predictor  # noqa: F401  (shared fixtures)


def test_evaluate_binary_with_label_names(exported, predictor, tmp_path):
    _, folder, class_names = exported("hub2")
    texts, labels = toy_texts(20, num_classes=2, seed=21)
    data = tmp_path / "reviews_test.csv"
    pd.DataFrame({"sentence": texts, "sentiment": [class_names[i] for i in labels]}).to_csv(data, index=False)
    report = evaluate(folder, data, text_column="sentence", label_column="sentiment",
                      predictor=predictor("hub2"))
    assert report["num_examples"] == 20 and report["class_names"] == class_names
    assert 0.0 <= report["accuracy"] <= 1.0 and "roc_auc" in report and "f1_macro" in report
    out = folder / "eval_reviews_test"
    assert report["output_dir"] == str(out)
    for suffix in ("metrics.json", "per_class.csv", "confusion_matrix.csv", "confusion_matrix.png"):
        assert (out / f"reviews_test_{suffix}").is_file(), suffix
    matrix = pd.read_csv(out / "reviews_test_confusion_matrix.csv", index_col=0)
    assert list(matrix.columns) == class_names and list(matrix.index) == class_names
    assert matrix.values.sum() == 20
    preds = pd.read_csv(out / "predictions.csv")
    assert len(preds) == 20 and set(preds["predicted"]) <= set(class_names)
    assert preds["correct"].mean() == pytest.approx(report["accuracy"])


def test_evaluate_three_classes_with_ids_viacli_main(exported, tmp_path, capsys):
    _, folder, class_names = exported("hf3")
    texts, labels = toy_texts(15, num_classes=3, seed=22)
    data = tmp_path / "dev.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": int(y)}, ensure_ascii=False) + "\n"
                            for t, y in zip(texts, labels)), encoding="utf-8")
    assert cli_main(["evaluate", str(folder), "--data", str(data), "--output-dir", str(tmp_path / "rep")]) == 0
    out = capsys.readouterr().out
    assert "15 examples, 3 classes" in out and "Confusion matrix" in out and "neu" in out
    assert "report written to" in out
    saved = json.loads((tmp_path / "rep" / "dev_metrics.json").read_text(encoding="utf-8"))
    assert saved["num_examples"] == 15 and sum(map(sum, saved["confusion_matrix"])) == 15
    assert "roc_auc" not in saved


def test_evaluate_bad_labels_and_files(exported, tmp_path):
    _, folder, _ = exported("hub2")
    frame = pd.DataFrame({"text": ["good", "bad", "meh"], "label": ["pos", "neg", "meh"]})
    with pytest.raises(tfbert.DataError, match=r"1 label\(s\) .* \('meh'; first at data row 2\); "
                                               r"its classes are neg, pos \(or ids 0..1\)"):
        evaluate(folder, frame)
    with pytest.raises(tfbert.DataError, match="'5'"):
        evaluate(folder, pd.DataFrame({"text": ["a", "b"], "label": [0, 5]}))
    with pytest.raises(tfbert.DataError, match="column 'label' not found"):
        evaluate(folder, pd.DataFrame({"text": ["a"], "y": [1]}))
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"text,label\ngood,pos\n" + "나쁨,neg\n".encode("cp949"))
    with pytest.raises(tfbert.DataError, match="line 3 of .*bad.csv is not UTF-8"):
        evaluate(folder, bad)
