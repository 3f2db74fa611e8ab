"""One run through its phases: resolved settings recorded, optional test and export phases."""

import json

import pandas as pd

from tfbert.config import RunConfig
from tfbert.experiment import load_splits, run_experiment
from tfbert.runs import RunFolder
from tfbert.testing import toy_texts


def _train_csv(tmp_path):
    texts, labels = toy_texts(64, seed=7)
    path = tmp_path / "train.csv"
    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)
    return path


def test_run_records_resolved_settings_and_skips_what_was_not_asked(tiny_models, tmp_path):
    config = RunConfig(model="tiny-hf", head="cls_bn", train=str(_train_csv(tmp_path)), epochs=1,
                       batch_size=16, export=False, seq_length=None, output_dir=str(tmp_path))
    run = RunFolder(tmp_path / "run")
    row = run_experiment(config, run.path, verbose=0)
    settings = run.read_config()
    # unset settings were resolved once, to the head's defaults, and recorded as used
    assert settings["learning_rate"] == 1e-3 and settings["train_encoder"] is False
    assert settings["seq_length_auto"] is True and 8 <= settings["seq_length"] <= 128
    assert row["learning_rate"] == 1e-3 and row["encoder_outputs_cached"] is True
    assert run.is_done() and run.summary_row() == json.loads(json.dumps(row))
    # no test split and export=False: no test report, no model folder
    assert "test_accuracy" not in row and not (run.path / "test_metrics.json").exists()
    assert not run.model_dir.exists()
    assert set(json.loads((run.path / "data_summary.json").read_text())) >= {"rows", "classes", "chars", "tokens"}


def test_splits_hold_out_validation_and_cap_training(tiny_models, tmp_path):
    config = RunConfig(train=str(_train_csv(tmp_path)), valid_fraction=0.25, max_train_examples=20)
    splits = load_splits(config)
    assert len(splits.valid) == 16 and len(splits.train) == 20
    assert splits.test is None and splits.class_names == ["0", "1"]
