"""Per-env score normalisation, so that scores of different envs can be aggregated (Agarwal et al. 2021).

Every finished run gets one normalised score from its ``summary.json`` final metrics, by env family:

* ``minigrid``: the final success rate, already in [0, 1] (0 = never solves, 1 = always solves).
* ``atari``: the human-normalised score ``(return - random) / (human - random)`` of the final (raw, unclipped)
  episode return, with the random/human reference scores of ``ATARI_REFERENCE_SCORES`` (0 = random, 1 = human;
  scores above 1 and below 0 are kept).
* ``bandit``: the normalised score of ``specs/bandits.md`` §5.2 (RL^2 Fig. 2 convention),
  ``(R_random - R_alg) / (R_random - R_ref)`` of cumulative pseudo-regret (0 = random, 1 = reference).  A run
  may report it directly as ``final["normalized_score"]``; otherwise it is computed from ``final["regret"]``,
  ``final["regret_random"]`` and ``final["regret_reference"]`` (default 0, the oracle: the score is then
  ``1 - regret / regret_random``, i.e. one minus the regret normalised by the random policy's).

Any other family (e.g. ``tvgrid``, an exploration-only world with no task score) raises ``ValueError`` naming it;
``unscored_envs`` finds such envs beforehand, so that a report can leave them out of cross-env statistics.

The Atari reference table, its source and the games it covers are in ``explore_bench.envs.atari``
(``ATARI_REFERENCE_SCORES``, re-exported here). Caveat: the references were measured without sticky actions; our
Atari protocol (Machado et al. 2018) uses sticky actions, as do the papers that report human-normalised scores
under it.
"""

from __future__ import annotations

import logging
import re
from typing import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from explore_bench.envs.atari import ATARI_REFERENCE_SCORES
from explore_bench.envs.bandits.metrics import normalized_score as bandit_normalized_score

log = logging.getLogger(__name__)

__all__ = [
    "ATARI_REFERENCE_SCORES",
    "FAMILIES",
    "atari_game",
    "env_family_of",
    "human_normalized_score",
    "normalized_score",
    "add_normalized_scores",
    "unscored_envs",
]

def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_ATARI_BY_KEY = {_key(g): g for g in ATARI_REFERENCE_SCORES}


def _base_name(env_id: str) -> str:
    """'explore_bench/ALE/MontezumaRevenge-v5' -> 'MontezumaRevenge-v5' (last path component)."""
    return env_id.rsplit("/", 1)[-1]


def atari_game(env_id: str) -> str | None:
    """The ALE game of an Atari env id, or None if it is not in ``ATARI_REFERENCE_SCORES``.

    Accepts 'ALE/MontezumaRevenge-v5', 'MontezumaRevengeNoFrameskip-v4', 'MontezumaRevengeDeterministic-v4',
    'montezuma_revenge', our catalogue's 'Atari-MontezumaRevenge-v0' and namespaced forms of these."""
    name = re.sub(r"^Atari-", "", re.sub(r"-v\d+$", "", _base_name(env_id)))
    name = re.sub(r"(NoFrameskip|Deterministic)$", "", name)
    return _ATARI_BY_KEY.get(_key(name))


def env_family_of(env_id: str) -> str:
    """Family of ``env_id``: the package catalogue's answer when it knows the id, else by name ('ALE/...',
    '...NoFrameskip-v4' or a game of ``ATARI_REFERENCE_SCORES`` -> 'atari'; '...Bandit...' -> 'bandit';
    'MiniGrid-...' -> 'minigrid').  Raises ``ValueError`` naming the id if none applies."""
    from explore_bench.envs import env_family

    try:
        return env_family(env_id)
    except KeyError:
        pass
    base = _base_name(env_id)
    if "ALE/" in env_id or "NoFrameskip" in base or atari_game(env_id) is not None:
        return "atari"
    if "bandit" in base.lower():
        return "bandit"
    if base.startswith("MiniGrid-"):
        return "minigrid"
    raise ValueError(f"cannot tell the env family of {env_id!r} (not in the env catalogue, and not an Atari, "
                     f"bandit or MiniGrid id); known families: {', '.join(FAMILIES)}")


def human_normalized_score(game: str, score: float) -> float:
    """``(score - random) / (human - random)`` for an ALE game name or env id (see ``ATARI_REFERENCE_SCORES``)."""
    name = atari_game(game)
    if name is None:
        raise ValueError(f"no random/human reference scores for Atari game {game!r}; the table has: "
                         f"{', '.join(ATARI_REFERENCE_SCORES)}")
    random, human = ATARI_REFERENCE_SCORES[name]
    return (float(score) - random) / (human - random)


def _get(final: Mapping[str, object], key: str) -> float:
    value = final.get(key)
    return float("nan") if value is None else float(value)  # type: ignore[arg-type]


def _minigrid(env_id: str, final: Mapping[str, object]) -> float:
    return _get(final, "success")


def _atari(env_id: str, final: Mapping[str, object]) -> float:
    return human_normalized_score(env_id, _get(final, "return"))


def _bandit(env_id: str, final: Mapping[str, object]) -> float:
    if final.get("normalized_score") is not None:
        return _get(final, "normalized_score")
    missing = [k for k in ("regret", "regret_random") if final.get(k) is None]
    if missing:
        raise ValueError(f"bandit run of {env_id!r} has neither 'normalized_score' nor {missing} in its final "
                         "metrics (specs/bandits.md §5.2 needs the regret of the run and of the random policy)")
    reference = _get(final, "regret_reference") if final.get("regret_reference") is not None else 0.0
    try:
        return bandit_normalized_score(_get(final, "regret"), _get(final, "regret_random"), reference)
    except ValueError as e:
        raise ValueError(f"bandit run of {env_id!r}: {e}") from None


#: family -> f(env_id, final metrics) -> normalised score.
FAMILIES: dict[str, Callable[[str, Mapping[str, object]], float]] = {
    "minigrid": _minigrid,
    "atari": _atari,
    "bandit": _bandit,
}


def normalized_score(env_id: str, final: Mapping[str, object], family: str | None = None) -> float:
    """The normalised score of one run of ``env_id`` from its final metrics (see the module docstring).

    ``family`` defaults to ``env_family_of(env_id)``; a family without a normaliser raises ``ValueError``."""
    family = env_family_of(env_id) if family is None else family
    try:
        fn = FAMILIES[family]
    except KeyError:
        raise ValueError(f"no normalised score is defined for env family {family!r} (env {env_id!r}); "
                         f"known families: {', '.join(FAMILIES)}") from None
    return float(fn(env_id, final))


def _family(env_id: str, families: Mapping[str, str] | None) -> str:
    """The family of ``env_id``: ``families[env_id]`` when given, else ``env_family_of``."""
    return (families or {}).get(env_id) or env_family_of(env_id)


def unscored_envs(env_ids: Iterable[str], families: Mapping[str, str] | None = None) -> dict[str, str]:
    """The envs among ``env_ids`` that get no normalised score, each with its family (e.g. ``"family 'tvgrid'"``,
    one without a normaliser in ``FAMILIES``) or ``"unknown family"``.  ``families`` as in ``add_normalized_scores``."""
    out = {}
    for env in sorted(set(env_ids)):
        try:
            family = _family(env, families)
        except ValueError:
            out[env] = "unknown family"
            continue
        if family not in FAMILIES:
            out[env] = f"family {family!r}"
    return out


def add_normalized_scores(runs: pd.DataFrame, families: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Copy of ``load_runs`` output with ``family`` and ``score`` (normalised) columns.

    ``families`` optionally maps env ids to families (overrides ``env_family_of``).  The final metrics come from
    the ``final_metrics`` column (the summary's whole ``final`` object) when present, else from the
    ``final_success`` / ``final_return`` / ``final_coverage`` columns.  Runs whose score is not finite (e.g. no
    finished episode) are logged; callers drop them from statistics."""
    out = runs.copy()
    fam = {env: _family(env, families) for env in out["env"].unique()}
    scores = []
    for r in out.itertuples(index=False):
        final = getattr(r, "final_metrics", None)
        if not isinstance(final, Mapping):
            final = {m: getattr(r, f"final_{m}") for m in ("success", "return", "coverage")}
        scores.append(normalized_score(r.env, final, fam[r.env]))
    out["family"] = out["env"].map(fam)
    out["score"] = np.asarray(scores, dtype=float)
    bad = out[~np.isfinite(out["score"])]
    if len(bad):
        log.warning("%d run(s) have no finite normalised score and are left out: %s", len(bad),
                    ", ".join(f"{r.env}/{r.method}/seed{r.seed}" for r in bad.itertuples()))
    return out
