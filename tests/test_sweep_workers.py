"""Sweeps over many workers: run claims, takeover of a dead worker's run, worker processes."""

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from tfbert.claims import ClaimFile, Worker, machine_key
from tfbert.config import expand_grid
from tfbert.runs import RunFolder


@pytest.fixture(scope="module")
def toy_csvs(tmp_path_factory):
    from tfbert.testing import toy_texts

    folder = tmp_path_factory.mktemp("toy_data")
    for split, n, seed in (("train", 96, 0), ("test", 40, 1)):
        texts, labels = toy_texts(n, seed=seed)
        pd.DataFrame({"text": texts, "label": labels}).to_csv(folder / f"{split}.csv", index=False)
    return folder


def _configs(toy_csvs, out, **overrides):
    settings = dict(model="tiny-hf", head="dense", train=str(toy_csvs / "train.csv"), test=str(toy_csvs / "test.csv"),
                    seq_length=16, epochs=1, batch_size=16, learning_rate=1e-2, seed=[1, 2, 3], output_dir=str(out),
                    drop_duplicates=False, export=False, tensorboard=False)
    settings.update(overrides)
    return expand_grid(settings)


def quick_runner(config, run_dir, splits, verbose=0):
    """Stands in for run_experiment in worker processes (module level, so they can import it)."""
    time.sleep(0.2)
    row = {"run": Path(run_dir).name, "status": "done", "model": config.model, "head": config.head,
           "seed": config.seed, "test_accuracy": 0.5, "pid": os.getpid()}
    RunFolder(run_dir).write_summary_row(row)
    RunFolder(run_dir).write_status("done")
    return row


def dies_on_seed_2(config, run_dir, splits, verbose=0):
    if config.seed == 2:
        os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer ends a worker
    return quick_runner(config, run_dir, splits, verbose)


def _other_worker(pid=4242):
    return Worker("w9", "elsewhere", pid, "elsewhere/boot/ns")


def _race(args):
    """One process of the race: wait for the common start time, then claim (module level for spawn)."""
    folder, name, start, timeout = args
    time.sleep(max(0.0, start - time.time()))
    return ClaimFile(folder, name).acquire(Worker.here(), timeout) is not None


def test_one_of_many_racing_claimers_wins(tmp_path):
    import multiprocessing

    def race(name, n=16, timeout=60.0):
        wins, start = [], time.time() + 0.2
        threads = [threading.Thread(target=lambda: wins.append(_race((tmp_path, name, start, timeout))))
                   for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sum(wins)

    assert race("fresh") == 1
    stale = ClaimFile(tmp_path, "stale").acquire(_other_worker(), 60.0)
    os.utime(stale.file.path, (time.time() - 100, time.time() - 100))
    assert race("stale", timeout=10.0) == 1  # exactly one takes over a dead worker's claim
    ClaimFile(tmp_path, "released").acquire(_other_worker(), 60.0).release()
    assert race("released") == 1
    with multiprocessing.get_context("spawn").Pool(4) as pool:  # processes, not only threads
        start = time.time() + 3.0
        assert sum(pool.map(_race, [(tmp_path, "processes", start, 60.0)] * 4)) == 1


def test_a_stale_claim_is_taken_over_after_the_timeout(tmp_path):
    theirs = ClaimFile(tmp_path, "run").acquire(_other_worker(), 0.4).heartbeat(0.05)
    time.sleep(0.6)
    assert ClaimFile(tmp_path, "run").acquire(Worker.here(), 0.4) is None  # its heartbeat keeps it
    theirs._stop.set()  # the worker hangs or its machine dies: no more heartbeats
    time.sleep(0.6)
    mine = ClaimFile(tmp_path, "run").acquire(Worker.here(), 0.4)
    assert mine is not None and mine.taken_from["name"] == "w9"
    theirs.beat()
    assert theirs.lost and not theirs.mine()
    theirs.release()  # a worker that comes back cannot undo the takeover
    assert mine.mine()
    mine.release()
    assert ClaimFile(tmp_path, "run").holder(0.4) is None

    gone = subprocess.Popen(["true"])
    gone.wait()  # reaped: its pid is free, so its claim is dead at once on this machine
    ClaimFile(tmp_path, "fast").acquire(Worker("w1", "here", gone.pid, machine_key()), 300.0)
    taken = ClaimFile(tmp_path, "fast").acquire(Worker.here(), 300.0)
    assert taken is not None and taken.taken_from["pid"] == gone.pid


def test_a_sweep_waits_for_a_live_claim_then_takes_it_over(tiny_models, toy_csvs, tmp_path, capsys):
    from tfbert.sweep import run_sweep

    configs = _configs(toy_csvs, tmp_path / "s", worker_timeout=1.5)
    first = run_sweep(configs[:1], runner=quick_runner)["run"][0]
    start = time.time()
    ClaimFile(tmp_path / "s", first).acquire(_other_worker(), 60.0)  # a worker elsewhere holds run 1
    frame = run_sweep(configs, runner=quick_runner, resume=False)
    out = capsys.readouterr().out
    assert list(frame["status"]) == ["done"] * 3 and time.time() - start >= 1.5
    assert "running on w9 (elsewhere); waiting (taken over if its heartbeat stops for 1.5 s)" in out
    assert "taken over from w9 on elsewhere" in out


def test_two_sweeps_sharing_a_folder_run_each_run_once(tiny_models, toy_csvs, tmp_path):
    from tfbert.sweep import run_sweep

    calls, frames = [], []

    def counted(config, run_dir, splits, verbose=0):
        calls.append(config.seed)
        return quick_runner(config, run_dir, splits, verbose)

    configs = _configs(toy_csvs, tmp_path / "shared", seed=[1, 2, 3, 4])
    machines = [threading.Thread(target=lambda: frames.append(run_sweep(configs, runner=counted)))
                for _ in range(2)]  # as two machines running the same command
    for m in machines:
        m.start()
    for m in machines:
        m.join()
    assert sorted(calls) == [1, 2, 3, 4]
    assert [list(f["status"]) for f in frames] == [["done"] * 4] * 2
    assert list(pd.read_csv(tmp_path / "shared" / "summary.csv")["seed"]) == [1, 2, 3, 4]


def test_a_killed_worker_is_reported_failed_and_the_rerun_resumes(tiny_models, toy_csvs, tmp_path, capsys):
    from tfbert.sweep import run_sweep

    configs = _configs(toy_csvs, tmp_path / "s", workers=2)
    frame = run_sweep(configs, runner=dies_on_seed_2)
    out = capsys.readouterr().out
    assert list(frame["status"]) == ["done", "failed", "done"]
    assert frame["error"][1].startswith("WorkerDied: worker w") and "was killed by SIGKILL" in frame["error"][1]
    assert "was killed by SIGKILL while running [2/3]" in out and "w1: pid" in out and "w2: pid" in out
    done = {name: (tmp_path / "s" / name / "status.json").stat().st_mtime for name in frame["run"][::2]}

    frame = run_sweep(configs, runner=quick_runner)  # resume: only the failed run runs again
    out = capsys.readouterr().out
    assert list(frame["status"]) == ["done"] * 3 and out.count("skipped") == 2
    assert "w1: pid" in out and "w2: pid" not in out  # one run left: one worker
    assert {n: (tmp_path / "s" / n / "status.json").stat().st_mtime for n in done} == done


@pytest.mark.slow  # CI time: 51 s; the claim races and takeovers above cover how runs are shared
def test_two_workers_give_the_same_results_as_one(tiny_models, toy_csvs, tmp_path, capsys):
    from tfbert.sweep import run_sweep

    grid = dict(seed=42, head="cls_bn", learning_rate=[1e-1, 3e-2], epochs=8)  # cached encoder outputs: quick
    one = run_sweep(_configs(toy_csvs, tmp_path / "one", **grid), verbose=0)
    two = run_sweep(_configs(toy_csvs, tmp_path / "two", workers=2, **grid), verbose=0)
    out = capsys.readouterr().out
    columns = ["run", "status", "best_val_accuracy", "best_epoch", "test_accuracy", "test_f1_macro"]
    pd.testing.assert_frame_equal(one[columns], two[columns])
    assert one["test_accuracy"].max() > 0.5  # the runs learned something: a real comparison
    assert "runs [1/2]" in out and "runs [2/2]" in out and f"-> {tmp_path / 'two'}" in out


def test_more_workers_than_cores_is_one_line(tiny_models, toy_csvs, tmp_path, capsys, monkeypatch):
    from tfbert.cli import main

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    cores = len(os.sched_getaffinity(0))
    code = main(["train", "--model", "tiny-hf", "--train", str(toy_csvs / "train.csv"), "--output-dir",
                 str(tmp_path / "never"), "--workers", str(cores + 1), "--verbose", "0"])
    err = capsys.readouterr().err
    assert code == 2 and f"--workers {cores + 1} is more than the {cores} CPU core(s)" in err
    assert err.count("\n") == 1 and not (tmp_path / "never").exists()


@pytest.mark.parametrize("chief", [True, False])
def test_multi_worker_strategy_goes_through_the_runs_in_step(tiny_models, toy_csvs, tmp_path, monkeypatch, chief):
    """Under --strategy multi_worker every machine trains every run, together: no claims, the chief writes."""
    from types import SimpleNamespace

    import tfbert.distribute
    from tfbert.config import resolve, run_name
    from tfbert.errors import ConfigError
    from tfbert.sweep import run_sweep

    monkeypatch.setattr(tfbert.distribute, "placement", lambda name, timeout=300.0: SimpleNamespace(is_chief=chief),
                        raising=False)
    calls = []

    def counted(config, run_dir, splits, verbose=0):
        calls.append(config.seed)
        return quick_runner(config, run_dir, splits) if chief else {"run": Path(run_dir).name, "status": "worker"}

    configs = _configs(toy_csvs, tmp_path / "s", strategy="multi_worker")
    ClaimFile(tmp_path / "s", run_name(resolve(configs[0]))).acquire(_other_worker(), 60.0)  # ignored in step
    frame = run_sweep(configs, runner=counted)
    assert calls == [1, 2, 3] and list(frame["status"]) == ["done"] * 3
    assert (tmp_path / "s" / "summary.csv").exists() == chief
    with pytest.raises(ConfigError, match="--workers 2 and --strategy multi_worker do not mix"):
        run_sweep(_configs(toy_csvs, tmp_path / "t", strategy="multi_worker", workers=2), runner=counted)
