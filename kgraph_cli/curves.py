"""Training curves: loss and each metric per epoch, training and validation."""

from __future__ import annotations

from pathlib import Path


def plot_history(history: dict[str, list[float]], path: Path, title: str = "") -> None:
    """Write a PNG with one panel per quantity (loss, accuracy...), val_ dashed."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    names = [k for k in history if not k.startswith("val_") and k != "learning_rate"]
    names += [k[4:] for k in history if k.startswith("val_") and k[4:] not in history]
    panels = max(len(names), 1)
    columns = min(panels, 3)
    rows = (panels + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 3.2 * rows), squeeze=False)
    for axis, name in zip(axes.flat, names, strict=False):
        for key, style, label in ((name, "-o", "train"), (f"val_{name}", "--s", "validation")):
            values = history.get(key)
            if values:
                axis.plot(range(1, len(values) + 1), values, style, label=label, markersize=3)
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
        axis.legend()
    for axis in list(axes.flat)[len(names) :]:
        axis.set_visible(False)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
