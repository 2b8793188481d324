"""Atari hard-exploration suite under the protocol of Machado et al. 2018 (JAIR, "Revisiting the ALE").

Ids are ``Atari-<Game>-v0``, where ``<Game>`` is the ALE game name exactly as in ale-py's ``ALE/<Game>-v5``
(``Atari-MontezumaRevenge-v0`` builds ``ALE/MontezumaRevenge-v5``); ``v0`` is the version of our protocol. The
games are the sparse-reward hard-exploration games of Bellemare et al. 2016 (Montezuma's Revenge, Pitfall!,
Venture, Gravitar, Private Eye, Solaris, Freeway) plus Frostbite (dense reward, hard exploration).

Protocol (every argument is passed to ale-py explicitly):

- sticky actions, ``repeat_action_probability=0.25`` (the ALE repeats the previous action with that probability on
  every emulator frame); the full action set, ``Discrete(18)``, for every game; no no-op starts, no fire reset;
- frame skip 4: one agent step is ``FRAMES_PER_STEP = 4`` emulator frames (the ALE env is built with
  ``frameskip=1`` and SB3's ``MaxAndSkipEnv`` repeats the action, sums the rewards and max-pools the last two
  frames, as SB3's ``AtariWrapper`` and ale-py's vector env do, against sprite flicker);
- no termination on life loss: an episode ends at game over or when the ALE truncates it at
  ``MAX_EPISODE_FRAMES = 108_000`` emulator frames (27,000 agent steps, 30 minutes of play); ``make_atari``'s
  ``max_episode_frames`` lowers the cap (tests);
- rewards are the raw game score changes (no clipping: clipping is the agent's business, and the episode return
  must be the game score).

Wrapper stack::

    gym.make("ALE/<Game>-v5", obs_type="grayscale", frameskip=1, ...)  ->  MaxAndSkipEnv(skip=4)
        ->  AreaResize(84x84)  ->  FrameStackObservation(4)  ->  AtariStats

Observations are ``Box(0, 255, (4, 84, 84), uint8)``, the four last grayscale frames (oldest first; zeros before
the first frame of an episode, as SB3's ``VecFrameStack``), each the 210x160 screen area-averaged to 84x84 (cv2's
``INTER_AREA``, in numpy: opencv is not a dependency, and gymnasium's ``AtariPreprocessing`` needs it). SB3 sees a
channels-first image (``CnnPolicy``, no transpose).

Frames: budgets are counted in emulator frames. ``FRAMES_PER_STEP`` (also the ``frames_per_step`` attribute of
``AtariStats``, reachable as ``env.get_wrapper_attr("frames_per_step")`` or ``VecEnv.get_attr``) converts agent
steps to frames; every step's ``info["episode_frame_number"]`` (from ale-py) is the emulator frames since reset,
and ``episode_metrics["frames"]`` the frames of the ended episode.

Raw screen (Go-Explore cells): ``env.unwrapped.ale.getScreenGrayscale()`` is the last emulator frame, 210x160
uint8 (not max-pooled), and ``env.unwrapped.ale.getRAM()`` the 128 bytes of RAM; both are read on demand, never
copied into ``info``. ``AtariStats.room`` is the current room, ``room_of(game, ram)`` the same for any RAM.
``game_of(env_id)`` and ``rom_name(game)`` give the ALE game and ROM names of an id (for code that drives the
ALE itself).

Episode metrics (``info["episode_metrics"]`` on the last step, the format of ``ExplorationStats``)::

    {"return": float,          # game score of the episode (sum of raw rewards)
     "length": int,            # agent steps
     "frames": int,            # emulator frames (length * FRAMES_PER_STEP, fewer if the game ended mid-skip)
     "success": None,          # Atari games have no success criterion: the runner leaves the column empty
     "coverage": int | None}   # distinct rooms visited (start room included) where the RAM tells the room
                               # (``ROOM_FROM_RAM``: Montezuma's Revenge, Pitfall!), None for the other games

Vectorisation: agents get SB3's ``DummyVecEnv`` over this env (``explore_bench.agents.factory``), not ale-py's
``AtariVectorEnv``. The vector env runs the same protocol in C++ (its frames match ``AreaResize`` to within one grey
level), but it exposes neither the RAM nor the raw screen, so it cannot give the coverage metric nor Go-Explore's
cells, and its speed-up is small: ``benchmarks/atari_vector.py`` (Montezuma's Revenge, random actions, agent
steps/s, median of 5 rounds of 250 vector steps, on 2 cores one of which was busy with another job) measured

    n_envs   AtariVectorEnv 1 thread   2 threads   DummyVecEnv   SubprocVecEnv   best vector / best Python
    2        1215                      1437        1021          678             1.41
    8         901                      1258         940          700             1.34

i.e. about the same rate on one thread, and 1.3-1.4x with a second thread, which the runner's one-worker-per-core
pool has no spare core for.

Reference scores: ``ATARI_REFERENCE_SCORES`` (random and human score per game) and ``human_normalized_score``;
the leaderboard normalises Atari runs with them (``explore_bench.leaderboard.normalize``).

ale-py is imported only when an env is built (``pip install explore-bench[atari]``), so importing the catalogue
is cheap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Hashable

import gymnasium as gym
import numpy as np

from explore_bench.imaging import area_resize

FAMILY = "atari"

#: emulator frames per agent step (frame skip)
FRAMES_PER_STEP = 4
#: sticky actions (Machado et al. 2018)
REPEAT_ACTION_PROBABILITY = 0.25
#: episode cap in emulator frames (30 minutes at 60 frames/s)
MAX_EPISODE_FRAMES = 108_000
SCREEN_SIZE = 84
FRAME_STACK = 4


@dataclass(frozen=True)
class AtariEntry:
    """One catalogue entry: our id, the ALE game name (``ALE/<game>-v5``) and its exploration category."""

    env_id: str
    game: str
    reward: str  # "sparse" or "dense" (the hard-exploration taxonomy of Bellemare et al. 2016)
    family: str = FAMILY


def _entries() -> dict[str, AtariEntry]:
    games = {
        "sparse": ["MontezumaRevenge", "Pitfall", "Venture", "Gravitar", "PrivateEye", "Solaris", "Freeway"],
        "dense": ["Frostbite"],
    }
    return {
        f"Atari-{game}-v0": AtariEntry(env_id=f"Atari-{game}-v0", game=game, reward=reward)
        for reward, names in games.items()
        for game in names
    }


#: Catalogue of the Atari hard-exploration set, in a stable order.
ATARI_ENVS: dict[str, AtariEntry] = _entries()

#: ALE game name -> (random score, human score): the standard Atari-57 reference scores (uniform-random agent and
#: professional human tester; no-op starts, episodes capped at 108,000 frames) introduced by Mnih et al. 2015
#: (Nature DQN; later papers added the games it lacked, e.g. Surround) and used since (e.g. Badia et al. 2020,
#: Agent57). None of the specs in ``shared/specs/`` lists them. Values as in DeepMind's ``google-deepmind/dqn_zoo``,
#: ``dqn_zoo/atari_data.py``; the random column agrees with ``google-research/reincarnating_rl``,
#: ``reincarnating_rl/atari_scores.py``. Rows: the hard-exploration games of the Bellemare et al. 2016 taxonomy
#: ("Unifying count-based exploration and intrinsic motivation"; also used by Ostrovski et al. 2017 and the RND
#: paper), sparse and dense reward, plus Pong and Breakout as smoke-test games; the leaderboard
#: (``explore_bench.leaderboard.normalize``) scores runs of any of them. Caveat: the references were measured
#: without sticky actions.
ATARI_REFERENCE_SCORES: dict[str, tuple[float, float]] = {
    # hard exploration, sparse reward
    "Freeway": (0.0, 29.6),
    "Gravitar": (173.0, 3351.4),
    "MontezumaRevenge": (0.0, 4753.3),
    "Pitfall": (-229.4, 6463.7),
    "PrivateEye": (24.9, 69571.3),
    "Solaris": (1236.3, 12326.7),
    "Venture": (0.0, 1187.5),
    # hard exploration, dense reward
    "Alien": (227.8, 7127.7),
    "Amidar": (5.8, 1719.5),
    "BankHeist": (14.2, 753.1),
    "Frostbite": (65.2, 4334.7),
    "Hero": (1027.0, 30826.4),
    "MsPacman": (307.3, 6951.6),
    "Qbert": (163.9, 13455.0),
    "Surround": (-10.0, 6.5),
    "WizardOfWor": (563.5, 4756.5),
    "Zaxxon": (32.5, 9173.3),
    # smoke-test games
    "Pong": (-20.7, 14.6),
    "Breakout": (1.7, 30.5),
}


def _entry(env_id: str) -> AtariEntry:
    """The catalogue entry of a plain or ``explore_bench/``-namespaced id; ``KeyError`` listing the ids otherwise."""
    entry = ATARI_ENVS.get(env_id.removeprefix("explore_bench/"))
    if entry is None:
        raise KeyError(f"unknown Atari env id {env_id!r}; valid ids: {', '.join(ATARI_ENVS)}")
    return entry


def game_of(env_id: str) -> str:
    """The ALE game name of a catalogue id: ``"Atari-MontezumaRevenge-v0"`` -> ``"MontezumaRevenge"``."""
    return _entry(env_id).game


def rom_name(game: str) -> str:
    """The ROM name of an ALE game (``ale_py.roms.get_rom_path``, ``AtariVectorEnv``): ``"MontezumaRevenge"`` ->
    ``"montezuma_revenge"``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", game).lower()


def human_normalized_score(game: str, score: float) -> float:
    """``(score - random) / (human - random)``: 0 = random play, 1 = the human tester.

    ``game`` is an ALE game name of ``ATARI_REFERENCE_SCORES`` (``"MontezumaRevenge"``) or a catalogue id (plain or
    ``explore_bench/``-namespaced). Raises ``KeyError`` for a game without reference scores."""
    name = game_of(game) if game.removeprefix("explore_bench/") in ATARI_ENVS else game
    if name not in ATARI_REFERENCE_SCORES:
        raise KeyError(f"no random/human reference scores for Atari game {game!r}; games with scores: "
                       f"{', '.join(ATARI_REFERENCE_SCORES)}")
    random, human = ATARI_REFERENCE_SCORES[name]
    return (float(score) - random) / (human - random)


def _montezuma_room(ram: np.ndarray) -> tuple[int, int]:
    return int(ram[57]), int(ram[3])  # (level, room): the pyramid's 24 rooms repeat on every level


def _pitfall_room(ram: np.ndarray) -> int:
    return int(ram[1])  # the screen's 8-bit LFSR value, unique per screen (255 screens; 196 at the start)


#: ALE game name -> f(RAM) -> the current room, for the games whose RAM holds it (RAM indices are from $80).
ROOM_FROM_RAM: dict[str, Callable[[np.ndarray], Hashable]] = {
    "MontezumaRevenge": _montezuma_room,
    "Pitfall": _pitfall_room,
}


def room_of(game: str, ram: np.ndarray) -> Hashable | None:
    """The room of ALE game ``game`` in state ``ram`` (the 128 bytes of ``ale.getRAM()``), or None for a game whose
    room the RAM does not tell (``ROOM_FROM_RAM``)."""
    fn = ROOM_FROM_RAM.get(game)
    return None if fn is None else fn(ram)


class AreaResize(gym.ObservationWrapper):
    """Resize 2-D uint8 frames to ``(size, size)`` by pixel-area averaging (cv2's ``INTER_AREA``, see
    ``explore_bench.imaging``), rounded to uint8."""

    def __init__(self, env: gym.Env, size: int = SCREEN_SIZE):
        super().__init__(env)
        self.size = int(size)
        self.observation_space = gym.spaces.Box(0, 255, (size, size), np.uint8)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.rint(area_resize(observation, self.size, self.size)).astype(np.uint8)


class AtariStats(gym.Wrapper):
    """Per-episode metrics of an Atari env (see the module docstring) and its frames per agent step.

    Reads the RAM through ``env.unwrapped.ale`` after each reset/step, so it works at any position in a wrapper
    stack over an ale-py ``AtariEnv``."""

    def __init__(self, env: gym.Env, game: str, frames_per_step: int = FRAMES_PER_STEP):
        super().__init__(env)
        self.game = game
        #: emulator frames per agent step
        self.frames_per_step = int(frames_per_step)
        self._ale = env.unwrapped.ale
        self._has_rooms = game in ROOM_FROM_RAM
        self._rooms: set[Hashable] = set()
        self._return = 0.0
        self._length = 0

    @property
    def room(self) -> Hashable | None:
        """The current room read from the RAM (``room_of``), or None for a game without one."""
        return room_of(self.game, self._ale.getRAM())

    @property
    def episode_coverage(self) -> int | None:
        """Distinct rooms visited so far in the current episode (None for a game without rooms in RAM)."""
        return len(self._rooms) if self._has_rooms else None

    def _visit(self) -> None:
        if self._has_rooms:
            self._rooms.add(self.room)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._rooms.clear()
        self._return = 0.0
        self._length = 0
        self._visit()
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._return += float(reward)
        self._length += 1
        self._visit()
        if terminated or truncated:
            info["episode_metrics"] = {
                "return": self._return,
                "length": self._length,
                "frames": int(info["episode_frame_number"]),
                "success": None,
                "coverage": self.episode_coverage,
            }
        return obs, reward, terminated, truncated, info


def make_atari(env_id: str, max_episode_frames: int = MAX_EPISODE_FRAMES, clip_rewards: bool = False,
               **kwargs: Any) -> gym.Env:
    """Build catalogue env ``env_id`` with the protocol and wrappers of the module docstring (no seeding; see
    ``make_env``).

    ``max_episode_frames``: the episode cap in emulator frames (default 108,000). ``clip_rewards``: the agent gets
    ``sign(reward)`` (DQN's and RND's recipe); the episode metrics still report the game score. ``kwargs`` go to ale-py's
    ``AtariEnv`` through ``gym.make`` (e.g. ``render_mode``); the protocol arguments cannot be overridden.
    """
    entry = _entry(env_id)
    try:
        import ale_py
    except ImportError as e:
        raise gym.error.DependencyNotInstalled(
            f"{env_id} needs ale-py (it ships the ROMs): pip install 'explore-bench[atari]'") from e
    # SB3 imports cv2 only if present; its frame-skip wrapper works without it.
    from stable_baselines3.common.atari_wrappers import MaxAndSkipEnv

    gym.register_envs(ale_py)
    env = gym.make(
        f"ALE/{entry.game}-v5",
        obs_type="grayscale",
        frameskip=1,  # MaxAndSkipEnv skips, so that it can max-pool the last two frames
        repeat_action_probability=REPEAT_ACTION_PROBABILITY,
        full_action_space=True,
        max_num_frames_per_episode=int(max_episode_frames),
        mode=None,
        difficulty=None,
        **kwargs,
    )
    env = MaxAndSkipEnv(env, skip=FRAMES_PER_STEP)
    env = AreaResize(env, SCREEN_SIZE)
    env = gym.wrappers.FrameStackObservation(env, FRAME_STACK, padding_type="zero")  # as SB3's VecFrameStack
    env = AtariStats(env, entry.game, FRAMES_PER_STEP)
    if clip_rewards:
        env = gym.wrappers.TransformReward(env, lambda r: float(np.sign(r)))
    return env
