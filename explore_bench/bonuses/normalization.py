"""Running statistics shared by the bonuses and the agent integration.

- `RunningMeanStd`: mean/variance with the parallel (Chan et al.) update, as a torch module so it lands in
  `state_dict`.
- `ObservationNormalizer`: per-feature whitening `clip((x - mean) / std, -5, 5)` of the inputs a bonus's
  networks see (RND §2.2). Policies never see these statistics.
- `RewardForwardFilter` and `IntrinsicRewardNormalizer`: RND's division of intrinsic rewards by the
  running std of the discounted, non-episodic intrinsic return (RND §2.3). This lives outside the bonuses:
  the agent applies it so that every bonus is normalised the same way.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class RunningMeanStd(nn.Module):
    """Running mean and (population) variance over the leading batch dimension, in float64."""

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(epsilon, dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: torch.Tensor | np.ndarray) -> None:
        """Add a batch `x` of shape `(B, *shape)`."""
        x = torch.as_tensor(x, dtype=torch.float64, device=self.mean.device).reshape(-1, *self.mean.shape)
        if x.shape[0] == 0:
            return
        batch_mean = x.mean(0)
        batch_var = x.var(0, unbiased=False)
        batch_count = x.shape[0]
        delta = batch_mean - self.mean
        total = self.count + batch_count
        self.mean += delta * batch_count / total
        m2 = self.var * self.count + batch_var * batch_count + delta.pow(2) * self.count * batch_count / total
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    @property
    def std(self) -> torch.Tensor:
        return self.var.sqrt()


class ObservationNormalizer(nn.Module):
    """Whitens inputs per feature with running statistics and clips to `[-clip, clip]`."""

    def __init__(self, shape: tuple[int, ...], clip: float = 5.0, epsilon: float = 1e-8) -> None:
        super().__init__()
        self.rms = RunningMeanStd(shape)
        self.clip = clip
        self.epsilon = epsilon

    def update(self, x: torch.Tensor) -> None:
        self.rms.update(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = self.rms.mean.to(x.dtype)
        std = (self.rms.var + self.epsilon).sqrt().to(x.dtype)
        return ((x - mean) / std).clamp(-self.clip, self.clip)


class RewardForwardFilter:
    """Discounted running sum of rewards per env, never reset at episode ends (non-episodic)."""

    def __init__(self, gamma: float) -> None:
        self.gamma = gamma
        self.rewems: np.ndarray | None = None

    def update(self, rewards: np.ndarray) -> np.ndarray:
        rewards = np.asarray(rewards, dtype=np.float64)
        self.rewems = rewards.copy() if self.rewems is None else self.rewems * self.gamma + rewards
        return self.rewems


class IntrinsicRewardNormalizer:
    """Divides intrinsic rewards by the running std of the discounted intrinsic return (no mean subtraction).

    Call `normalize` once per rollout with the raw `(T, N)` bonus; the statistics are updated with this
    rollout first, as in RND's `ppo_agent.py`.
    """

    def __init__(self, gamma: float = 0.99) -> None:
        self.filter = RewardForwardFilter(gamma)
        self.return_rms = RunningMeanStd(())

    def normalize(self, rewards: np.ndarray) -> np.ndarray:
        rewards = np.asarray(rewards, dtype=np.float64)
        if rewards.ndim != 2:
            raise ValueError(f"IntrinsicRewardNormalizer: expected rewards of shape (T, N), got {rewards.shape}")
        returns = np.stack([self.filter.update(step) for step in rewards])  # sequential in time by definition
        self.return_rms.update(torch.from_numpy(returns.reshape(-1)))
        return (rewards / np.sqrt(float(self.return_rms.var) + 1e-8)).astype(np.float32)

    @property
    def std(self) -> float:
        return float(self.return_rms.var.sqrt())

    def state_dict(self) -> dict:
        return {"rewems": self.filter.rewems, "gamma": self.filter.gamma, "rms": self.return_rms.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.filter.gamma = state["gamma"]
        self.filter.rewems = None if state["rewems"] is None else np.array(state["rewems"])
        self.return_rms.load_state_dict(state["rms"])
