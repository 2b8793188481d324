"""Vectorised visit counting shared by the count-based bonuses (`count`, `simhash`). Spec: counts.md §2, §3.

Everything here is numpy, with no Python loop over transitions or envs.

Ordering. A batch is time-major `(T, N)`; it is flattened in C order (t, then env), and counting is
*update-then-query per transition in that order*: the k-th occurrence of a key within a batch sees
`prior_count + k`. This is what stepping the envs one transition at a time would give, and it makes the
first visit of a state score exactly `beta`. It is computed with a stable sort, the rank of each element
within its group of equal keys, and one `np.searchsorted` into the table's sorted key array.

Scopes.
- `lifelong`: one table for the whole run, never reset.
- `episodic`: the count of a key is per (env, episode). The env index and the env's episode number are
  folded into the 64-bit key, and every entry remembers its (env, episode) so that entries of finished
  episodes are pruned after each batch: memory stays bounded by the live episodes. A `done` at step t
  resets that env's table *after* transition t is counted (the terminal state is counted in the episode it
  ends).

Hashing. `hash_words` maps rows of 64-bit words to one uint64 key. Each word is mixed with the splitmix64
finaliser (a bijection of uint64) after xor with a fixed per-position salt, multiplied by a fixed odd
per-position multiplier, summed mod 2^64, and the sum is mixed again. For a single word (an int cell
index, a packed SimHash code of k <= 64 bits) the whole map is a bijection, so keys are exact. For longer
rows it behaves as a random 64-bit function: the expected number of colliding pairs among M distinct
states is about M^2 / 2^65 (1e7 distinct states: ~3e-6). A collision merges two states' counts; it can
never raise an error or corrupt other entries. The salts and multipliers are fixed constants (not seeded),
so keys are stable across runs and machines (bytes are read little-endian).

State is exposed as dicts of torch tensors and ints (uint64 keys reinterpreted as int64), so that
checkpoints load with `torch.load(..., weights_only=True)`.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import numpy as np
import torch

Scope = Literal["lifelong", "episodic"]
SCOPES = ("lifelong", "episodic")

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


class CountTableState:
    """Mixin for bonuses that keep their counts in `self.counter`: episode resets and the saved state."""

    counter: Any

    def reset(self, mask: np.ndarray) -> None:
        """Start new episodes in the envs where `mask` is True (episodic scope; `dones` in batches already do)."""
        self.counter.reset(to_numpy(mask))

    @property
    def counter_state(self) -> dict[str, Any]:
        return self.counter.get_state()

    @counter_state.setter
    def counter_state(self, state: dict[str, Any]) -> None:
        self.counter.set_state(state)


def _fmix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, a bijection of uint64 (arrays wrap mod 2^64 silently)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def _position_constants(width: int) -> tuple[np.ndarray, np.ndarray]:
    positions = np.arange(1, width + 1, dtype=np.uint64) * _GOLDEN
    salts = _fmix(positions)
    multipliers = _fmix(salts ^ _GOLDEN) | np.uint64(1)
    return salts, multipliers


def hash_words(words: np.ndarray) -> np.ndarray:
    """`(B, W)` uint64 -> `(B,)` uint64 keys; a bijection when W == 1 (see the module docstring)."""
    words = np.asarray(words, dtype=np.uint64)
    if words.ndim != 2:
        raise ValueError(f"hash_words expects a (B, W) array, got shape {words.shape}")
    salts, multipliers = _position_constants(words.shape[1])
    mixed = _fmix(words ^ salts) * multipliers
    total = mixed.sum(axis=1, dtype=np.uint64)
    return _fmix(total ^ np.uint64(words.shape[1]))


def hash_rows(x: np.ndarray) -> np.ndarray:
    """Hash the exact bytes of each row of `x` (`(B, ...)`, any fixed-size dtype) to a `(B,)` uint64 key.

    Multi-byte values are read little-endian; rows are zero-padded to whole 64-bit words (all rows of a
    batch have the same length, so padding cannot make two different rows equal).
    """
    x = np.asarray(x)
    b = x.shape[0]
    if x.dtype.byteorder == ">" or (x.dtype.byteorder == "=" and not np.little_endian):
        x = x.astype(x.dtype.newbyteorder("<"))
    raw = np.ascontiguousarray(x).reshape(b, -1).view(np.uint8) if x.size else np.zeros((b, 0), np.uint8)
    pad = (-raw.shape[1]) % 8 or (8 if raw.shape[1] == 0 else 0)
    if pad:
        raw = np.concatenate([raw, np.zeros((b, pad), np.uint8)], axis=1)
    return hash_words(np.ascontiguousarray(raw).view("<u8").astype(np.uint64, copy=False))


class Groups(NamedTuple):
    """Equal keys of a 1-D array grouped, keeping their order (see `occurrence_rank`)."""

    rank: np.ndarray  # (B,) 1-based occurrence index: 1 + number of earlier elements with the same key
    inverse: np.ndarray  # (B,) index of each element's key in `unique`
    unique: np.ndarray  # (G,) sorted distinct keys
    sizes: np.ndarray  # (G,) occurrences of each distinct key
    first: np.ndarray  # (G,) index of each distinct key's first occurrence


def occurrence_rank(keys: np.ndarray) -> Groups:
    """Group equal keys with one stable sort; the rank of an element is its occurrence index in order."""
    keys = np.asarray(keys)
    b = keys.shape[0]
    if b == 0:
        empty = np.zeros(0, np.int64)
        return Groups(empty, empty, keys.copy(), empty, empty)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    is_first = np.empty(b, dtype=bool)
    is_first[0] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=is_first[1:])
    starts = np.flatnonzero(is_first)
    group_sorted = np.cumsum(is_first) - 1
    rank = np.empty(b, dtype=np.int64)
    rank[order] = np.arange(b, dtype=np.int64) - starts[group_sorted] + 1
    inverse = np.empty(b, dtype=np.int64)
    inverse[order] = group_sorted
    sizes = np.diff(np.append(starts, b)).astype(np.int64)
    return Groups(rank, inverse, sorted_keys[starts], sizes, order[starts])


def _u64_to_tensor(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.uint64).view(np.int64).copy())


def _tensor_to_u64(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy().astype(np.int64, copy=False).view(np.uint64).copy()


class CountTable:
    """Exact counts over uint64 keys: a sorted key array with aligned counts (and optional int64 tags)."""

    def __init__(self, n_tags: int = 0) -> None:
        self.keys = np.zeros(0, dtype=np.uint64)
        self.counts = np.zeros(0, dtype=np.int64)
        self.tags = np.zeros((0, n_tags), dtype=np.int64)

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    def increment_and_query(self, keys: np.ndarray, tags: np.ndarray | None = None) -> np.ndarray:
        """Count each key in order (update, then query); returns the `(B,)` int64 counts seen.

        `tags` (`(B, n_tags)` int64) are stored with new entries (the first occurrence's tags).
        """
        keys = np.asarray(keys, dtype=np.uint64).ravel()
        g = occurrence_rank(keys)
        pos = np.searchsorted(self.keys, g.unique)
        found = np.zeros(len(g.unique), dtype=bool)
        prior = np.zeros(len(g.unique), dtype=np.int64)
        if len(self):
            safe = np.minimum(pos, len(self) - 1)
            found = self.keys[safe] == g.unique
            prior = np.where(found, self.counts[safe], 0)
        counts = prior[g.inverse] + g.rank
        # update the table: existing keys in place, new keys inserted at their sorted positions
        self.counts[pos[found]] += g.sizes[found]
        new = ~found
        if new.any():
            self.keys = np.insert(self.keys, pos[new], g.unique[new])
            self.counts = np.insert(self.counts, pos[new], g.sizes[new])
            if self.tags.shape[1]:
                if tags is None:
                    raise ValueError("this CountTable stores tags: pass them with the keys")
                first_tags = np.asarray(tags, dtype=np.int64).reshape(len(keys), -1)[g.first[new]]
                self.tags = np.insert(self.tags, pos[new], first_tags, axis=0)
        return counts

    def keep(self, mask: np.ndarray) -> None:
        """Drop the entries where `mask` is False (order is preserved, so keys stay sorted)."""
        self.keys, self.counts, self.tags = self.keys[mask], self.counts[mask], self.tags[mask]

    def get_state(self) -> dict[str, torch.Tensor]:
        return {"keys": _u64_to_tensor(self.keys), "counts": torch.from_numpy(self.counts.copy()), "tags": torch.from_numpy(self.tags.copy())}

    def set_state(self, state: dict[str, torch.Tensor]) -> None:
        self.keys = _tensor_to_u64(state["keys"])
        self.counts = state["counts"].numpy().astype(np.int64, copy=True)
        tags = state["tags"]  # (n_keys, n_tags); an explicit width, since -1 cannot be inferred for an empty table
        self.tags = tags.numpy().astype(np.int64, copy=True).reshape(len(self.keys), tags.shape[-1])


class EpisodeTracker:
    """Per-env episode numbers; `dones` end an episode after the transition that carries them."""

    def __init__(self) -> None:
        self.episode = np.zeros(0, dtype=np.int64)

    def _ensure(self, n_envs: int) -> None:
        if n_envs > self.episode.shape[0]:
            self.episode = np.concatenate([self.episode, np.zeros(n_envs - self.episode.shape[0], np.int64)])

    def episode_ids(self, dones: np.ndarray) -> np.ndarray:
        """`(T, N)` episode number of each transition (exclusive cumulative sum of dones along time)."""
        self._ensure(dones.shape[1])
        d = dones.astype(np.int64)
        return self.episode[None, : dones.shape[1]] + np.cumsum(d, axis=0) - d

    def advance(self, dones: np.ndarray) -> None:
        self._ensure(dones.shape[1])
        self.episode[: dones.shape[1]] += dones.sum(axis=0).astype(np.int64)

    def reset(self, mask: np.ndarray) -> None:
        mask = np.asarray(mask, dtype=bool).ravel()
        self._ensure(mask.shape[0])
        self.episode[: mask.shape[0]] += mask

    def is_live(self, env: np.ndarray, episode: np.ndarray) -> np.ndarray:
        return episode == self.episode[env]


def fold_episode(keys: np.ndarray, env: np.ndarray, episode: np.ndarray) -> np.ndarray:
    """Fold (env index, episode number) into uint64 keys (same shapes)."""
    words = np.stack([np.asarray(keys, np.uint64), env.astype(np.uint64), episode.astype(np.uint64)], axis=-1)
    return hash_words(words.reshape(-1, 3)).reshape(np.shape(keys))


def env_index(shape: tuple[int, int]) -> np.ndarray:
    return np.broadcast_to(np.arange(shape[1], dtype=np.int64)[None, :], shape)


class KeyCounter:
    """Exact visit counts of uint64 keys with a lifelong or episodic scope."""

    def __init__(self, scope: Scope = "lifelong") -> None:
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
        self.scope = scope
        self.table = CountTable(n_tags=2 if scope == "episodic" else 0)
        self.episodes = EpisodeTracker()

    def __len__(self) -> int:
        return len(self.table)

    def count(self, keys: np.ndarray, dones: np.ndarray) -> np.ndarray:
        """`(T, N)` uint64 keys and bool dones -> `(T, N)` int64 counts (update-then-query, time-major)."""
        keys = np.asarray(keys, dtype=np.uint64)
        if self.scope == "lifelong":
            return self.table.increment_and_query(keys.ravel()).reshape(keys.shape)
        dones = np.asarray(dones, dtype=bool)
        episode = self.episodes.episode_ids(dones)
        env = env_index(keys.shape)
        tags = np.stack([env, episode], axis=-1).reshape(-1, 2)
        counts = self.table.increment_and_query(fold_episode(keys, env, episode).ravel(), tags)
        self.episodes.advance(dones)
        self._prune()
        return counts.reshape(keys.shape)

    def reset(self, mask: np.ndarray) -> None:
        """Start a new episode in the envs where `mask` is True (episodic scope; no-op when lifelong)."""
        if self.scope == "episodic":
            self.episodes.reset(mask)
            self._prune()

    def _prune(self) -> None:
        tags = self.table.tags
        if len(tags):
            self.table.keep(self.episodes.is_live(tags[:, 0], tags[:, 1]))

    def get_state(self) -> dict[str, Any]:
        return {"scope": self.scope, "table": self.table.get_state(), "episode": torch.from_numpy(self.episodes.episode.copy())}

    def set_state(self, state: dict[str, Any]) -> None:
        if state["scope"] != self.scope:
            raise ValueError(f"state has scope {state['scope']!r}, this counter is {self.scope!r}")
        self.table.set_state(state["table"])
        self.episodes.episode = state["episode"].numpy().astype(np.int64, copy=True)


# Count-min sketch of the SimHash reference code (openai/EPG `HashingBonusEvaluator`), counts.md §3.2.
SKETCH_PRIMES = (999931, 999953, 999959, 999961, 999979, 999983)


class CountMinSketch:
    """Count-min sketch over precomputed cell indices, one per table: `cells[..., i]` in `[0, P_i)`.

    Update-then-query per transition in time-major order, like `KeyCounter`: in every table the k-th
    occurrence of a cell within a batch sees `prior + k`, and the count is the minimum over tables, so it is
    exactly what incrementing and querying one transition at a time gives, and never under-counts.
    Episodic scope adds a hash of (env, episode) to every cell index and keeps a log of the live episodes'
    increments, which are subtracted again when the episode ends (memory bounded by the live episodes).
    """

    def __init__(self, primes: tuple[int, ...] = SKETCH_PRIMES, scope: Scope = "lifelong") -> None:
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
        self.primes = np.asarray(primes, dtype=np.int64)
        self.scope = scope
        # uint32 counters: 24 MB for the reference primes; a cell would need 4e9 visits to overflow.
        self.tables = np.zeros((len(primes), int(self.primes.max())), dtype=np.uint32)
        self.episodes = EpisodeTracker()
        self.live_cells = np.zeros((0, len(primes)), dtype=np.int64)
        self.live_tags = np.zeros((0, 2), dtype=np.int64)

    def count(self, cells: np.ndarray, dones: np.ndarray) -> np.ndarray:
        """`(T, N, n_tables)` int64 cells and `(T, N)` dones -> `(T, N)` int64 counts."""
        cells = np.asarray(cells, dtype=np.int64)
        shape = cells.shape[:2]
        flat = cells.reshape(-1, len(self.primes))
        if self.scope == "episodic":
            dones = np.asarray(dones, dtype=bool)
            episode = self.episodes.episode_ids(dones)
            env = env_index(shape)
            offset = fold_episode(np.zeros(shape, np.uint64), env, episode).ravel()
            flat = (flat + (offset[:, None] % self.primes.astype(np.uint64)).astype(np.int64)) % self.primes
        counts = self._increment_and_query(flat)
        if self.scope == "episodic":
            self.live_cells = np.concatenate([self.live_cells, flat])
            self.live_tags = np.concatenate([self.live_tags, np.stack([env, episode], axis=-1).reshape(-1, 2)])
            self.episodes.advance(dones)
            self._prune()
        return counts.reshape(shape)

    def query(self, cells: np.ndarray) -> np.ndarray:
        """Current counts of `(B, n_tables)` cells (lifelong indices), without incrementing."""
        cells = np.asarray(cells, dtype=np.int64).reshape(-1, len(self.primes))
        return self.tables[np.arange(len(self.primes))[None, :], cells].min(axis=1).astype(np.int64)

    def _increment_and_query(self, flat: np.ndarray) -> np.ndarray:
        seen = np.empty(flat.shape, dtype=np.int64)
        for i in range(len(self.primes)):  # loop over the 6 tables only
            g = occurrence_rank(flat[:, i])
            seen[:, i] = self.tables[i, flat[:, i]].astype(np.int64) + g.rank
            self.tables[i, g.unique] += g.sizes.astype(np.uint32)
        return seen.min(axis=1)

    def reset(self, mask: np.ndarray) -> None:
        if self.scope == "episodic":
            self.episodes.reset(mask)
            self._prune()

    def _prune(self) -> None:
        if not len(self.live_tags):
            return
        live = self.episodes.is_live(self.live_tags[:, 0], self.live_tags[:, 1])
        if live.all():
            return
        for i in range(len(self.primes)):
            dead_unique, dead_sizes = np.unique(self.live_cells[~live, i], return_counts=True)
            self.tables[i, dead_unique] -= dead_sizes.astype(np.uint32)
        self.live_cells, self.live_tags = self.live_cells[live], self.live_tags[live]

    def occupancy(self) -> float:
        """Fraction of non-zero cells in the first table."""
        return float(np.count_nonzero(self.tables[0, : self.primes[0]]) / self.primes[0])

    def get_state(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "primes": torch.from_numpy(self.primes.copy()),
            "tables": torch.from_numpy(self.tables.view(np.int32).copy()),  # uint32 bits as int32
            "episode": torch.from_numpy(self.episodes.episode.copy()),
            "live_cells": torch.from_numpy(self.live_cells.copy()),
            "live_tags": torch.from_numpy(self.live_tags.copy()),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        if state["scope"] != self.scope:
            raise ValueError(f"state has scope {state['scope']!r}, this sketch is {self.scope!r}")
        self.primes = state["primes"].numpy().astype(np.int64, copy=True)
        self.tables = state["tables"].numpy().astype(np.int32, copy=True).view(np.uint32)
        self.episodes.episode = state["episode"].numpy().astype(np.int64, copy=True)
        self.live_cells = state["live_cells"].numpy().astype(np.int64, copy=True)
        self.live_tags = state["live_tags"].numpy().astype(np.int64, copy=True)
