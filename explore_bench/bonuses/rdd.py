"""RDD: Fang et al., "Exploration by Random Distribution Distillation" (arXiv 2505.11044).

RND with a random target *distribution*: each time a state enters the predictor's loss, the regression
target is a fresh draw `mu(s) + sigma(s) * eps`, `eps ~ N(0, I_d)`, around the frozen random network `mu`.
The least-squares predictor converges to the mean of the draws seen at `s`, so the bonus
`b(s) = (1/d) ||f(s) - mu(s)||^2` (measured against the mean, never the draw) estimates `sigma^2 / n(s)`.
Spec: shared/specs/rdd.md §4.
"""

from __future__ import annotations

import copy

import gymnasium as gym
import torch
from torch import nn
from torch.nn import functional as F

from explore_bench.bonuses.networks import orthogonal_init
from explore_bench.bonuses.registry import register_bonus
from explore_bench.bonuses.rnd import RND

SIGMA_FLOOR = 1e-3


class ScaledTarget(nn.Module):
    """The frozen target `mu = scale * net(x)`; `scale` is fitted once so that the RMS of `mu` is `mu_scale`."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("scale", torch.tensor(1.0))
        self.register_buffer("fitted", torch.tensor(False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) * self.scale

    @torch.no_grad()
    def fit(self, x: torch.Tensor, rms: float) -> None:
        """Set `scale` so that `sqrt(mean(mu(x)^2))` over samples and dimensions equals `rms`, then freeze it."""
        raw_rms = self.net(x).pow(2).mean().sqrt()
        self.scale.copy_(rms / raw_rms.clamp(min=1e-8))
        self.fitted.fill_(True)


@register_bonus("rdd")
class RDD(RND):
    """Random Distribution Distillation (RND with a Gaussian target around the frozen network).

    Args (besides RND's):
        sigma: std of the target draws (paper: 1). With `sigma=0` training is exactly RND's.
        sigma_mode: "constant" (paper) or "net": `sigma(s) = sigma * max(softplus(g(s)), 1e-3)` per dimension,
            `g` a frozen random encoder (ablation only).
        noise_mode: "per_update" draws a fresh `eps` every time a sample enters a loss (every epoch and
            minibatch); "per_visit" draws it once per transition per `update` call and reuses it in every
            epoch of that call (spec §4.3; a transition replayed in a later call gets a new draw there).
        bonus_form: "sq" (paper Eq. 11): `b = (1/d)||f - mu||^2`, decays ~ 1/n; "sqrt": `sqrt(b)/sigma`
            (per-dimension `sigma(s)` in "net" mode), decays ~ 1/sqrt(n).
        mu_scale: rescale `mu` by one number so that its RMS per dimension is `mu_scale`, measured on the
            first `warm_up` batch, else the first `update` batch, then frozen (stored in `target.scale`).
            None keeps the raw target (the RND target). Until fitted, `mu` is the raw target.
        zero_init_predictor: zero the predictor's last layer, so an unseen state's bonus starts at
            `(1/d)||mu(s)||^2` (~ `mu_scale^2`).
    """

    #: at most this many samples of the first batch are used to fit the scale of `mu`
    mu_fit_samples: int = 2048

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        device: str | torch.device = "cpu",
        seed: int | None = None,
        sigma: float = 1.0,
        sigma_mode: str = "constant",
        noise_mode: str = "per_update",
        bonus_form: str = "sq",
        mu_scale: float | None = 1.0,
        zero_init_predictor: bool = True,
        **rnd_kwargs,
    ) -> None:
        checks = {
            "sigma >= 0": sigma >= 0,
            "sigma_mode in ('constant', 'net')": sigma_mode in ("constant", "net"),
            "noise_mode in ('per_update', 'per_visit')": noise_mode in ("per_update", "per_visit"),
            "bonus_form in ('sq', 'sqrt')": bonus_form in ("sq", "sqrt"),
            "mu_scale None or > 0": mu_scale is None or mu_scale > 0,
            "sigma > 0 for bonus_form='sqrt' (it divides by sigma)": bonus_form != "sqrt" or sigma > 0,
        }
        for expected, ok in checks.items():
            if not ok:
                raise ValueError(
                    f"bonus 'rdd': expected {expected}, got sigma={sigma!r}, sigma_mode={sigma_mode!r}, "
                    f"noise_mode={noise_mode!r}, bonus_form={bonus_form!r}, mu_scale={mu_scale!r}"
                )
        # RND builds target and predictor from `seed` exactly as it does for itself (sigma=0 parity, T-D6).
        super().__init__(observation_space, action_space, device, seed, **rnd_kwargs)
        self.sigma = float(sigma)
        self.sigma_mode = sigma_mode
        self.noise_mode = noise_mode
        self.bonus_form = bonus_form
        self.mu_scale = mu_scale
        self.sigma_net = None
        if sigma_mode == "net":  # the target's architecture with its own frozen random weights
            self.sigma_net = copy.deepcopy(self.target)
            with torch.random.fork_rng():
                torch.manual_seed(self.seed + 1)
                orthogonal_init(self.sigma_net)
        self.target = ScaledTarget(self.target).to(self.device)
        if zero_init_predictor:
            last = self.predictor[-1][-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    # ---------------------------------------------------------- distribution
    def mu(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of the target distribution at whitened inputs `x`, `(B, d)`."""
        return self.target(x)

    def sigma_of(self, x: torch.Tensor) -> torch.Tensor | float:
        """Target std at `x`: the constant `sigma`, or a `(B, d)` tensor in "net" mode."""
        if self.sigma_net is None:
            return self.sigma
        return self.sigma * F.softplus(self.sigma_net(x)).clamp(min=SIGMA_FLOOR)

    def sample_noise(self, size: int) -> torch.Tensor:
        """`size` standard normal vectors `(size, d)` from the bonus's own generator."""
        return torch.randn(size, self.embedding_dim, generator=self.torch_rng).to(self.device)

    def targets(self, x: torch.Tensor, stored_noise: torch.Tensor | None = None) -> torch.Tensor:
        """Regression targets `mu(x) + sigma(x) * eps`, with `eps = stored_noise` or fresh draws.

        With `sigma = 0` no noise is drawn, so the generator is consumed exactly as RND consumes it.
        """
        mu = self.mu(x)
        if self.sigma == 0:
            return mu
        eps = stored_noise if stored_noise is not None else self.sample_noise(x.shape[0])
        return mu + self.sigma_of(x) * eps.to(mu)

    def draw_stored_noise(self, size: int) -> torch.Tensor | None:
        if self.noise_mode != "per_visit" or self.sigma == 0:
            return None
        return self.sample_noise(size)

    # ---------------------------------------------------------------- bonus
    def bonus_from_prediction(self, prediction: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """`b = (1/d)||prediction - mu(x)||^2` ("sq") or `sqrt(mean_j (residual_j / sigma_j)^2)` ("sqrt")."""
        residual2 = (prediction - self.mu(x)).pow(2)
        if self.bonus_form == "sq":
            return residual2.mean(-1)
        return (residual2 / self.sigma_of(x) ** 2).mean(-1).sqrt()

    # ---------------------------------------------------------- statistics
    def update_obs_stats(self, obs: torch.Tensor) -> None:
        """Update the input whitening, then fit the scale of `mu` on the first batch ever seen here.

        Both `warm_up` and `update` pass their observations through this method, so the first `warm_up`
        batch fits the scale when there is one, else the first `update` batch.
        """
        super().update_obs_stats(obs)
        if self.mu_scale is not None and not bool(self.target.fitted):
            x = self.normalize(obs.reshape(-1, *self._obs_shape())[: self.mu_fit_samples])
            self.target.fit(x, self.mu_scale)
