"""Text views of bandit and MiniGrid envs for LLM policies (spec llm_adapters.md §3).

A `TextEnvAdapter` wraps a numeric env, renders each situation as a `TextObs` (system rules, user text, the valid
action strings) and turns the model's reply back into an action id with the strict parser of §3.4. A reply that
does not parse is **invalid**: it is counted (`adapter.n_invalid`, `info["invalid"]`), the executed action comes
from an explicit fallback rule, and an optional `format_penalty` is added to that turn's reward. Nothing is ever
silently mapped to a default action.

Renderers: `BanditRenderer` (every `MetaBanditEnv` family, `TrialEnv`) and `MiniGridRenderer` (a description of
the agent's 7x7 egocentric view). Neither imports torch or transformers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Protocol

import gymnasium as gym
import numpy as np

Fallback = Literal["random", "previous", "noop", "resample"]
FALLBACKS = ("random", "previous", "noop", "resample")
RETRY_LINE = "Your previous reply had no valid <answer>. Answer again."
COLOR_LABELS = ("blue", "green", "red", "yellow", "purple", "orange", "pink", "brown", "black", "white", "grey", "cyan")

_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_ANSWER_LINE = re.compile(r"(?i)\b(?:action|answer|choice)\s*[:=]\s*([A-Za-z0-9_ ]+?)\s*$")
_PREFIXES = ("option ", "button ", "arm ", "action ")


def _normalise(text: str) -> str:
    return " ".join(text.lower().split())


@dataclass
class ActionCodec:
    """Action strings <-> action ids.

    `labels[i]` is the canonical string of action `actions[i]` (display order); `synonyms` maps further
    lower-case phrases to action ids (MiniGrid's "forward" for "go forward").
    """

    labels: list[str]
    actions: list[int]
    synonyms: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if sorted(self.actions) != list(range(len(self.labels))):
            raise ValueError(f"ActionCodec: actions must be a permutation of 0..{len(self.labels) - 1}, got {self.actions}")
        self._lookup = {_normalise(label): a for label, a in zip(self.labels, self.actions)}
        self._lookup.update({_normalise(s): a for s, a in self.synonyms.items()})

    @property
    def n_actions(self) -> int:
        return len(self.labels)

    @property
    def candidates(self) -> list[str]:
        """The canonical string of every action, in action-id order (for candidate scoring)."""
        by_action = dict(zip(self.actions, self.labels))
        return [by_action[a] for a in range(self.n_actions)]

    def match(self, text: str) -> int | None:
        """The action whose label or synonym equals `text` (case- and whitespace-insensitive), else None."""
        return self._lookup.get(_normalise(text))


def parse_action(completion: str, codec: ActionCodec, lenient: bool = False) -> int | None:
    """The action id of a reply under the strict rule of §3.4, or None when the reply is invalid.

    1. the content of the last `<answer>...</answer>`, stripped of whitespace, quotes, trailing punctuation and
       the prefixes "option ", "button ", "arm ", "action "; else
    2. `action|answer|choice: X` at the end of the last non-empty line;
    3. the extracted string must equal exactly one label or synonym.
    `lenient=True` also accepts the last whole-word label in the final line.
    """
    tags = _ANSWER_TAG.findall(completion)
    lines = [line for line in completion.splitlines() if line.strip()]
    extracted: str | None = None
    if tags:
        extracted = tags[-1]
    elif lines and (m := _ANSWER_LINE.search(lines[-1])):
        extracted = m.group(1)
    if extracted is not None:
        extracted = extracted.strip().strip("\"'`").rstrip(".,;:!?").strip().strip("\"'`")
        low = extracted.lower()
        for prefix in _PREFIXES:
            if low.startswith(prefix):
                extracted = extracted[len(prefix):]
                break
        action = codec.match(extracted)
        if action is not None:
            return action
    if lenient and lines:
        words = list(re.finditer(r"[A-Za-z0-9_]+(?: [A-Za-z0-9_]+)?", lines[-1]))
        # scan from the end: the last label (one or two words) that matches wins
        for m in reversed(words):
            for candidate in (m.group(0), m.group(0).split(" ")[-1]):
                if (action := codec.match(candidate)) is not None:
                    return action
    return None


@dataclass
class TextObs:
    """What the policy sees at one turn."""

    system: str  # task rules (constant within an episode)
    user: str  # current situation + history + answer-format instruction
    candidates: list[str]  # valid action strings, in action-id order (for scoring mode)
    turn: int


class Renderer(Protocol):
    """Turns an env's situation into text; `codec` is drawn per episode (bandit labels are permuted per task)."""

    def codec(self, env: gym.Env, rng: np.random.Generator) -> ActionCodec: ...

    def system(self, env: gym.Env, codec: ActionCodec) -> str: ...

    def user(self, env: gym.Env, codec: ActionCodec, obs: Any, history: list[tuple[int, float]], turn: int) -> str: ...


# ------------------------------------------------------------------------------------------------- bandits
class BanditRenderer:
    """Text of a `MetaBanditEnv` (any family) or `TrialEnv` (§3.2); the history is the adapter's own record.

    Args:
        labels: "letters" (A.., K <= 26, else arm0..) or "colors".
        framing: "neutral" or "suggestive" (one extra sentence in favour of trying uncertain options).
        history_mode: "summary" (per-label counts and means), "raw" (one line per past turn) or "raw_window"
            (the last `raw_window` lines plus the summary).
        reasoning: ask for `<think>` before the `<answer>`.
        permute: re-draw the label <-> arm permutation per task (removes label-position bias).
    """

    def __init__(self, labels: Literal["letters", "colors"] = "letters",
                 framing: Literal["neutral", "suggestive"] = "neutral",
                 history_mode: Literal["summary", "raw", "raw_window"] = "summary", raw_window: int = 50,
                 reasoning: bool = False, permute: bool = True) -> None:
        for value, allowed, what in ((labels, ("letters", "colors"), "labels"),
                                     (framing, ("neutral", "suggestive"), "framing"),
                                     (history_mode, ("summary", "raw", "raw_window"), "history_mode")):
            if value not in allowed:
                raise ValueError(f"BanditRenderer: {what} must be one of {allowed}, got {value!r}")
        self.labels, self.framing, self.history_mode = labels, framing, history_mode
        self.raw_window, self.reasoning, self.permute = int(raw_window), bool(reasoning), bool(permute)

    def codec(self, env: gym.Env, rng: np.random.Generator) -> ActionCodec:
        k = env.unwrapped.n_arms
        if self.labels == "colors":
            if k > len(COLOR_LABELS):
                raise ValueError(f"BanditRenderer: {k} arms but only {len(COLOR_LABELS)} colour labels")
            names = list(COLOR_LABELS[:k])
        else:
            names = [chr(ord("A") + i) for i in range(k)] if k <= 26 else [f"arm{i}" for i in range(k)]
        arms = rng.permutation(k).tolist() if self.permute else list(range(k))
        return ActionCodec(names, arms)

    def system(self, env: gym.Env, codec: ActionCodec) -> str:
        bandit = env.unwrapped
        k, h = bandit.n_arms, bandit.horizon
        if bandit.family.reward_type == "gaussian":
            reward = "Each option gives a noisy numeric reward around its own unknown average"
        else:
            reward = "Each option gives a reward of 1 with its own chance (otherwise 0)"
        # the non-stationary settings must be stated: the same words would mislead the agent there
        if bandit.family.resample_each_pull:
            change = "; the chances are drawn afresh before every turn."
        elif getattr(bandit, "structure", "fixed") == "resampled":
            change = f"; the chances are drawn afresh every {bandit.pulls_per_episode} turns."
        else:
            change = "; the chances are fixed, unknown and may differ."
        text = (f"You are choosing between {k} options: {', '.join(codec.labels)}. {reward}{change} "
                f"You will choose {h} times in total, one option per turn. "
                "Your aim is the largest total reward over all turns.")
        if self.framing == "suggestive":
            text += (" It pays to try options whose value is still uncertain before settling on the best-looking "
                     "one.")
        return text

    def user(self, env: gym.Env, codec: ActionCodec, obs: Any, history: list[tuple[int, float]], turn: int) -> str:
        h = env.unwrapped.horizon
        label_of = dict(zip(codec.actions, codec.labels))
        lines = [f"Turn {turn + 1} of {h}; {h - turn - 1} turns remain after this one. "
                 f"Total reward so far: {sum(r for _, r in history):g}."]
        if self.history_mode != "summary":
            past = history if self.history_mode == "raw" else history[-self.raw_window:]
            start = len(history) - len(past)
            lines += [f"turn {start + j + 1}: {label_of[a]} -> {r:g}" for j, (a, r) in enumerate(past)]
        if self.history_mode != "raw":
            for label, arm in zip(codec.labels, codec.actions):
                rewards = [r for a, r in history if a == arm]
                lines.append(f"- {label}: chosen {len(rewards)} times, average reward {np.mean(rewards):.2f}"
                             if rewards else f"- {label}: not tried yet")
        lines.append("Think step by step inside <think></think>, then give your choice as <answer>LABEL</answer>."
                     if self.reasoning else "Reply with your choice as <answer>LABEL</answer>.")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ MiniGrid
MINIGRID_ACTIONS = ("turn left", "turn right", "go forward", "pick up", "drop", "toggle", "done")
MINIGRID_SYNONYMS = {"left": 0, "right": 1, "forward": 2, "move forward": 2, "pickup": 3, "open": 5, "stop": 6}
_OBJECTS = {0: "unseen", 1: "empty", 2: "wall", 3: "floor", 4: "door", 5: "key", 6: "ball", 7: "box", 8: "goal",
            9: "lava", 10: "agent"}  # minigrid.core.constants.IDX_TO_OBJECT (copied: no minigrid import needed)
_COLORS = {0: "red", 1: "green", 2: "blue", 3: "purple", 4: "yellow", 5: "grey"}
_DOOR_STATES = {0: "open", 1: "closed", 2: "locked"}
_COMPASS = ("east", "south", "west", "north")
_AGENT = (3, 6)  # the agent's cell in the 7x7 view, facing decreasing y


def _where(ahead: int, right: int) -> str:
    if (ahead, right) == (1, 0):
        return "right in front of you"
    if (ahead, right) == (0, 0):
        return "where you stand"
    parts = [f"{ahead} ahead"] if ahead else []
    if right:
        parts.append(f"{abs(right)} to the {'right' if right > 0 else 'left'}")
    return " and ".join(parts)


def describe_view(image: np.ndarray, describe_walls: bool = False) -> tuple[str, str]:
    """(object sentence, carrying sentence) of a MiniGrid (7, 7, 3) egocentric image indexed [x, y, channel]."""
    image = np.asarray(image)
    if image.shape != (7, 7, 3):
        raise ValueError(f"describe_view: expected a (7, 7, 3) MiniGrid image, got shape {image.shape}")
    seen = []
    for x in range(7):
        for y in range(7):
            obj, color, state = (int(v) for v in image[x, y])
            if (x, y) == _AGENT or _OBJECTS.get(obj, "unseen") in ("unseen", "empty", "floor", "wall"):
                continue
            ahead, right = _AGENT[1] - y, x - _AGENT[0]
            name = _OBJECTS.get(obj, f"object{obj}")
            status = f" ({_DOOR_STATES.get(state, state)})" if name == "door" else ""
            seen.append((ahead + abs(right), f"a {_COLORS.get(color, color)} {name}{status} {_where(ahead, right)}"))
    seen.sort(key=lambda item: item[0])
    objects = "; ".join(text for _, text in seen) if seen else "nothing of note"
    walls = ""
    if _OBJECTS.get(int(image[3, 5, 0])) == "wall":
        walls = " A wall blocks the way ahead."
    elif describe_walls:
        free = next((6 - y - 1 for y in range(5, -1, -1) if _OBJECTS.get(int(image[3, y, 0])) == "wall"), None)
        walls = f" The first wall straight ahead is {free + 1} cells away." if free is not None else ""
    carried = _OBJECTS.get(int(image[_AGENT][0]), "unseen")
    carrying = ""
    if carried not in ("unseen", "empty", "floor", "wall", "agent"):  # the agent's cell shows what it carries
        carrying = f"You are carrying a {_COLORS.get(int(image[_AGENT][1]), '')} {carried}."
    return f"You see: {objects}.{walls}", carrying


class MiniGridRenderer:
    """Text of a MiniGrid observation dict (image, direction, mission) (§3.3)."""

    def __init__(self, describe_walls: bool = False) -> None:
        self.describe_walls = bool(describe_walls)

    def codec(self, env: gym.Env, rng: np.random.Generator) -> ActionCodec:
        return ActionCodec(list(MINIGRID_ACTIONS), list(range(len(MINIGRID_ACTIONS))), dict(MINIGRID_SYNONYMS))

    def system(self, env: gym.Env, codec: ActionCodec) -> str:
        return "You control an agent in a grid world. You see a 7x7 area in front of you."

    def user(self, env: gym.Env, codec: ActionCodec, obs: Any, history: list[tuple[int, float]], turn: int) -> str:
        seen, carrying = describe_view(obs["image"], self.describe_walls)
        face = f"You face {_COMPASS[int(obs['direction'])]}." + (f" {carrying}" if carrying else "")
        return "\n".join([f"Mission: {obs['mission']}", face, seen,
                          f"Possible actions: {', '.join(MINIGRID_ACTIONS)}.",
                          "Reply with one action as <answer>ACTION</answer>."])


# ------------------------------------------------------------------------------------------------- adapter
class TextEnvAdapter:
    """A gymnasium env seen through text: `reset` -> `TextObs`, `step_text(reply)` or `step_action(id)`.

    Invalid replies (see `parse_action`) are executed with the `fallback` rule:
    "random" (a uniform action from the adapter's own generator seeded by (episode seed, turn), so the env's
    randomness is untouched), "previous" (the last executed action; random at turn 0), "noop" (MiniGrid's
    `done`, action 6), "resample" (call `retry(obs)` with `RETRY_LINE` appended to the user text up to
    `max_retries` times, then "random"). `info` gains "raw_text", "parsed_action" (None when invalid),
    "executed_action", "invalid", "retries" and, for bandits, "label_map" (label -> arm).

    `format_penalty` (e.g. -0.5 for training, 0 for evaluation) is added to the reward of an invalid turn.
    The adapter keeps `history` [(executed action, raw reward)], `n_turns` and `n_invalid` over its lifetime
    (`invalid_rate`), and `episode_actions`/`episode_rewards` of the current episode.
    """

    def __init__(self, env: gym.Env, renderer: Renderer, fallback: Fallback = "random", max_retries: int = 0,
                 seed: int | None = None, format_penalty: float = 0.0, lenient: bool = False,
                 noop_action: int = 6) -> None:
        if fallback not in FALLBACKS:
            raise ValueError(f"TextEnvAdapter: fallback must be one of {FALLBACKS}, got {fallback!r}")
        if not isinstance(env.action_space, gym.spaces.Discrete):
            raise ValueError(f"TextEnvAdapter: needs a Discrete action space, got {env.action_space!r}")
        if fallback == "noop" and not 0 <= noop_action < env.action_space.n:
            raise ValueError(f"TextEnvAdapter: noop_action {noop_action} is not an action of {env.action_space!r}")
        self.env, self.renderer, self.fallback = env, renderer, fallback
        self.max_retries, self.format_penalty, self.lenient = int(max_retries), float(format_penalty), bool(lenient)
        self.noop_action = int(noop_action)
        self._seeds = np.random.default_rng(seed)  # episode seeds when reset() gets none
        self.n_turns = 0
        self.n_invalid = 0
        self.episode_seed: int | None = None
        self.codec: ActionCodec | None = None
        self.history: list[tuple[int, float]] = []

    @property
    def invalid_rate(self) -> float:
        return self.n_invalid / self.n_turns if self.n_turns else 0.0

    def reset(self, seed: int | None = None) -> tuple[TextObs, dict]:
        self.episode_seed = int(self._seeds.integers(2**31)) if seed is None else int(seed)
        self._obs, info = self.env.reset(seed=self.episode_seed)
        self.codec = self.renderer.codec(self.env, np.random.default_rng([self.episode_seed, 0]))
        self._system = self.renderer.system(self.env, self.codec)
        self.history, self.turn, self.done = [], 0, False
        info = dict(info, label_map=dict(zip(self.codec.labels, self.codec.actions)))
        return self.observation(), info

    def observation(self) -> TextObs:
        user = self.renderer.user(self.env, self.codec, self._obs, self.history, self.turn)
        return TextObs(self._system, user, self.codec.candidates, self.turn)

    def _fallback_action(self) -> int:
        rng = np.random.default_rng([self.episode_seed, 1, self.turn])
        if self.fallback == "noop":
            return self.noop_action
        if self.fallback == "previous" and self.history:
            return self.history[-1][0]
        return int(rng.integers(self.codec.n_actions))

    def step_text(self, completion: str, retry: Callable[[TextObs], str] | None = None):
        """Parse `completion`, apply the fallback when invalid, and step the env; returns gymnasium's 5-tuple."""
        if self.fallback == "resample" and retry is None and self.max_retries > 0:
            raise ValueError("TextEnvAdapter: fallback='resample' needs a retry callable")
        parsed = parse_action(completion, self.codec, self.lenient)
        retries, text = 0, completion
        while parsed is None and self.fallback == "resample" and retries < self.max_retries:
            obs = self.observation()
            obs.user = f"{obs.user}\n{RETRY_LINE}"
            text = retry(obs)
            retries += 1
            parsed = parse_action(text, self.codec, self.lenient)
        executed = self._fallback_action() if parsed is None else parsed
        obs, reward, terminated, truncated, info = self._step(executed, invalid=parsed is None)
        info.update(raw_text=text, parsed_action=parsed, retries=retries)
        return obs, reward, terminated, truncated, info

    def step_action(self, action: int):
        """Step with an action id (candidate-scoring mode: always valid)."""
        obs, reward, terminated, truncated, info = self._step(int(action), invalid=False)
        info.update(raw_text=self.codec.candidates[int(action)], parsed_action=int(action), retries=0)
        return obs, reward, terminated, truncated, info

    def _step(self, action: int, invalid: bool):
        if self.codec is None or self.done:
            raise RuntimeError("TextEnvAdapter: step before reset() or after the episode ended")
        self._obs, reward, terminated, truncated, info = self.env.step(action)
        raw = float(info.get("raw_reward", reward))
        self.history.append((action, raw))
        self.turn += 1
        self.n_turns += 1
        self.n_invalid += invalid
        self.done = bool(terminated or truncated)
        info = dict(info, executed_action=action, invalid=invalid,
                    label_map=dict(zip(self.codec.labels, self.codec.actions)))
        reward = float(reward) + (self.format_penalty if invalid else 0.0)
        return self.observation(), reward, terminated, truncated, info
