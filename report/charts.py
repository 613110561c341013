"""Charts of the overview page (matplotlib, Agg backend), written as PNG files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def heatmap(
    values: np.ndarray,
    rows: Sequence[str],
    cols: Sequence[str],
    path: Path,
    title: str,
    fmt: str = "{:.3f}",
    cmap: str = "RdYlGn",
    vmin: float | None = None,
    vmax: float | None = None,
    mark_best: bool = True,
    best_per: str = "column",
    labels_top: bool = False,
) -> None:
    """Rows × columns coloured by value with each value written in its cell; the best row
    of each column is framed (``best_per="row"``: the best column of each row); column labels
    below, or above with ``labels_top`` (tall charts)."""
    plt = _plt()
    n_r, n_c = values.shape
    fig_w = min(max(1.8 + 0.44 * n_c + 0.08 * max(map(len, rows)), 6), 22)
    fig, ax = plt.subplots(figsize=(fig_w, 1.6 + 0.42 * n_r), dpi=100)
    lo = np.nanmin(values) if vmin is None else vmin
    hi = np.nanmax(values) if vmax is None else vmax
    im = ax.imshow(values, cmap=cmap, vmin=lo, vmax=hi if hi > lo else lo + 1e-9, aspect="auto")
    if labels_top:
        ax.xaxis.tick_top()
        ax.set_xticks(range(n_c), cols, rotation=30, ha="left", rotation_mode="anchor", fontsize=8)
    else:
        ax.set_xticks(range(n_c), cols, rotation=60, ha="right", rotation_mode="anchor", fontsize=8)
    ax.set_yticks(range(n_r), rows, fontsize=9)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    norm = im.norm
    cm = im.cmap
    for r in range(n_r):
        for c in range(n_c):
            v = values[r, c]
            rgba = cm(norm(v))
            dark = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2] < 0.5
            ax.text(
                c,
                r,
                fmt.format(v).lstrip("0") if fmt.startswith("{:.") else fmt.format(v),
                ha="center",
                va="center",
                fontsize=8.5 if n_c <= 40 else 6,
                color="white" if dark else "black",
            )
    if mark_best and best_per == "row" and n_c > 1:
        for r in range(n_r):
            c = int(np.nanargmax(values[r]))
            ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, lw=1.4, ec="black"))
    elif mark_best and n_r > 1:
        for c in range(n_c):
            r = int(np.nanargmax(values[:, c]))
            ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, lw=1.4, ec="black"))
    ax.set_title(title, fontsize=10, loc="left")
    fig.colorbar(im, ax=ax, fraction=0.02, pad=0.01)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def spread(per_image: np.ndarray, classes: Sequence[str], path: Path, title: str) -> None:
    """Per class a box of the per-image Dice (images × classes), with every image as a dot;
    the classes with the lowest median are drawn in red."""
    plt = _plt()
    n_img, n_c = per_image.shape
    fig, ax = plt.subplots(figsize=(min(max(1.5 + 0.44 * n_c, 6), 22), 4.2), dpi=100)
    med = np.median(per_image, 0)
    weak = set(np.argsort(med)[: max(1, n_c // 6)].tolist())
    ax.boxplot(
        per_image,
        positions=range(n_c),
        widths=0.6,
        showfliers=False,
        medianprops={"color": "black"},
        boxprops={"color": "#555"},
        whiskerprops={"color": "#555"},
    )
    rng = np.random.default_rng(0)
    show = per_image if n_img <= 400 else per_image[rng.choice(n_img, 400, replace=False)]
    for c in range(n_c):
        x = c + rng.uniform(-0.22, 0.22, len(show))
        ax.scatter(x, show[:, c], s=4, alpha=0.45, color="#d62728" if c in weak else "#1f77b4", lw=0)
    ax.set_xticks(range(n_c), classes, rotation=60, ha="right", rotation_mode="anchor", fontsize=8)
    for k, lab in enumerate(ax.get_xticklabels()):
        if k in weak:
            lab.set_color("#d62728")
    lo = float(per_image.min()) if per_image.size else 0.0
    ax.set_ylim(max(min(lo - 0.01, 0.9), 0), 1.005)
    ax.set_ylabel("Dice per image")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(title, fontsize=10, loc="left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
