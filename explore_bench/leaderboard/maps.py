"""Pictures of TopoNav maps (explore_bench.bonuses.topomap): landmark nodes and edges over a MiniGrid layout.

Nodes of a map over agent cells sit at their (x, y); the layout is drawn one square per cell (walls grey, doors and
objects in their colour, lava orange, goal green). Node area grows with visits, frontier nodes are red, salient
nodes (extrinsic reward) are stars; edge width grows with traversals, edges with recorded failures are dashed.
Uses matplotlib's Agg canvas directly (``matplotlib.figure.Figure``), as ``plots.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from explore_bench.bonuses.topomap import TopoMap

from .plots import _save_atomic

__all__ = ["draw_topomap", "layout_image", "save_topomap"]

_KIND_COLOURS = {"wall": "#5a5a5a", "lava": "#ff7f0e", "goal": "#2ca02c", "floor": "#f4f4f4"}
_FLOOR = "#f4f4f4"
_OUTSIDE = "#262626"


def layout_image(grid: Any, start: tuple[int, int] | None = None) -> np.ndarray:
    """`(height, width, 3)` RGB floats of a MiniGrid `Grid` (anything with `width`, `height`, `get(x, y)`).

    With the agent's `start` cell, empty cells that no path without walls joins to it (the space around MultiRoom's
    rooms) are drawn dark, as outside."""
    inside = None if start is None else _reachable(grid, start)
    image = np.empty((grid.height, grid.width, 3))
    for x in range(grid.width):
        for y in range(grid.height):
            obj = grid.get(x, y)
            if obj is None:
                colour = to_rgb(_FLOOR if inside is None or inside[y, x] else _OUTSIDE)
            elif obj.type in _KIND_COLOURS:
                colour = to_rgb(_KIND_COLOURS[obj.type])
            else:  # doors, keys, balls, boxes in their own colour; an open door paler
                colour = to_rgb(obj.color)
                if getattr(obj, "is_open", False):
                    colour = tuple(0.6 + 0.4 * c for c in colour)
            image[y, x] = colour
    return image


def _reachable(grid: Any, start: tuple[int, int]) -> np.ndarray:
    """`(height, width)` bool: cells joined to `start` by 4-neighbour steps through anything but walls."""
    seen = np.zeros((grid.height, grid.width), bool)
    stack = [(int(start[0]), int(start[1]))]
    while stack:
        x, y = stack.pop()
        if not (0 <= x < grid.width and 0 <= y < grid.height) or seen[y, x]:
            continue
        obj = grid.get(x, y)
        if obj is not None and obj.type == "wall":
            continue
        seen[y, x] = True
        stack.extend(((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)))
    return seen


def draw_topomap(topomap: TopoMap, grid: Any, title: str | None = None, start: tuple[int, int] | None = None) -> Figure:
    """A figure of `topomap` (a map over (x, y) cells, no context dims) drawn over the layout `grid` (`layout_image`:
    `start` darkens the cells outside the agent's reach)."""
    if topomap.config.n_context or topomap.dim < 2:
        raise ValueError(f"draw_topomap: expected a map over (x, y) cells, got dim {topomap.dim} with "
                         f"{topomap.config.n_context} context entries")
    n = topomap.n_nodes
    xy = topomap.nodes[:n, :2]
    fig = Figure(figsize=(max(3.0, 0.28 * grid.width + 1), max(3.0, 0.28 * grid.height + 0.8)), layout="constrained")
    ax = fig.add_subplot()
    extent = (-0.5, grid.width - 0.5, grid.height - 0.5, -0.5)  # cell (x, y) centred on (x, y), row 0 on top
    ax.imshow(layout_image(grid, start), extent=extent, interpolation="nearest")
    if topomap.edges:
        keys = np.array(list(topomap.edges.keys()))
        edge_stats = np.array(list(topomap.edges.values()))  # count, mean steps, failures
        failed = edge_stats[:, 2] > 0
        widths = 0.6 + 0.5 * np.log1p(edge_stats[:, 0])
        for mask, style, colour in ((~failed, "solid", "#1f3b73"), (failed, "dashed", "#d62728")):
            if mask.any():
                segments = np.stack([xy[keys[mask, 0]], xy[keys[mask, 1]]], axis=1)
                ax.add_collection(LineCollection(segments, linewidths=widths[mask], linestyles=style, colors=colour,
                                                 alpha=0.7))
    if n:
        frontier = topomap.frontier()
        salient = topomap.salient[:n]
        sizes = 25 + 20 * np.log1p(topomap.visits[:n])
        for mask, colour, label in ((~frontier, "#1f77b4", "node"), (frontier, "#d62728", "frontier")):
            mask = mask & ~salient
            if mask.any():
                ax.scatter(xy[mask, 0], xy[mask, 1], s=sizes[mask], c=colour, edgecolors="white",
                           linewidths=0.6, zorder=3, label=label)
        if salient.any():
            ax.scatter(xy[salient, 0], xy[salient, 1], s=sizes[salient] * 1.5, c="#ffbf00", marker="*",
                       edgecolors="black", linewidths=0.5, zorder=4, label="salient")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)
    stats = topomap.stats()
    heading = f"{n} nodes, {int(stats['n_edges'])} edges, {int(stats['n_frontier'])} frontier"
    ax.set_title(heading if title is None else f"{title}\n{heading}", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


def save_topomap(topomap: TopoMap, grid: Any, path: str | Path, title: str | None = None,
                 start: tuple[int, int] | None = None) -> Path:
    """Draw `topomap` over `grid` (`draw_topomap`) and write it to `path` (PNG, or the format its suffix names)."""
    return _save_atomic(draw_topomap(topomap, grid, title, start), Path(path))
