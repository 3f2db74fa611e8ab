"""scripts/train.py sweeps: run folders, summary, resume, failures, curves."""

import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from tfbert.config import expand_grid
from tfbert.runs import RunFolder
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
    assert "finished earlier with the same settings and data, skipped" in capsys.readouterr().out
    assert len(frame) == 2 and (sweep / summary["run"][0] / "history.csv").stat().st_mtime == mtime


@pytest.mark.slow  # CI time: 30 s; the cache plan's cap is unit-tested in test_encoder_cache
def test_encoder_outputs_over_the_memory_cap_fall_back(tiny_models, toy_csvs, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TFBERT_ENCODER_CACHE_MB", "0")
    frame = run_sweep(_configs(toy_csvs, tmp_path / "capped", head="bilstm", epochs=1, export=False), verbose=0)
    assert list(frame["status"]) == ["done"] and not frame["encoder_outputs_cached"].iloc[0]
    assert "over the 0 MB cap ($TFBERT_ENCODER_CACHE_MB); running the encoder every epoch" in capsys.readouterr().out


def test_a_bad_setting_in_any_run_stops_the_sweep_before_any_work(tiny_models, toy_csvs, tmp_path):
    import tfbert
    configs = _configs(toy_csvs, tmp_path / "sweep", model=["tiny-hf", "no-such-model"], head="dense",
                       epochs=1)
    with pytest.raises(tfbert.UnknownModelError, match="unknown model 'no-such-model'"):
        run_sweep(configs, verbose=0)
    assert not (tmp_path / "sweep").exists()  # not even the first, valid run started


@pytest.mark.slow  # CI time: 33 s; failed runs and resuming are covered by the two-run sweep test and test_sweep_workers
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
    run = next(p for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))
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


def _quick_runner(calls):
    """Stands in for run_experiment: records the call and writes what a finished run leaves."""
    def run(config, run_dir, splits, verbose=0):
        calls.append((config, Path(run_dir).name, len(splits.train)))
        row = {"run": Path(run_dir).name, "status": "done", "model": config.model, "head": config.head,
               "seq_length": 16, "epochs": config.epochs, "batch_size": config.batch_size, "epochs_run": 2,
               "best_epoch": 1, "test_accuracy": 0.5}
        folder = RunFolder(run_dir)
        folder.write_summary_row(row)
        folder.write_status("done")
        return row
    return run


def test_resume_reruns_when_settings_or_data_change(tiny_models, toy_csvs, tmp_path, capsys):
    calls = []
    run = _quick_runner(calls)
    sweep = tmp_path / "sweep"
    run_sweep(_configs(toy_csvs, sweep), runner=run)
    assert len(calls) == 2
    first = sorted(p.name for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    run_sweep(_configs(toy_csvs, sweep), runner=run)  # same settings, same data: skipped
    assert len(calls) == 2 and "finished earlier with the same settings and data, skipped" in capsys.readouterr().out

    run_sweep(_configs(toy_csvs, sweep, warmup_ratio=0.5), runner=run)  # a setting outside the name
    assert len(calls) == 4
    out = capsys.readouterr().out
    assert "holds a run with other settings (warmup_ratio)" in out
    new = sorted(p.name for p in sweep.iterdir() if p.is_dir() and p.name not in first and not p.name.startswith("."))
    assert len(new) == 2 and all(n.rsplit("__", 1)[0] in first and len(n.rsplit("__", 1)[1]) == 8 for n in new)

    other = tmp_path / "other.csv"  # other data under the same settings
    pd.read_csv(toy_csvs / "train.csv").iloc[:80].to_csv(other, index=False)
    run_sweep(_configs(toy_csvs, sweep, train=str(other)), runner=run)
    assert len(calls) == 6 and calls[-1][2] < calls[0][2]
    assert "holds a run with other settings (data, train)" in capsys.readouterr().out
    run_sweep(_configs(toy_csvs, sweep, train=str(other)), runner=run)  # now finished too
    assert len(calls) == 6
    other.write_text(other.read_text() + "an extra review,pos\n")  # the file changed: rerun
    run_sweep(_configs(toy_csvs, sweep, train=str(other)), runner=run)
    assert len(calls) == 8
    assert set(first) <= {p.name for p in sweep.iterdir()}  # no finished run was overwritten


def test_retry_clears_the_last_attempts_error_and_leftovers(tiny_models, toy_csvs, tmp_path):
    calls = []
    sweep = tmp_path / "sweep"

    def failing(config, run_dir, splits, verbose=0):
        (Path(run_dir) / ".model.tmp-abc12345").mkdir()  # as a kill -9 during export leaves it
        raise RuntimeError("disk full")

    configs = _configs(toy_csvs, sweep, head="dense")
    frame = run_sweep(configs, runner=failing)
    folder = sweep / frame["run"][0]
    assert (folder / "error.txt").exists() and (folder / ".model.tmp-abc12345").exists()
    frame = run_sweep(configs, runner=_quick_runner(calls))
    assert list(frame["status"]) == ["done"]
    assert sorted(p.name for p in folder.iterdir()) == ["identity.json", "status.json", "summary_row.json"]


def test_summary_keeps_integers_after_a_failed_run(tiny_models, toy_csvs, tmp_path):
    calls = []
    good = _quick_runner(calls)

    def half(config, run_dir, splits, verbose=0):
        if config.head == "dense":
            raise RuntimeError("boom")
        return good(config, run_dir, splits, verbose)

    run_sweep(_configs(toy_csvs, tmp_path / "s"), runner=half)
    lines = (tmp_path / "s" / "summary.csv").read_text().splitlines()
    header = lines[0].split(",")
    done = dict(zip(header, lines[2].split(",")))
    assert done["status"] == "done" and done["seq_length"] == "16" and done["epochs"] == "2"
    assert done["epochs_run"] == "2" and done["best_epoch"] == "1"  # absent in the failed row: not 2.0, 1.0


def test_a_file_whose_texts_are_all_empty_is_one_line(tiny_models, tmp_path, capsys):
    from tfbert.cli import main
    path = tmp_path / "empty.csv"
    pd.DataFrame({"text": ["", "  ", ""] * 40, "label": [0, 1, 0] * 40}).to_csv(path, index=False)
    assert main(["train", "--model", "tiny-hf", "--train", str(path), "--output-dir", str(tmp_path / "o"),
                 "--verbose", "0"]) == 1
    summary = pd.read_csv(tmp_path / "o" / "summary.csv")
    assert summary["error"][0].startswith("DataError: no training examples left: the 120 row(s)")
    assert "IndexError" not in capsys.readouterr().out


@pytest.mark.parametrize("flags,message", [
    (["--epochs", "0"], "--epochs must be >= 1, got 0"),
    (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    (["--accumulation-steps", "0"], "--accumulation-steps must be >= 1, got 0"),
    (["--learning-rate", "nan"], "--learning-rate must be a finite number, got nan"),
    (["--seq-length", "0"], "--seq-length must be auto or an integer from 2 to 128"),
    (["--seq-length", "4096"], "--seq-length must be auto or an integer from 2 to 128"),
    (["--warmup-ratio", "1.5"], "--warmup-ratio must be >= 0 and < 1, got 1.5"),
    (["--learning-rate", "0"], "--learning-rate must be > 0, got 0"),
    (["--dropout", "1"], "--dropout must be >= 0 and < 1, got 1"),
    (["--valid-fraction", "0", "--early-stopping", "2"], "--early-stopping needs validation data"),
    (["--head", "cnn"], "unknown head 'cnn'"),
    (["--head", "dense", "--lstm-units", "8"], "head 'dense' takes no lstm_units"),
    (["--precision", "fp16"], "--precision must be one of auto, bfloat16, float32"),
])
def test_settings_are_checked_before_any_work(tiny_models, toy_csvs, tmp_path, capsys, flags, message):
    from tfbert.cli import main
    out = tmp_path / "never"
    code = main(["train", "--model", "tiny-hf", "--train", str(toy_csvs / "train.csv"), "--output-dir", str(out),
                 "--verbose", "0", *flags])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not out.exists()  # no run folder, no summary.csv


def test_output_dir_that_cannot_be_written_fails_first(tiny_models, toy_csvs, tmp_path, capsys):
    from tfbert.cli import main
    afile = tmp_path / "afile"
    afile.write_text("x")
    for target, message in ((afile, "is a file; pass a folder path"),
                            (Path("/proc/tfbert-out"), "cannot write to --output-dir /proc/tfbert-out")):
        code = main(["train", "--model", "tiny-hf", "--train", str(toy_csvs / "train.csv"),
                     "--output-dir", str(target), "--verbose", "0"])
        err = capsys.readouterr().err
        assert code == 2 and message in err and err.count("\n") == 1, err


def test_a_data_failure_never_marks_a_finished_run_failed(tiny_models, toy_csvs, tmp_path):
    calls = []
    sweep = tmp_path / "sweep"
    configs = _configs(toy_csvs, sweep, head="dense")
    run_sweep(configs, runner=_quick_runner(calls))
    folder = next(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    (toy_csvs / "test.csv").rename(toy_csvs / "test.csv.away")
    try:
        frame = run_sweep(configs, runner=_quick_runner(calls))
    finally:
        (toy_csvs / "test.csv.away").rename(toy_csvs / "test.csv")
    assert list(frame["status"]) == ["failed"] and "test.csv" in frame["error"][0]
    assert RunFolder(folder).is_done() and not (folder / "error.txt").exists()
