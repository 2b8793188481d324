"""Exact n-step empowerment of small discrete worlds: the ground truth for the learned `empowerment` bonus.

Empowerment of a state is the channel capacity from the next n (open-loop) actions to the state reached:
`E_n(s) = max_omega I(A^n; S_{t+n} | S_t = s)` (Klyubin et al. 2005; spec shared/specs/empowerment.md §1-2).
For a world given by its one-step kernel `P1[a, s, s']` the n-step channel of a start state has one row per
action sequence (`|A|^n` rows), and Blahut-Arimoto computes its capacity with certified lower and upper
bounds. Everything is in bits and float64; numpy only.

    world = make_gridworld(room(5), slip=0.2)          # 5x5 room, 5 actions (stay, N, S, W, E)
    values = exact_empowerment(world.kernel, n=2)      # (S,) bits, one per free cell
    world.to_grid(values)                              # (5, 5), NaN on walls

Layouts are tuples of strings: `.` a free cell, `#` a wall, `T` a noisy-TV cell (its successor is one of the
four moves' results drawn uniformly, whatever the action).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: (row, column) displacement of each action; STAY_ACTIONS has the `stay` action first, MOVE_ACTIONS does not
STAY_ACTIONS: tuple[tuple[int, int], ...] = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))  # stay, N, S, W, E
MOVE_ACTIONS: tuple[tuple[int, int], ...] = STAY_ACTIONS[1:]
FREE, WALL, TV = ".", "#", "T"


@dataclass(frozen=True)
class BlahutArimotoResult:
    """Capacity of a channel in bits, bracketed by `lower <= capacity <= upper`.

    `lower` is the mutual information of `input_distribution` (the capacity estimate to report); `lowers` and
    `uppers` hold both bounds at every iteration (they bracket the capacity at each one).
    """

    lower: float
    upper: float
    input_distribution: np.ndarray
    iterations: int
    converged: bool
    lowers: np.ndarray
    uppers: np.ndarray

    @property
    def capacity(self) -> float:
        return self.lower


def _kl_rows(channel: np.ndarray, output: np.ndarray) -> np.ndarray:
    """`D[i] = sum_j P[i, j] log2(P[i, j] / q[j])`; zero entries of P contribute 0 (masked, no epsilon)."""
    positive = channel > 0
    ratio = np.divide(channel, output[None, :], out=np.ones_like(channel), where=positive)
    return np.where(positive, channel * np.log2(ratio), 0.0).sum(axis=1)


def blahut_arimoto(channel: np.ndarray, tol: float = 1e-10, max_iter: int = 10_000) -> BlahutArimotoResult:
    """Capacity (bits) of a row-stochastic channel `P[m, k]` by Blahut-Arimoto, as spec §2.2.

    Starts from the uniform input, stops when `upper - lower < tol` or after `max_iter` iterations
    (`converged` says which).
    """
    channel = np.asarray(channel, dtype=np.float64)
    if channel.ndim != 2 or not np.allclose(channel.sum(axis=1), 1.0) or (channel < 0).any():
        raise ValueError(f"blahut_arimoto: expected a row-stochastic matrix [m, k], got shape {channel.shape}")
    p = np.full(channel.shape[0], 1.0 / channel.shape[0])
    lowers, uppers = [], []
    for iteration in range(1, max_iter + 1):
        divergence = _kl_rows(channel, p @ channel)
        lowers.append(float(p @ divergence))
        uppers.append(float(divergence.max()))
        if uppers[-1] - lowers[-1] < tol:
            break
        # Multiplicative update with the max subtracted first: 2**D cannot overflow, the ratio is unchanged.
        p = p * np.exp2(divergence - divergence.max())
        p /= p.sum()
    converged = uppers[-1] - lowers[-1] < tol
    return BlahutArimotoResult(lowers[-1], uppers[-1], p, iteration, converged, np.array(lowers), np.array(uppers))


def n_step_channel(kernel: np.ndarray, state: int, n: int) -> np.ndarray:
    """`P_n[a^n, :] = e_s^T P1[a_1] ... P1[a_n]`, shape `[|A|^n, |S|]`.

    Row index of the sequence `(a_1, ..., a_n)`: `sum_k a_k |A|^(n-k)` (the first action most significant,
    the order the learned bonus uses for its sequence index).
    """
    if n < 1:
        raise ValueError(f"n_step_channel: n must be >= 1, got {n}")
    rows = kernel[:, state, :]
    for _ in range(n - 1):
        rows = np.einsum("ms,ast->mat", rows, kernel).reshape(-1, kernel.shape[2])
    return rows


def exact_empowerment(
    kernel: np.ndarray, n: int, tol: float = 1e-10, max_iter: int = 10_000, states: np.ndarray | None = None
) -> np.ndarray:
    """Exact n-step empowerment (bits) of every state of the one-step kernel `P1[a, s, s']`, shape `(S,)`.

    `states` restricts the computation to some states (the result keeps shape `(S,)`, NaN elsewhere).
    Identical rows of a channel are merged first: duplicate inputs leave the capacity unchanged (spec §2.1)
    and make BA much faster. Raises `RuntimeError` if BA does not reach `tol` within `max_iter`.
    """
    kernel = _check_kernel(kernel)
    values = np.full(kernel.shape[1], np.nan)
    for s in range(kernel.shape[1]) if states is None else np.asarray(states).reshape(-1):
        channel = np.unique(n_step_channel(kernel, int(s), n).round(12), axis=0)
        result = blahut_arimoto(channel / channel.sum(axis=1, keepdims=True), tol, max_iter)
        if not result.converged:
            raise RuntimeError(
                f"exact_empowerment: Blahut-Arimoto did not reach tol {tol} in {max_iter} iterations at state {s} "
                f"(gap {result.upper - result.lower:.3g}); raise max_iter"
            )
        values[s] = result.lower
    return values


def _check_kernel(kernel: np.ndarray) -> np.ndarray:
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 3 or kernel.shape[1] != kernel.shape[2]:
        raise ValueError(f"expected a kernel P1[a, s, s'] of shape (A, S, S), got {kernel.shape}")
    if not np.allclose(kernel.sum(axis=2), 1.0) or (kernel < 0).any():
        raise ValueError("expected a kernel whose rows P1[a, s, :] are probability distributions")
    return kernel


# ---------------------------------------------------------------------------------------------------- grids
@dataclass(frozen=True)
class GridWorld:
    """A gridworld: its layout, its free cells (row-major; a state is an index into `cells`) and `P1[a, s, s']`."""

    layout: tuple[str, ...]
    cells: tuple[tuple[int, int], ...]
    kernel: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.layout), len(self.layout[0])

    @property
    def n_states(self) -> int:
        return len(self.cells)

    @property
    def n_actions(self) -> int:
        return int(self.kernel.shape[0])

    def index(self, row: int, col: int) -> int:
        """State index of the free cell `(row, col)`."""
        return self.cells.index((row, col))

    def to_grid(self, values: np.ndarray) -> np.ndarray:
        """Per-state values `(S,)` laid out on the grid `(H, W)`, NaN on walls."""
        grid = np.full(self.shape, np.nan)
        rows, cols = zip(*self.cells)
        grid[list(rows), list(cols)] = values
        return grid


def room(height: int = 5, width: int | None = None) -> tuple[str, ...]:
    """An open `height x width` room with no interior walls (the spec's 5x5 room by default)."""
    return tuple(FREE * (width or height) for _ in range(height))


def with_cells(layout: tuple[str, ...], cells: dict[tuple[int, int], str]) -> tuple[str, ...]:
    """`layout` with some cells replaced, e.g. `with_cells(room(5), {(0, 1): WALL, (1, 0): WALL})` traps (0, 0)."""
    rows = [list(row) for row in layout]
    for (r, c), kind in cells.items():
        rows[r][c] = kind
    return tuple("".join(row) for row in rows)


def trapped_room(size: int = 5) -> tuple[str, ...]:
    """The room with the top-left cell's two neighbours walled: nothing an agent does there changes anything."""
    return with_cells(room(size), {(0, 1): WALL, (1, 0): WALL})


def noisy_tv_room(size: int = 5, tv: tuple[int, int] = (1, 3)) -> tuple[str, ...]:
    """The room with a noisy-TV cell at `tv` (interior by default, so its successor is uniform over 4 cells)."""
    return with_cells(room(size), {tv: TV})


def make_gridworld(layout: tuple[str, ...] | list[str], slip: float = 0.0, actions: int = 5) -> GridWorld:
    """The one-step kernel of a layout (spec §2.1).

    Args:
        layout: rows of `.` (free), `#` (wall), `T` (noisy TV); outside the grid counts as wall.
        slip: with probability `slip` the executed action is drawn uniformly from all actions (possibly the
            intended one).
        actions: 5 (stay, N, S, W, E) or 4 (N, S, W, E). Moving into a wall leaves the position unchanged.
    """
    layout = tuple(layout)
    if not layout or len({len(row) for row in layout}) != 1 or set("".join(layout)) - {FREE, WALL, TV}:
        raise ValueError(f"make_gridworld: expected equal-length rows of '.', '#', 'T', got {layout!r}")
    if not 0.0 <= slip <= 1.0:
        raise ValueError(f"make_gridworld: slip must be in [0, 1], got {slip}")
    if actions not in (4, 5):
        raise ValueError(f"make_gridworld: actions must be 4 or 5, got {actions}")
    moves = STAY_ACTIONS if actions == 5 else MOVE_ACTIONS
    cells = tuple((r, c) for r, row in enumerate(layout) for c, kind in enumerate(row) if kind != WALL)
    index = {cell: i for i, cell in enumerate(cells)}
    move_targets = np.array([[index[_step(layout, cell, move)] for move in MOVE_ACTIONS] for cell in cells])
    kernel = np.zeros((len(moves), len(cells), len(cells)))
    for s, cell in enumerate(cells):
        for a, move in enumerate(moves):
            if layout[cell[0]][cell[1]] == TV:
                # Uncontrollable: one of the four moves' results, uniformly, whatever the action.
                np.add.at(kernel[a, s], move_targets[s], 1.0 / len(MOVE_ACTIONS))
            else:
                kernel[a, s, index[_step(layout, cell, move)]] = 1.0
    kernel = (1.0 - slip) * kernel + slip * kernel.mean(axis=0, keepdims=True)
    return GridWorld(layout, cells, kernel)


def _step(layout: tuple[str, ...], cell: tuple[int, int], move: tuple[int, int]) -> tuple[int, int]:
    r, c = cell[0] + move[0], cell[1] + move[1]
    inside = 0 <= r < len(layout) and 0 <= c < len(layout[0])
    return (r, c) if inside and layout[r][c] != WALL else cell


def grid_empowerment(
    layout: tuple[str, ...] | list[str], n: int, slip: float = 0.0, actions: int = 5, tol: float = 1e-10
) -> np.ndarray:
    """Exact n-step empowerment (bits) of every cell of a layout, `(H, W)` with NaN on walls (spec §2.3)."""
    world = make_gridworld(layout, slip, actions)
    return world.to_grid(exact_empowerment(world.kernel, n, tol))


def sample_successors(
    kernel: np.ndarray, states: np.ndarray, sequences: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Execute action sequences open-loop from cloned start states: the branching simulator of spec §3.3.

    Args:
        kernel: `P1[a, s, s']`.
        states: `(B,)` start states.
        sequences: `(B, n)` actions.
    Returns:
        `(B, n + 1)` visited states, the start state first.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    path = [np.asarray(states, dtype=np.int64).reshape(-1)]
    cumulative = kernel.cumsum(axis=2)
    for step in np.asarray(sequences, dtype=np.int64).reshape(len(path[0]), -1).T:
        rows = cumulative[step, path[-1]]  # (B, S) cumulative successor distributions
        u = rng.random((len(rows), 1))
        path.append(np.minimum((rows < u).sum(axis=1), kernel.shape[2] - 1))
    return np.stack(path, axis=1)
