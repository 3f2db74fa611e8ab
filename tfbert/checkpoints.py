"""Checkpoints during a run, and resuming a killed run where it stopped.

One ``tf.train.Checkpoint`` holds everything the rest of a run depends on:
the fitted model's weights, its optimizer (slots and step count, which is
the learning-rate schedule's position), Keras' batch counter (TensorBoard's
x axis), the running training metrics of the epoch in progress, the state
of the callbacks that keep some (best weights, early stopping, step scores)
and the history so far. ``tf.train.CheckpointManager`` writes it (a killed
save leaves the previous checkpoint intact) and keeps the last K.

A resumed run continues at the saved (epoch, batch). Its batches come from
``tfbert.pipeline.EpochBatches``, whose order depends only on (seed, epoch),
so it sees the very batches the uninterrupted run would have; Keras starts
that epoch at the saved batch through the hook its own ``BackupAndRestore``
uses (``Model._training_state``), which does not replay a data order.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras

from tfbert.errors import ConfigError

DIRNAME = "checkpoints"
_STATE = "state"
_STATE_KEY = f"{_STATE}/.ATTRIBUTES/VARIABLE_VALUE"


@dataclass
class Position:
    """Where a saved run stands: ``epoch`` epochs and ``step`` batches of the next one are done."""

    epoch: int
    step: int
    path: str
    identity: dict | None = None
    history: list = field(default_factory=list)
    metrics: list | None = None
    callbacks: dict = field(default_factory=dict)
    stopped: bool = False  # early stopping ended the run at ``epoch``


def latest(directory: str | Path) -> Position | None:
    """The newest checkpoint in ``directory``, read without building a model; None if there is none."""
    path = tf.train.latest_checkpoint(str(directory))
    if not path:
        return None
    try:
        state = json.loads(tf.train.load_checkpoint(path).get_tensor(_STATE_KEY).decode("utf-8"))
    except (tf.errors.OpError, ValueError, KeyError) as err:
        raise ConfigError(f"{path} is not a tfbert training checkpoint ({type(err).__name__}); "
                          f"delete {directory} or pass --no-resume to start the run over") from None
    return Position(state["epoch"], state["step"], path, state.get("identity"), state.get("history", []),
                    state.get("metrics"), state.get("callbacks", {}), bool(state.get("stopped")))


def check_identity(position: Position, identity: dict | None, directory) -> None:
    """Refuse to resume a checkpoint of a run with other settings, naming them."""
    from tfbert.config import identity_differences

    if identity is None or position.identity is None:
        return
    differ = identity_differences(position.identity, identity)
    if differ:
        raise ConfigError(f"{directory} holds a checkpoint of a run with other settings ({', '.join(differ)}); "
                          f"pass --no-resume to start this run over, or choose another --output-dir")


def clear(directory: str | Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


class _StartAt:
    """What Keras' fit asks ``Model._training_state`` for: the (epoch, batch) to start at."""

    def __init__(self, epoch: int, step: int):
        self.epoch, self.step = epoch, step

    def maybe_load_initial_counters_from_ckpt(self, steps_per_epoch, initial_epoch, mode=None):
        return self.epoch, self.step


def _stateful(callbacks) -> dict:
    """The callbacks that keep state a resumed run needs, by class name."""
    return {type(cb).__name__: cb for cb in callbacks if hasattr(cb, "checkpoint_state")}


class TrainingCheckpoints(keras.callbacks.Callback):
    """Saves the training state every ``every_steps`` batches and at every epoch end; restores it.

    Put it after every callback whose state it saves (they implement
    ``checkpoint_state() -> dict``, ``restore_checkpoint_state(dict)`` and
    optionally ``checkpoint_variables() -> dict``), and put ``logs_fixer``
    before the callbacks that read an epoch's training loss (History,
    TensorBoard): a resumed epoch's running metrics are only whole again once
    the saved partial sums are added back.

    Args:
        directory: folder of the checkpoints.
        steps_per_epoch: int. Batches per epoch (to number checkpoints by step).
        every_steps: int or None. Also save every N batches.
        keep: int. Checkpoints kept.
        identity: dict. The run's settings; a resume with other settings is refused.
        resume_from: Position or None. The checkpoint to restore at train begin.
        callbacks: the other callbacks of the fit (their states are saved).
    """

    def __init__(self, directory, steps_per_epoch: int, every_steps: int | None = None, keep: int = 1,
                 identity: dict | None = None, resume_from: Position | None = None, callbacks=()):
        super().__init__()
        self.directory, self.steps_per_epoch = str(directory), int(steps_per_epoch)
        self.every_steps, self.keep, self.identity = every_steps, int(keep), identity
        self.resume_from = resume_from
        self.history: list[dict] = list(resume_from.history) if resume_from else []
        self.others = _stateful(callbacks)
        self.logs_fixer = _ResumedEpochLogs(self)
        self._state = tf.Variable("", dtype=tf.string, trainable=False)
        self._manager = None
        self._epoch = 0

    # ------------------------------------------------------------------ setup
    def _checkpoint(self) -> tf.train.Checkpoint:
        parts = {}
        for name, cb in self.others.items():
            variables = cb.checkpoint_variables() if hasattr(cb, "checkpoint_variables") else {}
            if variables:
                parts[name] = tf.train.Checkpoint(**variables)
        return tf.train.Checkpoint(model=self.model, optimizer=self.model.optimizer,
                                   train_counter=self.model._train_counter, callbacks=tf.train.Checkpoint(**parts),
                                   **{_STATE: self._state})

    def on_train_begin(self, logs=None):
        checkpoint = self._checkpoint()
        self._manager = tf.train.CheckpointManager(checkpoint, self.directory, max_to_keep=self.keep)
        position = self.resume_from
        if position is None:
            return
        try:
            with self.model.distribute_strategy.scope():
                # Slots made now are restored now: restored later, on creation, a strategy's
                # slot variables would miss their saved values.
                optimizer = self.model.optimizer
                if hasattr(optimizer, "_create_all_weights"):
                    optimizer._create_all_weights(self.model.trainable_variables)
                checkpoint.restore(position.path).assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as err:
            first = str(err).strip().splitlines()[0][:200]
            raise ConfigError(f"the checkpoint {position.path} does not fit this model ({first}); "
                              f"pass --no-resume to start the run over") from None
        for name, cb in self.others.items():
            if name in position.callbacks:
                cb.restore_checkpoint_state(position.callbacks[name])
        self.model._training_state = _StartAt(position.epoch, position.step)

    def on_train_end(self, logs=None):
        self.model._training_state = None

    # ------------------------------------------------------------------ saving
    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        done = batch + 1
        if (self.every_steps and done < self.steps_per_epoch
                and (self._epoch * self.steps_per_epoch + done) % self.every_steps == 0):
            self.save(self._epoch, done, metrics=self.logs_fixer.metric_values())

    def on_epoch_end(self, epoch, logs=None):
        self.history.append({k: _number(v) for k, v in (logs or {}).items()})
        self.save(epoch + 1, 0)

    def save(self, epoch: int, step: int, metrics: list | None = None) -> str:
        """Write a checkpoint for position (epoch, step); returns its path."""
        from tfbert.files import json_safe

        state = {"epoch": epoch, "step": step, "identity": json_safe(self.identity), "history": self.history,
                 "stopped": bool(getattr(self.model, "stop_training", False)) and step == 0,
                 "metrics": metrics, "callbacks": {n: cb.checkpoint_state() for n, cb in self.others.items()}}
        self._state.assign(json.dumps(state))
        return self._manager.save(checkpoint_number=epoch * self.steps_per_epoch + step)


class _ResumedEpochLogs(keras.callbacks.Callback):
    """Adds a resumed epoch's saved running-metric sums back, so its training loss and accuracy
    cover the whole epoch as in an uninterrupted run (Keras metrics hold sums and counts)."""

    def __init__(self, owner: TrainingCheckpoints):
        super().__init__()
        self.owner = owner
        self._pending = None
        self._results: dict | None = None

    def metric_values(self) -> list:
        return [[np.asarray(v.numpy()).tolist() for v in m.variables] for m in self.model.metrics]

    def on_train_begin(self, logs=None):
        position = self.owner.resume_from
        self._pending = position.metrics if position is not None and position.step and position.metrics else None
        self._results = None

    def on_train_batch_end(self, batch, logs=None):
        if self._pending is not None:  # metrics are built by now, holding this batch alone
            self._add_saved_sums(self._pending)
            self._pending = None
            self._results = {}
        if self._results is not None:
            self._results = {m.name: float(m.result()) for m in self.model.metrics}

    def _add_saved_sums(self, saved_metrics) -> None:
        strategy = self.model.distribute_strategy
        replicas = strategy.num_replicas_in_sync

        def add():  # under a strategy metric variables sum over replicas and take updates only there
            for metric, saved in zip(self.model.metrics, saved_metrics):
                for variable, value in zip(metric.variables, saved):
                    variable.assign_add(tf.cast(value, variable.dtype) / replicas)

        if replicas > 1:
            strategy.run(add)
        else:
            add()

    def on_epoch_end(self, epoch, logs=None):
        if self._results and logs is not None:  # validation has since reset the metrics: use the last batch's
            logs.update({k: v for k, v in self._results.items() if k in logs})
        self._results = None


def _number(value):
    value = np.asarray(value).item() if hasattr(value, "shape") or isinstance(value, np.generic) else value
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
