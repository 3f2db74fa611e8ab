"""Training-curve, sweep and confusion-matrix figures, saved as PNG files.

Everything here is headless: figures are built with :class:`matplotlib.figure.Figure`
directly (never ``pyplot``), so no GUI backend is touched, no global figure registry
fills up, and the user's own matplotlib backend (e.g. in a notebook) is left alone.
matplotlib and pandas are imported lazily, so ``import tfbert.plotting`` is cheap
and never imports TensorFlow.

Image sizes (pixels = inches * ``DPI``):

* :func:`plot_history` -> ``HISTORY_FIGSIZE`` = 8 x 8 in -> **800 x 800 px**
* :func:`plot_sweep` -> ``SWEEP_FIGSIZE`` = 11 x 8 in -> **1100 x 800 px**
  (the extra width holds the legend of run names, outside the panels)
* :func:`plot_confusion_matrix` -> 7 x 7 in (700 x 700 px) up to 10 classes,
  then 0.6 in more per class, capped at 20 x 20 in; see :func:`confusion_figsize`.

A history is a per-epoch table (a pandas DataFrame, also saved as ``history.csv``)
with columns ``epoch`` (1-based), ``loss``, ``accuracy`` and, when there was a
validation set, ``val_loss`` and ``val_accuracy`` (other columns are ignored).
Regression runs have ``pearson`` (and ``val_spearman``), multi-label runs
``f1_micro`` in place of ``accuracy``: the second panel shows whichever is there
(``SCORES``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from tfbert.errors import DataError
from tfbert.files import atomic_file
from tfbert.runs import RunFolder, SweepFolder

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "DPI",
    "HISTORY_FIGSIZE",
    "HISTORY_IMAGE_SIZE",
    "SWEEP_FIGSIZE",
    "SWEEP_IMAGE_SIZE",
    "confusion_figsize",
    "load_history",
    "plot_history",
    "plot_sweep",
    "plot_confusion_matrix",
    "plot_folder",
]

DPI = 100
HISTORY_FIGSIZE = (8.0, 8.0)
HISTORY_IMAGE_SIZE = (800, 800)  # (width, height) in pixels of plot_history's PNG
SWEEP_FIGSIZE = (11.0, 8.0)
SWEEP_IMAGE_SIZE = (1100, 800)  # (width, height) in pixels of plot_sweep's PNG


# Cell counts are written into the confusion matrix up to this many classes;
# beyond that the text would be unreadable, so only the colours are drawn.
_MAX_ANNOTATED_CLASSES = 30

_TRAIN_COLOR = "tab:blue"
_VAL_COLOR = "tab:orange"
_LINESTYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


# --------------------------------------------------------------------------- helpers


def confusion_figsize(num_classes: int) -> tuple[float, float]:
    """Figure size in inches used by :func:`plot_confusion_matrix` for ``num_classes``."""
    side = 7.0 + 0.6 * max(0, num_classes - 10)
    side = min(side, 20.0)
    return (side, side)


def _new_figure(figsize: tuple[float, float]):
    from matplotlib.figure import Figure

    # No layout engine here: callers pick one. Never bbox_inches="tight" on save,
    # so the PNG always has exactly figsize * DPI pixels.
    return Figure(figsize=figsize, dpi=DPI)


def _save(fig, path: str | os.PathLike) -> Path:
    out = Path(path)
    with atomic_file(out) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    fig.clear()  # no pyplot registry to close from; release the artists now
    return out


def _column(history: "pd.DataFrame", name: str):
    """The column as floats, or None when absent or entirely empty (all NaN)."""
    import pandas as pd

    if name not in history.columns:
        return None
    values = pd.to_numeric(history[name], errors="coerce")
    if values.notna().sum() == 0:
        return None
    return values.to_numpy(dtype=float)


def _epochs(history: "pd.DataFrame"):
    import numpy as np

    epochs = _column(history, "epoch")
    if epochs is None or np.isnan(epochs).any():
        return np.arange(1, len(history) + 1, dtype=float)
    return epochs


def _coerce_history(history: Any, what: str = "history") -> "pd.DataFrame":
    """Accept a DataFrame, a dict of per-epoch lists (Keras ``History.history``)
    or a path to a ``history.csv``; check that there is something to plot."""
    import pandas as pd

    if isinstance(history, (str, os.PathLike)):
        history = load_history(history)
    elif isinstance(history, Mapping):
        try:
            history = pd.DataFrame(dict(history))
        except ValueError as exc:
            raise DataError(
                f"{what} is a dict whose lists have different lengths ({exc}); "
                "pass one value per epoch for every metric"
            ) from None
    elif not isinstance(history, pd.DataFrame):
        raise DataError(
            f"{what} must be a pandas DataFrame, a dict of per-epoch lists or a path "
            f"to history.csv, got {type(history).__name__}"
        )
    if len(history) == 0:
        raise DataError(f"{what} has no epochs; train for at least one epoch before plotting")
    if not any(_column(history, c) is not None for c in ("loss", "val_loss", "accuracy", "val_accuracy")):
        cols = ", ".join(map(str, history.columns)) or "none"
        raise DataError(
            f"{what} has no loss or accuracy values (columns: {cols}); expected columns "
            "epoch, loss, accuracy, val_loss, val_accuracy"
        )
    return history


def load_history(path: str | os.PathLike) -> "pd.DataFrame":
    """Read a ``history.csv`` (or a run folder holding one) into a DataFrame."""
    import pandas as pd

    path = Path(path)
    if path.is_dir():
        path = RunFolder(path).history_csv
    if not path.is_file():
        raise DataError(f"history file {path} does not exist; pass a run folder that holds {RunFolder.HISTORY_CSV}")
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"history file {path} is empty; the run recorded no epochs, re-run training") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"history file {path} is not a readable CSV ({exc}); re-run training to rewrite it") from None


def _plot_series(ax, x, y, **kwargs):
    """Plot y against x skipping NaN points (a NaN would hide a lone marker)."""
    import numpy as np

    keep = ~np.isnan(y)
    return ax.plot(x[keep], y[keep], **kwargs)


def _style_axes(ax, ylabel: str, epochs, has_lines: bool) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if len(epochs):
        lo, hi = float(min(epochs)), float(max(epochs))
        ax.set_xlim(lo - 0.5, hi + 0.5)  # a 1-epoch run still gets a sensible axis
        distinct = sorted(set(float(e) for e in epochs))
        if len(distinct) <= 12 and all(e.is_integer() for e in distinct):
            ax.set_xticks(distinct)  # every epoch labelled; no 0.5-epoch ticks on short runs
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if not has_lines:
        ax.text(0.5, 0.5, f"no {ylabel.lower()} recorded", ha="center", va="center",
                transform=ax.transAxes, color="gray")


def _best(values, epochs, mode: str) -> tuple[float, float] | None:
    import numpy as np

    if values is None or np.isnan(values).all():
        return None
    i = int(np.nanargmin(values) if mode == "min" else np.nanargmax(values))
    return float(values[i]), float(epochs[i])


def _fmt_epoch(e: float) -> str:
    return str(int(e)) if float(e).is_integer() else f"{e:g}"


# --------------------------------------------------------------------------- figures


#: The second panel's figure, by task: the first of these a history holds.
SCORES = (("accuracy", "Accuracy"), ("pearson", "Pearson r"), ("f1_micro", "Micro F1"))


def _score_of(*histories) -> tuple[str, str]:
    for key, label in SCORES:
        if any(_column(h, key) is not None or _column(h, f"val_{key}") is not None for h in histories):
            return key, label
    return SCORES[0]


def plot_history(history: Any, path: str | os.PathLike, title: str | None = None) -> Path:
    """Draw a run's training curves and save them as a PNG of ``HISTORY_IMAGE_SIZE`` px.

    Top panel: loss (train and validation); bottom panel: accuracy (train and
    validation; Pearson r and validation Spearman for regression, micro-F1 for
    multi-label); both share the epoch axis. Points carry markers so a 1- or
    2-epoch run is still visible. Validation lines are labelled with their best
    value and epoch. Validation columns are optional.

    ``history`` is a DataFrame (see module doc), a dict of per-epoch lists or a
    path to ``history.csv``. ``title`` is e.g. ``"minilm-l6-h384-uncased / dense"``.
    Returns the written path.
    """
    history = _coerce_history(history)
    epochs = _epochs(history)

    fig = _new_figure(HISTORY_FIGSIZE)
    fig.set_layout_engine("constrained")
    ax_loss, ax_acc = fig.subplots(2, 1, sharex=True)

    panels = ((ax_loss, "loss", "Loss", "min"), (ax_acc, *_score_of(history), "max"))
    for ax, metric, label, mode in panels:
        drew = False
        train = _column(history, metric)
        if train is not None:
            _plot_series(ax, epochs, train, color=_TRAIN_COLOR, marker="o", label="train")
            drew = True
        val = _column(history, f"val_{metric}")
        if val is not None:
            best = _best(val, epochs, mode)
            name = "validation"
            if best is not None:
                fmt = "{:.4f}" if metric == "loss" else "{:.3f}"
                name += f" ({'min' if mode == 'min' else 'best'} {fmt.format(best[0])} @ epoch {_fmt_epoch(best[1])})"
            _plot_series(ax, epochs, val, color=_VAL_COLOR, marker="s", label=name)
            drew = True
        spearman = _column(history, "val_spearman") if metric == "pearson" else None
        if spearman is not None:
            best = _best(spearman, epochs, "max")
            _plot_series(ax, epochs, spearman, color=_VAL_COLOR, marker="^", linestyle="--",
                         label="validation Spearman" + (f" (best {best[0]:.3f} @ epoch {_fmt_epoch(best[1])})"
                                                        if best is not None else ""))
        _style_axes(ax, label, epochs, drew)
        if drew:
            ax.legend(loc="best")

    ax_acc.set_xlabel("Epoch")
    fig.suptitle(title if title else "Training history")
    return _save(fig, path)


def plot_pretraining(history: Any, path: str | os.PathLike, title: str | None = None) -> Path:
    """Draw masked-LM pretraining curves (``history.csv`` of ``tfbert pretrain``): loss and MLM accuracy by step."""
    history = _coerce_history(history, "pretraining history")
    fig = _new_figure(HISTORY_FIGSIZE)
    fig.set_layout_engine("constrained")
    ax_loss, ax_acc = fig.subplots(2, 1, sharex=True)
    steps = history["step"].to_numpy()
    for ax, metric, label in ((ax_loss, "loss", "MLM loss"), (ax_acc, "mlm_accuracy", "MLM accuracy")):
        values = _column(history, metric)
        if values is not None:
            _plot_series(ax, steps, values, color=_TRAIN_COLOR, marker="o" if len(steps) < 30 else None,
                         label="train")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    ax_acc.set_xlabel("Step")
    fig.suptitle(title if title else "Masked-LM pretraining")
    return _save(fig, path)


def short_run_labels(names: list[str]) -> list[str]:
    """Keep only the ``__``-separated parts of run names that differ between runs.

    Run folders spell out every setting; in a legend only what varies matters
    ("dense", "cls_bn") and full names squeeze the panels.
    """
    parts = [n.split("__") for n in names]
    if len(names) < 2 or len({len(p) for p in parts}) != 1:
        return list(names)
    varying = [i for i in range(len(parts[0])) if len({p[i] for p in parts}) > 1]
    labels = ["  ".join(p[i] for i in varying) for p in parts]
    return labels if varying and len(set(labels)) == len(labels) else list(names)


def plot_sweep(histories: Mapping[str, Any], path: str | os.PathLike, title: str | None = None) -> Path:
    """Compare several runs' curves in one PNG of ``SWEEP_IMAGE_SIZE`` px.

    Top panel: each run's ``val_loss``; bottom panel: each run's ``val_accuracy``
    (or the task's figure: ``SCORES``).
    A run without validation values falls back to its training curve, marked
    ``(train)`` in the legend. The legend (run names) sits right of the panels.
    ``histories`` maps run name -> history (DataFrame, dict or history.csv path).
    Returns the written path.
    """
    runs = _coerce_runs(histories)

    fig = _new_figure(SWEEP_FIGSIZE)
    fig.set_layout_engine("constrained")
    ax_loss, ax_acc = fig.subplots(2, 1, sharex=True)
    score, label = _score_of(*runs.values())
    all_epochs, handles, labels, used_train = _draw_sweep_runs(ax_loss, ax_acc, runs, score)

    any_train = any(used_train.values())
    ax_loss.set_title("validation loss" + (" (train loss where no validation)" if used_train["loss"] else ""))
    ax_acc.set_title(f"validation {label}" + (f" (train {label} where no validation)" if used_train[score] else ""))
    _style_axes(ax_loss, "Loss", all_epochs, bool(ax_loss.lines))
    _style_axes(ax_acc, label, all_epochs, bool(ax_acc.lines))
    ax_acc.set_xlabel("Epoch")
    if handles:
        fig.legend(handles, labels, loc="outside right upper", title="run",
                   fontsize="small" if len(handles) > 12 else "medium")
    fig.suptitle(title if title else ("Sweep comparison" + (" (some runs without validation)" if any_train else "")))
    return _save(fig, path)


def _coerce_runs(histories: Mapping[str, Any]) -> dict[str, "pd.DataFrame"]:
    """Run label -> history DataFrame, labels shortened by :func:`short_run_labels`."""
    if not isinstance(histories, Mapping):
        raise DataError(
            f"histories must be a dict of run name -> history DataFrame, got {type(histories).__name__}"
        )
    if not histories:
        raise DataError("histories is empty; pass at least one run's history to plot_sweep")
    runs = {str(name): _coerce_history(h, f"history of run {name!r}") for name, h in histories.items()}
    return dict(zip(short_run_labels(list(runs)), runs.values()))


def _run_style(i: int, colors) -> dict[str, Any]:
    """Line style of the i-th run: colour, then line style once colours run out, and a marker."""
    return dict(
        color=colors[i % len(colors)],
        linestyle=_LINESTYLES[(i // len(colors)) % len(_LINESTYLES)],
        marker=_MARKERS[i % len(_MARKERS)],
        markersize=5,
    )


def _draw_sweep_runs(ax_loss, ax_acc, runs: dict[str, "pd.DataFrame"], score: str = "accuracy"):
    """Plot every run's curves; returns (all epochs, legend handles, legend labels, used_train)."""
    import matplotlib as mpl

    colors = mpl.colormaps["tab10"].colors if len(runs) <= 10 else mpl.colormaps["tab20"].colors
    all_epochs: list[float] = []
    handles, labels = [], []
    used_train = {"loss": False, score: False}
    for i, (name, hist) in enumerate(runs.items()):
        epochs = _epochs(hist)
        all_epochs.extend(epochs.tolist())
        style = _run_style(i, colors)
        run_handle = None
        suffixes = []
        for ax, metric in ((ax_loss, "loss"), (ax_acc, score)):
            values = _column(hist, f"val_{metric}")
            if values is None:
                values = _column(hist, metric)
                if values is None:
                    continue
                used_train[metric] = True
                suffixes.append(f"train {metric}")
            (line,) = _plot_series(ax, epochs, values, **style)
            run_handle = run_handle or line
        if run_handle is not None:
            handles.append(run_handle)
            labels.append(name + (f" ({', '.join(suffixes)})" if suffixes else ""))
    return all_epochs, handles, labels, used_train


def plot_confusion_matrix(
    matrix: Sequence[Sequence[float]] | Any,
    class_names: Sequence[str],
    path: str | os.PathLike,
    normalize: bool = False,
) -> Path:
    """Draw a confusion matrix as a heat map (rows: true class, columns: predicted).

    Cells show the count; with ``normalize=True`` colours and the main number are
    the fraction of the true class (row), with the count in brackets. Size: see
    :func:`confusion_figsize`. Returns the written path.
    """
    counts, names = _check_confusion(matrix, class_names)
    n = len(names)
    shown, vmax = _confusion_colours(counts, normalize)

    fig = _new_figure(confusion_figsize(n))
    fig.set_layout_engine("constrained")
    ax = fig.subplots()
    image = ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04,
                 label="fraction of true class" if normalize else "examples")
    _label_confusion_axes(ax, names, normalize)
    if n <= _MAX_ANNOTATED_CLASSES:
        _annotate_confusion(ax, counts, shown, vmax, normalize)
    return _save(fig, path)


def _check_confusion(matrix: Any, class_names: Sequence[str]):
    """``(counts, names)``: the matrix as a float array and the class names as strings."""
    import numpy as np

    try:
        counts = np.asarray(matrix, dtype=float)
    except (TypeError, ValueError):
        raise DataError("confusion matrix must be a square table of numbers (a nested list or array)") from None
    names = [str(c) for c in class_names]
    n = len(names)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise DataError(f"confusion matrix must be square, got shape {counts.shape}; pass an n x n matrix")
    if counts.shape[0] != n:
        raise DataError(
            f"confusion matrix is {counts.shape[0]}x{counts.shape[1]} but {n} class names were given; "
            "pass one name per row"
        )
    if n == 0:
        raise DataError("confusion matrix is empty; pass at least one class")
    return counts, names


def _confusion_colours(counts, normalize: bool):
    """``(shown, vmax)``: the values the colours show and the top of the colour scale."""
    import numpy as np

    if normalize:
        row_sums = counts.sum(axis=1, keepdims=True)
        shown = np.divide(counts, row_sums, out=np.zeros_like(counts), where=row_sums > 0)
        vmax = 1.0
    else:
        shown = counts
        vmax = max(float(counts.max()), 1.0)
    return shown, vmax


def _label_confusion_axes(ax, names: list[str], normalize: bool) -> None:
    n = len(names)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    long_names = max((len(s) for s in names), default=0) > 6 or n > 8
    ax.set_xticklabels(names, rotation=45 if long_names else 0, ha="right" if long_names else "center",
                       rotation_mode="anchor")
    ax.set_yticklabels(names)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    ax.set_title("Confusion matrix" + (" (normalized by true class)" if normalize else ""))


def _annotate_confusion(ax, counts, shown, vmax: float, normalize: bool) -> None:
    """Write each cell's value, white on dark cells."""
    n = counts.shape[0]
    fontsize = 12 if n <= 6 else (9 if n <= 15 else 7)
    for i in range(n):
        for j in range(n):
            count = counts[i, j]
            count_txt = str(int(count)) if float(count).is_integer() else f"{count:.2f}"
            text = f"{shown[i, j]:.2f}\n({count_txt})" if normalize else count_txt
            dark = shown[i, j] > 0.5 * vmax
            ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                    color="white" if dark else "black")


# --------------------------------------------------------------------------- folders


def _run_title(run: RunFolder) -> str:
    """``"<model> / <head>"`` from the run's config.json, else the folder name."""
    config = run.read_config()
    if config is None:
        return run.name
    parts = [str(config[k]) for k in ("model", "head") if config.get(k) not in (None, "")]
    title = " / ".join(parts) if parts else run.name
    lr = config.get("learning_rate")
    if isinstance(lr, (int, float)) and not isinstance(lr, bool) and math.isfinite(lr):
        title += f"  (lr {lr:g})"
    return title


def plot_folder(folder: str | os.PathLike) -> list[Path]:
    """Redraw figures from a saved run or sweep folder; returns the written paths.

    * run folder (holds ``history.csv``): writes ``curves.png`` there, titled
      ``"<model> / <head>"`` from its ``config.json``.
    * sweep folder (its sub-folders hold ``history.csv``): writes each run's
      ``curves.png`` and ``sweep_curves.png`` comparing all runs (named by
      sub-folder). Runs whose history is empty (e.g. crashed before epoch 1)
      are skipped; it is an error only if no run has anything to plot.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"folder {folder} does not exist; pass a run folder or a sweep folder")
    run = RunFolder(folder)
    if run.has_history():
        return [plot_history(load_history(folder), run.curves, title=_run_title(run))]
    sweep = SweepFolder(folder)
    runs = sweep.runs_with_history()
    if not runs:
        name = RunFolder.HISTORY_CSV
        raise DataError(
            f"{folder} has no {name} and no sub-folder with one; expected a run folder "
            f"(with {name}) or a sweep folder (run sub-folders each with {name})"
        )
    written: list[Path] = []
    histories: dict[str, Any] = {}
    problems: list[str] = []
    for run in runs:
        try:
            hist = _coerce_history(load_history(run.path), f"history of run {run.name!r}")
        except DataError as exc:
            problems.append(str(exc))
            continue
        written.append(plot_history(hist, run.curves, title=_run_title(run)))
        histories[run.name] = hist
    if not histories:
        raise DataError(f"no run in sweep folder {folder} has epochs to plot; first problem: {problems[0]}")
    written.append(plot_sweep(histories, sweep.curves, title=f"Sweep: {folder.resolve().name}"))
    return written
