"""Distribution strategies: which ``tf.distribute`` strategy a run trains under."""

from __future__ import annotations

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker", "tpu")
