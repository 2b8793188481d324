"""BYOL-Explore: Guo et al., "BYOL-Explore: Exploration by Bootstrapped Prediction" (NeurIPS 2022, arXiv 2206.08332).

An online encoder and a recurrent latent world model predict, open-loop and up to K steps ahead, the embeddings
that an EMA "target" copy of the encoder gives the future observations. The intrinsic reward ("uncertainty") of
a transition is the sum of the prediction losses whose target is its next observation. Spec:
shared/specs/byol_hindsight.md §2.

Shared by BYOL-Hindsight (`byol_hindsight.py`), which subclasses `BYOLExplore` and replaces the predictor.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from explore_bench.bonuses.base import ArrayLike, Bonus, TensorBatch, Transitions
from explore_bench.bonuses.networks import (
    EncoderKind,
    is_large_image_space,
    make_encoder,
    mlp,
    orthogonal_init,
)
from explore_bench.bonuses.registry import register_bonus


def normalized_sq_error(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """`|| x / max(|x|, 1e-8) - y / max(|y|, 1e-8) ||^2` over the last dim (= 2 - 2 cos, in [0, 4])."""
    return (F.normalize(prediction, dim=-1, eps=1e-8) - F.normalize(target, dim=-1, eps=1e-8)).pow(2).sum(-1)


class ActionEmbedding(nn.Module):
    """e(a): the action code (one-hot blocks for Discrete / MultiDiscrete, raw values for Box) plus a "real
    action" bit, optionally followed by a bias-free learned linear map.

    "No previous action" (the first step of an episode) is the all-zero code, hence a zero embedding in both
    modes (spec §2.1).
    """

    def __init__(self, action_space: gym.Space, dim: int | None) -> None:
        super().__init__()
        if isinstance(action_space, gym.spaces.Discrete):
            self.sizes = [int(action_space.n)]
        elif isinstance(action_space, gym.spaces.MultiDiscrete):
            self.sizes = [int(n) for n in action_space.nvec.reshape(-1)]
        else:
            self.sizes = []
        self.action_shape = () if isinstance(action_space, gym.spaces.Discrete) else tuple(action_space.shape)
        self.code_dim = (sum(self.sizes) if self.sizes else math.prod(self.action_shape)) + 1
        self.linear = nn.Linear(self.code_dim, dim, bias=False) if dim else None
        if self.linear is not None:
            nn.init.orthogonal_(self.linear.weight)
        self.out_dim = int(dim) if dim else self.code_dim

    def code(self, actions: torch.Tensor) -> torch.Tensor:
        """`(..., *act_shape)` actions -> `(..., code_dim)` codes (last entry 1: a real action)."""
        lead = actions.shape[: actions.ndim - len(self.action_shape)]
        flat = actions.reshape(-1, max(1, math.prod(self.action_shape)))
        if self.sizes:
            codes = flat.long()
            parts = [F.one_hot(codes[:, i], n).float() for i, n in enumerate(self.sizes)]
        else:
            parts = [flat.float()]
        parts.append(torch.ones(flat.shape[0], 1, device=flat.device))
        return torch.cat(parts, -1).reshape(*lead, self.code_dim)

    def forward(self, actions: torch.Tensor) -> torch.Tensor:
        code = self.code(actions)
        return code if self.linear is None else self.linear(code)


@dataclass
class Sequence:
    """Time-major transitions `(L, N, ...)` plus where the closed-loop RNN stands before step 0.

    `b_init` is the closed-loop state b_{-1} and `a_prev` the action a_{-1} before step 0; both are ignored
    where `prev_done` is True (step 0 starts an episode: b_{-1} = 0, no previous action).
    """

    obs: torch.Tensor
    actions: torch.Tensor
    next_obs: torch.Tensor
    dones: torch.Tensor
    b_init: torch.Tensor
    a_prev: torch.Tensor
    prev_done: torch.Tensor

    @property
    def length(self) -> int:
        return int(self.dones.shape[0])

    @property
    def n(self) -> int:
        return int(self.dones.shape[1])

    def prefix(self, length: int) -> "Sequence":
        """The first `length` steps (same state before step 0)."""
        return Sequence(
            self.obs[:length], self.actions[:length], self.next_obs[:length], self.dones[:length],
            self.b_init, self.a_prev, self.prev_done,
        )  # fmt: skip

    def items(self, index: torch.Tensor) -> "Sequence":
        """The sequences (columns) `index`."""
        return Sequence(
            self.obs[:, index], self.actions[:, index], self.next_obs[:, index], self.dones[:, index],
            self.b_init[index], self.a_prev[index], self.prev_done[index],
        )  # fmt: skip

    def clone(self) -> "Sequence":
        return Sequence(*(x.detach().clone() for x in vars(self).values()))


@dataclass
class Horizon:
    """All open-loop predictions k steps ahead in a sequence of length L: sources s = 0..L-k.

    `losses[s]` is L(s, k), the loss of predicting the target of transition `s + k - 1` (its next_obs) from b_s;
    `valid[s]` says whether the pair lies in one episode (and, in training, whether its target is scored).
    `prev_states` / `states` are the open-loop states b_{s,k-1} / b_{s,k}, `actions` e(a_{s+k-1}), `targets`
    wbar_{s+k}. `extras` holds subclass terms (BYOL-Hindsight: z and the critic's context).
    """

    k: int
    losses: torch.Tensor
    valid: torch.Tensor
    prev_states: torch.Tensor
    actions: torch.Tensor
    states: torch.Tensor
    targets: torch.Tensor
    extras: dict = field(default_factory=dict)


@register_bonus("byol_explore")
class BYOLExplore(Bonus):
    """BYOL-Explore: multi-step latent prediction of EMA-target embeddings; reward = prediction loss.

    Model (spec §2.1): online encoder f_theta (`make_encoder`, so any observation space) -> w_t; target encoder
    f_phi, an EMA copy (alpha = `ema`) updated after every optimiser step and never trained by gradients;
    action embedding e(a) (learned, bias-free, zero for "no previous action"); closed-loop GRU
    b_t = h_c(b_{t-1}, [w_t, e(a_{t-1})]), reset to 0 at episode starts; open-loop GRU
    b_{t,k} = h_o(b_{t,k-1}, e(a_{t+k-1})) from b_{t,0} = b_t; predictor g: b_{t,k} -> prediction of wbar_{t+k}.

    Loss (§2.2): L(t, k) = || n(g(b_{t,k})) - n(sg(wbar_{t+k})) ||^2 in [0, 4] (the `2 - 2 cos` form), for
    1 <= k <= K with t and t + k in one episode (a `done` between them removes the pair). The training loss
    averages, over the scored target positions of each sequence, the sum of the K losses that target each one,
    i.e. the mean of the reward quantity below (the spec's `1 / (B (T-1))` normalisation of sum_t sum_k).

    Reward (§2.3): `compute` returns the raw uncertainty ell_t = sum_{k=1..K} L(t+1-k, k), the losses of the
    predictions of o_{t+1} (next_obs[t]) made from b_t, b_{t-1}, ..., b_{t+1-K} within the episode
    (`uncertainty_index="target"`, the default); `"source"` instead sums the K predictions made *from* b_t
    (targets o_{t+1..t+K}; only those inside the batch). Rewards are >= 0 and in [0, 4K].

    Choices where the spec leaves one open:
    - `reward_normalization="none"` (default): raw ell, as the bonus contract requires (the agent normalises
      every bonus the same way). `"byol"` applies the paper's scheme inside `compute`:
      ell_hat = ell / EMA(std ell), r = max(ell_hat - EMA(mean ell_hat), 0) (bias-corrected EMAs, rate
      `reward_ema`); then the agent's own return normalisation should not be stacked on top (§2.3).
    - `carry_context=True` (default): like the spec's PPO recipe (§2.4), the bonus keeps, per env, the last
      P = max(K - 1, burn_in) transitions and the closed-loop state before them, and prepends them to the next
      batch, so that the first steps of a rollout get all K terms and per-step use (T = 1) is exact. Then
      `compute` (and separately `update`) must see each env's transitions once, in time order, with a fixed N
      (like `e3b`); `reset()` forgets the context. `carry_context=False` treats every batch as
      self-contained (b_{-1} = 0 at its first step): use it for offline training on independent sequences.
      `update` re-runs the prefix with the updated model to get the state it stores (§2.4 step 4).
    - Training: the batch (after its prefix) is cut into sub-sequences of `seq_len` scored steps, each with up
      to max(burn_in, K - 1) preceding steps whose targets are masked; a sub-sequence starts from the detached
      closed-loop state of a no-grad pass. `wm_epochs` passes over minibatches of `batch_sequences`
      sub-sequences, Adam, EMA of the target after every step. Gradients reach g, h_o, h_c, e and f_theta
      (through w_t), never f_phi.
    - Action embedding learned (`action_embedding_dim=8`); `action_embedding_dim=None` feeds the fixed one-hot
      code instead. Representation sharing with the agent is not supported (kept separate, §2.3).

    Args:
        horizon: K, open-loop steps (4 on CPU; the paper uses 8).
        ema: alpha of the target update (0.99).
        embedding_dim, gru_dim, hidden: N_w, N_b and the MLP widths (64 / 64 / 64; 512 / 256 / 256 on
            Atari-size images).
        action_embedding_dim: N_a (8), or None for the one-hot code.
        lr: Adam learning rate (3e-4; 1e-4 on Atari-size images).
        seq_len, burn_in, batch_sequences, wm_epochs: training sub-sequences (32 / 8 / 32 / 1).
        max_grad_norm: gradient-norm clip (None: off).
        uncertainty_index: "target" (default) or "source", see above.
        reward_normalization: "none" (default, raw) or "byol", see above; reward_ema: beta (0.99).
        carry_context: see above (True).
        normalize_obs: whiten Box inputs with running statistics, updated in `update` and `warm_up` (on by
            default, as RND: on one-hot grids such as TVGrid the constant background otherwise dominates every
            embedding's direction, the cosine loss barely tells states apart and novel states score like
            familiar ones). Off: uint8 pixels are scaled to [0, 1].
        encoder: encoder kind ("auto" picks by observation space).
    """

    family = "novelty"
    state_attributes = ("reward_context", "train_context", "reward_stats")

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        device: str | torch.device = "cpu",
        seed: int | None = None,
        horizon: int = 4,
        ema: float = 0.99,
        embedding_dim: int | None = None,
        gru_dim: int | None = None,
        hidden: int | None = None,
        action_embedding_dim: int | None = 8,
        lr: float | None = None,
        seq_len: int = 32,
        burn_in: int = 8,
        batch_sequences: int = 32,
        wm_epochs: int = 1,
        max_grad_norm: float | None = None,
        uncertainty_index: Literal["target", "source"] = "target",
        reward_normalization: Literal["none", "byol"] = "none",
        reward_ema: float = 0.99,
        carry_context: bool = True,
        normalize_obs: bool = True,
        encoder: EncoderKind = "auto",
    ) -> None:
        super().__init__(observation_space, action_space, device, seed, normalize_obs)
        if int(horizon) < 1:
            raise ValueError(f"bonus '{self.name}': horizon must be >= 1, got {horizon}")
        if not 0.0 <= ema < 1.0:
            raise ValueError(f"bonus '{self.name}': ema must be in [0, 1), got {ema}")
        if uncertainty_index not in ("target", "source"):
            raise ValueError(f"bonus '{self.name}': uncertainty_index must be 'target' or 'source', got {uncertainty_index!r}")
        if reward_normalization not in ("none", "byol"):
            raise ValueError(f"bonus '{self.name}': reward_normalization must be 'none' or 'byol', got {reward_normalization!r}")
        if int(seq_len) < 1 or int(burn_in) < 0 or int(batch_sequences) < 1 or int(wm_epochs) < 0:
            raise ValueError(f"bonus '{self.name}': need seq_len >= 1, burn_in >= 0, batch_sequences >= 1, wm_epochs >= 0")
        atari = is_large_image_space(observation_space)
        self.horizon = int(horizon)
        self.ema = float(ema)
        self.embedding_dim = int(embedding_dim or (512 if atari else 64))
        self.gru_dim = int(gru_dim or (256 if atari else 64))
        self.hidden = int(hidden or (256 if atari else 64))
        self.seq_len = int(seq_len)
        self.burn_in = int(burn_in)
        self.batch_sequences = int(batch_sequences)
        self.wm_epochs = int(wm_epochs)
        self.max_grad_norm = max_grad_norm
        self.uncertainty_index = uncertainty_index
        self.reward_normalization = reward_normalization
        self.reward_ema = float(reward_ema)
        self.carry_context = bool(carry_context)
        #: steps of context kept per env: K - 1 for the reward terms, burn_in to warm the closed loop
        self.context_steps = max(self.horizon - 1, self.burn_in)
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            self.encoder = make_encoder(observation_space, self.embedding_dim, self.hidden, nn.ReLU, encoder)
            self.action_embedding = ActionEmbedding(action_space, action_embedding_dim)
            n_a = self.action_embedding.out_dim
            self.closed_loop = nn.GRU(self.embedding_dim + n_a, self.gru_dim)
            self.open_loop = nn.GRUCell(n_a, self.gru_dim)
            self.build_heads()
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        for module in (*self.model_modules(), self.target_encoder):
            module.to(self.device)
        self.optimizer = torch.optim.Adam(self.model_parameters(), lr=lr or (1e-4 if atari else 3e-4))
        #: per-env context (see `carry_context`) of `compute` and of `update`; None until the first call
        self.reward_context: Sequence | None = None
        self.train_context: Sequence | None = None
        #: bias-corrected EMAs of the "byol" reward normalisation: [ema std, ema mean, steps]
        self.reward_stats = [0.0, 0.0, 0]

    # ------------------------------------------------------------ subclass hooks
    def build_heads(self) -> None:
        """Create the prediction heads (called under the bonus's seed, before the optimiser is built)."""
        self.predictor = orthogonal_init(mlp([self.gru_dim, self.hidden, self.embedding_dim]))

    def model_modules(self) -> list[nn.Module]:
        """Modules trained by `self.optimizer`."""
        return [self.encoder, self.action_embedding, self.closed_loop, self.open_loop, self.predictor]

    def model_parameters(self) -> list[nn.Parameter]:
        return [p for module in self.model_modules() for p in module.parameters()]

    def horizon_losses(self, horizon: Horizon, training: bool) -> torch.Tensor:
        """L(s, k) `(m, n)` of one horizon's open-loop states (may fill `horizon.extras`)."""
        return normalized_sq_error(self.predictor(horizon.states), horizon.targets)

    # ----------------------------------------------------------------- inputs

    def embed(self, obs: torch.Tensor, target: bool = False) -> torch.Tensor:
        """w (online) or wbar (target, no gradient) of observations `(L, N, *obs_shape)` -> `(L, N, N_w)`."""
        lead = obs.shape[:2]
        x = self.inputs(obs.reshape(-1, *self._obs_shape()))
        if target:
            with torch.no_grad():
                return self.target_encoder(x).reshape(*lead, -1)
        return self.encoder(x).reshape(*lead, -1)

    def prepare(self, batch: Transitions) -> TensorBatch:
        data = super().prepare(batch)
        sizes = self.action_embedding.sizes
        if sizes:
            codes = data.actions.reshape(*data.shape, len(sizes))
            high = torch.as_tensor(sizes, device=codes.device)
            if (codes < 0).any() or (codes >= high).any():
                self._fail(f"actions in [0, {sizes})", "an out-of-range action")
        return data

    # ---------------------------------------------------------------- sequences
    def sequence_of(self, data: TensorBatch, context: Sequence | None = None) -> tuple[Sequence, int]:
        """`context` followed by `data`, and the length p of the prefix (targets from p on are the batch's)."""
        t_len, n = data.shape
        if context is None:
            zeros = torch.zeros(n, self.gru_dim, device=self.device)
            prev = torch.ones(n, dtype=torch.bool, device=self.device)
            a_prev = torch.zeros_like(data.actions[0]) if t_len else torch.zeros((n, *self._action_shape()), dtype=data.actions.dtype, device=self.device)
            return Sequence(data.obs, data.actions, data.next_obs, data.dones, zeros, a_prev, prev), 0
        if context.n != n:
            self._fail(
                f"batches from the same {context.n} envs as the previous call (N = {context.n}; call reset() to start over)",
                f"N = {n}",
            )
        cat = lambda a, b: torch.cat([a, b.to(a.dtype)], 0)  # noqa: E731
        seq = Sequence(
            cat(context.obs, data.obs), cat(context.actions, data.actions), cat(context.next_obs, data.next_obs),
            cat(context.dones, data.dones), context.b_init, context.a_prev, context.prev_done,
        )  # fmt: skip
        return seq, context.length

    def tail(self, seq: Sequence, states: torch.Tensor | None) -> Sequence:
        """The context to carry: the last `context_steps` steps of `seq` and the closed-loop state before them.

        `states` are the closed-loop states of (at least) the steps of `seq` before the kept tail.
        """
        cut = max(0, seq.length - self.context_steps)
        if cut == 0:
            return seq.clone()
        return Sequence(
            seq.obs[cut:], seq.actions[cut:], seq.next_obs[cut:], seq.dones[cut:],
            states[cut - 1], seq.actions[cut - 1], seq.dones[cut - 1],
        ).clone()  # fmt: skip

    def run_closed_loop(self, seq: Sequence) -> tuple[torch.Tensor, torch.Tensor]:
        """Closed-loop states b `(L, N, N_b)` and action embeddings e(a_t) `(L, N, N_a)` of `seq`."""
        w = self.embed(seq.obs)
        e = self.action_embedding(seq.actions)
        starts = torch.cat([seq.prev_done[None], seq.dones[:-1]], 0)
        keep = (~starts).unsqueeze(-1).to(w.dtype)
        e_prev = torch.cat([self.action_embedding(seq.a_prev)[None], e[:-1]], 0) * keep
        x = torch.cat([w, e_prev], -1)
        # one fused GRU call per stretch of steps without an episode start (b is zeroed where one begins)
        cuts = [0, *(torch.nonzero(starts[1:].any(1)).flatten() + 1).tolist(), seq.length]
        b = seq.b_init
        states = []
        for t0, t1 in zip(cuts[:-1], cuts[1:]):
            out, _ = self.closed_loop(x[t0:t1], (b * keep[t0])[None].contiguous())
            states.append(out)
            b = out[-1]
        return torch.cat(states), e

    def unroll(
        self,
        seq: Sequence,
        lo: torch.Tensor | None = None,
        hi: torch.Tensor | None = None,
        training: bool = False,
    ) -> tuple[list[Horizon], torch.Tensor]:
        """Every open-loop prediction of `seq`, vectorised over sources: `(horizons, closed-loop states)`.

        With `lo`/`hi` `(N,)` given, a pair is valid only if its target transition index lies in `[lo, hi)`.
        """
        b, e = self.run_closed_loop(seq)
        targets = self.embed(seq.next_obs, target=True)
        length = seq.length
        alive = torch.ones_like(seq.dones)
        state = b
        horizons: list[Horizon] = []
        for k in range(1, self.horizon + 1):
            m = length - k + 1
            if m <= 0:
                break
            prev = state[:m]
            if k >= 2:  # the pair (s, k) crosses no episode end: no done in transitions s .. s+k-2
                alive = alive[:m] & ~seq.dones[k - 2 : k - 2 + m]
            act = e[k - 1 : k - 1 + m]
            state = self.open_loop(act.reshape(-1, act.shape[-1]), prev.reshape(-1, prev.shape[-1])).reshape(prev.shape)
            valid = alive
            if lo is not None:
                target_index = torch.arange(k - 1, k - 1 + m, device=self.device)[:, None]
                valid = valid & (target_index >= lo[None]) & (target_index < hi[None])
            h = Horizon(k, torch.empty(0), valid, prev, act, state, targets[k - 1 : k - 1 + m])
            h.losses = self.horizon_losses(h, training)
            horizons.append(h)
        return horizons, b

    def uncertainty(self, horizons: list[Horizon], length: int, n: int, index: str | None = None) -> torch.Tensor:
        """ell `(L, N)`: per target transition (index "target") or per source (index "source")."""
        ell = torch.zeros(length, n, device=self.device)
        for h in horizons:
            terms = torch.where(h.valid, h.losses, torch.zeros_like(h.losses))
            m = terms.shape[0]
            if (index or self.uncertainty_index) == "target":
                ell[h.k - 1 : h.k - 1 + m] += terms
            else:
                ell[:m] += terms
        return ell

    # ---------------------------------------------------------------- contract
    @torch.no_grad()
    def compute(self, batch: Transitions) -> np.ndarray:
        data = self.prepare(batch)
        t_len, n = data.shape
        context = self.reward_context if self.carry_context else None
        seq, p = self.sequence_of(data, context)
        if t_len == 0:
            return np.zeros((0, n), np.float32)
        horizons, b = self.unroll(seq)
        ell = self.uncertainty(horizons, seq.length, n)[p:]
        if self.carry_context:
            self.reward_context = self.tail(seq, b)
        if self.reward_normalization == "byol":
            ell = self.prioritise(ell)
        return ell.clamp_min(0.0).cpu().numpy().astype(np.float32)

    def prioritise(self, ell: torch.Tensor) -> torch.Tensor:
        """The paper's normalisation: divide by the EMA std, subtract the EMA mean of the result, clip at 0."""
        beta = self.reward_ema
        std_ema, mean_ema, steps = self.reward_stats
        steps += 1
        correction = 1.0 - beta**steps
        std_ema = beta * std_ema + (1 - beta) * float(ell.std(unbiased=False)) if ell.numel() > 1 else std_ema
        sigma = max(std_ema / correction, 1e-8)
        ell_hat = ell / sigma
        mean_ema = beta * mean_ema + (1 - beta) * float(ell_hat.mean())
        self.reward_stats = [std_ema, mean_ema, steps]
        return (ell_hat - mean_ema / correction).clamp_min(0.0)

    def reset(self, mask: ArrayLike | None = None) -> None:
        """Forget the carried context: of every env (mask None; a later batch may have another N), or start a
        new episode at the next observation of the envs where `mask` is True."""
        if mask is None:
            self.reward_context = self.train_context = None
            return
        for ctx in (self.reward_context, self.train_context):
            if ctx is None:
                continue
            m = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask, device=self.device).bool()
            if tuple(m.shape) != (ctx.n,):
                self._fail(f"a reset mask of shape ({ctx.n},)", f"shape {tuple(m.shape)}")
            if ctx.length:
                ctx.dones[-1] |= m
            else:
                ctx.prev_done |= m

    def update(self, batch: Transitions) -> dict[str, float]:
        data = self.prepare(batch)
        self.update_obs_stats(data.next_obs)
        context = self.train_context if self.carry_context else None
        seq, p = self.sequence_of(data, context)
        history: dict[str, list[float]] = {}
        if data.shape[0] > 0:
            windows, lo, hi = self.training_windows(seq, p)
            n_items = windows.n
            n_minibatches = math.ceil(n_items / self.batch_sequences)
            for idx in self.minibatches(n_items, self.wm_epochs, n_minibatches):
                stats = self.train_step(windows.items(idx), lo[idx], hi[idx])
                for key, value in stats.items():
                    history.setdefault(key, []).append(value)
            if self.carry_context:
                cut = max(0, seq.length - self.context_steps)
                with torch.no_grad():
                    states = self.run_closed_loop(seq.prefix(cut))[0] if cut else None
                self.train_context = self.tail(seq, states)
        if not history:
            return {"loss": math.nan}
        return {key: float(np.mean(values)) for key, values in history.items()}

    # ---------------------------------------------------------------- training
    def training_windows(self, seq: Sequence, p: int) -> tuple[Sequence, torch.Tensor, torch.Tensor]:
        """Cut the scored part `[p, L)` of `seq` into sub-sequences of `seq_len` scored steps with burn-in.

        Returns the sub-sequences as the columns of one `Sequence` (window-major, then env) and, per column,
        the scored target range `[lo, hi)`. Windows after the first start from the detached closed-loop
        state of a no-grad pass; short windows are padded at the end with masked, episode-ending steps.
        """
        length, n = seq.length, seq.n
        starts = list(range(p, length, self.seq_len))
        if len(starts) == 1:
            lo = torch.full((n,), p, device=self.device)
            return seq, lo, torch.full((n,), length, device=self.device)
        warm = max(self.burn_in, self.horizon - 1)
        begins = [max(0, c - warm) for c in starts]
        ends = [min(c + self.seq_len, length) for c in starts]
        width = max(e - u for u, e in zip(begins, ends))
        with torch.no_grad():
            states = self.run_closed_loop(seq)[0]
        index = torch.tensor([[u + j for j in range(width)] for u in begins], device=self.device)
        pad = index >= length  # (n_w, W)
        index = index.clamp(max=length - 1)

        def gather(x: torch.Tensor, fill) -> torch.Tensor:
            out = x[index]  # (n_w, W, n, ...)
            mask = pad.reshape(*pad.shape, *([1] * (out.ndim - 2)))
            out = torch.where(mask, torch.full_like(out, fill), out)
            return out.transpose(0, 1).reshape(width, len(starts) * n, *x.shape[2:])

        def before(u: int, first: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            return first if u == 0 else x[u - 1]

        windows = Sequence(
            gather(seq.obs, 0), gather(seq.actions, 0), gather(seq.next_obs, 0), gather(seq.dones, True),
            torch.cat([before(u, seq.b_init, states) for u in begins]),
            torch.cat([before(u, seq.a_prev, seq.actions) for u in begins]),
            torch.cat([before(u, seq.prev_done, seq.dones) for u in begins]),
        )  # fmt: skip
        lo = torch.tensor([c - u for c, u in zip(starts, begins)], device=self.device).repeat_interleave(n)
        hi = torch.tensor([e - u for e, u in zip(ends, begins)], device=self.device).repeat_interleave(n)
        return windows, lo, hi

    def sequence_loss(self, horizons: list[Horizon], lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Mean over scored target positions of the sum of their K losses, and pair statistics."""
        n_targets = (hi - lo).clamp_min(0).sum().clamp_min(1)
        total = sum(torch.where(h.valid, h.losses, torch.zeros_like(h.losses)).sum() for h in horizons)
        n_pairs = sum(int(h.valid.sum()) for h in horizons)
        loss = total / n_targets
        return loss, {"loss": float(loss.detach()), "pair_loss": float(total.detach()) / max(n_pairs, 1)}

    def clip_and_step(self, optimizer: torch.optim.Optimizer, params: list[nn.Parameter]) -> None:
        if self.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(params, self.max_grad_norm)
        optimizer.step()

    @torch.no_grad()
    def update_target(self) -> None:
        """phi <- alpha phi + (1 - alpha) theta for the encoder's parameters (and buffers copied)."""
        for target, online in zip(self.target_encoder.parameters(), self.encoder.parameters()):
            target.lerp_(online, 1.0 - self.ema)
        for target, online in zip(self.target_encoder.buffers(), self.encoder.buffers()):
            target.copy_(online)

    def train_step(self, windows: Sequence, lo: torch.Tensor, hi: torch.Tensor) -> dict[str, float]:
        """One optimiser step on a minibatch of sub-sequences, then the EMA target update."""
        horizons, _ = self.unroll(windows, lo, hi, training=True)
        loss, stats = self.sequence_loss(horizons, lo, hi)
        self.optimizer.zero_grad()
        loss.backward()
        self.clip_and_step(self.optimizer, self.model_parameters())
        self.update_target()
        return stats
