"""Distribution strategies: which ``tf.distribute`` strategy a run trains under.

``--batch-size`` is the global batch: Keras splits each batch across the
replicas (``N`` GPUs, or one replica per worker machine), so ``batch 64`` on
4 GPUs feeds 16 texts to each and makes the same updates as one device with
batch 64; keep the learning rate when you keep the global batch, and scale it
with the batch (linearly, or by its square root for AdamW) when you raise
the batch to use more devices.

``multi_worker`` reads the cluster from ``$TF_CONFIG`` (the same command runs
on every machine, each with its own ``task``); worker 0 (or the ``chief``)
writes the run folder, the others train alongside and write nothing there.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass

from tfbert.errors import ConfigError

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker", "tpu")


@dataclass
class Placement:
    """The strategy a run trains under (None: TensorFlow's default) and this process's role."""

    name: str
    strategy: object | None
    is_chief: bool = True
    task: str = ""

    def scope(self):
        import contextlib

        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    @property
    def replicas(self) -> int:
        return int(self.strategy.num_replicas_in_sync) if self.strategy is not None else 1


_PLACEMENTS: dict = {}


def placement(name: str = "auto", join_timeout: float = 300.0) -> Placement:
    """The strategy ``name`` on this machine, made once per process (TensorFlow allows one
    multi-worker strategy per process, and its cluster must assemble only once)."""
    if name not in STRATEGIES:
        raise ConfigError(f"--strategy must be one of {', '.join(STRATEGIES)}, got '{name}'")
    if name not in _PLACEMENTS:
        _PLACEMENTS[name] = _make(name, join_timeout)
    return _PLACEMENTS[name]


def _make(name: str, join_timeout: float) -> Placement:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if name == "auto":
        if len(gpus) > 1:
            print(f"strategy auto: {len(gpus)} GPUs visible, training with MirroredStrategy")
            return Placement("mirrored", tf.distribute.MirroredStrategy())
        return Placement("default", None)  # TensorFlow's default strategy: no distribution
    if name == "one_device":
        return Placement(name, tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0"))
    if name == "mirrored":
        return Placement(name, tf.distribute.MirroredStrategy())
    if name == "tpu":
        return _tpu()
    return _multi_worker(join_timeout)


def _tpu() -> Placement:
    import tensorflow as tf

    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu="")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.OpError, RuntimeError) as err:
        raise ConfigError(f"--strategy tpu: no TPU found ({str(err).strip().splitlines()[0][:120]}); "
                          f"run on a TPU VM, or use --strategy auto") from None
    return Placement("tpu", tf.distribute.TPUStrategy(resolver))


def read_tf_config(text: str | None = None) -> dict:
    """``$TF_CONFIG`` checked: a cluster with workers at host:port, and this task in it."""
    text = os.environ.get("TF_CONFIG", "") if text is None else text
    hint = ('set TF_CONFIG on every machine, e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}}')
    if not text.strip():
        raise ConfigError(f"--strategy multi_worker needs $TF_CONFIG; {hint}")
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        members = cluster[task["type"]]
        address = members[int(task["index"])]
    except (ValueError, KeyError, TypeError, IndexError):
        raise ConfigError(f"$TF_CONFIG is malformed (needs cluster.worker addresses and a task type/index "
                          f"naming one of them); {hint}") from None
    for kind, addresses in cluster.items():
        for item in addresses:
            host, _, port = str(item).rpartition(":")
            if not host or not port.isdigit():
                raise ConfigError(f"$TF_CONFIG cluster.{kind} has '{item}', not host:port; {hint}")
    return {"cluster": cluster, "task_type": task["type"], "task_index": int(task["index"]), "address": address}


def _check_port_free(address: str) -> None:
    port = int(address.rpartition(":")[2])
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("", port))
        except OSError:
            raise ConfigError(f"port {port} of this worker ({address} in $TF_CONFIG) is in use; "
                              f"stop what holds it or give this worker a free port") from None


_WATCHDOG = """
import os, select, signal, sys
parent, seconds, message = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
ready, _, _ = select.select([sys.stdin], [], [], seconds)
if not ready:
    print("tfbert: error: " + message, file=sys.stderr, flush=True)
    os.kill(parent, signal.SIGKILL)  # TensorFlow traps SIGTERM (preemption notices)
"""


def _within(seconds: float, message: str, make):
    """``make()``, or end this process with ``message`` if it takes longer than ``seconds``.

    MultiWorkerMirroredStrategy blocks, holding the interpreter, until every worker
    of the cluster has registered (TensorFlow's coordination service waits an hour)
    and cannot give up half-joined: a watchdog process ends this one instead.
    """
    import subprocess
    import sys

    watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(seconds), message],
                                stdin=subprocess.PIPE)
    try:
        return make()
    finally:
        watchdog.stdin.close()  # the watchdog sees the end of its input and leaves
        watchdog.wait()


def _multi_worker(join_timeout: float) -> Placement:
    import tensorflow as tf

    info = read_tf_config()
    _check_port_free(info["address"])
    workers = sum(len(v) for k, v in info["cluster"].items() if k in ("chief", "worker"))
    print(f"strategy multi_worker: {info['task_type']} {info['task_index']} of {workers}, waiting up to "
          f"{join_timeout:g} s for the others")
    strategy = _within(join_timeout, f"the workers of $TF_CONFIG did not all join within {join_timeout:g} s; start "
                                     f"the same command on every machine listed (or raise --worker-timeout)",
                       tf.distribute.MultiWorkerMirroredStrategy)
    chief = "chief" in info["cluster"]
    is_chief = info["task_type"] == "chief" or (not chief and info["task_type"] == "worker" and info["task_index"] == 0)
    return Placement("multi_worker", strategy, is_chief, f"{info['task_type']}:{info['task_index']}")


def split_batches(strategy, dataset):
    """``dataset``'s global (inputs, labels) batches for ``fit`` under ``strategy``: each batch
    cut into one part per replica, in row order, so N replicas make the update one device
    makes with the whole batch, for length-bucketed batches of any shape.

    Keras' own sharding would hand whole batches, or rows of every N-th batch, to
    each worker. Keras averages each replica's mean loss, which weights parts of
    unequal size (a bucket's last batch) wrongly: every row gets the sample weight
    ``N * part rows / batch rows``, which makes the sum over replicas the batch's
    mean loss exactly. A part left empty (fewer rows than replicas) holds the
    batch's first row with weight 0, so no replica sees an empty batch.
    """
    import tensorflow as tf

    replicas = strategy.num_replicas_in_sync

    def part(batch, r):
        rows = tf.shape(batch[1])[0]
        lo, hi = rows * r // replicas, rows * (r + 1) // replicas
        size = hi - lo
        index = tf.cond(size > 0, lambda: tf.range(lo, hi), lambda: tf.zeros([1], tf.int32))
        share = tf.cast(replicas * size, tf.float32) / tf.cast(rows, tf.float32)
        weight = tf.fill(tf.shape(index), share)  # 0 for the stand-in row of an empty part
        inputs, labels = tf.nest.map_structure(lambda t: tf.gather(t, index), batch)
        return inputs, labels, weight

    def per_pipeline(context):
        local = replicas // context.num_input_pipelines
        first = context.input_pipeline_id * local

        def parts(inputs, labels):
            return tf.data.Dataset.range(first, first + local).map(
                lambda r: part((inputs, labels), tf.cast(r, tf.int32)))

        return dataset.flat_map(parts)

    return strategy.distribute_datasets_from_function(per_pipeline)
