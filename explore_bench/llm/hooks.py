"""Exploration hooks of the GRPO trainer (spec llm_adapters.md §6.4-§6.6) beside the registered bonuses:

- `RLSPReward`: RLSP's exploration reward min(|o| / L_target, 1) as a bonus (reward level, reads `infos`);
- `ProGRPO`: the advantage re-weighting mechanism (ARM), an advantage transform;
- `LpReg`: the low-probability-token regulariser, a token-loss regulariser.

The trainer calls an advantage transform as `transform(adv, chunk) -> adv` and a regulariser as
`regulariser.logit_hook(logits, ids)` at rollout time (its per-token results land in `Rollout.extras`) and
`regulariser.token_loss(loss, new_logp, adv_tok, chunk) -> loss` when building the loss.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch

from explore_bench.bonuses.base import Transitions
from explore_bench.bonuses.counting import to_numpy

if TYPE_CHECKING:  # import cycle: grpo builds on this module
    from explore_bench.llm.grpo import Chunk


def k3(logp: torch.Tensor, logp_ref: torch.Tensor) -> torch.Tensor:
    """DeepSeekMath's low-variance KL estimator per token: pi_ref/pi - log(pi_ref/pi) - 1 (>= 0)."""
    diff = logp_ref - logp
    return torch.exp(diff) - diff - 1.0


class AdvantageTransform(Protocol):
    def __call__(self, adv: np.ndarray, chunk: Chunk) -> np.ndarray: ...


class TokenLossRegularizer(Protocol):
    def logit_hook(self, logits: torch.Tensor, ids: torch.Tensor) -> dict[str, torch.Tensor]: ...

    def token_loss(self, loss: torch.Tensor, new_logp: torch.Tensor, adv_tok: torch.Tensor, chunk: Chunk
                   ) -> torch.Tensor: ...


class RLSPReward:
    """RLSP exploration reward R_ex = min(completion_len / max_len, 1) (§6.6), optionally gated by correctness.

    Use it with the trainer's `alpha = alpha_c` and the bonus coefficient `1 - alpha_c`:
    R = alpha_c 1[correct] + (1 - alpha_c) R_ex; alpha_c = 1 is plain GRPO. It reads `infos["completion_len"]`
    (and `infos["correct"]` when `only_correct`); `update` learns nothing.
    """

    name = "rlsp"

    def __init__(self, max_len: int, only_correct: bool = False) -> None:
        if max_len < 1:
            raise ValueError(f"RLSPReward: max_len must be >= 1, got {max_len}")
        self.max_len, self.only_correct = int(max_len), bool(only_correct)

    def compute(self, batch: Transitions) -> np.ndarray:
        if "completion_len" not in batch.infos:
            raise ValueError("RLSPReward: the batch has no infos['completion_len']")
        reward = np.minimum(to_numpy(batch.infos["completion_len"]).astype(np.float64) / self.max_len, 1.0)
        if self.only_correct:
            reward = reward * to_numpy(batch.infos["correct"]).astype(np.float64)
        return reward.astype(np.float32)

    def update(self, batch: Transitions) -> dict[str, float]:
        return {}


class ProGRPO:
    """ARM (§6.4): A~_i = A_i + alpha_p (c(q) - c(o_i|q)) in groups with a correct sample, unchanged otherwise.

    c(o|q) = exp(mean log pi_old over the `low_frac` share (rounded up) of the response's positions with the lowest
    probability); c(q) = exp(mean log pi_old of the prompt tokens), both at the sampling temperature.
    """

    def __init__(self, alpha_p: float = 0.1, low_frac: float = 0.2) -> None:
        self.alpha_p, self.low_frac = float(alpha_p), float(low_frac)

    def answer_confidence(self, old_logprobs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        out = np.empty(len(old_logprobs))
        for i, (lp, m) in enumerate(zip(old_logprobs, mask.astype(bool))):
            vals = np.sort(lp[m])
            k = max(1, math.ceil(self.low_frac * len(vals)))
            out[i] = np.exp(vals[:k].mean()) if len(vals) else 1.0
        return out

    def __call__(self, adv: np.ndarray, chunk: Chunk) -> np.ndarray:
        r = chunk.rollout
        c_o = self.answer_confidence(r.old_logprobs.numpy(), r.completion_mask.numpy())
        c_q = np.exp(r.prompt_logprob.numpy())
        any_correct = np.array([chunk.correct[chunk.group_ids == g].any() for g in chunk.group_ids])
        return np.where(any_correct, adv + self.alpha_p * (c_q - c_o), adv)


class LpReg:
    """Lp-Reg (§6.5): on selected tokens the clipped loss becomes -ratio*A + beta_lp k3(pi_theta || pi_proxy).

    pi_proxy is the old policy's distribution after a min-p filter (tokens with p < kappa max p dropped,
    renormalised); a filtered sampled token gets log-prob -1e4. Selected tokens: among tokens of negative-advantage
    responses, the `neg_frac` share (rounded up) with the lowest current log-prob (likewise `pos_frac` among
    positive ones, 0 by default), kept only where log pi_theta < log pi_proxy.
    """

    def __init__(self, kappa: float = 0.02, neg_frac: float = 0.01, pos_frac: float = 0.0, beta_lp: float = 1.0):
        self.kappa, self.neg_frac, self.pos_frac, self.beta_lp = float(kappa), float(neg_frac), float(pos_frac), beta_lp

    def logit_hook(self, logits: torch.Tensor, ids: torch.Tensor) -> dict[str, torch.Tensor]:
        p = torch.softmax(logits, -1)
        keep = p >= self.kappa * p.amax(-1, keepdim=True)
        proxy = torch.log_softmax(logits.masked_fill(~keep, float("-inf")), -1).gather(-1, ids[..., None]).squeeze(-1)
        return {"lp_proxy": proxy.clamp(min=-1e4)}

    def select(self, new_logp: torch.Tensor, adv_tok: torch.Tensor, mask: torch.Tensor, proxy: torch.Tensor
               ) -> torch.Tensor:
        """Bool (B, C) of the tokens that get the KL term."""
        selected = torch.zeros_like(mask, dtype=torch.bool)
        for frac, side in ((self.neg_frac, adv_tok < 0), (self.pos_frac, adv_tok > 0)):
            pool = side & mask.bool()
            k = math.ceil(frac * int(pool.sum())) if frac > 0 else 0
            if k:
                scores = new_logp.detach().masked_fill(~pool, float("inf")).flatten()
                selected.view(-1)[scores.topk(k, largest=False).indices] = True
        return selected & (new_logp.detach() < proxy)

    def token_loss(self, loss: torch.Tensor, new_logp: torch.Tensor, adv_tok: torch.Tensor, chunk: Chunk
                   ) -> torch.Tensor:
        r = chunk.rollout
        proxy = r.extras["lp_proxy"]
        selected = self.select(new_logp, adv_tok, r.completion_mask, proxy)
        ratio = torch.exp(new_logp - r.old_logprobs)
        reg = -ratio * adv_tok + self.beta_lp * k3(new_logp, proxy)
        return torch.where(selected, reg, loss)
