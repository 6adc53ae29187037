"""plot_history: the loss and metric curves of a fit, per epoch, as a PNG (matplotlib is
an optional dependency: pip install matplotlib)."""
import math
import os

import numpy as np


def plot_history(history, path, metrics=None):
    """Writes a PNG at `path`: one panel per quantity ('loss', each metric), the training
    curve and, where fit had validation data, its val_ curve, against the epoch (1-based).

    history: the History fit returned (or its .history dict). metrics: the names to draw
    (default: every one without the val_ prefix). Returns the path."""
    try:
        import matplotlib
        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plot_history needs matplotlib (pip install matplotlib)") from None
    if not isinstance(path, (str, os.PathLike)) and not hasattr(path, "write"):
        raise TypeError(f"path: expected a file name or a writable file, got "
                        f"{type(path).__name__}")
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict) or not logs:
        raise ValueError(f"history: expected a History or a non-empty dict of per-epoch "
                         f"values, got {type(history).__name__}")
    names = metrics if metrics is not None else [k for k in logs if not k.startswith("val_")]
    if isinstance(names, str) or not isinstance(names, (list, tuple)) or not names or not all(
            isinstance(n, str) for n in names):
        raise TypeError(f"metrics: expected a non-empty list of names, got {metrics!r}"[:300])
    unknown = [n for n in names if n not in logs]
    if unknown:
        raise ValueError(f"metrics: not in the history: {unknown}; it has {sorted(logs)}")
    for name in names:
        values = logs[name]
        if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple, np.ndarray)):
            raise TypeError(f"history: {name!r} holds {type(values).__name__}, not a list of "
                            f"per-epoch values")
    epochs = getattr(history, "epoch", None) or list(range(len(logs[names[0]])))
    cols = min(len(names), 3)
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.2 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        ax.plot([e + 1 for e in epochs], logs[name], marker="o", label=name)
        if "val_" + name in logs:
            ax.plot([e + 1 for e in epochs], logs["val_" + name], marker="o",
                    label="val_" + name)
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(True, alpha=0.3)
        ax.legend()
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
