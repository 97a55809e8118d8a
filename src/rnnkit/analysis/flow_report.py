"""Gradient flows for people: a plain-text table of the norms against distance, and a log-scale plot."""
from __future__ import annotations

import numpy as np

from .gradients import GradientFlow

TABLE_DISTANCES = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500)


def flow_table(flows: list[GradientFlow], distances=TABLE_DISTANCES, what: str = "dL_dh",
               layers: bool = False) -> str:
    """A plain-text table: one row per distance; one column per flow (its top layer's ``h``, every layer's with
    ``layers``), or per flow's ``‖∂y_T/∂x_t‖_F`` with ``what="dy_dx"``."""
    steps = min(f.steps for f in flows)
    columns = []
    for i, f in enumerate(flows):
        label = f.label or f"#{i}"
        if what == "dy_dx":
            if f.dy_dx is not None:
                columns.append((label, f.dy_dx))
        elif layers:
            columns += [(f"{label} {name}", values) for name, values in f.dL_dh.items()]
        else:
            columns.append((label, f.dL_dh[f.top]))
    title = "|dL_T/dh_t|" if what == "dL_dh" else "|dy_T/dx_t|_F"
    width = max(12, *(len(c) + 2 for c, _ in columns))
    lines = [f"{title} against the distance T-1-t",
             "distance".rjust(9) + "".join(c.rjust(width) for c, _ in columns)]
    for d in (d for d in distances if d < steps):
        lines.append(str(d).rjust(9) + "".join(f"{float(v[len(v) - 1 - d]):.3e}".rjust(width) for _, v in columns))
    return "\n".join(lines)


def _positive(values: np.ndarray) -> np.ndarray:
    """Zeros (no path to the output, or underflow) left out of a log plot rather than drawn at 1e-300."""
    return np.where(values > 0, values, np.nan)


def plot_flows(flows: list[GradientFlow], path, title: str = "") -> None:
    """Norm against distance on a log scale: ``∂L_T/∂h_t`` of every layer of every flow, and ``∂y_T/∂x_t``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..training.plots import save_figure
    has_jac = any(f.dy_dx is not None for f in flows)
    fig, axes = plt.subplots(1, 2 if has_jac else 1, figsize=(12 if has_jac else 6.5, 4.2), squeeze=False)
    ax = axes[0][0]
    for i, f in enumerate(flows):
        for j, (name, values) in enumerate(f.dL_dh.items()):
            label = f"{f.label} {name}".strip() if len(f.dL_dh) > 1 else (f.label or name)
            ax.semilogy(f.distance, _positive(values), label=label, color=f"C{i}",
                        linestyle=("-", "--", ":", "-.")[j % 4])
    ax.set_xlabel("distance T-1-t (steps back from the last output)")
    ax.set_ylabel("‖∂L_T/∂h_t‖")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    if has_jac:
        ax2 = axes[0][1]
        for i, f in enumerate(flows):
            if f.dy_dx is not None:
                ax2.semilogy(f.distance, _positive(f.dy_dx), label=f.label or f"#{i}", color=f"C{i}")
        ax2.set_xlabel("distance T-1-t")
        ax2.set_ylabel("‖∂y_T/∂x_t‖_F")
        ax2.grid(alpha=0.3, which="both")
        ax2.legend(fontsize=8)
    save_figure(fig, path, title)
