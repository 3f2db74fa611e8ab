"""One run through its phases: resolved settings recorded, optional test and export phases."""

import json

import numpy as np
import pandas as pd
import pytest

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


def test_data_summary_reports_cleaning_and_the_chosen_length(tiny_models, tmp_path, capsys):
    texts, labels = toy_texts(60, seed=8)
    texts = [f"{t} n{i}" for i, t in enumerate(texts)]  # all different
    path = tmp_path / "train.csv"
    pd.DataFrame({"text": texts + ["", texts[0]],
                  "label": list(labels) + [0, 1 - labels[0]]}).to_csv(path, index=False)
    config = RunConfig(model="tiny-hf", head="dense", train=str(path), epochs=1, batch_size=16, export=False,
                       seq_length=8, drop_duplicates=True)
    run = RunFolder(tmp_path / "run")
    run_experiment(config, run.path, verbose=0)
    summary = json.loads((run.path / "data_summary.json").read_text())
    assert summary["cleaning"] == {"rows_in": 62, "empty": 1, "duplicates": 1, "conflicting": 1, "rows_out": 60}
    assert summary["seq_length"] == 8 and "8" in summary["over_window"]
    out = capsys.readouterr().out
    assert "cleaning: 62 rows -> 60: removed 1 empty, 1 duplicate" in out
    assert f"texts longer than seq_length 8 (truncated): {summary['over_window']['8']:.1%}" in out


def test_data_fingerprint_follows_the_data_not_the_working_folder(tmp_path, monkeypatch):
    from tfbert.experiment import Splits, data_fingerprint

    frame = pd.DataFrame({"text": ["a", "b"], "label": [0, 1]})
    splits = Splits(frame, None, None, ["0", "1"], {})
    demo = data_fingerprint(RunConfig(data="demo"), splits)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "unrelated.txt").write_text("x")
    assert data_fingerprint(RunConfig(data="demo"), splits) == demo  # "demo" names no path here
    changed = Splits(frame.assign(text=["a", "c"]), None, None, ["0", "1"], {})
    assert data_fingerprint(RunConfig(data="demo"), changed) != demo
    path = _train_csv(tmp_path)
    before = data_fingerprint(RunConfig(train=str(path)), splits)
    path.write_text(path.read_text() + "more,1\n")
    assert data_fingerprint(RunConfig(train=str(path)), splits) != before  # the file changed


@pytest.mark.slow  # CI time: 43 s
def test_rerun_into_a_folder_with_an_export_replaces_it(tiny_models, tmp_path):
    config = RunConfig(model="tiny-hf", head="dense", train=str(_train_csv(tmp_path)), epochs=1,
                       batch_size=32, seq_length=8, valid_fraction=0.0, output_dir=str(tmp_path))
    run = RunFolder(tmp_path / "run")
    run_experiment(config, run.path, verbose=0)
    first = (run.model_dir / "tfbert.json").stat().st_mtime_ns
    run_experiment(config, run.path, verbose=0)  # --no-resume, or a retry after a kill during export
    assert run.is_done() and (run.model_dir / "tfbert.json").stat().st_mtime_ns > first


def test_tensorboard_scalars_for_train_and_validation(tiny_models, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = RunConfig(model="tiny-hf", head="dense", train=str(_train_csv(tmp_path)), epochs=2, batch_size=8,
                       accumulation_steps=2, seq_length=8, export=False, output_dir=str(tmp_path))
    run = RunFolder(tmp_path / "run")
    run_experiment(config, run.path, verbose=0)  # accumulating too: the run's own path through it
    tags = {}
    for part in ("train", "validation"):
        events = EventAccumulator(str(run.logs_dir / part), size_guidance={"tensors": 0})
        events.Reload()
        tags[part] = set(events.Tags()["tensors"])
        assert len(events.Tensors("epoch_loss")) == 2  # one point per epoch
    assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate", "epoch_examples_per_s"} <= tags["train"]
    assert {"epoch_loss", "epoch_accuracy"} <= tags["validation"]
    history = pd.read_csv(run.history_csv)
    assert (history["examples_per_s"] > 0).all()


@pytest.mark.slow  # CI time: 53 s
def test_scoring_every_n_steps_leaves_training_as_it_was(tiny_models, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train = str(_train_csv(tmp_path))
    common = dict(model="tiny-hf", head="dense", train=train, epochs=2, batch_size=8, seq_length=8, export=False,
                  output_dir=str(tmp_path))
    plain, scored = RunFolder(tmp_path / "plain"), RunFolder(tmp_path / "scored")
    run_experiment(RunConfig(**common), plain.path, verbose=0)
    run_experiment(RunConfig(**common, eval_every_steps=3, log_every_steps=2), scored.path, verbose=0)
    a, b = pd.read_csv(plain.history_csv), pd.read_csv(scored.history_csv)
    for column in ("loss", "accuracy", "val_loss", "val_accuracy"):  # the epoch figures are untouched
        np.testing.assert_allclose(a[column], b[column], rtol=1e-6)
    steps = pd.read_csv(scored.path / "steps.csv")
    assert steps["step"].tolist() == list(range(3, 3 * len(steps) + 1, 3)) and len(steps) >= 4
    assert steps["val_loss"].between(0, 10).all() and steps["val_accuracy"].between(0, 1).all()
    events = EventAccumulator(str(scored.logs_dir / "validation_steps"), size_guidance={"tensors": 0})
    events.Reload()
    assert len(events.Tensors("step_val_loss")) == len(steps)
    train_events = EventAccumulator(str(scored.logs_dir / "train"), size_guidance={"tensors": 0})
    train_events.Reload()
    assert "batch_loss" in train_events.Tags()["tensors"]  # logged every 2 batches, not only per epoch
