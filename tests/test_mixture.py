"""Weighted sums of registered bonuses (`explore_bench/bonuses/mixture.py`): parsing, weights, per-component
normalisation, errors, state round trips, the contract checks of tests/test_conformance.py, and suites."""

from __future__ import annotations

import pickle
import re
import textwrap

import gymnasium as gym
import numpy as np
import pytest
import test_conformance as conformance
import torch

from explore_bench.bonuses import BonusInputError, IntrinsicRewardNormalizer, Transitions, list_bonuses, make_bonus
from explore_bench.bonuses.mixture import BonusMixture, canonical_expression, parse_mixture
from explore_bench.bonuses.registry import bonus_class, register_bonus

torch.set_num_threads(1)

ENV = "MiniGrid-DoorKey-5x5-v0"
VECTOR = conformance.SPACES["vector"]
ACTIONS = conformance.ACTIONS
MIXES = ["0.5*empowerment+rnd", "rnd+count"]  # a non-novelty component, and two novelty ones


# ------------------------------------------------------------------------------------------------- parsing
@pytest.mark.parametrize(
    "expression,terms",
    [
        ("empowerment+rnd", [(1.0, "empowerment"), (1.0, "rnd")]),
        ("0.5*empowerment + 2*rnd", [(0.5, "empowerment"), (2.0, "rnd")]),
        ("1e-2*rnd+.25*count+icm", [(0.01, "rnd"), (0.25, "count"), (1.0, "icm")]),
        ("3*rnd", [(3.0, "rnd")]),
    ],
)
def test_parse(expression, terms):
    assert parse_mixture(expression) == terms
    assert bonus_class(expression) is BonusMixture
    assert parse_mixture(canonical_expression(terms)) == terms


def test_canonical_name_and_list_bonuses_stay_the_base_bonuses():
    bonus = make_bonus("1.0*empowerment + 0.5*rnd", VECTOR, ACTIONS, seed=0)
    assert bonus.name == "empowerment+0.5*rnd"
    names = list_bonuses()
    assert "empowerment" in names and not any("+" in n or "*" in n for n in names)


@pytest.mark.parametrize(
    "expression,error,message",
    [
        ("rnd+nope", KeyError, "unknown bonus 'nope' in mixture 'rnd\\+nope'; registered bonuses: .*empowerment"),
        ("rnd+rnd", ValueError, "'rnd' appears twice"),
        ("0*rnd+icm", ValueError, "weight of 'rnd' must be a positive number"),
        ("1e999*rnd+icm", ValueError, "must be a positive number"),
        ("-1*rnd+icm", ValueError, "cannot parse at character 0"),
        ("rnd*0.5+icm", ValueError, "cannot parse at character 3"),
        ("rnd++icm", ValueError, "cannot parse at character 4"),
        ("rnd+", ValueError, "cannot parse at character 4"),
        ("rnd+icm;", ValueError, "cannot parse at character 7"),
    ],
)
def test_bad_expressions_are_clear_errors(expression, error, message):
    with pytest.raises(error, match=message):
        make_bonus(expression, VECTOR, ACTIONS)


def test_registered_names_cannot_look_like_mixtures():
    with pytest.raises(ValueError, match="reserved for mixtures"):
        register_bonus("a+b")(BonusMixture)


# ------------------------------------------------------------------------------------------------- weights
def batches(n: int, seed: int = 0, t: int = 8) -> list[Transitions]:
    rng = np.random.default_rng(seed)
    return [conformance.random_batch(VECTOR, rng, t=t) for _ in range(n)]


@pytest.mark.parametrize("normalize", [False, True])
def test_weighted_sum_of_components(normalize):
    """The mix equals sum_i w_i * r_i of standalone components built with the same seeds (seed + i), each
    divided by its own `IntrinsicRewardNormalizer` when `normalize_components` (the default)."""
    mix = make_bonus("0.5*empowerment+2*rnd", VECTOR, ACTIONS, seed=10, normalize_components=normalize)
    parts = {"empowerment": make_bonus("empowerment", VECTOR, ACTIONS, seed=10),
             "rnd": make_bonus("rnd", VECTOR, ACTIONS, seed=11)}
    normalizers = {name: IntrinsicRewardNormalizer(0.99) for name in parts}
    for batch in batches(3):
        expected = np.zeros(batch.dones.shape)
        for name, weight in (("empowerment", 0.5), ("rnd", 2.0)):
            raw = parts[name].compute(batch)
            expected += weight * (normalizers[name].normalize(raw) if normalize else raw)
            parts[name].update(batch)
        np.testing.assert_allclose(mix.compute(batch), expected, rtol=1e-5, atol=1e-7)
        stats = mix.update(batch)
        expected_keys = {"loss", "empowerment_loss", "rnd_loss", "rnd_return_std", "empowerment_estimator_variational"}
        assert expected_keys <= set(stats)


def test_component_overrides_reach_the_components():
    mix = make_bonus("empowerment+rnd", VECTOR, ACTIONS, rnd={"lr": 1e-4}, empowerment={"estimator": "infopower"})
    assert mix.components["rnd"].optimizer.param_groups[0]["lr"] == 1e-4
    assert mix.components["empowerment"].estimator == "infopower"
    with pytest.raises(TypeError, match=r"bonus 'empowerment\+rnd': .*unexpected keyword argument 'icm'"):
        make_bonus("empowerment+rnd", VECTOR, ACTIONS, icm={})
    with pytest.raises(TypeError, match="unexpected keyword argument 'lr'"):
        make_bonus("empowerment+rnd", VECTOR, ACTIONS, lr=1e-3)


# ------------------------------------------------------------------------------------- the contract
@pytest.mark.parametrize("name", MIXES)
@pytest.mark.parametrize("space_key", list(conformance.SPACES))
def test_conformance_checks_on_mixtures(name, space_key):
    conformance.test_output_shape_dtype_and_finite(name, space_key)
    conformance.test_torch_and_numpy_inputs_agree(name, space_key)
    conformance.test_deterministic_under_fixed_seed(name, space_key)
    conformance.test_state_dict_round_trip_gives_identical_rewards(name, space_key)


def test_novelty_ordering_of_a_novelty_mixture():
    conformance.test_novel_state_scores_higher_than_familiar("rnd+count", "discrete")
    assert make_bonus("empowerment+rnd", VECTOR, ACTIONS).family == "mixed"


def test_bad_input_names_the_mixture():
    bonus = make_bonus("0.5*empowerment+rnd", VECTOR, ACTIONS, seed=0)
    batch = batches(1)[0]
    batch.next_obs = batch.next_obs[..., :2]
    with pytest.raises(BonusInputError, match=re.escape("bonus '0.5*empowerment+rnd': expected next_obs of shape")):
        bonus.compute(batch)
    with pytest.raises(BonusInputError, match=re.escape("bonus 'empowerment+rnd': expected an observation space")):
        make_bonus("empowerment+rnd", gym.spaces.Dict({"x": VECTOR}), ACTIONS)
    bonus.compute(batches(1, t=2)[0])
    other_envs = conformance.random_batch(VECTOR, np.random.default_rng(0), n=3)
    with pytest.raises(BonusInputError, match="expected batches from the same 4 envs as the first compute, got N = 3"):
        bonus.compute(other_envs)


def test_state_round_trip_through_the_safe_loader(tmp_path):
    """The agent saves `state_dict()` with torch and reads it back with `weights_only=True`."""
    from explore_bench.agents.factory import load_state_safely

    trained = make_bonus("0.5*empowerment+rnd", VECTOR, ACTIONS, seed=0)
    for batch in batches(3):
        trained.compute(batch)
        trained.update(batch)
    torch.save(trained.state_dict(), tmp_path / "state.pt")
    restored = make_bonus("0.5*empowerment+rnd", VECTOR, ACTIONS, seed=5)
    restored.load_state_dict(load_state_safely(tmp_path / "state.pt"))
    probe = batches(1, seed=9)[0]
    np.testing.assert_array_equal(trained.compute(probe), restored.compute(probe))
    wrong = make_bonus("empowerment+rnd", VECTOR, ACTIONS)
    with pytest.raises(ValueError, match=re.escape("the state is of the mixture '0.5*empowerment+rnd'")):
        wrong.load_state_dict(pickle.loads(pickle.dumps(trained.state_dict())))


# ---------------------------------------------------------------------------------------------- suites
def write_suite(tmp_path, bonuses: str):
    path = tmp_path / "mix.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: mix
        frames: 1000
        seeds: [0]
        envs: [{ENV}]
        agents: [ppo]
        bonuses: {bonuses}
        """))
    return path


def test_suite_with_a_mixture_loads(tmp_path):
    from explore_bench.runner.suite import load_suite

    suite = load_suite(write_suite(tmp_path, '[null, empowerment+rnd, "0.5*empowerment+rnd"]'))
    assert [run.bonus for run in suite.runs] == [None, "empowerment+rnd", "0.5*empowerment+rnd"]
    assert suite.runs[1].method == "ppo+empowerment+rnd"
    assert suite.runs[2].run_dir(tmp_path).name == "seed_0"


@pytest.mark.parametrize(
    "bonuses,message",
    [("[empowerment+nope]", "unknown bonus 'nope' in mixture"), ("[rnd+rnd]", "'rnd' appears twice"),
     ("[nope]", "unknown bonus 'nope'")],
)
def test_suite_with_a_bad_mixture_names_the_valid_bonuses(tmp_path, bonuses, message):
    from explore_bench.agents.factory import ConfigError
    from explore_bench.runner.suite import load_suite

    with pytest.raises(ConfigError, match=rf"bonuses\[0\].*{message}.*valid bonuses: .*empowerment.*rnd"):
        load_suite(write_suite(tmp_path, bonuses))


def test_ppo_trains_with_a_mixture():
    """IntrinsicPPO builds the mix from its name and runs a rollout and an update with it."""
    from explore_bench.agents.factory import make_agent, resolve_config

    overrides = {"n_envs": 2, "hyperparameters.n_steps": 16, "hyperparameters.batch_size": 32,
                 "hyperparameters.n_epochs": 1, "intrinsic.warmup_rollouts": 1}
    model = make_agent(resolve_config(ENV, "ppo", "0.5*empowerment+rnd", 0, 64, overrides))
    model.learn(64)
    assert isinstance(model.bonus, BonusMixture) and model.bonus.normalizers["rnd"].std > 0
    # empowerment weighs by the rollout policy's own log-probabilities, not by its fallback behaviour model
    assert model.intrinsic_stats["bonus_empowerment_stored_log_prob"] == 1.0
