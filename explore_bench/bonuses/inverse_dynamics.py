"""Inverse-dynamics feature learning shared by ICM and E3B.

An encoder phi is trained to predict which action caused `s_t -> s_{t+1}` from `(phi(s_t), phi(s_{t+1}))`
(Pathak et al. 2017, shared/specs/icm.md §2-3; Henaff et al. 2022 reuse it for E3B, counts.md §5). Features
that actions cannot influence get no incentive to be encoded.

- `InverseDynamicsModel`: the encoder (ELU, from `make_encoder`) and the inverse head
  `concat(phi_t, phi_t1) -> hidden -> ReLU -> out`. Discrete actions: `|A|` logits and cross-entropy;
  MultiDiscrete: one logit block per component, cross-entropy summed over components; Box actions: an MSE
  regression head (mean over action dims) since there is no class to predict.
- `InverseDynamicsBonus`: a `Bonus` base that owns the model, its Adam optimiser and the minibatch training
  loop. Subclasses add heads (`build_heads`, `trainable_modules`) and loss terms (`training_losses`).
"""

from __future__ import annotations

import math

import gymnasium as gym
import torch
from torch import nn
from torch.nn import functional as F

from explore_bench.bonuses.base import Bonus, TensorBatch, Transitions
from explore_bench.bonuses.networks import EncoderKind, is_large_image_space, make_encoder, mlp, orthogonal_init


def forward_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """ICM's per-sample forward loss `0.5 * sum_j (pred_j - target_j)^2`, shape `(B,)` (icm.md §3, pitfall 4)."""
    return 0.5 * (pred - target).pow(2).sum(-1)


class InverseDynamicsModel(nn.Module):
    """Encoder phi plus inverse head, for any observation space `make_encoder` handles."""

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        feature_dim: int,
        hidden: int,
        encoder: EncoderKind = "auto",
    ) -> None:
        super().__init__()
        self.action_space = action_space
        self.feature_dim = feature_dim
        if isinstance(action_space, gym.spaces.Discrete):
            self.action_sizes = [int(action_space.n)]
        elif isinstance(action_space, gym.spaces.MultiDiscrete):
            self.action_sizes = [int(n) for n in action_space.nvec.reshape(-1)]
        else:  # Box
            self.action_sizes = []
        self.continuous = not self.action_sizes
        #: width of the action code fed to a forward model: one-hot blocks, or the flattened Box action
        self.action_dim = sum(self.action_sizes) if self.action_sizes else math.prod(action_space.shape)
        self.encoder = make_encoder(observation_space, feature_dim, hidden, nn.ELU, encoder)
        self.inverse_head = orthogonal_init(mlp([2 * feature_dim, hidden, self.action_dim], nn.ReLU))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """phi(x): `(B, *obs_shape) -> (B, feature_dim)`."""
        return self.encoder(x)

    def action_code(self, actions: torch.Tensor) -> torch.Tensor:
        """Actions `(B, *act_shape)` as the forward model's fixed input: one-hot (blocks) or raw floats."""
        if self.continuous:
            return actions.reshape(actions.shape[0], -1).float()
        codes = actions.long().reshape(actions.shape[0], -1)
        return torch.cat([F.one_hot(codes[:, i], n).float() for i, n in enumerate(self.action_sizes)], dim=-1)

    def inverse_loss(
        self, phi_t: torch.Tensor, phi_t1: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample inverse loss `(B,)` and per-sample correctness `(B,)` (NaN for Box actions)."""
        out = self.inverse_head(torch.cat([phi_t, phi_t1], dim=-1))
        if self.continuous:
            target = actions.reshape(actions.shape[0], -1).float()
            return (out - target).pow(2).mean(-1), torch.full_like(out[:, 0], math.nan)
        codes = actions.long().reshape(actions.shape[0], -1)
        losses, correct = [], []
        for i, logits in enumerate(out.split(self.action_sizes, dim=-1)):
            losses.append(F.cross_entropy(logits, codes[:, i], reduction="none"))
            correct.append(logits.argmax(-1) == codes[:, i])
        return torch.stack(losses).sum(0), torch.stack(correct).all(0).float()


class InverseDynamicsBonus(Bonus):
    """Base of bonuses whose features are trained by inverse dynamics (ICM, E3B); not registered itself.

    Args:
        feature_dim: size of phi (default 32; 288 for Atari-size images when `atari_feature_dim` applies).
        hidden: width of the encoder MLP and of the heads (64 CPU / 256 Atari-size by default).
        lr: Adam learning rate (3e-4 CPU / 1e-4 Atari-size by default, icm.md §4).
        n_epochs, n_minibatches: passes and minibatches per `update`, as the PPO update.
        max_grad_norm: gradient-norm clip (40, the ICM reference's GRAD_NORM_CLIP; None disables).
        normalize_obs: whiten Box inputs with running statistics (off by default, as the references);
            when off, uint8 Box observations (pixels) are scaled to [0, 1] as the ICM reference does.
        encoder: encoder kind ("auto" picks by observation space).
    """

    #: default feature size for Atari-size images (None: keep the CPU default of 32)
    atari_feature_dim: int | None = None

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        device: str | torch.device = "cpu",
        seed: int | None = None,
        feature_dim: int | None = None,
        hidden: int | None = None,
        lr: float | None = None,
        n_epochs: int = 4,
        n_minibatches: int = 4,
        max_grad_norm: float | None = 40.0,
        normalize_obs: bool = False,
        encoder: EncoderKind = "auto",
    ) -> None:
        super().__init__(observation_space, action_space, device, seed, normalize_obs)
        atari = is_large_image_space(observation_space)
        self.feature_dim = int(feature_dim or (self.atari_feature_dim if atari and self.atari_feature_dim else 32))
        self.hidden = int(hidden or (256 if atari else 64))
        self.n_epochs = n_epochs
        self.n_minibatches = n_minibatches
        self.max_grad_norm = max_grad_norm
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            self.model = InverseDynamicsModel(observation_space, action_space, self.feature_dim, self.hidden, encoder)
            self.build_heads()
        for module in self.trainable_modules():
            module.to(self.device)
        params = [p for module in self.trainable_modules() for p in module.parameters()]
        self.optimizer = torch.optim.Adam(params, lr=lr or (1e-4 if atari else 3e-4))

    # ------------------------------------------------------------ subclass hooks
    def build_heads(self) -> None:
        """Create extra modules (called under the bonus's seed, before the optimiser is built)."""

    def trainable_modules(self) -> list[nn.Module]:
        return [self.model]

    def training_losses(self, x: torch.Tensor, x1: torch.Tensor, actions: torch.Tensor) -> dict[str, torch.Tensor]:
        """Scalar losses of one minibatch of whitened `(obs, next_obs)` and actions; `"loss"` is minimised."""
        inverse, correct = self.model.inverse_loss(self.model(x), self.model(x1), actions)
        inverse = inverse.mean()
        return {"loss": inverse, "inverse_loss": inverse, "inverse_accuracy": correct.mean()}

    # ----------------------------------------------------------------- helpers
    def embed(self, obs: torch.Tensor) -> torch.Tensor:
        """phi of raw float observations `(B, *obs_shape)` (whitened first when `normalize_obs` is on)."""
        return self.model(self.inputs(obs))


    def prepare(self, batch: Transitions) -> TensorBatch:
        data = super().prepare(batch)
        if not self.model.continuous:
            codes = data.actions.reshape(*data.shape, len(self.model.action_sizes))
            high = torch.as_tensor(self.model.action_sizes, device=codes.device)
            if (codes < 0).any() or (codes >= high).any():
                self._fail(f"actions in [0, {self.model.action_sizes})", "an out-of-range action")
        return data

    def update(self, batch: Transitions) -> dict[str, float]:
        data = self.prepare(batch)
        self.update_obs_stats(data.next_obs)
        x = self.inputs(data.obs.flatten(0, 1))
        x1 = self.inputs(data.next_obs.flatten(0, 1))
        actions = data.actions.flatten(0, 1)
        stats = self.fit_minibatches(
            x.shape[0], lambda idx: self.training_losses(x[idx], x1[idx], actions[idx]), self.optimizer,
            self.n_epochs, self.n_minibatches, self.max_grad_norm,
        )
        return stats or {"loss": math.nan}
