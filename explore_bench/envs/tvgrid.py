"""Noisy-TV worlds: the ``TVGrid`` gridworld and a noisy-TV wrapper for MiniGrid. Spec: byol_hindsight.md §4.

``TVGridEnv`` (pure numpy, no MiniGrid) is the model-level test bed of the noise-robustness protocol:

- a 7x7 grid with border walls (5x5 free interior); cells are ``(x, y)`` = (column, row), row 0 at the top;
- actions ``Discrete(5)``: 0 stay/press, 1 N (y - 1), 2 S (y + 1), 3 W (x - 1), 4 E (x + 1); a move into a wall
  (or across the confinement barrier) leaves the agent where it is;
- the TV is the wall cell at row 0, column 3, showing a symbol in ``{0..k_tv-1}``; the press cell is right
  below it (row 1, column 3); pressing = action 0 on the press cell;
- observation: the full grid one-hot per cell over ``{empty, wall, agent, tv_0 .. tv_{k_tv-1}}``, i.e. a
  ``[7, 7, 3 + k_tv]`` array indexed ``[y, x, channel]``, flattened (C order) to a float32 vector; the big modes
  append a ``[9, k_tv]`` one-hot block (the 3x3 screen), flattened after the grid. ``TVGridEnv.grid_shape`` and
  ``TVGridEnv.decode(obs)`` give the structure back;
- TV modes (the symbol at reset is 0 except where noted):

  ``off``         symbol always 0 (deterministic control);
  ``always``      symbol resampled uniformly every step (and at reset): passive noise;
  ``remote``      symbol resampled only on a press: action-triggered noise, the hard case;
  ``big_always``  the grid TV stays 0; a separate screen of 9 independent symbols is resampled every step
                  (and at reset): ``k_tv ** 9`` patterns, too many to memorise;
  ``big_remote``  as ``big_always`` but the screen (all zeros at reset) is resampled only on a press;

- reward is always 0 and episodes never terminate; they are truncated after ``max_steps`` (100) steps. This is an
  exploration-only world: ``coverage`` and ``tv_fraction`` are its metrics;
- ``info["press"]`` is True on a transition that presses at the press cell, in every mode (also ``off``, so that
  presses can be identified there); ``info["cell"]`` is the agent's ``(x, y)`` after the step (int64 array).

Confinement (the novelty protocol of §4.2): ``confine_x=c`` keeps the agent in columns ``x <= c``; ``min_x=m``
keeps it in columns ``x >= m`` (used for the "novel" set). The barrier is **not drawn** in the observation: a
drawn wall would make every observation of the full grid novel through the wall cells alone, so the novelty
test would measure wall detection instead of novelty of the agent's position.

``record_tvgrid`` records the time-major ``Transitions`` of the protocol with a uniform random policy.

``NoisyTVObsWrapper`` turns one fixed tile of a MiniGrid env into a TV (see its docstring); the catalogue builds
``MiniGrid-DoorKey-8x8-NoisyTV-v0`` with it.
"""

from __future__ import annotations

from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding

from explore_bench.envs.wrappers import ExplorationStats

FAMILY = "tvgrid"

MODES = ("off", "always", "remote", "big_always", "big_remote")
SIZE = 7
TV_CELL = (3, 0)  # (x, y): row 0, column 3
PRESS_CELL = (3, 1)  # (x, y): row 1, column 3
N_SCREEN = 9  # the big modes' 3x3 screen
STAY, NORTH, SOUTH, WEST, EAST = range(5)
PRESS = STAY
#: (dx, dy) of each action
MOVES = ((0, 0), (0, -1), (0, 1), (-1, 0), (1, 0))
EMPTY, WALL, AGENT, TV0 = range(4)  # channels of a grid cell; TV symbol s is channel TV0 + s
#: first column of the "novel" region of the protocol (never reached by training data confined to x <= 3)
NOVEL_MIN_X = 4

Region = Literal["all", "novel"]


class TVGridEnv(gym.Env):
    """The noisy-TV gridworld (see the module docstring).

    Args:
        mode: one of ``MODES``.
        k_tv: number of TV symbols (default 8: 3 bits per press).
        max_steps: episode length (truncation).
        confine_x: keep the agent in columns ``x <= confine_x`` (an invisible internal wall), or None.
        seed: seeds the env's RNG (start cells, TV symbols) and the action space; a later
            ``reset(seed=...)`` reseeds as usual in gymnasium.
        min_x: keep the agent in columns ``x >= min_x`` (invisible), or None.
        render_mode: None, ``"ansi"`` (a text picture of the grid) or ``"rgb_array"`` (8x8 pixels per cell; the
            big modes' screen as a 3x3 block below the grid).

    ``reset(options={"start": (x, y)})`` starts the agent on a given free cell; otherwise the start cell is
    uniform over the free cells the agent may occupy.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 10}

    def __init__(
        self,
        mode: str = "off",
        k_tv: int = 8,
        max_steps: int = 100,
        confine_x: int | None = None,
        seed: int | None = None,
        min_x: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"TVGridEnv: unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
        if not (isinstance(k_tv, (int, np.integer)) and 1 <= int(k_tv) <= 255):
            raise ValueError(f"TVGridEnv: k_tv must be an integer in [1, 255], got {k_tv!r}")
        if not (isinstance(max_steps, (int, np.integer)) and int(max_steps) >= 1):
            raise ValueError(f"TVGridEnv: max_steps must be a positive integer, got {max_steps!r}")
        hi = SIZE - 2 if confine_x is None else int(confine_x)
        lo = 1 if min_x is None else int(min_x)
        if not 1 <= hi <= SIZE - 2:
            raise ValueError(f"TVGridEnv: confine_x must be in [1, {SIZE - 2}] (interior columns), got {confine_x!r}")
        if not 1 <= lo <= hi:
            raise ValueError(f"TVGridEnv: min_x must be in [1, confine_x={hi}], got {min_x!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"TVGridEnv: render_mode must be None, 'ansi' or 'rgb_array', got {render_mode!r}")
        self.mode = mode
        self.k_tv = int(k_tv)
        self.max_steps = int(max_steps)
        self.confine_x = None if confine_x is None else hi
        self.min_x = None if min_x is None else lo
        self.render_mode = render_mode
        self.big = mode.startswith("big")
        self._x_range = (lo, hi)

        self.grid_shape = (SIZE, SIZE, 3 + self.k_tv)
        self.screen_shape = (N_SCREEN, self.k_tv) if self.big else (0, self.k_tv)
        self.grid_dim = SIZE * SIZE * (3 + self.k_tv)
        self.obs_dim = self.grid_dim + (N_SCREEN * self.k_tv if self.big else 0)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (self.obs_dim,), np.float32)
        self.action_space = gym.spaces.Discrete(len(MOVES))

        base = np.zeros(self.grid_shape, np.float32)
        base[..., EMPTY] = 1.0
        for y in range(SIZE):
            for x in range(SIZE):
                if self.is_wall(x, y):
                    base[y, x, EMPTY] = 0.0
                    base[y, x, WALL] = 1.0
        base[TV_CELL[1], TV_CELL[0], WALL] = 0.0  # the TV cell is a wall showing a symbol instead
        self._base_grid = base
        #: free cells the agent may occupy, as (x, y)
        self.free_cells: list[tuple[int, int]] = [
            (x, y) for y in range(1, SIZE - 1) for x in range(lo, hi + 1)
        ]

        self.agent_pos = np.array(self.free_cells[0], dtype=np.int64)
        self.tv_symbol = 0
        self.screen = np.zeros(N_SCREEN, dtype=np.int64)
        self.step_count = 0
        if seed is not None:
            self._np_random, self._np_random_seed = seeding.np_random(int(seed))
            self.action_space.seed(int(seed))

    # ------------------------------------------------------------------ geometry
    @staticmethod
    def is_wall(x: int, y: int) -> bool:
        """True for the border walls (the TV cell included)."""
        return x in (0, SIZE - 1) or y in (0, SIZE - 1)

    def can_enter(self, x: int, y: int) -> bool:
        lo, hi = self._x_range
        return not self.is_wall(x, y) and lo <= x <= hi

    # ------------------------------------------------------------------ observation
    def observation(self) -> np.ndarray:
        """The current flattened one-hot observation (float32)."""
        grid = self._base_grid.copy()
        x, y = int(self.agent_pos[0]), int(self.agent_pos[1])
        grid[y, x, EMPTY] = 0.0
        grid[y, x, AGENT] = 1.0
        grid[TV_CELL[1], TV_CELL[0], TV0 + self.tv_symbol] = 1.0
        if not self.big:
            return grid.reshape(-1)
        screen = np.zeros((N_SCREEN, self.k_tv), np.float32)
        screen[np.arange(N_SCREEN), self.screen] = 1.0
        return np.concatenate([grid.reshape(-1), screen.reshape(-1)])

    def decode(self, obs: np.ndarray) -> dict[str, Any]:
        """Inverse of ``observation`` for one observation vector:
        ``{"cell": (x, y), "tv": int, "screen": (9,) int array, or None outside the big modes}``."""
        obs = np.asarray(obs)
        if obs.shape != (self.obs_dim,):
            raise ValueError(f"TVGridEnv.decode: expected one observation of shape ({self.obs_dim},), got {obs.shape}")
        grid = obs[: self.grid_dim].reshape(self.grid_shape)
        ys, xs = np.nonzero(grid[..., AGENT])
        tv = int(np.argmax(grid[TV_CELL[1], TV_CELL[0], TV0:]))
        screen = obs[self.grid_dim :].reshape(N_SCREEN, self.k_tv).argmax(-1) if self.big else None
        return {"cell": (int(xs[0]), int(ys[0])), "tv": tv, "screen": screen}

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        start = (options or {}).get("start")
        if start is None:
            start = self.free_cells[int(self.np_random.integers(len(self.free_cells)))]
        else:
            start = (int(start[0]), int(start[1]))
            if start not in self.free_cells:
                raise ValueError(f"TVGridEnv: start cell {start} is not a free cell the agent may occupy; "
                                 f"free cells: {self.free_cells}")
        self.agent_pos = np.array(start, dtype=np.int64)
        self.step_count = 0
        self.tv_symbol = int(self.np_random.integers(self.k_tv)) if self.mode == "always" else 0
        if self.mode == "big_always":
            self.screen = self.np_random.integers(self.k_tv, size=N_SCREEN).astype(np.int64)
        else:
            self.screen = np.zeros(N_SCREEN, dtype=np.int64)
        return self.observation(), {"press": False, "cell": self.agent_pos.copy()}

    def step(self, action):
        a = int(action)
        if not 0 <= a < len(MOVES) or a != action:
            raise ValueError(f"TVGridEnv: action must be an integer in [0, {len(MOVES) - 1}], got {action!r}")
        x, y = int(self.agent_pos[0]), int(self.agent_pos[1])
        press = a == PRESS and (x, y) == PRESS_CELL
        dx, dy = MOVES[a]
        if self.can_enter(x + dx, y + dy):
            self.agent_pos = np.array((x + dx, y + dy), dtype=np.int64)
        if self.mode == "always" or (self.mode == "remote" and press):
            self.tv_symbol = int(self.np_random.integers(self.k_tv))
        elif self.mode == "big_always" or (self.mode == "big_remote" and press):
            self.screen = self.np_random.integers(self.k_tv, size=N_SCREEN).astype(np.int64)
        self.step_count += 1
        truncated = self.step_count >= self.max_steps
        return self.observation(), 0.0, False, truncated, {"press": bool(press), "cell": self.agent_pos.copy()}

    def _text(self) -> str:
        rows = []
        for y in range(SIZE):
            row = ""
            for x in range(SIZE):
                if (x, y) == TV_CELL:
                    row += str(self.tv_symbol % 10)
                elif (x, y) == tuple(self.agent_pos):
                    row += "A"
                elif self.is_wall(x, y):
                    row += "#"
                elif not self.can_enter(x, y):
                    row += ":"
                else:
                    row += "_" if (x, y) == PRESS_CELL else "."
            rows.append(row)
        if self.big:
            rows.append("screen " + "".join(str(int(s) % 10) for s in self.screen))
        return "\n".join(rows)

    def _symbol_colour(self, s: int) -> np.ndarray:
        hue = s / max(1, self.k_tv)
        return (255 * (0.5 + 0.5 * np.cos(2 * np.pi * (hue + np.array([0.0, 1 / 3, 2 / 3]))))).astype(np.uint8)

    def _image(self, px: int = 8) -> np.ndarray:
        cells = np.zeros((SIZE + (4 if self.big else 0), SIZE, 3), np.uint8)
        for y in range(SIZE):
            for x in range(SIZE):
                if self.is_wall(x, y):
                    cells[y, x] = 128
                elif not self.can_enter(x, y):
                    cells[y, x] = 40
        cells[PRESS_CELL[1], PRESS_CELL[0]] = (0, 0, 96)
        cells[TV_CELL[1], TV_CELL[0]] = self._symbol_colour(self.tv_symbol)
        cells[int(self.agent_pos[1]), int(self.agent_pos[0])] = (255, 0, 0)
        if self.big:
            for i, s in enumerate(self.screen):
                cells[SIZE + 1 + i // 3, 2 + i % 3] = self._symbol_colour(int(s))
        return np.kron(cells, np.ones((px, px, 1), np.uint8))

    def render(self):
        if self.render_mode == "ansi":
            return self._text()
        if self.render_mode == "rgb_array":
            return self._image()
        return None


# ----------------------------------------------------------------------------------------------------------------
# Recording the protocol's data sets
# ----------------------------------------------------------------------------------------------------------------
def record_tvgrid(
    mode: str,
    n_sequences: int,
    seq_len: int,
    seed: int,
    press_start_prob: float = 0.5,
    confine_x: int | None = None,
    region: Region = "all",
    k_tv: int = 8,
    max_steps: int = 100,
):
    """Record ``n_sequences`` sequences of ``seq_len`` steps of a uniform random policy in TVGrid ``mode``.

    Returns ``(transitions, observation_space, action_space)``. ``transitions`` is a time-major
    ``explore_bench.bonuses.Transitions``: ``obs``/``next_obs`` float32 ``(seq_len, n_sequences, obs_dim)``,
    ``actions`` int64 ``(seq_len, n_sequences)``, ``dones`` bool ``(seq_len, n_sequences)`` and
    ``infos = {"press": bool (seq_len, n_sequences), "cell": int64 (seq_len, n_sequences, 2)}`` (the cell the
    transition reaches).

    Every sequence starts a new episode: on the press cell with probability ``press_start_prob``, otherwise on a
    uniform free cell. A sequence longer than ``max_steps`` crosses episode ends: ``dones`` is True on the
    truncating step (its ``next_obs`` is the last observation of the episode), and the next step starts a new
    episode drawn by the same rule.

    ``region="novel"``: the novel set of the protocol: start cells and all transitions in columns ``x >= 4``
    (the part of the grid that training data confined with ``confine_x=3`` never reaches). The press cell is
    outside that region, so there are no presses: in ``remote``/``big_remote``/``off`` modes the set is
    deterministic (the TV shows 0, the screen stays all zeros). ``press_start_prob`` is ignored there.

    Deterministic given ``seed``; everything (policy, start cells, TV) is drawn from generators seeded by it.
    """
    # imported here: bonuses import torch, and `import explore_bench.envs` stays light
    from explore_bench.bonuses.base import Transitions

    if region not in ("all", "novel"):
        raise ValueError(f"record_tvgrid: region must be 'all' or 'novel', got {region!r}")
    if int(n_sequences) < 1 or int(seq_len) < 1:
        raise ValueError(f"record_tvgrid: n_sequences and seq_len must be >= 1, got {n_sequences}, {seq_len}")
    if not 0.0 <= float(press_start_prob) <= 1.0:
        raise ValueError(f"record_tvgrid: press_start_prob must be in [0, 1], got {press_start_prob}")
    min_x = None
    if region == "novel":
        if confine_x is not None and confine_x < NOVEL_MIN_X:
            raise ValueError(f"record_tvgrid: region='novel' needs columns x >= {NOVEL_MIN_X}, "
                             f"but confine_x={confine_x} excludes them")
        min_x = NOVEL_MIN_X
    n, t_len = int(n_sequences), int(seq_len)
    env = TVGridEnv(mode, k_tv=k_tv, max_steps=max_steps, confine_x=confine_x, seed=seed, min_x=min_x)
    policy_rng = np.random.default_rng([int(seed), 1])
    press_ok = region == "all" and PRESS_CELL in env.free_cells
    dim = env.obs_dim
    obs = np.empty((t_len, n, dim), np.float32)
    next_obs = np.empty((t_len, n, dim), np.float32)
    actions = policy_rng.integers(0, len(MOVES), size=(t_len, n)).astype(np.int64)
    dones = np.zeros((t_len, n), bool)
    press = np.zeros((t_len, n), bool)
    cells = np.zeros((t_len, n, 2), np.int64)

    def start_options() -> dict[str, Any] | None:
        if press_ok and policy_rng.random() < press_start_prob:
            return {"start": PRESS_CELL}
        return None

    for j in range(n):
        o, _ = env.reset(options=start_options())
        for t in range(t_len):
            obs[t, j] = o
            o, _, terminated, truncated, info = env.step(actions[t, j])
            next_obs[t, j] = o
            press[t, j] = info["press"]
            cells[t, j] = info["cell"]
            if terminated or truncated:
                dones[t, j] = True
                o, _ = env.reset(options=start_options())
    batch = Transitions(obs, actions, next_obs, dones, {"press": press, "cell": cells})
    return batch, env.observation_space, env.action_space


# ----------------------------------------------------------------------------------------------------------------
# MiniGrid wrapper
# ----------------------------------------------------------------------------------------------------------------
class NoisyTVObsWrapper(gym.Wrapper):
    """A noisy TV on one fixed tile of a MiniGrid env (spec byol_hindsight.md §4.1, MiniGrid variant).

    The tile at grid cell ``cell = (x, y)`` (normally a wall) shows a symbol in ``{0..k_tv-1}``, written into
    the **colour channel** (index 1) of that tile in MiniGrid's symbolic egocentric image, wherever the tile is
    visible in the agent's view (inside the view and not occluded; otherwise the image is unchanged).

    - ``mode="always"``: the symbol is resampled every step (and at reset).
    - ``mode="remote"``: the symbol is 0 at reset and resampled only on a **press**: the agent takes
      ``press_action`` (default MiniGrid's ``toggle``, 5) while **facing** the TV tile (``front_pos == cell``),
      i.e. MiniGrid's usual "interact with the object in front" rule. On a wall, toggle has no other effect.

    ``info["press"]`` is True on a pressing step (in both modes) and ``info["tv_symbol"]`` is the symbol after
    the step. Works on the dict observation of a raw MiniGrid env or on the ``(view, view, 3)`` image of
    ``ImgObsWrapper``. With ``k_tv <= 6`` every symbol is a valid MiniGrid colour index (the catalogue uses 6 so
    that one-hot policy features keep symbols apart); larger values still fit the uint8 image.

    The wrapper's RNG is its own (seeded by ``reset(seed=...)``), so the MiniGrid layout sequence is the same as
    without the wrapper.
    """

    MODES = ("always", "remote")

    def __init__(self, env: gym.Env, cell: tuple[int, int] = (0, 3), mode: str = "remote", k_tv: int = 8,
                 press_action: int = 5) -> None:
        super().__init__(env)
        base = env.unwrapped
        # front_pos is a property that fails before the first reset: look it up on the class
        if not (hasattr(base, "agent_pos") and all(hasattr(type(base), a) for a in ("front_pos", "relative_coords"))):
            raise TypeError(f"NoisyTVObsWrapper needs a MiniGrid env (agent_pos, front_pos, relative_coords); "
                            f"got {type(base).__name__}")
        if mode not in self.MODES:
            raise ValueError(f"NoisyTVObsWrapper: mode must be one of {self.MODES}, got {mode!r}")
        if not 1 <= int(k_tv) <= 256:
            raise ValueError(f"NoisyTVObsWrapper: k_tv must be in [1, 256], got {k_tv!r}")
        space = env.observation_space
        image_space = space["image"] if isinstance(space, gym.spaces.Dict) else space
        if not (isinstance(image_space, gym.spaces.Box) and len(image_space.shape) == 3 and image_space.shape[2] == 3):
            raise TypeError(f"NoisyTVObsWrapper needs MiniGrid's (view, view, 3) symbolic image; got {space!r}")
        self._base = base
        self.cell = (int(cell[0]), int(cell[1]))
        self.mode = mode
        self.k_tv = int(k_tv)
        self.press_action = int(press_action)
        self.tv_symbol = 0
        self._rng = np.random.default_rng()

    def _draw(self) -> int:
        return int(self._rng.integers(self.k_tv))

    def _paint(self, obs):
        image = obs["image"] if isinstance(obs, dict) else obs
        rc = self._base.relative_coords(*self.cell)
        if rc is not None:
            vx, vy = rc
            if image[vx, vy, 0] != 0:  # object index 0 = unseen (occluded)
                image = image.copy()
                image[vx, vy, 1] = self.tv_symbol
                if isinstance(obs, dict):
                    obs = {**obs, "image": image}
                else:
                    obs = image
        return obs

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        if seed is not None:
            self._rng = np.random.default_rng([int(seed), 0x7E1E])
        self.tv_symbol = self._draw() if self.mode == "always" else 0
        info["press"] = False
        info["tv_symbol"] = self.tv_symbol
        return self._paint(obs), info

    def step(self, action):
        press = int(action) == self.press_action and tuple(int(v) for v in self._base.front_pos) == self.cell
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self.mode == "always" or press:
            self.tv_symbol = self._draw()
        info["press"] = bool(press)
        info["tv_symbol"] = self.tv_symbol
        return self._paint(obs), reward, terminated, truncated, info


# ----------------------------------------------------------------------------------------------------------------
# Catalogue
# ----------------------------------------------------------------------------------------------------------------
#: catalogue id -> TVGrid mode
TVGRID_ENVS: dict[str, str] = {
    "TVGrid-Off-v0": "off",
    "TVGrid-Always-v0": "always",
    "TVGrid-Remote-v0": "remote",
    "TVGrid-BigAlways-v0": "big_always",
    "TVGrid-BigRemote-v0": "big_remote",
}

#: noisy-TV MiniGrid ids -> (minigrid id, NoisyTVObsWrapper kwargs)
NOISY_MINIGRID_ENVS: dict[str, tuple[str, dict[str, Any]]] = {
    # The left border wall at (0, 3) always belongs to the start room of DoorKey-8x8 (the agent starts left of
    # the dividing wall, which lies in columns 2..5). k_tv = 6 keeps the symbols valid MiniGrid colour indices.
    "MiniGrid-DoorKey-8x8-NoisyTV-v0": ("MiniGrid-DoorKey-8x8-v0", {"cell": (0, 3), "mode": "remote", "k_tv": 6}),
}


def make_tvgrid(env_id: str, **kwargs: Any) -> gym.Env:
    """Catalogue TVGrid env ``env_id`` wrapped in ``ExplorationStats`` (``kwargs`` go to ``TVGridEnv``)."""
    mode = TVGRID_ENVS.get(env_id)
    if mode is None:
        raise KeyError(f"unknown TVGrid env id {env_id!r}; valid ids: {', '.join(TVGRID_ENVS)}")
    return ExplorationStats(TVGridEnv(mode=mode, **kwargs))


def make_noisy_minigrid(env_id: str, **kwargs: Any) -> gym.Env:
    """Noisy-TV MiniGrid env: ``gym.make(minigrid id) -> ImgObsWrapper -> NoisyTVObsWrapper -> ExplorationStats``.

    ``kwargs`` go to the MiniGrid constructor, except ``tv_cell``, ``tv_mode`` and ``k_tv`` which override the
    wrapper's settings.
    """
    entry = NOISY_MINIGRID_ENVS.get(env_id)
    if entry is None:
        raise KeyError(f"unknown noisy-TV MiniGrid env id {env_id!r}; valid ids: {', '.join(NOISY_MINIGRID_ENVS)}")
    minigrid_id, tv = entry
    tv = dict(tv)
    for key, dest in (("tv_cell", "cell"), ("tv_mode", "mode"), ("k_tv", "k_tv")):
        if key in kwargs:
            tv[dest] = kwargs.pop(key)
    import minigrid  # noqa: F401  (registers the MiniGrid-* ids with gymnasium)
    from minigrid.wrappers import ImgObsWrapper

    env = gym.make(minigrid_id, **kwargs)
    env = ImgObsWrapper(env)
    env = NoisyTVObsWrapper(env, **tv)
    return ExplorationStats(env)
