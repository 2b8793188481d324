"""ICM: Pathak et al., "Curiosity-driven Exploration by Self-supervised Prediction" (ICML 2017, arXiv 1705.05363).

The bonus of transition `(s_t, a_t, s_{t+1})` is the error of a forward model predicting `phi(s_{t+1})` from
`(phi(s_t), onehot(a_t))`, in a feature space phi trained by inverse dynamics. Spec: shared/specs/icm.md.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from explore_bench.bonuses.base import Transitions
from explore_bench.bonuses.inverse_dynamics import InverseDynamicsBonus, forward_loss
from explore_bench.bonuses.networks import mlp, orthogonal_init
from explore_bench.bonuses.registry import register_bonus


@register_bonus("icm")
class ICM(InverseDynamicsBonus):
    """Intrinsic Curiosity Module.

    Networks (icm.md §2): encoder phi from `make_encoder` with ELU (MLP `F -> 64 -> 64 -> 32` on vectors and
    one-hot codes; on Atari-size images the Nature conv net and a linear layer to 288 features, the
    reference's feature size); inverse head `concat(phi_t, phi_t1) -> hidden -> |A|` logits (an MSE
    regression head for Box actions); forward head `concat(phi_t, onehot(a_t)) -> hidden -> feature_dim`
    (Box actions enter as raw values).

    Loss `(1 - beta) L_I + beta L_F` with `L_F = 0.5 sum_j (phi_hat_t1 - phi_t1)_j^2` per sample; the
    bonus is `eta * L_F` under `torch.no_grad()`. By default (the reference) the forward loss trains phi
    through both phi_t and phi_t1; `detach_forward_target=True` stops the gradient through the target.

    Args:
        eta: bonus scale (1.0 by default: raw scale, normalised by the agent; the reference uses 0.01
            with no reward normalisation, the `paper` preset).
        beta: weight of the forward loss (0.2).
        detach_forward_target: stop-gradient on phi_t1 in L_F (default False, as the reference).
        feature_dim, hidden, lr, n_epochs, n_minibatches, max_grad_norm, normalize_obs, encoder (keyword
            arguments passed on): see
            `InverseDynamicsBonus` (defaults 32 / 64 / 3e-4 on CPU-scale inputs, 288 / 256 / 1e-4 on
            Atari-size images; whitening off as in the reference).
    """

    family = "novelty"
    atari_feature_dim = 288

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        device: str | torch.device = "cpu",
        seed: int | None = None,
        eta: float = 1.0,
        beta: float = 0.2,
        detach_forward_target: bool = False,
        **model_kwargs,
    ) -> None:
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"bonus 'icm': beta must be in [0, 1], got {beta}")
        self.eta = float(eta)
        self.beta = float(beta)
        self.detach_forward_target = bool(detach_forward_target)
        super().__init__(observation_space, action_space, device, seed, **model_kwargs)

    def build_heads(self) -> None:
        d = self.feature_dim
        self.forward_model = orthogonal_init(mlp([d + self.model.action_dim, self.hidden, d], nn.ReLU))

    def trainable_modules(self) -> list[nn.Module]:
        return [self.model, self.forward_model]

    def forward_losses(self, phi_t: torch.Tensor, actions: torch.Tensor, phi_t1: torch.Tensor) -> torch.Tensor:
        """Per-sample `L_F` `(B,)` of features `phi_t`, `phi_t1` and actions `(B, *act_shape)`."""
        pred = self.forward_model(torch.cat([phi_t, self.model.action_code(actions)], dim=-1))
        return forward_loss(pred, phi_t1)

    def training_losses(self, x: torch.Tensor, x1: torch.Tensor, actions: torch.Tensor) -> dict[str, torch.Tensor]:
        phi_t, phi_t1 = self.model(x), self.model(x1)
        inverse, correct = self.model.inverse_loss(phi_t, phi_t1, actions)
        target = phi_t1.detach() if self.detach_forward_target else phi_t1
        inverse, forward = inverse.mean(), self.forward_losses(phi_t, actions, target).mean()
        loss = (1.0 - self.beta) * inverse + self.beta * forward
        return {"loss": loss, "inverse_loss": inverse, "forward_loss": forward, "inverse_accuracy": correct.mean()}

    @torch.no_grad()
    def compute(self, batch: Transitions) -> np.ndarray:
        data = self.prepare(batch)
        if data.dones.numel() == 0:
            return np.zeros(data.shape, np.float32)
        # Transitions.next_obs at a done step is the true terminal observation, so every row is a real
        # transition (icm.md pitfall 3); the reset observation only ever appears as a later obs_t.
        phi_t = self.embed(data.obs.flatten(0, 1))
        phi_t1 = self.embed(data.next_obs.flatten(0, 1))
        bonus = self.eta * self.forward_losses(phi_t, data.actions.flatten(0, 1), phi_t1)
        return bonus.reshape(data.shape).cpu().numpy().astype(np.float32)
