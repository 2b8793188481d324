"""SimHash counts: Tang et al., "#Exploration" (NeurIPS 2017, arXiv 1611.04717). Spec: counts.md §3.

    phi(s) = sgn(A g(s)) in {-1, +1}^k,  A_ij ~ N(0, 1) (k x D, drawn once from the bonus's seeded generator)
    r(s')  = beta / max(1, sqrt(n(phi(s'))))

g(s) is the flattened observation (one-hot for Discrete, concatenated one-hots for MultiDiscrete) minus a
running mean that is FROZEN after an initialisation phase (§3.3 pitfall 1: a drifting mean changes the code
of an unchanged state). Default (`freeze_after=None`): the mean accumulates over `warm_up` calls (the
random-action rollouts of rdd.md §2.2) and freezes at the first `compute`; if `compute` comes first, the
mean of that first batch is used and frozen before hashing it. With `freeze_after=n` the mean accumulates
over warm-up and compute batches until n transitions have been seen (codes of the first n transitions
then use a still-moving mean: the caller's choice). `center=False` hashes g(s) uncentred. A projection
that is exactly 0 gives the bit of -1.

Storage (`storage=`): "exact" (default) counts the packed k-bit codes in the shared vectorised table
(`counting.py`; exact for k <= 64, a 64-bit hash of the packed bits above); "sketch" is the count-min
sketch of the reference code (openai/EPG `HashingBonusEvaluator`): six prime-sized tables,
`key_i = (sum_j s_j (2^j mod P_i)) mod P_i` with s_j in {-1, +1}, query = min over tables, never
under-counting. (Using bits b_j in {0, 1} instead of signs gives `2 key' - const` mod P_i, an affine
bijection of the same buckets: identical collisions.) Both count update-then-query per transition in
time-major order, with a `lifelong` or `episodic` scope, like `count`. Report k (`key_dim`): small k merges
unrelated states, large k makes every noisy frame unique.
"""

from __future__ import annotations

from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch

from explore_bench.bonuses.base import Bonus, Transitions
from explore_bench.bonuses.counting import (
    SCOPES,
    SKETCH_PRIMES,
    CountMinSketch,
    CountTableState,
    KeyCounter,
    Scope,
    hash_rows,
    to_numpy,
)
from explore_bench.bonuses.registry import register_bonus


@register_bonus("simhash")
class SimHash(CountTableState, Bonus):
    """Counts over SimHash codes of the (centred) observation.

    Args:
        beta: bonus scale.
        key_dim: k, the number of code bits (granularity); 64 by default, up to 1024 tested.
        storage: "exact" (table over packed codes) or "sketch" (count-min, reference code).
        scope: "lifelong" or "episodic" (per env, reset after a `done`).
        center: subtract the running mean of g(s) before projecting.
        freeze_after: transitions after which the mean freezes; None = at the first `compute` (see above).
    """

    supported_observation_spaces = (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)
    state_attributes = ("projection", "mean_sum", "mean_count", "frozen", "counter_state")

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        device: str | torch.device = "cpu",
        seed: int | None = None,
        beta: float = 1.0,
        key_dim: int = 64,
        storage: Literal["exact", "sketch"] = "exact",
        scope: Scope = "lifelong",
        center: bool = True,
        freeze_after: int | None = None,
    ) -> None:
        super().__init__(observation_space, action_space, device, seed, normalize_obs=False)
        if scope not in SCOPES:
            raise ValueError(f"bonus 'simhash': scope must be one of {SCOPES}, got {scope!r}")
        if storage not in ("exact", "sketch"):
            raise ValueError(f"bonus 'simhash': storage must be 'exact' or 'sketch', got {storage!r}")
        if int(key_dim) < 1:
            raise ValueError(f"bonus 'simhash': key_dim must be >= 1, got {key_dim}")
        if freeze_after is not None and int(freeze_after) < 0:
            raise ValueError(f"bonus 'simhash': freeze_after must be >= 0 or None, got {freeze_after}")
        self.beta = float(beta)
        self.key_dim = int(key_dim)
        self.storage = storage
        self.scope = scope
        self.center = bool(center)
        self.freeze_after = None if freeze_after is None else int(freeze_after)
        d = self.feature_dim()
        # A: k x D standard normal, float64 so that codes do not depend on BLAS rounding of float32 sums.
        self.projection = torch.from_numpy(self.np_rng.standard_normal((self.key_dim, d)))
        self.mean_sum = torch.zeros(d, dtype=torch.float64)
        self.mean_count = 0
        self.frozen = not self.center
        if storage == "sketch":
            self.counter: KeyCounter | CountMinSketch = CountMinSketch(SKETCH_PRIMES, scope)
            # mods[j, i] = 2^j mod P_i (reference `mods_list`), exact in int64
            self.sketch_mods = np.array([[pow(2, j, p) for p in SKETCH_PRIMES] for j in range(self.key_dim)], dtype=np.int64)
        else:
            self.counter = KeyCounter(scope)
        #: counts of the last `compute` batch, `(T, N)` int64 (diagnostics; not part of the state)
        self.last_counts = np.zeros((0, 0), dtype=np.int64)

    # ------------------------------------------------------------ features
    def feature_dim(self) -> int:
        space = self.observation_space
        if isinstance(space, gym.spaces.Discrete):
            return int(space.n)
        if isinstance(space, gym.spaces.MultiDiscrete):
            return int(np.asarray(space.nvec).sum())
        return int(np.prod(space.shape))

    def features(self, obs: Any) -> np.ndarray:
        """g(s): `(B, *obs_shape)` observations -> `(B, D)` float64 (uncentred)."""
        space = self.observation_space
        obs = to_numpy(obs)
        b = obs.shape[0]
        if isinstance(space, (gym.spaces.Discrete, gym.spaces.MultiDiscrete)):
            nvec = np.asarray(space.n if isinstance(space, gym.spaces.Discrete) else space.nvec, dtype=np.int64).reshape(-1)
            start = np.broadcast_to(np.asarray(getattr(space, "start", 0), dtype=np.int64).reshape(-1), nvec.shape)
            values = obs.reshape(b, -1)
            index = values.astype(np.int64) - start
            if not np.array_equal(values, index + start) or (index < 0).any() or (index >= nvec).any():
                self._fail(f"integer observations inside {space!r}", "values outside it")
            offsets = np.concatenate([[0], np.cumsum(nvec)[:-1]])
            g = np.zeros((b, int(nvec.sum())), dtype=np.float64)
            g[np.arange(b)[:, None], offsets + index] = 1.0
            return g
        return obs.reshape(b, -1).astype(np.float64)

    def mean(self) -> np.ndarray:
        """The centring vector (zeros before any statistics or with `center=False`)."""
        if not self.center or self.mean_count == 0:
            return np.zeros(self.mean_sum.shape[0], dtype=np.float64)
        return self.mean_sum.numpy() / self.mean_count

    def _accumulate(self, obs: np.ndarray) -> None:
        """Add observations to the running mean, up to the `freeze_after` budget; freeze when it is reached."""
        if self.frozen:
            return
        if self.freeze_after is not None:
            obs = obs[: max(self.freeze_after - self.mean_count, 0)]
        for chunk in self._chunks(obs):
            self.mean_sum += torch.from_numpy(self.features(chunk).sum(axis=0))
        self.mean_count += int(obs.shape[0])
        if self.freeze_after is not None and self.mean_count >= self.freeze_after:
            self.frozen = True

    def freeze_centering(self) -> None:
        """End the initialisation phase now: the centring mean no longer changes."""
        self.frozen = True

    def _chunks(self, obs: np.ndarray):
        """Row chunks of `obs` whose float64 features stay under ~32 MB (large image observations)."""
        rows = max(1, (1 << 22) // max(1, self.mean_sum.shape[0]))
        for start in range(0, obs.shape[0], rows):
            yield obs[start : start + rows]

    def code_bits(self, obs: Any) -> np.ndarray:
        """`(B, *obs_shape)` observations -> `(B, k)` bool codes (True for +1) with the current mean."""
        obs = to_numpy(obs)
        mean, a_t = self.mean(), self.projection.numpy().T
        parts = [((self.features(chunk) - mean) @ a_t) > 0.0 for chunk in self._chunks(obs)]
        return np.concatenate(parts) if parts else np.zeros((0, self.key_dim), dtype=bool)

    def sketch_cells(self, bits: np.ndarray) -> np.ndarray:
        """`(B, k)` bool codes -> `(B, 6)` count-min cells `(sum_j s_j (2^j mod P_i)) mod P_i`."""
        signs = 2 * np.asarray(bits, dtype=np.int64) - 1
        return (signs @ self.sketch_mods) % np.asarray(SKETCH_PRIMES, dtype=np.int64)

    # ----------------------------------------------------------- contract
    def warm_up(self, batch: Transitions) -> None:
        """Accumulate the centring mean from random-action steps (ignored once frozen)."""
        t, n = self.validate(batch)
        if self.center and not self.frozen:
            self._accumulate(to_numpy(batch.next_obs).reshape(t * n, *self._obs_shape()))

    def compute(self, batch: Transitions) -> np.ndarray:
        t, n = self.validate(batch)
        obs = to_numpy(batch.next_obs).reshape(t * n, *self._obs_shape())
        if not self.frozen:
            if self.freeze_after is None:
                if self.mean_count == 0:
                    self._accumulate(obs)
                self.frozen = True
            else:
                self._accumulate(obs)
        bits = self.code_bits(obs)
        dones = to_numpy(batch.dones).astype(bool)
        if self.storage == "sketch":
            self.last_counts = self.counter.count(self.sketch_cells(bits).reshape(t, n, -1), dones)
        else:
            packed = np.packbits(bits, axis=1, bitorder="little")  # k <= 64 bits: one word, exact key
            self.last_counts = self.counter.count(hash_rows(packed).reshape(t, n), dones)
        return (self.beta / np.maximum(1.0, np.sqrt(self.last_counts.astype(np.float64)))).astype(np.float32)

    def update(self, batch: Transitions) -> dict[str, float]:
        self.validate(batch)
        stats = {"key_dim": float(self.key_dim)}
        if isinstance(self.counter, CountMinSketch):
            stats["sketch_occupancy"] = self.counter.occupancy()
        else:
            stats["distinct_codes"] = float(len(self.counter))
        return stats
