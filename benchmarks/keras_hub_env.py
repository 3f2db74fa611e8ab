"""The KerasHub side's own virtualenv: ``<repo>/.bench-venvs/keras-hub`` (Keras 3, TensorFlow backend).

    python benchmarks/keras_hub_env.py            # create it (or say it is ready) and print its python
    python benchmarks/keras_hub_env.py --rebuild  # remove it and install again

Made once and reused: a marker file in the venv records the pinned requirements
it was built with; a venv whose marker differs from ``REQUIREMENTS`` (or has no
marker, i.e. an install that did not finish) is rebuilt. ``pip install`` uses
the ordinary pip cache, so a rebuild downloads nothing new.

The pins: KerasHub 0.32.0 needs ``keras>=3.15`` and, off Windows,
``tensorflow-text>=2.20.1``; tensorflow-text 2.20.1 is built against
TensorFlow 2.20, the same TensorFlow as tfbert's own environment, so both sides
of ``mlm_speed.py`` run the same TensorFlow kernels.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".bench-venvs" / "keras-hub"
MARKER = ".tfbert-bench-ready.json"
REQUIREMENTS = [
    "keras-hub==0.32.0",
    "keras==3.15.1",
    "tensorflow==2.20.0",
    "tensorflow-text==2.20.1",
]


def venv_python(venv: Path = VENV) -> Path:
    return venv / "bin" / "python"


def _ready(venv: Path) -> bool:
    marker = venv / MARKER
    if not (marker.is_file() and venv_python(venv).exists()):
        return False
    try:
        return json.loads(marker.read_text()).get("requirements") == REQUIREMENTS
    except (OSError, ValueError):
        return False


def installed_versions(venv: Path = VENV) -> dict:
    """Versions of the packages that matter, read inside the venv (no TensorFlow import)."""
    code = (
        "import json; from importlib import metadata as m\n"
        "out = {}\n"
        "for p in ('keras-hub', 'keras', 'tensorflow', 'tensorflow-text', 'numpy'):\n"
        "    try: out[p] = m.version(p)\n"
        "    except m.PackageNotFoundError: out[p] = None\n"
        "print(json.dumps(out))"
    )
    res = subprocess.run([str(venv_python(venv)), "-c", code], capture_output=True, text=True, check=True)
    return json.loads(res.stdout)


def ensure_keras_hub_venv(venv: Path = VENV, rebuild: bool = False, quiet: bool = False) -> Path:
    """Create (once) the KerasHub virtualenv and return its python executable."""
    say = (lambda *a: None) if quiet else (lambda *a: print("[keras-hub venv]", *a, flush=True))
    venv = Path(venv)
    if rebuild and venv.exists():
        say(f"removing {venv}")
        shutil.rmtree(venv)
    if _ready(venv):
        say(f"ready: {venv} ({json.loads((venv / MARKER).read_text())['versions']})")
        return venv_python(venv)
    if venv.exists():
        say(f"{venv} is incomplete or built with other pins; rebuilding")
        shutil.rmtree(venv)
    t0 = time.perf_counter()
    venv.parent.mkdir(parents=True, exist_ok=True)
    # The base interpreter, not this (possibly virtualenv) one's site-packages.
    base = getattr(sys, "_base_executable", None) or sys.executable
    say(f"creating {venv} with {base}")
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    py = str(venv_python(venv))
    say("upgrading pip")
    subprocess.run([py, "-m", "pip", "install", "--upgrade", "pip"], check=True,
                   stdout=subprocess.DEVNULL if quiet else None)
    say("installing " + " ".join(REQUIREMENTS) + " (TensorFlow is ~600 MB the first time)")
    subprocess.run([py, "-m", "pip", "install", "--progress-bar", "off", *REQUIREMENTS], check=True,
                   stdout=subprocess.DEVNULL if quiet else None)
    say("checking: import keras_hub with KERAS_BACKEND=tensorflow")
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_USE_LEGACY_KERAS", None)
    subprocess.run(
        [py, "-c", "import keras, keras_hub; assert keras.backend.backend() == 'tensorflow'; "
                   "print('keras', keras.__version__, 'keras_hub', keras_hub.__version__)"],
        check=True, env=env)
    versions = installed_versions(venv)
    seconds = round(time.perf_counter() - t0, 1)
    (venv / MARKER).write_text(json.dumps(
        {"requirements": REQUIREMENTS, "versions": versions, "install_seconds": seconds}, indent=1))
    say(f"installed in {seconds:.0f} s: {versions}")
    return venv_python(venv)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rebuild", action="store_true", help="remove the venv and install again")
    ap.add_argument("--venv", type=Path, default=VENV)
    args = ap.parse_args()
    print(ensure_keras_hub_venv(args.venv, rebuild=args.rebuild))


if __name__ == "__main__":
    main()
