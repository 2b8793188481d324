"""Tabular visit counts: `r = beta / sqrt(N(key(s')))`. Spec: shared/specs/counts.md §2.

The key of a transition is the exact state it reaches: an integer cell from `batch.infos[key_info]`
(MiniGrid: agent x, y, dir; bandits: the arm) when the batch carries one, otherwise the exact bytes of
`next_obs`. Counting is update-then-query per transition in time-major order (the k-th visit of a key
scores `beta / sqrt(k)`, the first exactly `beta`), either over the whole run (`lifelong`) or per env and
episode (`episodic`, reset after the transition that carries `done`). See `counting.py` for the
vectorised table and the collision analysis of the 64-bit keys.

The bonus is streaming: `compute` consumes the batch (it counts it), so call it once per transition, in
time order; `update` trains nothing and only reports table statistics.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from explore_bench.bonuses.base import Bonus, Transitions
from explore_bench.bonuses.counting import SCOPES, CountTableState, KeyCounter, Scope, hash_rows, to_numpy
from explore_bench.bonuses.registry import register_bonus


def canonical_observations(bonus: Bonus, next_obs: Any) -> np.ndarray:
    """`next_obs` as an array of the observation space's dtype, so that equal states have equal bytes.

    Values that an integer space's dtype cannot hold exactly (3.5 for a Discrete space) are rejected; floats
    are rounded to the space's float dtype, and -0.0 becomes 0.0.
    """
    raw = to_numpy(next_obs)
    dtype = np.dtype(bonus.observation_space.dtype) if bonus.observation_space.dtype is not None else raw.dtype
    obs = raw.astype(dtype, copy=False)
    # integer/bool spaces must get integral, in-range values; float -> float casts round (space precision)
    if obs.dtype != raw.dtype and dtype.kind in "biu" and raw.dtype.kind != "b" and not np.array_equal(obs, raw):
        bonus._fail(f"next_obs values exactly representable as {dtype} (the observation space's dtype)", f"{raw.dtype} values that are not")
    if obs.dtype.kind == "f":
        obs = obs + obs.dtype.type(0.0)  # -0.0 + 0.0 == +0.0: one byte pattern per value
    return obs


@register_bonus("count")
class Count(CountTableState, Bonus):
    """Exact visit counts of hashable states.

    Args:
        beta: bonus scale; `r = beta / sqrt(n)` with n the count including this visit.
        scope: "lifelong" (never reset) or "episodic" (per env, reset after a `done`).
        key_info: name of an `infos` entry holding integer keys, `(T, N)` or `(T, N, k)` (e.g. agent x, y,
            dir); when the batch has no such entry (or `key_info=None`) the key is the exact bytes of
            `next_obs`.
    """

    supported_observation_spaces = (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)
    state_attributes = ("counter_state",)

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        device: str | torch.device = "cpu",
        seed: int | None = None,
        beta: float = 1.0,
        scope: Scope = "lifelong",
        key_info: str | None = "cell",
    ) -> None:
        super().__init__(observation_space, action_space, device, seed, normalize_obs=False)
        if scope not in SCOPES:
            raise ValueError(f"bonus 'count': scope must be one of {SCOPES}, got {scope!r}")
        self.beta = float(beta)
        self.scope = scope
        self.key_info = key_info
        self.counter = KeyCounter(scope)
        #: counts of the last `compute` batch, `(T, N)` int64 (diagnostics; not part of the state)
        self.last_counts = np.zeros((0, 0), dtype=np.int64)

    # ---------------------------------------------------------------- keys
    def keys(self, batch: Transitions) -> np.ndarray:
        """`(T, N)` uint64 key of each transition's next state (does not count)."""
        t, n = self.validate(batch)
        if self.key_info is not None and self.key_info in batch.infos:
            cell = to_numpy(batch.infos[self.key_info])
            if cell.shape[:2] != (t, n) or cell.ndim > 3:
                self._fail(f"infos[{self.key_info!r}] of shape (T, N) or (T, N, k) with (T, N) = {(t, n)}", f"shape {cell.shape}")
            if cell.dtype.kind not in "biu":
                self._fail(f"integer infos[{self.key_info!r}]", f"dtype {cell.dtype}")
            # int64 rows: a (T, N) cell is one 64-bit word, so its key is exact (hash_words is a bijection).
            return hash_rows(cell.astype(np.int64).reshape(t * n, -1)).reshape(t, n)
        obs = canonical_observations(self, batch.next_obs)
        return hash_rows(obs.reshape(t * n, *obs.shape[2:])).reshape(t, n)

    # ------------------------------------------------------------- contract
    def compute(self, batch: Transitions) -> np.ndarray:
        keys = self.keys(batch)
        self.last_counts = self.counter.count(keys, to_numpy(batch.dones).astype(bool))
        return (self.beta / np.sqrt(self.last_counts.astype(np.float64))).astype(np.float32)

    def update(self, batch: Transitions) -> dict[str, float]:
        self.validate(batch)
        return {"distinct_keys": float(len(self.counter))}
