"""Mixed precision: bfloat16 where the hardware does it fast, else float32."""

from __future__ import annotations

import functools

import tensorflow as tf
import tf_keras as keras

from tfbert.errors import ConfigError

CHOICES = ("auto", "bfloat16", "float32")


@functools.lru_cache(maxsize=1)
def hardware_has_fast_bfloat16() -> bool:
    """AMX / AVX512-BF16 CPUs, and GPUs of compute capability 8.0 or newer."""
    for gpu in tf.config.list_physical_devices("GPU"):
        major = tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0))[0]
        if major >= 8:
            return True
    try:
        flags = open("/proc/cpuinfo", encoding="utf-8").read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_precision(precision: str | None) -> str:
    precision = precision or "auto"
    if precision not in CHOICES:
        raise ConfigError(f"precision must be one of {', '.join(CHOICES)}, got '{precision}'")
    if precision == "auto":
        return "bfloat16" if hardware_has_fast_bfloat16() else "float32"
    return precision


def set_precision(precision: str | None) -> str:
    """Set Keras' global policy (``mixed_bfloat16`` or ``float32``); returns the choice.

    Heads keep their output layer in float32, so losses and exported
    probabilities stay float32.
    """
    choice = resolve_precision(precision)
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if choice == "bfloat16" else "float32")
    return choice
