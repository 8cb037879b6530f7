"""Matplotlib without a display: one look for every figure, small PNGs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

DPI = 110
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#7f7f7f"]

plt.rcParams.update(
    {
        "font.size": 9,
        "axes.titlesize": 10,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "legend.fontsize": 8,
        "legend.frameon": False,
    }
)


def figure(columns: int = 1, width: float = 4.2, height: float = 3.2, **kwargs: Any) -> tuple[Figure, Any]:
    fig, axes = plt.subplots(1, columns, figsize=(width * columns, height), squeeze=False, **kwargs)
    return fig, axes[0]


def save(fig: Figure, figures_dir: Path, name: str, right: float | None = None) -> str:
    """Write ``name`` into ``figures_dir`` and return the path a document beside that folder links.

    ``right``: the share of the width the axes keep, leaving the rest to a figure legend.
    """
    figures_dir.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    if right is not None:
        fig.subplots_adjust(right=right)
    fig.savefig(figures_dir / name, dpi=DPI)
    plt.close(fig)
    return f"{figures_dir.name}/{name}"


def plain_log(ax: Any, axis: str = "y") -> None:
    """A log axis labelled 1, 2, 5, 10, 20 rather than 10^0, 2x10^0."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(NullFormatter())


def style_handles(styles: Sequence[tuple[str, str]]) -> list[Line2D]:
    """Legend entries for line styles alone (the colours are the models, named elsewhere)."""
    return [Line2D([], [], color="grey", linestyle=style, label=label) for style, label in styles]


def style_legend(ax: Any, styles: Sequence[tuple[str, str]], **kwargs: Any) -> None:
    ax.legend(handles=style_handles(styles), **kwargs)


def errorbars(mid: Sequence[float], low: Sequence[float], high: Sequence[float]) -> list[list[float]]:
    """Matplotlib's yerr from medians and min-max spreads."""
    return [[m - lo for m, lo in zip(mid, low)], [hi - m for m, hi in zip(mid, high)]]
