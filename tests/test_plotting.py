"""Tests for tfbert.plotting: PNGs are written, readable and of the documented size."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from PIL import Image

from tfbert import plotting
from tfbert.errors import DataError


def _history(epochs: int = 3, val: bool = True, offset: float = 0.0) -> pd.DataFrame:
    data = {
        "epoch": list(range(1, epochs + 1)),
        "loss": [0.7 - 0.1 * i + offset for i in range(epochs)],
        "accuracy": [0.6 + 0.1 * i - offset for i in range(epochs)],
    }
    if val:
        data["val_loss"] = [0.75 - 0.08 * i + offset for i in range(epochs)]
        data["val_accuracy"] = [0.55 + 0.1 * i - offset for i in range(epochs)]
    data["learning_rate"] = [2e-5] * epochs
    data["time"] = [12.5] * epochs
    return pd.DataFrame(data)


def _image_size(path) -> tuple[int, int]:
    with Image.open(path) as img:
        img.load()  # fully decodes: fails on a truncated or corrupt file
        assert img.format == "PNG"
        return img.size


def _write_run(folder, history: pd.DataFrame, model="minilm-l6-h384-uncased", head="dense", lr=3e-5):
    folder.mkdir(parents=True)
    history.to_csv(folder / "history.csv", index=False)
    (folder / "config.json").write_text(json.dumps({"model": model, "head": head, "learning_rate": lr}))
    return folder


def test_documented_sizes_are_consistent():
    assert plotting.HISTORY_IMAGE_SIZE == tuple(int(s * plotting.DPI) for s in plotting.HISTORY_FIGSIZE)
    assert plotting.SWEEP_IMAGE_SIZE == tuple(int(s * plotting.DPI) for s in plotting.SWEEP_FIGSIZE)
    assert plotting.HISTORY_IMAGE_SIZE == (800, 800)


def test_plot_history_writes_png_of_documented_size(tmp_path):
    out = plotting.plot_history(_history(), tmp_path / "curves.png", title="minilm-l6-h384-uncased / dense")
    assert out == tmp_path / "curves.png"
    assert _image_size(out) == plotting.HISTORY_IMAGE_SIZE


@pytest.mark.parametrize("epochs", [1, 2])
def test_plot_history_short_runs_without_validation(tmp_path, epochs):
    out = plotting.plot_history(_history(epochs, val=False), tmp_path / "sub" / "h.png")
    assert _image_size(out) == plotting.HISTORY_IMAGE_SIZE


def test_plot_history_accepts_dict_and_csv_path(tmp_path):
    keras_style = {"loss": [0.5, 0.4], "accuracy": [0.7, 0.8], "val_loss": [0.6, 0.5], "val_accuracy": [0.65, 0.7]}
    assert _image_size(plotting.plot_history(keras_style, tmp_path / "a.png")) == plotting.HISTORY_IMAGE_SIZE
    _history().to_csv(tmp_path / "history.csv", index=False)
    assert _image_size(plotting.plot_history(tmp_path / "history.csv", tmp_path / "b.png")) == plotting.HISTORY_IMAGE_SIZE


def test_plot_history_rejects_empty_history(tmp_path):
    with pytest.raises(DataError, match="no epochs"):
        plotting.plot_history(_history().iloc[0:0], tmp_path / "x.png")
    with pytest.raises(DataError, match="no loss or accuracy"):
        plotting.plot_history(pd.DataFrame({"epoch": [1], "time": [3.0]}), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_plot_sweep_two_runs(tmp_path):
    histories = {"lr=2e-05": _history(3), "lr=5e-05 (no val)": _history(2, val=False, offset=0.05)}
    out = plotting.plot_sweep(histories, tmp_path / "sweep.png", title="head sweep")
    assert _image_size(out) == plotting.SWEEP_IMAGE_SIZE


def test_plot_sweep_rejects_empty(tmp_path):
    with pytest.raises(DataError, match="empty"):
        plotting.plot_sweep({}, tmp_path / "sweep.png")


@pytest.mark.parametrize("normalize", [False, True])
def test_plot_confusion_matrix(tmp_path, normalize):
    out = plotting.plot_confusion_matrix([[5, 1, 0], [2, 3, 1], [0, 0, 0]], ["neg", "neutral", "pos"],
                                         tmp_path / "cm.png", normalize=normalize)
    w, h = plotting.confusion_figsize(3)
    assert _image_size(out) == (int(w * plotting.DPI), int(h * plotting.DPI))


def test_plot_confusion_matrix_checks_shape(tmp_path):
    with pytest.raises(DataError, match="2 class names"):
        plotting.plot_confusion_matrix([[1, 0, 0], [0, 1, 0], [0, 0, 1]], ["a", "b"], tmp_path / "cm.png")
    with pytest.raises(DataError, match="square"):
        plotting.plot_confusion_matrix([[1, 0, 0], [0, 1, 0]], ["a", "b"], tmp_path / "cm.png")


def test_plot_folder_run(tmp_path):
    run = _write_run(tmp_path / "run", _history())
    written = plotting.plot_folder(run)
    assert written == [run / "curves.png"]
    assert _image_size(written[0]) == plotting.HISTORY_IMAGE_SIZE


def test_plot_folder_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    _write_run(sweep / "run-a", _history(3), head="dense")
    _write_run(sweep / "run-b", _history(2, val=False), head="mean-pool")
    (sweep / "summary.csv").write_text("run,best_val_accuracy\nrun-a,0.75\nrun-b,\n")
    (sweep / "crashed").mkdir()
    (sweep / "crashed" / "history.csv").write_text("")  # run that died before epoch 1: skipped
    written = plotting.plot_folder(str(sweep))
    assert written == [sweep / "run-a" / "curves.png", sweep / "run-b" / "curves.png", sweep / "sweep_curves.png"]
    assert _image_size(written[0]) == plotting.HISTORY_IMAGE_SIZE
    assert _image_size(written[-1]) == plotting.SWEEP_IMAGE_SIZE
    assert not (sweep / "crashed" / "curves.png").exists()


def test_plot_folder_errors(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(DataError, match="expected a run folder"):
        plotting.plot_folder(tmp_path / "empty")
    with pytest.raises(DataError, match="does not exist"):
        plotting.plot_folder(tmp_path / "missing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "history.csv").write_text("")
    with pytest.raises(DataError, match="empty"):
        plotting.plot_folder(tmp_path / "bad")


def test_import_is_light():
    """Importing tfbert.plotting / tfbert.metrics pulls in no TensorFlow, matplotlib or sklearn."""
    code = (
        "import sys, tfbert\n"
        "before = set(sys.modules)\n"
        "import tfbert.plotting, tfbert.metrics\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "heavy = new & {'tensorflow', 'keras', 'matplotlib', 'sklearn', 'pandas'}\n"
        "assert not heavy, heavy\n"
        "assert 'tensorflow' not in sys.modules or 'tensorflow' in before\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
