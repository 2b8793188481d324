"""BYOL-Hindsight: Jarrett et al., "Curiosity in Hindsight: Intrinsic Exploration in Stochastic Environments"
(ICML 2023, arXiv 2211.10515).

BYOL-Explore's predictor gets an extra input z, sampled by a generator that sees the realised future; a
contrastive critic keeps z independent of the past and the action, so z can carry only the unpredictable part
(the noise) and the remaining reconstruction error -- the reward -- reflects only learnable structure.
Spec: shared/specs/byol_hindsight.md §3.
"""

from __future__ import annotations

import math
from typing import Literal

import gymnasium as gym
import torch
from torch import nn

from explore_bench.bonuses.byol_explore import (
    BYOLExplore,
    Horizon,
    Sequence,
    normalized_sq_error,
)
from explore_bench.bonuses.networks import mlp, orthogonal_init
from explore_bench.bonuses.registry import register_bonus


def info_nce(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """InfoNCE of `(..., M, M)` score matrices S_ij = C(c_i, z_j) with positives on the diagonal.

    Returns the per-item terms `S_ii - logsumexp_j S_ij + log M` `(..., M)` and their mean I_NCE `(...)`
    (<= log M).
    """
    m = scores.shape[-1]
    terms = scores.diagonal(dim1=-2, dim2=-1) - torch.logsumexp(scores, dim=-1) + math.log(m)
    return terms, terms.mean(-1)


class ContrastiveCritic(nn.Module):
    """C(c, z): scores every (context, hindsight) pair of a batch, `(..., M, d_c), (..., M, d_z) -> (..., M, M)`,
    clamped to `[-clip, clip]`.

    `kind="separable"`: S_ij = <u(c_i), v(z_j)> / sqrt(d) with MLPs u, v (one matrix product for all M^2
    pairs). `kind="concat"`: S_ij = MLP([c_i, z_j]) (the spec's literal form; M^2 MLP evaluations).
    """

    def __init__(self, context_dim: int, z_dim: int, hidden: int, kind: str = "separable", embed_dim: int = 32, clip: float = 20.0) -> None:
        super().__init__()
        if kind not in ("separable", "concat"):
            raise ValueError(f"critic kind must be 'separable' or 'concat', got {kind!r}")
        self.kind = kind
        self.clip = float(clip)
        self.embed_dim = int(embed_dim)
        if kind == "separable":
            self.context_net = mlp([context_dim, hidden, hidden, embed_dim])
            self.z_net = mlp([z_dim, hidden, embed_dim])
        else:
            self.net = mlp([context_dim + z_dim, hidden, hidden, 1])
        orthogonal_init(self)

    def forward(self, context: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if self.kind == "separable":
            scores = self.context_net(context) @ self.z_net(z).transpose(-1, -2) / math.sqrt(self.embed_dim)
        else:
            m = context.shape[-2]
            lead = context.shape[:-2]
            pairs = torch.cat(
                [context.unsqueeze(-2).expand(*lead, m, m, -1), z.unsqueeze(-3).expand(*lead, m, m, -1)], -1
            )
            scores = self.net(pairs).squeeze(-1)
        return scores.clamp(-self.clip, self.clip)


@register_bonus("byol_hindsight")
class BYOLHindsight(BYOLExplore):
    """BYOL-Explore plus a hindsight representation z of the realised future, kept independent of the past.

    Added components (spec §3.2), all 2 x `hidden` MLPs: generator G [b_{t,k-1}, e(a_{t+k-1}), sg(wbar_{t+k}),
    xi] -> z (xi ~ N(0, I), `noise_dim`); reconstructor R [b_{t,k}, z] -> prediction of wbar_{t+k} (replaces
    BYOL-Explore's predictor g); critic C(c, z) with context c = [b_{t,k-1}, e(a_{t+k-1})].

    Objective (§3.3), per horizon k over the M valid items of a minibatch: L_rec(t, k) as BYOL-Explore's loss;
    I_NCE = mean_i [S_ii - logsumexp_j S_ij + log M], S_ij = C(c_i, z_j) clamped to |S| <= `score_clip`, the
    negatives being the other items' z at the same horizon (M = `contrastive_size` random items per horizon).
    Two optimisers alternate every minibatch, critic step first: the critic *maximises* sum_k I_NCE on
    detached (c, z) and only its parameters move; then the rest (generator, reconstructor, GRUs, action
    embedding, encoder) *minimises* L_rec + lambda * sum_k I_NCE with the critic frozen (no critic parameter
    changes), followed by the EMA target update. The invariance term is summed over horizons like L_rec is.

    Reward (§3.4): the raw hindsight uncertainty ellH_t = sum_{k=1..K} L_rec(t+1-k, k) with z drawn from G with
    fresh noise (never a training-time z), averaged over `n_z_samples` draws. Reward-time noise comes from a
    generator of its own (`reward_rng`), so computing rewards never changes the course of training. The reward
    normalisation, context carrying and indexing options are BYOL-Explore's (statistics per instance).

    Choices where the spec leaves one open:
    - `reward_includes_invariance=False` (default, as `DriesSmit/CuriousAgents`): the reward is the
      reconstruction loss only; True adds lambda times the per-item contrastive term of the compute batch's
      items at each horizon (as `rwickman/BYOL-Explore`).
    - `critic="separable"` (default): a dot-product critic, so the M x M score matrix is one matrix product
      and M >= 256 stays cheap on CPU; `"concat"` is the spec's literal MLP on [c, z] (M^2 evaluations).
    - `invariance_through_context=False` (default): the invariance gradient reaches the generator's
      parameters only: the critic reads the context detached, and the z it scores is G's output for the
      same draw with G's context inputs (b_{t,k-1}, e(a)) detached. Otherwise the model lowers the measured
      dependence most cheaply by making its states uninformative (the critic then sees a constant past), which
      collapses the representation: every reward falls towards 0, novel or not (pitfall 1, observed on TVGrid).
      True lets the invariance gradient into the context and G's inputs (the spec's literal "everything else").
    - G and C condition on (b_{t,k-1}, e(a_{t+k-1})), as both reimplementations (§7 item 4).

    Args:
        z_dim: N_z (16). noise_dim: N_xi (16).
        invariance_weight: lambda (1.0).
        critic_lr: critic Adam learning rate (default: the model's).
        critic, critic_dim: critic form and embedding size of the separable critic (32).
        score_clip: |S| clamp (20).
        n_z_samples: draws of xi averaged at reward time (1).
        contrastive_size: M, the contrastive batch per horizon (256): a random subset of the horizon's valid
            items in training when there are more; None: all of them (cost grows as their number squared).
        critic_steps: critic steps per minibatch before the model step (1: plain alternation).
        **kwargs: BYOL-Explore's arguments (horizon, ema, sizes, lr, seq_len, burn_in, ...).
    """

    family = "novelty"

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        device: str | torch.device = "cpu",
        seed: int | None = None,
        z_dim: int = 16,
        noise_dim: int = 16,
        invariance_weight: float = 1.0,
        critic_lr: float | None = None,
        critic: Literal["separable", "concat"] = "separable",
        critic_dim: int = 32,
        score_clip: float = 20.0,
        n_z_samples: int = 1,
        reward_includes_invariance: bool = False,
        invariance_through_context: bool = False,
        contrastive_size: int | None = 256,
        critic_steps: int = 1,
        **kwargs,
    ) -> None:
        if critic not in ("separable", "concat"):
            raise ValueError(f"bonus 'byol_hindsight': critic must be 'separable' or 'concat', got {critic!r}")
        if int(n_z_samples) < 1:
            raise ValueError(f"bonus 'byol_hindsight': n_z_samples must be >= 1, got {n_z_samples}")
        self.z_dim = int(z_dim)
        self.noise_dim = int(noise_dim)
        self.invariance_weight = float(invariance_weight)
        self.critic_kind = critic
        self.critic_dim = int(critic_dim)
        self.score_clip = float(score_clip)
        self.n_z_samples = int(n_z_samples)
        self.reward_includes_invariance = bool(reward_includes_invariance)
        self.invariance_through_context = bool(invariance_through_context)
        self.contrastive_size = None if contrastive_size is None else int(contrastive_size)
        self.critic_steps = int(critic_steps)
        super().__init__(observation_space, action_space, device, seed, **kwargs)
        #: noise of reward-time draws of z, apart from `torch_rng` (training)
        self.reward_rng = torch.Generator(device="cpu").manual_seed(self.seed + 1)
        self.critic.to(self.device)
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=critic_lr or self.optimizer.param_groups[0]["lr"])

    # ------------------------------------------------------------ heads
    def build_heads(self) -> None:
        n_b, n_w, n_a, h = self.gru_dim, self.embedding_dim, self.action_embedding.out_dim, self.hidden
        self.generator = orthogonal_init(mlp([n_b + n_a + n_w + self.noise_dim, h, h, self.z_dim]))
        self.reconstructor = orthogonal_init(mlp([n_b + self.z_dim, h, h, n_w]))
        self.critic = ContrastiveCritic(n_b + n_a, self.z_dim, h, self.critic_kind, self.critic_dim, self.score_clip)

    def model_modules(self) -> list[nn.Module]:
        return [self.encoder, self.action_embedding, self.closed_loop, self.open_loop, self.generator, self.reconstructor]

    def draw_noise(self, horizon: Horizon, training: bool) -> torch.Tensor:
        """Fresh xi ~ N(0, I) for every item of a horizon (from `reward_rng` outside training)."""
        rng = self.torch_rng if training else self.reward_rng
        return torch.randn((*horizon.states.shape[:-1], self.noise_dim), generator=rng).to(self.device)

    def sample_z(self, horizon: Horizon, noise: torch.Tensor, detach_context: bool = False) -> torch.Tensor:
        """z = G(b_{t,k-1}, e(a_{t+k-1}), sg(wbar_{t+k}), xi) for the noise `xi` given."""
        prev, act = horizon.prev_states, horizon.actions
        if detach_context:
            prev, act = prev.detach(), act.detach()
        return self.generator(torch.cat([prev, act, horizon.targets.detach(), noise], -1))

    def horizon_losses(self, horizon: Horizon, training: bool) -> torch.Tensor:
        draws = 1 if training else self.n_z_samples
        losses = 0.0
        for _ in range(draws):
            noise = self.draw_noise(horizon, training)
            z = self.sample_z(horizon, noise)
            losses = losses + normalized_sq_error(self.reconstructor(torch.cat([horizon.states, z], -1)), horizon.targets)
        losses = losses / draws
        horizon.extras["context"] = torch.cat([horizon.prev_states, horizon.actions], -1)
        # z as the invariance term sees it: by default the same draw with the context inputs of G detached, so
        # that this term shapes the generator only and never the world model's states (see the class docstring)
        through = self.invariance_through_context or not torch.is_grad_enabled()
        horizon.extras["z"] = z if through else self.sample_z(horizon, noise, detach_context=True)
        if not training and self.reward_includes_invariance and int(horizon.valid.sum()) >= 2:
            valid = horizon.valid
            context, zv = horizon.extras["context"][valid], z[valid]
            terms = torch.empty(context.shape[0], device=self.device)
            for g in self.groups(context.shape[0]):
                terms[g] = info_nce(self.critic(context[g], zv[g]))[0]
            losses = losses.clone()
            losses[valid] = losses[valid] + self.invariance_weight * terms
        return losses

    def groups(self, m: int) -> list[torch.Tensor]:
        """A random split of `range(m)` into groups of at least `contrastive_size` items (one group if fewer):
        the reward-time invariance term scores every item against the other items of its group."""
        if self.contrastive_size is None or m < 2 * self.contrastive_size:
            return [torch.arange(m, device=self.device)]
        order = torch.randperm(m, generator=self.reward_rng).to(self.device)
        return list(order.chunk(m // self.contrastive_size))

    # ------------------------------------------------------------ training
    def contrastive_pairs(self, horizons: list[Horizon]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per horizon, `(contexts, z)` of M >= 2 of its valid items.

        M = `contrastive_size`: a fresh random subset of the valid items when there are more (each item's
        negatives are the other z of the subset); the cost of the M x M scores stays fixed however long the
        batch, and every item is drawn in expectation.
        """
        pairs = []
        for h in horizons:
            context, z = h.extras["context"][h.valid], h.extras["z"][h.valid]
            m = context.shape[0]
            if m < 2:
                continue
            if self.contrastive_size is not None and m > self.contrastive_size:
                keep = torch.randperm(m, generator=self.torch_rng)[: self.contrastive_size].to(self.device)
                context, z = context[keep], z[keep]
            pairs.append((context, z))
        return pairs

    def invariance(self, pairs: list[tuple[torch.Tensor, torch.Tensor]], detach_context: bool, detach_z: bool) -> torch.Tensor:
        """sum_k I_NCE(k) over the horizons' pairs; pairs of equal M are scored in one batched critic call."""
        total = torch.zeros((), device=self.device)
        by_size: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        for pair in pairs:
            by_size.setdefault(pair[0].shape[0], []).append(pair)
        for same_size in by_size.values():
            context = torch.stack([c for c, _ in same_size])
            z = torch.stack([z for _, z in same_size])
            total = total + info_nce(self.critic(context.detach() if detach_context else context, z.detach() if detach_z else z))[1].sum()
        return total

    def critic_step(self, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, float]:
        """Maximise sum_k I_NCE over the critic's parameters only (context and z detached)."""
        if not pairs:
            return {}
        for _ in range(self.critic_steps):
            bound = self.invariance(pairs, detach_context=True, detach_z=True)
            self.critic_optimizer.zero_grad()
            (-bound).backward()
            self.clip_and_step(self.critic_optimizer, list(self.critic.parameters()))
        return {"critic_info_nce": float(bound.detach()) / len(pairs)}

    def model_step(self, horizons: list[Horizon], pairs: list[tuple[torch.Tensor, torch.Tensor]], lo: torch.Tensor, hi: torch.Tensor) -> dict[str, float]:
        """Minimise L_rec + lambda sum_k I_NCE over everything but the critic (frozen), then the EMA update."""
        rec, stats = self.sequence_loss(horizons, lo, hi)
        self.critic.requires_grad_(False)
        try:
            invariance = self.invariance(pairs, detach_context=not self.invariance_through_context, detach_z=False)
        finally:
            self.critic.requires_grad_(True)
        loss = rec + self.invariance_weight * invariance
        self.optimizer.zero_grad()
        loss.backward()
        self.clip_and_step(self.optimizer, self.model_parameters())
        self.update_target()
        stats = {"loss": float(loss.detach()), "rec_loss": stats["loss"], "pair_loss": stats["pair_loss"]}
        if pairs:
            stats["info_nce"] = float(invariance.detach()) / len(pairs)
            stats["log_m"] = sum(math.log(c.shape[0]) for c, _ in pairs) / len(pairs)
        return stats

    def train_step(self, windows: Sequence, lo: torch.Tensor, hi: torch.Tensor) -> dict[str, float]:
        horizons, _ = self.unroll(windows, lo, hi, training=True)
        pairs = self.contrastive_pairs(horizons)
        critic_stats = self.critic_step(pairs)
        return {**self.model_step(horizons, pairs, lo, hi), **critic_stats}
