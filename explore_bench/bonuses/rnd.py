"""RND: Burda et al., "Exploration by Random Network Distillation" (ICLR 2019, arXiv 1810.12894).

The bonus of a transition is the mean squared error between a trained predictor and a frozen, randomly
initialised target network, both applied to the whitened next observation. Spec: shared/specs/rdd.md §3.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from explore_bench.bonuses.base import Bonus, Transitions
from explore_bench.bonuses.networks import EncoderKind, is_large_image_space, make_encoder, orthogonal_init
from explore_bench.bonuses.registry import register_bonus


def masked_mean(per_sample: torch.Tensor, proportion: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of `per_sample` over a Bernoulli(`proportion`) mask (RND §2.5); returns `(loss, mask)`.

    `loss = sum(mask * per_sample) / max(sum(mask), 1)`, so masked samples get exactly zero gradient.
    """
    mask = (torch.rand(per_sample.shape[0], generator=generator) < proportion).to(per_sample)
    return (per_sample * mask).sum() / mask.sum().clamp(min=1.0), mask


@register_bonus("rnd")
class RND(Bonus):
    """Random Network Distillation.

    Args:
        embedding_dim: output size d of target and predictor (512 for Atari, 64 otherwise by default).
        hidden: MLP width for vector / small-image inputs.
        lr: Adam learning rate of the predictor (1e-4 for Atari, 3e-4 otherwise by default).
        update_proportion: probability that a sample enters the predictor loss; default `min(1, 32 / N)`.
        n_epochs, n_minibatches: passes and minibatches per `update`, as the PPO update.
        max_grad_norm: gradient clipping of the predictor (None to disable).
        normalize_obs: whiten inputs with running statistics (RND §2.2).
        encoder: encoder kind ("auto" picks by observation space).
    """

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        device: str | torch.device = "cpu",
        seed: int | None = None,
        embedding_dim: int | None = None,
        hidden: int = 64,
        lr: float | None = None,
        update_proportion: float | None = None,
        n_epochs: int = 4,
        n_minibatches: int = 4,
        max_grad_norm: float | None = 0.5,
        normalize_obs: bool = True,
        encoder: EncoderKind = "auto",
    ) -> None:
        super().__init__(observation_space, action_space, device, seed, normalize_obs)
        atari = is_large_image_space(observation_space)
        self.embedding_dim = embedding_dim or (512 if atari else 64)
        self.update_proportion = update_proportion
        self.n_epochs = n_epochs
        self.n_minibatches = n_minibatches
        self.max_grad_norm = max_grad_norm
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            d = self.embedding_dim
            self.target = make_encoder(observation_space, d, hidden, nn.LeakyReLU, encoder).to(self.device)
            head = orthogonal_init(nn.Sequential(nn.ReLU(), nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d)))
            self.predictor = nn.Sequential(make_encoder(observation_space, d, hidden, nn.ReLU, encoder), head).to(self.device)
        self.target.requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.predictor.parameters(), lr=lr or (1e-4 if atari else 3e-4))

    def targets(self, x: torch.Tensor, stored_noise: torch.Tensor | None = None) -> torch.Tensor:
        """Regression targets of the predictor for whitened inputs `x` (RND: the frozen network's output)."""
        return self.target(x)

    def bonus_of(self, x: torch.Tensor) -> torch.Tensor:
        """Raw bonus of whitened inputs `x`, shape `(B,)`."""
        return self.bonus_from_prediction(self.predictor(x), x)

    def bonus_from_prediction(self, prediction: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Bonus `mean_j (prediction_j - f_tgt(x)_j)^2` of a prediction `(B, d)` for whitened inputs `x`."""
        return (prediction - self.target(x)).pow(2).mean(-1)

    @torch.no_grad()
    def compute(self, batch: Transitions) -> np.ndarray:
        data = self.prepare(batch)
        x = self.normalize(data.next_obs.flatten(0, 1))
        return self.bonus_of(x).reshape(data.shape).cpu().numpy().astype(np.float32)

    def update(self, batch: Transitions) -> dict[str, float]:
        data = self.prepare(batch)
        # Statistics are updated after the rollout's bonuses were computed, before training (RND ppo_agent.step).
        self.update_obs_stats(data.next_obs)
        x = self.normalize(data.next_obs.flatten(0, 1))
        noise = self.draw_stored_noise(x.shape[0])
        p = self.update_proportion if self.update_proportion is not None else min(1.0, 32 / data.shape[1])
        losses = []
        for idx in self.minibatches(x.shape[0], self.n_epochs, self.n_minibatches):
            per_sample = (self.predictor(x[idx]) - self.targets(x[idx], None if noise is None else noise[idx])).pow(2).mean(-1)
            loss, _ = masked_mean(per_sample, p, self.torch_rng)
            self.optimizer.zero_grad()
            loss.backward()
            if self.max_grad_norm is not None:
                nn.utils.clip_grad_norm_(self.predictor.parameters(), self.max_grad_norm)
            self.optimizer.step()
            losses.append(loss.item())
        return {"loss": float(np.mean(losses)) if losses else math.nan}

    def draw_stored_noise(self, size: int) -> torch.Tensor | None:
        """Per-visit target noise stored for the whole update (RDD's `per_visit` mode); RND has none."""
        return None
