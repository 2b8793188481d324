"""E3B: Henaff et al., "Exploration via Elliptical Episodic Bonuses" (NeurIPS 2022, arXiv 2210.05805).

Per env and per episode, the bonus of an observation is its elliptical norm `phi^T C^{-1} phi` under the
inverse covariance of the embeddings already seen in the episode; `C^{-1}` is maintained by Sherman-Morrison
rank-1 updates and reset to `I / lambda` at every episode end. phi is trained by inverse dynamics (the ICM
encoder and inverse head). Spec: shared/specs/counts.md §5.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from explore_bench.bonuses.base import ArrayLike, Transitions
from explore_bench.bonuses.inverse_dynamics import InverseDynamicsBonus
from explore_bench.bonuses.registry import register_bonus


@register_bonus("e3b")
class E3B(InverseDynamicsBonus):
    """Elliptical episodic bonus over inverse-dynamics embeddings.

    `compute(batch)` consumes the stream of the N envs in time order: for each step t and every env at once
    (batched `bmm` over an `(N, p, p)` tensor),

        b_t = h^T C^{-1} h,  h = phi(next_obs_t)        # C^{-1} BEFORE adding h (counts.md §5.3 pitfall 1)
        C^{-1} <- C^{-1} - u u^T / (1 + b_t),  u = C^{-1} h
        C^{-1} <- I / lambda where dones_t              # episode over: next_obs_t was its terminal obs

    With `zero_first_step=True` (the reference, which gives the first step of an episode no bonus) the first
    observation of each episode, `obs_t` at the first call and right after a done or `reset`, is inserted into
    `C^{-1}` with no reward before `next_obs_t` is scored; with False it is never inserted. The episodic
    state is created on the first `compute` (N from the batch; later batches must have the same N) and is
    saved by `state_dict`, so a round trip continues the stream exactly.

    Precision: `C^{-1}` is kept in float64. Its eigenvalues fall from `1/lambda = 10` towards
    `1/(lambda + n |phi|^2)` over long episodes, and float32 Sherman-Morrison updates accumulate rounding
    of order 1e-7 * 10 per step, comparable to the small eigenvalues after a few thousand steps (the matrix
    can lose positive-definiteness, giving negative bonuses). At p = 32 the float64 cost is negligible next
    to the encoder; the embeddings are computed in float32 and cast. `(M + M^T)/2` every `symmetrize_every`
    steps guards the remaining drift (pitfall 2).

    Args:
        ridge: lambda, the prior `C_0 = lambda I` (0.1).
        zero_first_step: insert each episode's first observation unrewarded (True, the reference).
        symmetrize_every: re-symmetrise the inverse covariances every this many steps (100).
        feature_dim: embedding size p (32 on every input; Atari-size images keep 32 to bound the
            `N p^2` memory and the O(p^2) per-step cost).
        hidden, lr, n_epochs, n_minibatches, max_grad_norm, normalize_obs, encoder (keyword arguments passed on): see
            `InverseDynamicsBonus`; `update` trains encoder and inverse head on the inverse loss only.
    """

    family = "novelty"
    state_attributes = ("cov_inverse", "episode_start", "steps")

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        device: str | torch.device = "cpu",
        seed: int | None = None,
        ridge: float = 0.1,
        zero_first_step: bool = True,
        symmetrize_every: int = 100,
        **model_kwargs,
    ) -> None:
        if ridge <= 0:
            raise ValueError(f"bonus 'e3b': ridge must be > 0, got {ridge}")
        super().__init__(observation_space, action_space, device, seed, **model_kwargs)
        self.ridge = float(ridge)
        self.zero_first_step = bool(zero_first_step)
        self.symmetrize_every = int(symmetrize_every)
        #: (N, p, p) float64 inverse covariance of each env's current episode; None before the first compute
        self.cov_inverse: torch.Tensor | None = None
        #: (N,) bool, True where the env's next obs_t starts an episode
        self.episode_start: torch.Tensor | None = None
        #: steps consumed since the state was created (drives the re-symmetrisation)
        self.steps = 0

    # ----------------------------------------------------------- episodic state
    @property
    def n_envs(self) -> int | None:
        return None if self.cov_inverse is None else int(self.cov_inverse.shape[0])

    def _prior(self, n: int) -> torch.Tensor:
        eye = torch.eye(self.feature_dim, dtype=torch.float64, device=self.device) / self.ridge
        return eye.expand(n, -1, -1).clone()

    def _ensure_state(self, n: int) -> None:
        if self.cov_inverse is None:
            self.cov_inverse = self._prior(n)
            self.episode_start = torch.ones(n, dtype=torch.bool, device=self.device)
            self.steps = 0
        elif n != self.n_envs:
            self._fail(f"batches from the same {self.n_envs} envs as the first compute (N = {self.n_envs})", f"N = {n}")

    def reset(self, mask: ArrayLike | None = None) -> None:
        """Start a new episode (`C^{-1} = I / lambda`) for the envs where `mask` is True (all when None)."""
        if self.cov_inverse is None:
            return  # nothing stored yet: the state is created fresh on the first compute
        n = self.n_envs
        if mask is None:
            mask = torch.ones(n, dtype=torch.bool, device=self.device)
        mask = torch.as_tensor(mask, device=self.device)
        if tuple(mask.shape) != (n,):
            self._fail(f"a reset mask of shape ({n},)", f"shape {tuple(mask.shape)}")
        mask = mask.bool()
        self.cov_inverse = torch.where(mask[:, None, None], self._prior(n), self.cov_inverse)
        self.episode_start = self.episode_start | mask

    def _insert(self, h: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Elliptical bonus of `h` `(N, p)` and Sherman-Morrison update of the envs in `mask` (all if None)."""
        u = torch.bmm(self.cov_inverse, h.unsqueeze(-1)).squeeze(-1)  # C^{-1} h (C^{-1} is symmetric)
        b = (h * u).sum(-1)
        scale = 1.0 / (1.0 + b)
        if mask is not None:
            scale = scale * mask
        self.cov_inverse = self.cov_inverse - scale[:, None, None] * u.unsqueeze(-1) * u.unsqueeze(-2)
        return b

    # ---------------------------------------------------------------- contract
    @torch.no_grad()
    def compute(self, batch: Transitions) -> np.ndarray:
        data = self.prepare(batch)
        t_len, n = data.shape
        self._ensure_state(n)
        if t_len == 0:
            return np.zeros((0, n), np.float32)
        h_next = self.embed(data.next_obs.flatten(0, 1)).double().reshape(t_len, n, -1)
        # An env starts an episode at t if it did at the end of the last call (t = 0) or was done at t - 1.
        starts = torch.cat([self.episode_start[None], data.dones[:-1]], dim=0)
        if self.zero_first_step and starts.any():
            h_first = torch.zeros_like(h_next)
            h_first[starts] = self.embed(data.obs[starts]).double()  # only the episodes' first observations
        prior = self._prior(n)
        bonus = torch.empty(t_len, n, dtype=torch.float64, device=self.device)
        # which steps have any episode start / end, read once (no per-step device sync)
        any_start, any_done = starts.any(1).tolist(), data.dones.any(1).tolist()
        for t in range(t_len):  # the recursion is sequential in time; all envs step together
            if self.zero_first_step and any_start[t]:
                self._insert(h_first[t], starts[t])
            bonus[t] = self._insert(h_next[t])
            self.steps += 1
            if self.steps % self.symmetrize_every == 0:
                self.cov_inverse = 0.5 * (self.cov_inverse + self.cov_inverse.transpose(1, 2))
            if any_done[t]:
                self.cov_inverse = torch.where(data.dones[t][:, None, None], prior, self.cov_inverse)
        self.episode_start = data.dones[-1].clone()
        return bonus.float().cpu().numpy()
