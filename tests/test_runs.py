"""Run and sweep folders: what is written, read back, and how a run counts as done."""

import json

import pandas as pd
import yaml

from tfbert.runs import DONE, FAILED, RunFolder, SweepFolder


def test_run_folder_writes_and_reads_back(tmp_path):
    run = RunFolder(tmp_path / "sweep" / "run1").create()
    assert run.status() is None and not run.is_done() and run.read_config() is None
    run.write_config({"model": "tiny", "learning_rate": 3e-5, "langs": ("en",)})
    assert run.read_config() == {"model": "tiny", "learning_rate": 3e-5, "langs": ["en"]}
    assert yaml.safe_load((run.path / "config.yaml").read_text())["learning_rate"] == 3e-5
    frame = pd.DataFrame({"epoch": [1, 2], "loss": [0.7, float("nan")]})
    run.write_history(frame)
    assert run.has_history() and pd.read_csv(run.history_csv)["epoch"].tolist() == [1, 2]
    assert json.loads((run.path / "history.json").read_text())["loss"] == [0.7, None]
    run.write_status(DONE)
    assert run.status() == DONE and not run.is_done()  # done needs the summary row too
    run.write_summary_row({"run": "run1", "test_accuracy": 0.9})
    assert run.is_done() and run.summary_row()["test_accuracy"] == 0.9
    run.write_status(FAILED, "ValueError: boom")
    assert json.loads((run.path / "status.json").read_text()) == {"status": FAILED, "error": "ValueError: boom"}
    assert not any(p.name.endswith(".tmp") for p in run.path.iterdir())


def test_sweep_folder_lists_runs_with_history(tmp_path):
    sweep = SweepFolder(tmp_path).create()
    for name, with_history in (("b", True), ("a", True), ("c", False)):
        run = sweep.run(name).create()
        if with_history:
            run.write_history(pd.DataFrame({"epoch": [1], "loss": [1.0]}))
    assert [r.name for r in sweep.runs_with_history()] == ["a", "b"]
    sweep.write_summary(pd.DataFrame({"run": ["a"], "status": [DONE]}))
    assert pd.read_csv(sweep.summary_csv)["run"].tolist() == ["a"]


def test_start_clears_the_last_attempt_and_killed_writes(tmp_path):
    run = RunFolder(tmp_path / "run").create()
    run.write_status(FAILED, "boom")
    run.write_error("Traceback ...")
    run.write_summary_row({"run": "run"})
    run.write_identity({"lr": 1})
    (run.path / ".model.tmp-x1y2z3w4").mkdir()  # kill -9 during export
    (run.path / ".history.csv.ab12cd34.tmp").write_text("half")
    (run.path / ".env.tmpl").write_text("a user's file: not ours to delete")
    (run.path / "history.csv").write_text("epoch\n1\n")  # results of the last attempt stay until rewritten
    run.start()
    assert sorted(p.name for p in run.path.iterdir()) == [".env.tmpl", "history.csv"]
    assert run.differences({"lr": 1}) is None  # the last attempt's record is gone with it
    run.write_identity({"lr": 1, "langs": ("en",)})
    assert run.differences({"lr": 1, "langs": ["en"]}) == [] and run.differences({"lr": 2, "langs": ["en"]}) == ["lr"]
    assert RunFolder(tmp_path / "new").differences({"lr": 1}) is None
