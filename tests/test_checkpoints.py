"""Checkpoints during a run: a killed run resumes to the result of an uninterrupted one."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import tfbert
from tfbert import checkpoints
from tfbert.config import RunConfig
from tfbert.experiment import run_experiment
from tfbert.pipeline import epoch_batches
from tfbert.testing import toy_texts
from tfbert.training import make_dataset, train_classifier


def _batches(ds):
    return [ids["input_word_ids"].numpy().tolist() for ids, _ in ds]


def test_each_epochs_order_depends_only_on_seed_and_epoch():
    ids = tf.ragged.constant([[1] + [5] * (i % 7) + [2] for i in range(100)], dtype=tf.int32)
    labels = np.arange(100) % 2
    first, again = epoch_batches(ids, labels, batch_size=8, seed=3), epoch_batches(ids, labels, batch_size=8, seed=3)
    assert _batches(first.epoch(2)) == _batches(again.epoch(2))  # a new process gets the same epoch 2
    assert _batches(first.epoch(1)) != _batches(first.epoch(2))  # a new order each epoch
    assert _batches(first.epoch(1)) == _batches(first.epoch(1))  # and the same one when read again
    stream = _batches(first.stream(3, start_epoch=1, skip=4))
    assert stream == _batches(first.epoch(1))[4:] + _batches(first.epoch(2))
    assert len(_batches(first.epoch(0))) == first.steps


_KILLED_RUN = textwrap.dedent("""
    import os, signal, sys
    import tfbert
    from tfbert import checkpoints
    from tfbert.config import RunConfig
    from tfbert.experiment import run_experiment

    tfbert.register_model(name="tiny-nodrop", backend="huggingface", encoder=sys.argv[1], max_seq_length=128)
    keep = checkpoints.TrainingCheckpoints.on_train_batch_end

    def kill_mid_epoch(self, batch, logs=None):
        keep(self, batch, logs)
        if self._epoch == 1 and batch == 6:  # after the last checkpoint: the batches since are lost
            os.kill(os.getpid(), signal.SIGKILL)

    checkpoints.TrainingCheckpoints.on_train_batch_end = kill_mid_epoch
    run_experiment(RunConfig(**eval(sys.argv[2])), sys.argv[3], verbose=0)
""")


def test_a_killed_run_resumes_to_the_uninterrupted_result(no_dropout_hf, tmp_path):
    tfbert.register_model(name="tiny-nodrop", backend="huggingface", encoder=no_dropout_hf, max_seq_length=128)
    texts, labels = toy_texts(120, seed=7)
    train = tmp_path / "train.csv"
    pd.DataFrame({"text": texts, "label": labels}).to_csv(train, index=False)
    # accumulation, best weights, step scores and the LR schedule all carry state across the kill
    settings = dict(model="tiny-nodrop", head="dense", train=str(train), test=str(train), epochs=3, batch_size=8,
                    seq_length=16, dropout=0.0, learning_rate=1e-3, accumulation_steps=2, save_every_steps=5,
                    restore_best=True, eval_every_steps=4, export=False)
    whole = run_experiment(RunConfig(**settings), tmp_path / "whole", verbose=0)

    killed = tmp_path / "killed"
    proc = subprocess.run([sys.executable, "-c", _KILLED_RUN, no_dropout_hf, repr(settings), str(killed)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    position = checkpoints.latest(killed / checkpoints.DIRNAME)
    assert position.epoch == 1 and 0 < position.step < 7 and len(position.history) == 1
    assert not (killed / "history.csv").exists()
    saved = position.callbacks["EpochStats"]  # the killed process's training time, up to its checkpoint
    assert saved["finished_seconds"] == pytest.approx(position.history[0]["time"]) and saved["epoch_seconds"] > 0

    resumed = run_experiment(RunConfig(**settings), killed, verbose=0)
    # times carry over: epoch 1 counts its part before the kill, the run counts the killed session
    history = pd.read_csv(killed / "history.csv")
    assert history["time"][0] == pytest.approx(position.history[0]["time"])
    assert history["time"][1] > saved["epoch_seconds"]
    earlier = saved["finished_seconds"] + saved["epoch_seconds"]
    assert resumed["train_time_earlier_s"] == pytest.approx(earlier, abs=0.06) and whole["train_time_earlier_s"] == 0
    assert resumed["train_time_s"] > earlier
    for name in ("history.csv", "steps.csv"):
        a, b = pd.read_csv(tmp_path / "whole" / name), pd.read_csv(killed / name)
        columns = [c for c in a if c not in ("time", "examples_per_s")]
        np.testing.assert_allclose(a[columns].to_numpy(), b[columns].to_numpy(), rtol=0, atol=1e-6)
    assert pd.read_csv(killed / "history.csv")["loss"].iloc[-1] < pd.read_csv(killed / "history.csv")["loss"][0]
    for key in ("test_accuracy", "best_epoch", "restored_epoch", "best_val_accuracy"):
        assert resumed[key] == whole[key], key
    assert not (killed / checkpoints.DIRNAME).exists()  # a finished run keeps its result, not its checkpoints
    # TensorBoard: the resumed process continued the killed one's curves instead of wiping them
    assert len(list((killed / "logs" / "train").glob("events.out.tfevents.*"))) == 2


def _fit(model, directory, texts, labels, **kwargs):
    ds = make_dataset(model, texts, labels, batch_size=8, shuffle=True, seed=1, by_epoch=True)
    return train_classifier(model, ds, epochs=2, learning_rate=1e-3, verbose=0, checkpoint_dir=directory, **kwargs)


def test_keeps_the_last_k_checkpoints_and_a_finished_fit_is_not_redone(tiny_models, tmp_path):
    texts, labels = toy_texts(48, seed=2)
    model = tfbert.create_classifier("tiny-hf", head="dense", seq_length=12)
    history = _fit(model, tmp_path, texts, labels, save_every_steps=1, keep_checkpoints=2, identity={"run": 1})
    names = sorted(p.name for p in tmp_path.glob("ckpt-*.index"))
    assert len(names) == 2 and checkpoints.latest(tmp_path).epoch == 2
    # killed after training, before its outputs were written: the rerun restores, it does not fit again
    again = tfbert.create_classifier("tiny-hf", head="dense", seq_length=12)
    rerun = _fit(again, tmp_path, texts, labels, identity={"run": 1})
    assert rerun.history["loss"] == history.history["loss"]
    for a, b in zip(model.core.weights, again.core.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_resume_refuses_other_settings_and_models_and_no_resume_starts_over(tiny_models, tmp_path):
    texts, labels = toy_texts(32, seed=3)
    _fit(tfbert.create_classifier("tiny-hf", head="dense", seq_length=12), tmp_path, texts, labels,
         identity={"head": "dense", "learning_rate": 1e-3})
    other = tfbert.create_classifier("tiny-hf", head="cls_bn", seq_length=12)
    with pytest.raises(tfbert.ConfigError, match=r"holds a checkpoint of a run with other settings \(head\); "
                                                 r"pass --no-resume"):
        _fit(other, tmp_path, texts, labels, identity={"head": "cls_bn", "learning_rate": 1e-3})
    with pytest.raises(tfbert.ConfigError, match="does not fit this model"):  # nothing recorded to compare
        _fit(other, tmp_path, texts, labels)
    history = _fit(other, tmp_path, texts, labels, resume=False, identity={"head": "cls_bn"})
    assert len(history.history["loss"]) == 2
    assert checkpoints.latest(tmp_path).identity == {"head": "cls_bn"}


def test_a_folder_of_other_files_is_not_taken_for_a_checkpoint(tmp_path):
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "ckpt-1"\n')
    (tmp_path / "ckpt-1.index").write_bytes(b"junk")
    with pytest.raises(tfbert.ConfigError, match="is not a tfbert training checkpoint"):
        checkpoints.latest(tmp_path)
