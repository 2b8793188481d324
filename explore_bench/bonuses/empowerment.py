"""Empowerment as an exploration bonus: the variational bound (Mohamed & Rezende 2015) and InfoPower's estimate.

Empowerment of a state is the channel capacity from the next n actions to the state reached,
`E_n(s) = max_omega I(A^n; S_{t+n} | s)`. It measures control, not novelty: it does not decay with visits
(spec shared/specs/empowerment.md; exact values for small worlds: `empowerment_exact`). Two estimators:

- `estimator="variational"` (spec §3): a planner `q(a^n | s, s')`, a normalised distribution over the `|A|^n`
  action sequences trained by cross-entropy on features phi (the encoder of `InverseDynamicsModel`, trained by
  the planner), gives the Barber-Agakov bound `I >= E[log q(a^n | s, s') - log omega(a^n | s)]`. In the
  `branching` mode a learned source `omega(a^n | s)` is improved by the Blahut-Arimoto step (below).
- `estimator="infopower"` (spec §4, n = 1): `I(A_t; Z_{t+1} | Z_t)` on latents z trained for it. A critic
  `h(a, z_t, z_{t+1})` scores every action against the source's actions for the same z_t (a contrastive
  estimate whose negatives are all |A| actions weighted by the source: the M -> infinity limit of spec §3.4's
  InfoNCE, so it has neither negative-sampling noise nor the log M cap), and z is also trained by a
  contrastive forward term `I(Z_{t+1}; Z_t, A_t)` (CPC with in-batch negatives) so it keeps the dynamics.

Reward modes (`source`, spec §5.2), all in nats:

1. `policy_source` (InfoPower's `e_t`): `r_t = log q(a_t | s_t, s_{t+1}) - log pi_old(a_t | s_t)`.
2. `uniform_source`: `r_t = w_t (log q_u(a_t | s_t, s_{t+1}) + log |A|)`, `w_t = clip((1/|A|) / pi_old, 0, clip)`;
   q_u is trained on importance-weighted data, so its mean is I under a uniform source (a lower bound on E_1).
3. `state_value`: `r_t = E_hat(s_{t+1})`, a value head regressed on the samples of mode 1 or 2 (`value_source`).
4. `branching` (small worlds, tests): the data come from `sample_sequences`, executed open-loop from cloned
   states (e.g. `empowerment_exact.sample_successors`); `r_t = E_hat(s_{t+1})`, the value head regressed on
   `log q - log omega`. The source takes the BA step: a head `g(s, a^n)` regresses `log q(a^n | s, s')` (its
   expectation over s' given (s, a^n)), and omega is fitted to `softmax(g)` by KL, i.e.
   `omega*(a^n | s) ∝ exp(E_s'[log q(a^n | s, s')])` with the inner expectation amortised by g instead of
   `n_mc` explicit samples of s' per (s, a^n).

`pi_old` is the behaviour policy's log-probability of each step, read from `batch.infos["log_prob"]` (shape
`(T, N)`) when present; otherwise a behaviour model `beta(a^n | s)`, trained by maximum likelihood on the batch's
actions, stands in (`stats["stored_log_prob"]` says which was used). Multi-step windows `(s_t, a_t..a_{t+n-1},
s_{t+n})` are taken along the T axis of each batch and never cross an episode end (`dones`) or a call; outside
`branching` their actions are the policy's own, closed-loop, so with n > 1 the estimate is information under
the policy, not open-loop empowerment (pitfall 1). The estimator and source are attributes, saved in
`state_dict`, and flagged in `update`'s statistics (`estimator_variational: 1.0`, `source_state_value: 1.0`).

Deviations [D]: fixed weights instead of InfoPower's primal-dual multipliers, and no separate `I(O_t; Z_t)`
term (for a deterministic encoder it is H(Z), which the forward term's in-batch negatives already keep up);
no EMA copy of q for rewards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from explore_bench.bonuses.base import ArrayLike, Bonus, TensorBatch, Transitions, _all_finite, _as_tensor
from explore_bench.bonuses.inverse_dynamics import InverseDynamicsModel
from explore_bench.bonuses.networks import EncoderKind, mlp, orthogonal_init
from explore_bench.bonuses.registry import register_bonus

ESTIMATORS = ("variational", "infopower")
SOURCES = ("policy_source", "uniform_source", "state_value", "branching")
SAMPLE_SOURCES = ("policy_source", "uniform_source")  # what `state_value` may regress on
MAX_SEQUENCES = 1024  # |A|^n of the joint categorical heads; beyond this they need autoregressive heads (pitfall 4)


def window_index(dones: torch.Tensor, horizon: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`(t, env)` of every n-step window of a `(T, N)` batch that stays inside one episode.

    A window starts at `t <= T - n` and holds steps `t .. t + n - 1`; a done at any of its steps but the last
    means the episode ended inside it (a done at the last step is fine: `next_obs` is the true terminal one).
    """
    t_len, n_envs = dones.shape
    if t_len < horizon:
        empty = torch.zeros(0, dtype=torch.long, device=dones.device)
        return empty, empty
    if horizon == 1:
        crossing = torch.zeros(t_len, n_envs, dtype=torch.bool, device=dones.device)
    else:
        crossing = dones[:-1].unfold(0, horizon - 1, 1).any(-1)  # row t: dones[t .. t + n - 2]
    return torch.nonzero(~crossing, as_tuple=True)


@dataclass
class Windows:
    """Flattened n-step windows: start obs `(B, *obs)`, end obs `(B, *obs)`, sequence index `(B,)`, and the
    behaviour log-probability of the sequence `(B,)` when the batch stored one."""

    obs: torch.Tensor
    next_obs: torch.Tensor
    sequence: torch.Tensor
    log_prob: torch.Tensor | None

    def __getitem__(self, idx: torch.Tensor) -> Windows:
        log_prob = None if self.log_prob is None else self.log_prob[idx]
        return Windows(self.obs[idx], self.next_obs[idx], self.sequence[idx], log_prob)


@register_bonus("empowerment")
class Empowerment(Bonus):
    """Empowerment bonus (variational or InfoPower-style estimator), see the module docstring.

    Networks: `model`, an `InverseDynamicsModel` whose encoder is phi (or z) and whose head over
    `[phi(s), phi(s')]` is the planner q (variational: logits over the `|A|^n` sequences) or the critic h
    (infopower: scores of the |A| actions); heads on detached features: `behaviour` beta(a^n | s), `value`
    E_hat(s) (nats); in `branching` mode `omega` (the source) and `omega_target` (g); for infopower
    `forward_model` `(z_t, onehot(a_t)) -> z_hat_{t+1}`. MLPs are `hidden` wide (spec §5.3: 2 x 64).

    Args:
        estimator: "variational" or "infopower" (n = 1 only).
        source: reward mode, one of SOURCES (default: "state_value" for variational, "policy_source" for
            infopower, InfoPower's own bonus).
        horizon: n, the length of the action sequences (1 in RL; joint heads need `|A|^n <= 1024`).
        value_source: which samples the `state_value` head regresses on ("uniform_source" by default: it
            ranks states as empowerment does in deterministic grids; "policy_source" follows the policy).
        feature_dim, hidden: size of phi/z and width of every MLP (32, 64).
        lr: Adam learning rate (3e-4; the spec's tests use 1e-3).
        n_epochs, n_minibatches: passes and minibatches per `update`.
        max_grad_norm: gradient-norm clip (40, as the inverse-dynamics bonuses; None disables).
        importance_clip: upper clip of the uniform-source importance weights (10, spec §5.3).
        importance_weights: False forces `w = 1` (the unweighted estimator, spec T-E11).
        forward_coef: weight of infopower's forward contrastive term (1, fixed; InfoPower tunes it by a dual).
        log_prob_key: the `infos` entry holding the behaviour log-probability of each step.
        normalize_obs: whiten Box inputs with running statistics (off; uint8 pixels are scaled to [0, 1]).
        encoder: encoder kind ("auto" picks by observation space).
    """

    family = "empowerment"  # not a novelty measure: the conformance suite's novelty ordering does not apply
    state_attributes = ("estimator", "source", "horizon", "value_source")

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        device: str | torch.device = "cpu",
        seed: int | None = None,
        estimator: str = "variational",
        source: str | None = None,
        horizon: int = 1,
        value_source: str = "uniform_source",
        feature_dim: int = 32,
        hidden: int = 64,
        lr: float = 3e-4,
        n_epochs: int = 4,
        n_minibatches: int = 4,
        max_grad_norm: float | None = 40.0,
        importance_clip: float = 10.0,
        importance_weights: bool = True,
        forward_coef: float = 1.0,
        log_prob_key: str = "log_prob",
        normalize_obs: bool = False,
        encoder: EncoderKind = "auto",
    ) -> None:
        super().__init__(observation_space, action_space, device, seed, normalize_obs)
        if not isinstance(action_space, gym.spaces.Discrete):
            self._fail("a Discrete action space (empowerment enumerates action sequences)", f"{action_space!r}")
        self.estimator = estimator
        self.source = source or ("state_value" if estimator == "variational" else "policy_source")
        self.horizon = int(horizon)
        self.value_source = value_source
        self.n_actions = int(action_space.n)
        self.n_sequences = self.n_actions**self.horizon
        self._check_options()
        self.feature_dim, self.hidden = int(feature_dim), int(hidden)
        self.n_epochs, self.n_minibatches, self.max_grad_norm = n_epochs, n_minibatches, max_grad_norm
        self.importance_clip, self.importance_weights = float(importance_clip), bool(importance_weights)
        self.forward_coef, self.log_prob_key = float(forward_coef), log_prob_key
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            self._build_networks(observation_space, encoder)
        params = [p for module in self.trainable_modules() for p in module.to(self.device).parameters()]
        self.optimizer = torch.optim.Adam(params, lr=lr, foreach=True)  # many small tensors: one fused loop

    def _check_options(self) -> None:
        too_many = f"|A|^n = {self.n_sequences} sequences exceed {MAX_SEQUENCES} (use autoregressive heads, pitfall 4)"
        problems = [
            (self.estimator not in ESTIMATORS, f"estimator must be one of {ESTIMATORS}, got {self.estimator!r}"),
            (self.source not in SOURCES, f"source must be one of {SOURCES}, got {self.source!r}"),
            (self.value_source not in SAMPLE_SOURCES,
             f"value_source must be one of {SAMPLE_SOURCES}, got {self.value_source!r}"),
            (self.horizon < 1, f"horizon must be >= 1, got {self.horizon}"),
            (self.estimator == "infopower" and self.horizon != 1, "the infopower estimator is defined for horizon 1"),
            (self.source in SAMPLE_SOURCES and self.horizon != 1,
             f"source {self.source!r} is a per-transition (n = 1) sample"),
            (self.n_sequences > MAX_SEQUENCES, too_many),
        ]  # fmt: skip
        for bad, message in problems:
            if bad:
                raise ValueError(f"bonus '{self.name}': {message}")

    def _build_networks(self, observation_space: gym.Space, encoder: EncoderKind) -> None:
        d, h, k = self.feature_dim, self.hidden, self.n_sequences
        # One head over [phi(s), phi(s')] with a logit per sequence: the planner q, or infopower's critic h.
        self.model = InverseDynamicsModel(observation_space, gym.spaces.Discrete(k), d, h, encoder)
        if self.sample_source != "branching":  # the behaviour policy only matters when it is the data's source
            self.behaviour = orthogonal_init(mlp([d, h, k]))
        self.value = orthogonal_init(mlp([d, h, 1]))
        if self.source == "branching":
            self.omega = orthogonal_init(mlp([d, h, k]))
            self.omega_target = orthogonal_init(mlp([d, h, k]))
        if self.estimator == "infopower":
            self.forward_model = orthogonal_init(mlp([d + self.n_actions, h, d]))

    def trainable_modules(self) -> list[nn.Module]:
        names = ("model", "behaviour", "value", "omega", "omega_target", "forward_model")
        return [getattr(self, name) for name in names if hasattr(self, name)]

    @property
    def sample_source(self) -> str:
        """The source whose per-window information samples train q and the value head."""
        return self.value_source if self.source == "state_value" else self.source

    @property
    def open_loop(self) -> bool:
        """True when the sequences are open-loop (branching data), the case that estimates empowerment proper."""
        return self.source == "branching" or self.horizon == 1

    # ------------------------------------------------------------------ inputs
    def prepare(self, batch: Transitions) -> TensorBatch:
        data = super().prepare(batch)
        if ((data.actions < 0) | (data.actions >= self.n_actions)).any():
            self._fail(f"actions in [0, {self.n_actions})", "an out-of-range action")
        log_prob = batch.infos.get(self.log_prob_key) if batch.infos else None
        if log_prob is not None:
            log_prob = _as_tensor(log_prob, self.device)
            shape = tuple(log_prob.shape)
            if shape != data.shape or not bool(torch.isfinite(log_prob).all()) or (log_prob > 1e-6).any():
                got = f"shape {shape}"
                if log_prob.numel():
                    got += f", values in [{float(log_prob.min()):.3g}, {float(log_prob.max()):.3g}]"
                self._fail(f"infos[{self.log_prob_key!r}] of finite log-probabilities <= 0, shape {data.shape}", got)
            data.infos = {**data.infos, self.log_prob_key: log_prob.float()}
        return data

    def windows(self, data: TensorBatch) -> Windows:
        """The batch's n-step windows inside episodes, flattened (see `window_index`)."""
        t, env = window_index(data.dones, self.horizon)
        steps = torch.arange(self.horizon, device=self.device)
        rows = t[:, None] + steps  # (B, n) time index of each step of each window
        actions = data.actions[rows, env[:, None]]
        sequence = (actions * self.n_actions ** (self.horizon - 1 - steps)).sum(-1)
        stored = data.infos.get(self.log_prob_key)
        log_prob = None if stored is None else stored[rows, env[:, None]].sum(-1)
        next_obs = data.next_obs[t + self.horizon - 1, env]
        return Windows(self.inputs(data.obs[t, env]), self.inputs(next_obs), sequence, log_prob)

    # --------------------------------------------------------------- estimator
    def terms(self, w: Windows) -> dict[str, torch.Tensor]:
        """Per-window quantities `(B,)`: `log_q` of the taken sequence (q the posterior under the sample source),
        the information `sample` in nats (`log q - log src`, or `log q_u + log K` for the uniform source, whose
        importance `weight` corrects for the behaviour policy), plus features and logits for the losses."""
        phi, phi1 = self.model(torch.cat([w.obs, w.next_obs])).chunk(2)  # one encoder pass for both ends
        logits = self.model.inverse_head(torch.cat([phi, phi1], dim=-1))
        source, log_k = self.sample_source, math.log(self.n_sequences)
        out = {"phi": phi, "phi1": phi1}
        if source == "branching":
            log_source = F.log_softmax(self.omega(phi.detach()), dim=-1)
        else:
            out["behaviour_logits"] = self.behaviour(phi.detach())
            log_source = F.log_softmax(out["behaviour_logits"].detach(), dim=-1) if source == "policy_source" else None
        if self.estimator == "infopower" and log_source is not None:
            logits = logits + log_source  # contrast against the source's actions: q = softmax(h + log src)
        log_q = F.log_softmax(logits, dim=-1).gather(1, w.sequence[:, None]).squeeze(1)
        out["log_q"], out["weight"] = log_q, torch.ones_like(log_q)
        if source == "branching":  # the data's actions were drawn from omega: no behaviour policy involved
            out["sample"] = log_q - log_source.gather(1, w.sequence[:, None]).squeeze(1)
            return out
        log_pi = w.log_prob if w.log_prob is not None else (
            F.log_softmax(out["behaviour_logits"].detach(), dim=-1).gather(1, w.sequence[:, None]).squeeze(1)
        )
        if source == "policy_source":
            out["sample"] = log_q - log_pi
        else:
            out["sample"] = log_q + log_k
            if self.importance_weights:  # w = (1/K) / pi_old, clipped (pitfall 3)
                out["weight"] = torch.exp(-log_k - log_pi).clamp(0.0, self.importance_clip)
        return out

    def losses(self, w: Windows) -> dict[str, torch.Tensor]:
        """Scalar losses of one minibatch of windows; `"loss"` is minimised."""
        terms = self.terms(w)
        weight, phi = terms["weight"], terms["phi"].detach()
        value_error = (self.value(phi).squeeze(-1) - terms["sample"].detach()).pow(2)
        out = {"planner_loss": -(weight * terms["log_q"]).sum() / weight.sum(),
               "value_loss": (weight * value_error).sum() / weight.sum()}
        if "behaviour_logits" in terms:
            out["behaviour_loss"] = F.cross_entropy(terms["behaviour_logits"], w.sequence)
        if self.source == "branching":
            g = self.omega_target(phi)
            out["target_loss"] = (g.gather(1, w.sequence[:, None]).squeeze(1) - terms["log_q"].detach()).pow(2).mean()
            # The BA step: omega <- softmax(g), fitted by KL(softmax(g) || omega).
            out["source_loss"] = -(F.softmax(g.detach(), -1) * F.log_softmax(self.omega(phi), -1)).sum(-1).mean()
        if self.estimator == "infopower":
            out["forward_loss"] = self.forward_model_loss(terms["phi"], w.sequence, terms["phi1"])
        scale = {"forward_loss": self.forward_coef}
        out["loss"] = sum(scale.get(key, 1.0) * value for key, value in out.items())
        with torch.no_grad():
            out["info_bits"] = (weight * terms["sample"]).sum() / weight.sum() / math.log(2)
            out["weight_mean"] = weight.mean()
            out["ess_fraction"] = weight.sum().pow(2) / (weight.pow(2).sum() * len(weight)).clamp(min=1e-12)
        return out

    def forward_model_loss(self, z: torch.Tensor, actions: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
        """InfoNCE of `I(Z_{t+1}; Z_t, A_t)`: the prediction of each z_{t+1} against the batch's other z_{t+1}."""
        prediction = self.forward_model(torch.cat([z, F.one_hot(actions, self.n_actions).float()], dim=-1))
        scores = prediction @ z1.T / math.sqrt(self.feature_dim)
        return F.cross_entropy(scores, torch.arange(len(z), device=z.device))

    # ---------------------------------------------------------------- contract
    @torch.no_grad()
    def compute(self, batch: Transitions) -> np.ndarray:
        data = self.prepare(batch)
        if data.dones.numel() == 0:
            return np.zeros(data.shape, np.float32)
        if self.source in ("state_value", "branching"):
            values = self.value(self.model(self.inputs(data.next_obs.flatten(0, 1)))).squeeze(-1)
            return values.reshape(data.shape).cpu().numpy().astype(np.float32)
        terms = self.terms(self.windows(data))  # n = 1: one window per transition, in (t, env) order
        reward = terms["sample"] * terms["weight"]
        return reward.reshape(data.shape).cpu().numpy().astype(np.float32)

    def update(self, batch: Transitions) -> dict[str, float]:
        data = self.prepare(batch)
        self.update_obs_stats(data.next_obs)
        windows = self.windows(data)
        if len(windows.sequence) == 0:  # T < n, or every window crosses an episode end
            return {"loss": math.nan, **self.labels(windows.log_prob is not None)}
        stats = self.fit_minibatches(
            len(windows.sequence), lambda idx: self.losses(windows[idx]), self.optimizer, self.n_epochs,
            self.n_minibatches, self.max_grad_norm,
        )
        return {**stats, **self.labels(windows.log_prob is not None)}

    def labels(self, stored_log_prob: bool) -> dict[str, float]:
        """Float flags naming what was estimated, so logged statistics say which estimator made them."""
        return {f"estimator_{self.estimator}": 1.0, f"source_{self.source}": 1.0, "horizon": float(self.horizon),
                "open_loop": float(self.open_loop), "stored_log_prob": float(stored_log_prob)}

    # ------------------------------------------------------------ extras
    def features(self, obs: ArrayLike) -> torch.Tensor:
        """phi of raw observations `(B, *obs_shape)`, checked like a batch's (a clear error otherwise)."""
        shape = tuple(np.shape(obs))
        if shape[1:] != self._obs_shape() or len(shape) != 1 + len(self._obs_shape()):
            self._fail(f"observations of shape (B, *{self._obs_shape()})", f"shape {shape}")
        if not _all_finite(obs):
            self._fail("finite observations", "NaN or inf")
        return self.model(self.inputs(_as_tensor(obs, self.device).float()))

    @torch.no_grad()
    def estimate(self, obs: ArrayLike) -> np.ndarray:
        """The value head's E_hat(s) in bits for observations `(B, *obs_shape)` (spec §3.3: reports in bits)."""
        values = self.value(self.features(obs)).squeeze(-1) / math.log(2)
        return values.cpu().numpy().astype(np.float64)

    @torch.no_grad()
    def sample_sequences(self, obs: ArrayLike) -> np.ndarray:
        """Action sequences `(B, n)` drawn from the source omega(. | s), to execute open-loop from cloned states
        (the `branching` mode's data: pass them back as a `Transitions` of T = n steps)."""
        if self.source != "branching":
            raise ValueError(f"bonus '{self.name}': sample_sequences needs source='branching', got {self.source!r}")
        probs = F.softmax(self.omega(self.features(obs)), dim=-1).cpu()
        index = torch.multinomial(probs, 1, generator=self.torch_rng).squeeze(1)
        digits = self.n_actions ** torch.arange(self.horizon - 1, -1, -1)
        return ((index[:, None] // digits) % self.n_actions).numpy().astype(np.int64)

    def load_state_dict(self, state) -> None:
        for key in self.state_attributes:
            if key in state and state[key] != getattr(self, key):
                raise ValueError(f"bonus '{self.name}': the state was saved with {key}={state[key]!r}, "
                                 f"this bonus has {key}={getattr(self, key)!r}")
        super().load_state_dict(state)
