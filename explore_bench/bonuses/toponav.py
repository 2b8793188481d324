"""TopoNav's topological map as an intrinsic reward (bonus mode of shared/specs/toponav.md §2, §5).

A shared `TopoMap` (explore_bench.bonuses.topomap) of landmark nodes over state embeddings pays `beta_new` for a new
node, `beta_visit / sqrt(n)` for the n-th arrival at a node, `beta_front F(v)` for arriving at a frontier node and,
with `auto_subgoal=True`, `beta_sub` for reaching the subgoal the map picked (h-DQN's low-level reward; the policy
does not see the subgoal). The map is lifelong; each env's place on it (last node, steps since, subgoal) restarts
at every episode end (`dones`, or `reset(mask)`), and no edge ever joins two episodes.

Embeddings (spec §6), fixed at the first batch seen (`embedding="auto"` picks the first that applies):
- "cell": the agent's (x, y) from `infos["cell"]` (MiniGrid), Chebyshev distance, `delta_loc / delta_new` 0.5 / 3;
- "ram": `infos["ram"]` (128 bytes) of `ram_game` (room and level as context, x and y in pixels, Euclidean, 4 / 16,
  the Atari column of §7);
- "encoder": a frozen random encoder (`networks.make_encoder`, 32 outputs) of the observation, for large images;
- "obs": the observation itself, flattened (one-hot for discrete spaces).
"encoder" and "obs" set their thresholds from data (§6: `delta_new` = 0.5 x the median nearest-neighbour distance
of the first batch seen, normally the agent's random-action warm-up; `delta_loc = delta_new / 2`) unless given.

Optional infos: `infos["reward"]` (extrinsic reward: salient events, goal-directed subgoals) and `infos["unsafe"]`
(life loss, lava: the safety rule, `-beta_safe`). The bonus is streaming, like `count`: `compute` consumes the
batch, so call it once per transition, in time order; `update` trains nothing and reports map statistics.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch

from explore_bench.bonuses.base import Bonus, Transitions
from explore_bench.bonuses.counting import to_numpy
from explore_bench.bonuses.networks import InputAdapter, is_large_image_space, make_encoder
from explore_bench.bonuses.registry import register_bonus
from explore_bench.bonuses.topomap import (
    ATARI_DEFAULTS,
    MINIGRID_DEFAULTS,
    RAM_EMBEDDINGS,
    TopoConfig,
    TopoMap,
    calibrate_thresholds,
    grid_embedding,
    ram_embedding,
)

Embedding = Literal["auto", "cell", "ram", "encoder", "obs"]
EMBEDDINGS = ("auto", "cell", "ram", "encoder", "obs")
_MAP_SETTINGS = tuple(f.name for f in dataclasses.fields(TopoConfig) if f.name != "n_context")


@register_bonus("toponav")
class TopoNav(Bonus):
    """Intrinsic reward of a TopoNav-style topological map; the map is `self.topomap` (None before the first batch).

    Args:
        embedding: "auto", "cell", "ram", "encoder" or "obs" (module docstring).
        key_info: the `infos` entry of cells or RAM (default "cell", or "ram" for `embedding="ram"`).
        cell_dims: leading entries of a cell that are coordinates (2: MiniGrid's x, y; its direction is ignored).
        ram_game: the game of a RAM embedding, a key of `topomap.RAM_EMBEDDINGS`.
        encoder_dim: output size of the random encoder.
        reward_info, safety_info: `infos` entries of the extrinsic reward and of safety events, used when present.
        **map_settings: `TopoConfig` fields (`delta_new`, `beta_new`, `auto_subgoal`, `node_cap`, ...) over the
            defaults of the domain (§7's Atari column for RAM and Atari frames, the MiniGrid column otherwise).
    """

    supported_observation_spaces = (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiDiscrete)
    state_attributes = ("topo_state",)

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        device: str | torch.device = "cpu",
        seed: int | None = None,
        embedding: Embedding = "auto",
        key_info: str | None = None,
        cell_dims: int = 2,
        ram_game: str | None = None,
        encoder_dim: int = 32,
        reward_info: str | None = "reward",
        safety_info: str | None = "unsafe",
        **map_settings: Any,
    ) -> None:
        super().__init__(observation_space, action_space, device, seed, normalize_obs=False)
        if embedding not in EMBEDDINGS:
            raise ValueError(f"bonus 'toponav': embedding must be one of {EMBEDDINGS}, got {embedding!r}")
        unknown = sorted(set(map_settings) - set(_MAP_SETTINGS))
        if unknown:
            raise TypeError(f"TopoNav() got an unexpected keyword argument {unknown[0]!r}; map settings: "
                            f"{', '.join(_MAP_SETTINGS)}")
        if embedding == "ram" and ram_game not in RAM_EMBEDDINGS:
            raise ValueError(f"bonus 'toponav': embedding='ram' needs ram_game, one of {sorted(RAM_EMBEDDINGS)}; got "
                             f"{ram_game!r}")
        # Settings are checked now; a single threshold only against the other once the embedding (and its
        # data-driven scale) is known.
        thresholds = {k: map_settings[k] for k in ("delta_loc", "delta_new") if k in map_settings}
        others = {k: v for k, v in map_settings.items() if k not in thresholds}
        try:
            for name, value in thresholds.items():
                if not (np.isfinite(value) and value > 0):
                    raise ValueError(f"{name} must be a positive number, got {value!r}")
            dataclasses.replace(MINIGRID_DEFAULTS, **others, **(thresholds if len(thresholds) == 2 else {}))
        except (TypeError, ValueError) as error:
            raise ValueError(f"bonus 'toponav': {error}") from None
        self.embedding = embedding
        self.key_info = key_info or ("ram" if embedding == "ram" else "cell")
        self.cell_dims = int(cell_dims)
        self.ram_game = ram_game
        self.reward_info = reward_info
        self.safety_info = safety_info
        self.map_settings = dict(map_settings)
        self.large_images = is_large_image_space(observation_space)
        self.flatten = InputAdapter(observation_space, image=False)
        if embedding == "encoder" or (embedding == "auto" and self.large_images):
            with torch.random.fork_rng():
                torch.manual_seed(self.seed)
                self.encoder = make_encoder(observation_space, encoder_dim).to(self.device)
            self.encoder.requires_grad_(False)  # frozen: a changing encoder would move every node (spec §8.1)
        #: the embedding in use ("cell", "ram", "encoder", "obs"); fixed at the first batch
        self.mode: str | None = None
        self.topomap: TopoMap | None = None

    # ---------------------------------------------------------------------------------------- embeddings
    def _resolve_mode(self, batch: Transitions) -> str:
        if self.mode is None:
            if self.embedding != "auto":
                self.mode = self.embedding
            elif self.key_info in batch.infos:
                self.mode = "cell"
            else:
                self.mode = "encoder" if self.large_images else "obs"
        return self.mode

    def embed(self, batch: Transitions) -> np.ndarray:
        """`(T, N, D)` float64 embeddings of the states `batch` reaches (its `next_obs`), in this bonus's embedding."""
        t, n = self.validate(batch)
        mode = self._resolve_mode(batch)
        if mode in ("cell", "ram"):
            if self.key_info not in batch.infos:
                self._fail(f"infos[{self.key_info!r}] (the {mode} embedding of this map)", "a batch without it")
            raw = to_numpy(batch.infos[self.key_info])
            width = 128 if mode == "ram" else self.cell_dims
            if raw.ndim != 3 or raw.shape[:2] != (t, n) or raw.shape[2] < width or raw.dtype.kind not in "biu":
                self._fail(f"integer infos[{self.key_info!r}] of shape (T, N, {'128' if mode == 'ram' else 'k'}) with "
                           f"(T, N) = {(t, n)}" + ("" if mode == "ram" else f" and k >= {self.cell_dims}"),
                           f"{raw.dtype} of shape {raw.shape}")
            return ram_embedding(self.ram_game, raw) if mode == "ram" else grid_embedding(raw, self.cell_dims)
        obs = torch.as_tensor(to_numpy(batch.next_obs), device=self.device).float()
        flat = obs.reshape(t * n, *obs.shape[2:])
        with torch.no_grad():
            out = self.encoder(self.inputs(flat)) if mode == "encoder" else self.flatten(flat)
        return out.cpu().double().numpy().reshape(t, n, -1)

    def _config(self, embeddings: np.ndarray) -> TopoConfig | None:
        """The map settings of this embedding: domain defaults, data-driven thresholds, then the user's settings.
        None while the data gives no scale yet (fewer than two distinct embeddings)."""
        base = ATARI_DEFAULTS if self.mode == "ram" or self.large_images else MINIGRID_DEFAULTS
        fields: dict[str, Any] = {}
        if self.mode == "ram":
            fields["n_context"] = len(RAM_EMBEDDINGS[self.ram_game][0])
        elif self.mode in ("encoder", "obs"):
            fields.update(metric="euclidean", n_context=0)
            if not {"delta_loc", "delta_new"} <= set(self.map_settings):
                scale = calibrate_thresholds(embeddings.reshape(-1, embeddings.shape[-1]), rng=self.np_rng)
                if scale is None:
                    return None
                fields.update(delta_loc=scale[0], delta_new=scale[1])
        else:
            fields["n_context"] = 0
        try:
            return dataclasses.replace(base, **{**fields, **self.map_settings})
        except ValueError as error:
            raise ValueError(f"bonus 'toponav' ({self.mode} embedding): {error}") from None

    def _ensure_map(self, embeddings: np.ndarray) -> TopoMap | None:
        if self.topomap is None:
            config = self._config(embeddings)
            if config is not None:
                self.topomap = TopoMap(embeddings.shape[-1], config, seed=self.seed)
        return self.topomap

    # ------------------------------------------------------------------------------------------ contract
    def warm_up(self, batch: Transitions) -> None:
        """Fix the embedding and, for "encoder"/"obs", its thresholds from these random-action steps."""
        self._ensure_map(self.embed(batch))

    def compute(self, batch: Transitions) -> np.ndarray:
        t, n = self.validate(batch)
        embeddings = self.embed(batch)
        rewards = np.zeros((t, n), np.float32)
        topomap = self._ensure_map(embeddings)
        if topomap is None:  # no scale for the thresholds yet: nothing can be told apart
            return rewards
        dones = to_numpy(batch.dones).astype(bool)
        r_ext = self._info(batch, self.reward_info, (t, n), np.float64)
        unsafe = self._info(batch, self.safety_info, (t, n), bool)
        for i in range(t):  # time-major: the map is shared, so every env sees the nodes the others added before
            for j in range(n):
                rewards[i, j] = topomap.step(j, embeddings[i, j], r_ext[i, j], dones[i, j], unsafe[i, j]).r_int
        return rewards

    def update(self, batch: Transitions) -> dict[str, float]:
        self.validate(batch)
        if self.topomap is None:
            return {"n_nodes": 0.0, "n_edges": 0.0, "n_frontier": 0.0, "n_components": 0.0, "nodes_per_1k_steps": 0.0}
        stats = self.topomap.stats()
        stats["nodes_per_1k_steps"] = 1000.0 * self.topomap.n_nodes / max(1, self.topomap.global_step)
        return stats

    def reset(self, mask: np.ndarray) -> None:
        """Start new episodes in the envs where `mask` is True: their next node joins no edge to the last one."""
        if self.topomap is not None:
            for j in np.flatnonzero(to_numpy(mask)):
                self.topomap.begin_episode(int(j))

    def _info(self, batch: Transitions, key: str | None, shape: tuple[int, int], dtype: type) -> np.ndarray:
        if key is None or key not in batch.infos:
            return np.zeros(shape, dtype)
        value = to_numpy(batch.infos[key])
        if value.shape != shape or not np.isfinite(value.astype(np.float64)).all():
            self._fail(f"finite infos[{key!r}] of shape (T, N) = {shape}", f"shape {value.shape}")
        return value.astype(dtype)

    # ---------------------------------------------------------------------------------------------- state
    @property
    def topo_state(self) -> dict[str, Any]:
        """The embedding in use, the map's settings and the map (plain containers and numpy arrays)."""
        if self.topomap is None:
            return {"mode": self.mode, "config": None, "map": None}
        return {"mode": self.mode, "config": dataclasses.asdict(self.topomap.config), "map": self.topomap.get_state()}

    @topo_state.setter
    def topo_state(self, state: dict[str, Any]) -> None:
        self.mode = state["mode"]
        self.topomap = None
        if state["map"] is not None:
            self.topomap = TopoMap(state["map"]["dim"], TopoConfig(**state["config"]), seed=self.seed)
            self.topomap.set_state(state["map"])
