"""scripts/train.py sweeps: run folders, summary, resume, failures, curves."""

import json

import pandas as pd
import pytest
from PIL import Image

from tfbert.config import expand_grid
from tfbert.sweep import run_sweep
from tfbert.testing import toy_texts

RUN_FILES = ["config.json", "config.yaml", "data_summary.json", "history.csv", "history.json",
             "curves.png", "test_metrics.json", "test_confusion_matrix.csv",
             "test_confusion_matrix.png", "status.json", "model"]


@pytest.fixture(scope="module")
def toy_csvs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy_data")
    for split, n, seed in (("train", 96, 0), ("test", 40, 1)):
        texts, labels = toy_texts(n, seed=seed)
        names = ["neg", "pos"]
        pd.DataFrame({"review": texts, "sentiment": [names[i] for i in labels]}).to_csv(
            folder / f"{split}.csv", index=False)
    return folder


def _configs(toy_csvs, out, **overrides):
    settings = dict(model="tiny-hf", head=["dense", "bilstm"], train=str(toy_csvs / "train.csv"),
                    test=str(toy_csvs / "test.csv"), text_column="review", label_column="sentiment",
                    seq_length=16, epochs=2, batch_size=16, learning_rate=1e-2, output_dir=str(out),
                    drop_duplicates=False)
    settings.update(overrides)
    return expand_grid(settings)


def test_two_run_sweep_writes_every_file_and_resumes(tiny_models, toy_csvs, tmp_path, capsys):
    configs = _configs(toy_csvs, tmp_path / "sweep")
    assert [c.head for c in configs] == ["dense", "bilstm"]
    frame = run_sweep(configs, verbose=0)
    assert list(frame["status"]) == ["done", "done"]
    sweep = tmp_path / "sweep"
    summary = pd.read_csv(sweep / "summary.csv")
    assert len(summary) == 2
    assert {"best_val_accuracy", "best_epoch", "test_accuracy", "train_time_s", "examples_per_s"} <= set(summary)
    for run in summary["run"]:
        folder = sweep / run
        for name in RUN_FILES:
            assert (folder / name).exists(), f"{run} lacks {name}"
        history = pd.read_csv(folder / "history.csv")
        assert list(history.columns[:7]) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy",
                                            "learning_rate", "time"]
        assert len(history) == 2
        assert json.loads((folder / "history.json").read_text())["epoch"] == [1, 2]
        config = json.loads((folder / "config.json").read_text())
        assert config["class_names"] == ["neg", "pos"] and config["registry_entry"]["name"] == "tiny-hf"
        metrics = json.loads((folder / "test_metrics.json").read_text())
        assert metrics["num_examples"] == 40 and 0 <= metrics["accuracy"] <= 1
        with Image.open(folder / "curves.png") as image:
            assert image.size == (800, 800)
    with Image.open(sweep / "sweep_curves.png") as image:
        assert image.size[0] > 0
    out = capsys.readouterr().out
    assert "summary:" in out and str(sweep / "summary.csv") in out
    # bilstm freezes the encoder: its outputs are computed once, the head trains on them
    assert list(summary["encoder_outputs_cached"]) == [False, True]
    assert "frozen encoder: computing its outputs once" in out

    # resume: both runs are skipped, the summary still has both rows
    mtime = (sweep / summary["run"][0] / "history.csv").stat().st_mtime
    frame = run_sweep(configs, verbose=0)
    assert "finished earlier, skipped" in capsys.readouterr().out
    assert len(frame) == 2 and (sweep / summary["run"][0] / "history.csv").stat().st_mtime == mtime


def test_encoder_outputs_over_the_memory_cap_fall_back(tiny_models, toy_csvs, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TFBERT_ENCODER_CACHE_MB", "0")
    frame = run_sweep(_configs(toy_csvs, tmp_path / "capped", head="bilstm", epochs=1, export=False), verbose=0)
    assert list(frame["status"]) == ["done"] and not frame["encoder_outputs_cached"].iloc[0]
    assert "over the 0 MB cap ($TFBERT_ENCODER_CACHE_MB); running the encoder every epoch" in capsys.readouterr().out


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(tiny_models, toy_csvs, tmp_path):
    configs = _configs(toy_csvs, tmp_path / "sweep", model=["no-such-model", "tiny-hf"], head="dense",
                       epochs=1)
    frame = run_sweep(configs, verbose=0)
    assert list(frame["status"]) == ["failed", "done"]
    assert "unknown model 'no-such-model'" in frame["error"][0]
    failed = tmp_path / "sweep" / frame["run"][0]
    assert json.loads((failed / "status.json").read_text())["status"] == "failed"
    summary = pd.read_csv(tmp_path / "sweep" / "summary.csv")
    assert list(summary["status"]) == ["failed", "done"]


def test_injected_crash_keeps_finished_runs(tiny_models, toy_csvs, tmp_path):
    from tfbert.experiment import run_experiment

    def flaky(config, run_dir, splits, verbose=0):
        if config.head == "dense":
            raise RuntimeError("disk full")
        return run_experiment(config, run_dir, splits, verbose=verbose)

    configs = _configs(toy_csvs, tmp_path / "sweep", epochs=1)
    frame = run_sweep(configs, verbose=0, runner=flaky)
    assert list(frame["status"]) == ["failed", "done"]
    assert frame["error"][0] == "RuntimeError: disk full"
    assert (tmp_path / "sweep" / frame["run"][0] / "error.txt").read_text().count("disk full") >= 1

    # an interrupt stops the sweep but the summary keeps what finished
    def interrupted(config, run_dir, splits, verbose=0):
        raise KeyboardInterrupt

    more = _configs(toy_csvs, tmp_path / "sweep", epochs=1, seed=[1, 2])
    with pytest.raises(KeyboardInterrupt):
        run_sweep(more, verbose=0, runner=interrupted)
    summary = pd.read_csv(tmp_path / "sweep" / "summary.csv")
    assert list(summary["status"]) == ["interrupted"]


def test_cli_train_and_plot_round_trip(tiny_models, toy_csvs, tmp_path, capsys):
    from tfbert.cli import main
    out = tmp_path / "cli"
    code = main(["train", "--model", "tiny-hf", "--head", "dense", "--train", str(toy_csvs / "train.csv"),
                 "--text-column", "review", "--label-column", "sentiment", "--seq-length", "16",
                 "--epochs", "1", "--learning-rate", "0.01", "--output-dir", str(out), "--no-export",
                 "--verbose", "0"])
    assert code == 0
    run = next(p for p in out.iterdir() if p.is_dir())
    (run / "curves.png").unlink()
    assert main(["plot", str(run)]) == 0
    assert (run / "curves.png").exists()
    assert "wrote" in capsys.readouterr().out


def test_cli_errors_are_one_line(capsys, tmp_path):
    from tfbert.cli import main
    assert main(["tokenize", "--model", "bert-bsae-uncased", "hello"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown model 'bert-bsae-uncased'; did you mean") and "\n" not in err
    assert main(["train", "--model", "tiny-hf", "--train", str(tmp_path / "missing.csv"),
                 "--output-dir", str(tmp_path / "o"), "--verbose", "0"]) == 1
    summary = pd.read_csv(tmp_path / "o" / "summary.csv")
    assert summary["status"][0] == "failed" and "missing.csv" in summary["error"][0]
