"""RepExp: Tuyls, Foster, Krishnamurthy, Ash, "Representation-Based Exploration for Language Models: From Test-Time
to Post-Training" (arXiv 2510.11686). Spec: shared/specs/llm_adapters.md §5.3-§5.4.

An elliptical (inverse-covariance) bonus on feature vectors: for LLM policies the mean-pooled last-layer hidden
states of each response, passed as vector observations (`next_obs`) in a `Transitions` of T=1, N=batch; any other
Box/Discrete observation works as well (flattened; Discrete one-hot). Features are optionally projected by a fixed
sparse random projection (Achlioptas/Li, density 1/sqrt(d)), centred, and kept in float64 for the algebra.

For a feature set Phi, A = lam I + sum_j phi_j phi_j^T:
- `kind="leverage"`: b_i = phi_i^T A^-1 phi_i with phi_i in A (in (0, 1));
- `kind="loo"`: b_i = phi_i^T (A - phi_i phi_i^T)^-1 phi_i = l_i / (1 - l_i);
- `kind="prior"`: b_i = phi_i^T A_prev^-1 phi_i under the features seen before this batch (E3B-style).
Scopes: `group` builds A fresh from each group (`infos["group_ids"]`, the whole batch when absent; the RepExp RL
recipe, centred by the group mean); `global` keeps A^-1 across `update` calls (Sherman-Morrison rank-1 updates,
running-mean centring).

Degeneracy (spec §5.3): with G centred features in d >= G dims and lam small, every per-group leverage equals
1 - 1/G. `last_group_std` is the mean within-group std of the last `compute`; a `RuntimeWarning` fires when it is
below 1e-3 for groups of two or more.
"""

from __future__ import annotations

import warnings
from typing import Literal

import gymnasium as gym
import numpy as np
import torch

from explore_bench.bonuses.base import Bonus, Transitions
from explore_bench.bonuses.counting import to_numpy
from explore_bench.bonuses.registry import register_bonus

DEGENERATE_STD = 1e-3


def sherman_morrison(a_inv: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """(A + phi phi^T)^-1 from A^-1 (symmetric) and phi (d,), float64."""
    u = a_inv @ phi
    return a_inv - np.outer(u, u) / (1.0 + phi @ u)


def leverages(phi: np.ndarray, lam: float) -> np.ndarray:
    """phi_i^T (lam I + Phi^T Phi)^-1 phi_i for every row of phi (n, d), float64."""
    a = lam * np.eye(phi.shape[1]) + phi.T @ phi
    return np.einsum("ij,ji->i", phi, np.linalg.solve(a, phi.T))


def select_diverse(features: np.ndarray, k: int, lam: float = 0.01) -> list[int]:
    """Greedy elliptical coreset (RepExp test-time selection, §5.4): k times, take the unselected row with the
    largest phi^T A^-1 phi (ties to the lowest index) and add it to A (A^-1 starts at I / lam)."""
    phi = np.asarray(features, dtype=np.float64)
    if phi.ndim != 2 or not 1 <= k <= len(phi):
        raise ValueError(f"select_diverse: expected features (N, d) and 1 <= k <= N, got {phi.shape} and k={k}")
    a_inv = np.eye(phi.shape[1]) / lam
    chosen: list[int] = []
    for _ in range(k):
        scores = np.einsum("ij,jk,ik->i", phi, a_inv, phi)
        scores[chosen] = -np.inf
        best = int(np.argmax(scores))  # first maximiser: lowest index on ties
        chosen.append(best)
        a_inv = sherman_morrison(a_inv, phi[best])
    return chosen


@register_bonus("repexp")
class RepExp(Bonus):
    """Representation-based elliptical bonus (module docstring).

    Args:
        lam: ridge lambda (0.01, RepExp).
        scope: "group" (fresh per group, the RepExp RL recipe) or "global" (persistent A^-1, updated by `update`).
        kind: "leverage", "loo" or "prior" ("prior" needs scope "global").
        center: subtract the group mean (group scope) or the running mean (global scope).
        proj_dim: sparse random projection to this many dims when the input is wider (32, RepExp on MATH).
        normalize: "none" (RepExp), "std" (divide by the batch std) or "zscore".
        group_key: `infos` entry with the group id of each transition, `(T, N)` ints.
    """

    family = "novelty"
    state_attributes = ("projection", "cov_inverse", "mean", "n_seen")

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, device: str | torch.device = "cpu",
                 seed: int | None = None, lam: float = 0.01, scope: Literal["group", "global"] = "group",
                 kind: Literal["leverage", "loo", "prior"] = "leverage", center: bool = True, proj_dim: int | None = 32,
                 normalize: Literal["none", "std", "zscore"] = "none", group_key: str = "group_ids") -> None:
        super().__init__(observation_space, action_space, device, seed)
        for value, allowed, what in ((scope, ("group", "global"), "scope"), (kind, ("leverage", "loo", "prior"), "kind"),
                                     (normalize, ("none", "std", "zscore"), "normalize")):
            if value not in allowed:
                raise ValueError(f"bonus 'repexp': {what} must be one of {allowed}, got {value!r}")
        if kind == "prior" and scope != "global":
            raise ValueError("bonus 'repexp': kind='prior' needs scope='global' (a group has no earlier features)")
        if lam <= 0:
            raise ValueError(f"bonus 'repexp': lam must be > 0, got {lam}")
        self.lam, self.scope, self.kind, self.center = float(lam), scope, kind, bool(center)
        self.normalize, self.group_key = normalize, group_key
        in_dim = int(observation_space.n) if isinstance(observation_space, gym.spaces.Discrete) else int(
            np.prod(observation_space.shape))
        #: (in_dim, d) fixed projection, or None (identity)
        self.projection = None
        if proj_dim is not None and in_dim > proj_dim:
            density = 1.0 / np.sqrt(in_dim)
            signs = self.np_rng.choice([-1.0, 0.0, 1.0], size=(in_dim, proj_dim),
                                       p=[density / 2, 1 - density, density / 2])
            self.projection = signs * np.sqrt(1.0 / (density * proj_dim))
        dim = in_dim if self.projection is None else int(proj_dim)
        self.cov_inverse = np.eye(dim) / self.lam  # global scope only
        self.mean = np.zeros(dim)
        self.n_seen = 0
        #: mean within-group std of the last compute (diagnostic of the per-group degeneracy)
        self.last_group_std = float("nan")

    # ----------------------------------------------------------------------------------------- features
    def features(self, batch: Transitions) -> np.ndarray:
        """(T*N, d) float64 projected features of `next_obs` (not centred)."""
        t, n = self.validate(batch)
        obs = to_numpy(batch.next_obs)
        if isinstance(self.observation_space, gym.spaces.Discrete):
            phi = np.eye(self.observation_space.n)[obs.reshape(-1).astype(np.int64)]
        else:
            phi = obs.reshape(t * n, -1).astype(np.float64)
        return phi if self.projection is None else phi @ self.projection

    def _groups(self, batch: Transitions) -> np.ndarray:
        t, n = batch.dones.shape[:2]
        if self.group_key not in batch.infos:
            return np.zeros(t * n, dtype=np.int64)
        groups = to_numpy(batch.infos[self.group_key])
        if groups.shape != (t, n):
            self._fail(f"infos[{self.group_key!r}] of shape (T, N) = {(t, n)}", f"shape {groups.shape}")
        return groups.reshape(-1)

    def _score(self, phi: np.ndarray, a_inv: np.ndarray | None) -> np.ndarray:
        if a_inv is not None:  # prior: under the earlier features only
            return np.einsum("ij,jk,ik->i", phi, a_inv, phi)
        lev = leverages(phi, self.lam)
        return lev / (1.0 - lev) if self.kind == "loo" else lev

    # --------------------------------------------------------------------------------------- contract
    def compute(self, batch: Transitions) -> np.ndarray:
        t, n = batch.dones.shape[:2] if hasattr(batch.dones, "shape") else np.shape(batch.dones)
        phi = self.features(batch)
        bonus = np.zeros(len(phi))
        if self.scope == "global":
            centred = phi - self.mean if self.center else phi
            if self.kind == "prior":
                bonus = self._score(centred, self.cov_inverse)
            else:  # the batch joins the earlier features: A = A_prev + Phi^T Phi
                a_inv_prev = self.cov_inverse
                a = np.linalg.inv(a_inv_prev) + centred.T @ centred
                lev = np.einsum("ij,ji->i", centred, np.linalg.solve(a, centred.T))
                bonus = lev / (1.0 - lev) if self.kind == "loo" else lev
            self.last_group_std = float(bonus.std())
        else:
            groups = self._groups(batch)
            stds = []
            for g in np.unique(groups):
                idx = np.flatnonzero(groups == g)
                members = phi[idx] - phi[idx].mean(0) if self.center else phi[idx]
                bonus[idx] = self._score(members, None)
                if len(idx) > 1:
                    stds.append(bonus[idx].std())
            self.last_group_std = float(np.mean(stds)) if stds else float("nan")
            if stds and self.last_group_std < DEGENERATE_STD:
                warnings.warn(f"bonus 'repexp': within-group bonus spread {self.last_group_std:.2e} < {DEGENERATE_STD}"
                              " (leverage of centred groups collapses to 1 - 1/G; see llm_adapters.md §5.3)",
                              RuntimeWarning, stacklevel=2)
        if self.normalize != "none":
            spread = bonus.std() + 1e-8
            bonus = (bonus - bonus.mean()) / spread if self.normalize == "zscore" else bonus / spread
        return bonus.reshape(t, n).astype(np.float32)

    def update(self, batch: Transitions) -> dict[str, float]:
        phi = self.features(batch)
        if self.scope == "global":
            for row in phi:  # running mean first, so each inserted feature is centred like at scoring time
                self.n_seen += 1
                self.mean += (row - self.mean) / self.n_seen
                self.cov_inverse = sherman_morrison(self.cov_inverse, row - self.mean if self.center else row)
            self.cov_inverse = 0.5 * (self.cov_inverse + self.cov_inverse.T)
        return {"group_std": self.last_group_std if np.isfinite(self.last_group_std) else 0.0,
                "features_seen": float(self.n_seen)}
