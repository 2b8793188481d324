"""RDD bonus (spec rdd.md §4): acceptance tests T-D1..T-D7, and T-R4, the RND test T-D3 is contrasted with."""

import io
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from rnd_helpers import ACTIONS, GRID, grid_states, transitions
from scipy.stats import spearmanr
from torch import nn

from explore_bench.bonuses import Transitions, make_bonus
from explore_bench.bonuses.networks import make_encoder
from explore_bench.bonuses.rdd import RDD
from explore_bench.bonuses.rnd import RND

torch.set_num_threads(1)


def one_hot_inputs(states) -> torch.Tensor:
    """Discrete observations as the networks take them (floats; the encoder one-hot codes them)."""
    return torch.as_tensor(np.asarray(states), dtype=torch.float32)


# ---------------------------------------------------------------------------------------------- options
def test_registered_and_options_validated():
    bonus = make_bonus("rdd", GRID, ACTIONS, seed=0)
    assert isinstance(bonus, RDD) and isinstance(bonus, RND) and bonus.name == "rdd"
    for bad in (
        {"sigma": -1.0},
        {"sigma_mode": "learned"},
        {"noise_mode": "per_epoch"},
        {"bonus_form": "abs"},
        {"mu_scale": 0.0},
        {"sigma": 0.0, "bonus_form": "sqrt"},
    ):
        with pytest.raises(ValueError, match="'rdd'"):
            make_bonus("rdd", GRID, ACTIONS, **bad)
    with pytest.raises(TypeError, match="rdd"):
        make_bonus("rdd", GRID, ACTIONS, sigmaa=1.0)


@pytest.mark.parametrize("sigma_mode", ["constant", "net"])
@pytest.mark.parametrize("noise_mode", ["per_update", "per_visit"])
@pytest.mark.parametrize("bonus_form", ["sq", "sqrt"])
def test_option_combinations(sigma_mode, noise_mode, bonus_form):
    rng = np.random.default_rng(0)
    bonus = RDD(GRID, ACTIONS, seed=0, sigma=0.5, sigma_mode=sigma_mode, noise_mode=noise_mode, bonus_form=bonus_form)
    batch = transitions(grid_states(rng, 12).reshape(3, 4, *GRID.shape))
    bonus.update(batch)
    r = bonus.compute(batch)
    assert r.shape == (3, 4) and r.dtype == np.float32 and np.all(np.isfinite(r)) and np.all(r >= 0)
    x = bonus.normalize(torch.as_tensor(batch.next_obs).flatten(0, 1))
    with torch.no_grad():
        residual2 = (bonus.predictor(x) - bonus.mu(x)).pow(2)
        sigma = torch.as_tensor(bonus.sigma_of(x))
    expected = residual2.mean(-1) if bonus_form == "sq" else (residual2 / sigma.pow(2)).mean(-1).sqrt()
    np.testing.assert_allclose(r.reshape(-1), expected.numpy(), rtol=1e-5)


# ------------------------------------------------------------------------------------------------- T-D1
@pytest.mark.parametrize("sigma_mode", ["constant", "net"])
def test_d1_target_sampling_mean_and_variance(sigma_mode):
    """T-D1: 20k targets drawn at one state: per-dimension mean within 0.03 of mu(s), variance within 0.05 of
    sigma^2 (sigma = 1; in "net" mode relative to the state's per-dimension sigma(s))."""
    bonus = RDD(GRID, ACTIONS, seed=0, sigma_mode=sigma_mode)
    rng = np.random.default_rng(0)
    bonus.warm_up(transitions(grid_states(rng, 256)[None]))
    x = bonus.normalize(torch.as_tensor(grid_states(rng, 1))).expand(20_000, *GRID.shape)
    with torch.no_grad():
        y = bonus.targets(x)
        mu, sigma = bonus.mu(x[:1])[0], torch.as_tensor(bonus.sigma_of(x[:1])).reshape(-1)
    assert y.shape == (20_000, bonus.embedding_dim)
    if sigma_mode == "constant":
        assert torch.all((y.mean(0) - mu).abs() < 0.03)
        assert torch.all((y.var(0) - 1.0).abs() < 0.05)
    else:  # the same tolerances in units of sigma(s)
        assert sigma.shape == (bonus.embedding_dim,) and torch.all(sigma >= 1e-3)
        assert torch.all(((y.mean(0) - mu) / sigma).abs() < 0.03)
        assert torch.all((y.var(0) / sigma.pow(2) - 1.0).abs() < 0.05)


# ------------------------------------------------------------------------------------------------- T-D2
def test_d2_exact_averaging_law_tabular():
    """T-D2: a per-state table updated with step 1/n (the exact running mean of RDD's target draws):
    mean over 200 states of n * b within 10% of sigma^2 = 1, and sqrt(n) * r ("sqrt" form) within 10% of 1,
    for n in 1, 2, 4, ..., 64. The table replaces only the predictor: draws and bonus formula are RDD's."""
    space = gym.spaces.Discrete(200)
    sq = RDD(space, ACTIONS, seed=0)
    sqrt_form = RDD(space, ACTIONS, seed=0, bonus_form="sqrt")  # same seed: same mu
    x = one_hot_inputs(np.arange(200))
    sq.warm_up(transitions(np.arange(200)[None]))
    sqrt_form.warm_up(transitions(np.arange(200)[None]))
    table = torch.zeros(200, sq.embedding_dim)
    results = {}
    with torch.no_grad():
        torch.testing.assert_close(sq.mu(x), sqrt_form.mu(x))
        for n in range(1, 65):
            table += (sq.targets(x) - table) / n  # per_update: a fresh draw for every state at every update
            if n & (n - 1) == 0:
                results[n] = (
                    float(n * sq.bonus_from_prediction(table, x).mean()),
                    float(math.sqrt(n) * sqrt_form.bonus_from_prediction(table, x).mean()),
                )
    print("T-D2 n: (mean n*b, mean sqrt(n)*r)", {n: tuple(round(v, 3) for v in r) for n, r in results.items()})
    jensen = math.sqrt(2 / 64) * math.exp(math.lgamma(65 / 2) - math.lgamma(32))
    assert abs(jensen - 0.9961) < 1e-4
    for n, (nb, sqrt_nr) in results.items():
        assert abs(nb - 1.0) <= 0.1, (n, nb)
        assert abs(sqrt_nr - 1.0) <= 0.1, (n, sqrt_nr)


# ----------------------------------------------------------------------------------- T-D3, T-D4, T-R4
GROUPS, PER_GROUP = 8, 16
COUNTS = np.repeat(2 ** np.arange(GROUPS), PER_GROUP)  # group g: 16 one-hot states, each visited 2^g times
TRAINED = np.arange(GROUPS * PER_GROUP)
UNSEEN = np.arange(GROUPS * PER_GROUP, GROUPS * PER_GROUP + 16)
COUNT_SPACE = gym.spaces.Discrete(GROUPS * PER_GROUP + len(UNSEEN))
VISITS = np.repeat(TRAINED, COUNTS)  # 4080 visits


def train_on_counts(bonus: RND, tol: float, cap: int) -> dict:
    """Train `bonus`'s targets into a 2 x 256 ReLU MLP predictor on the count dataset; return its bonuses.

    Each visit gets its own target (`bonus.targets` with the per-visit noise of `bonus.draw_stored_noise`,
    drawn once, as `per_visit` does within an update). Full-batch Adam, lr 1e-3, until the loss moves less
    than `tol` per 100 steps (at most `cap` steps). The full-batch MSE over all 4080 visits equals
    `sum_s (n_s / N) (1/d)||f(s) - ybar_s||^2` plus a constant (ybar_s: mean target of s's visits), so the
    latter is minimised: same gradients, 1/32 of the cost. Bonuses come from `bonus.compute`.
    """
    bonus.warm_up(transitions(VISITS[None]))  # fits RDD's mu scale on the visits (no training)
    d = bonus.embedding_dim
    with torch.random.fork_rng():
        torch.manual_seed(1)
        bonus.predictor = make_encoder(COUNT_SPACE, d, 256, nn.ReLU)
    if isinstance(bonus, RDD):  # RDD's default zero-initialised last layer
        nn.init.zeros_(bonus.predictor[-1].weight)
        nn.init.zeros_(bonus.predictor[-1].bias)
    before = bonus.compute(transitions(TRAINED[None]))[0]
    with torch.no_grad():
        y = bonus.targets(one_hot_inputs(VISITS), bonus.draw_stored_noise(len(VISITS)))
    counts = torch.as_tensor(COUNTS, dtype=torch.float32)
    y_mean = torch.zeros(len(TRAINED), d).index_add_(0, torch.as_tensor(VISITS), y) / counts[:, None]
    weights = counts / counts.sum()
    x = one_hot_inputs(TRAINED)
    optimizer = torch.optim.Adam(bonus.predictor.parameters(), lr=1e-3)
    previous = None
    for step in range(1, cap + 1):
        loss = (weights * (bonus.predictor(x) - y_mean).pow(2).mean(-1)).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0:
            if previous is not None and abs(previous - loss.item()) < tol:
                break
            previous = loss.item()
    return {
        "steps": step,
        "before": before,
        "trained": bonus.compute(transitions(TRAINED[None]))[0],
        "unseen": bonus.compute(transitions(UNSEEN[None]))[0],
    }


def slope_and_inversions(bonus_per_state: np.ndarray) -> tuple[float, int, np.ndarray]:
    group_means = bonus_per_state.reshape(GROUPS, PER_GROUP).mean(1)
    slope = np.polyfit(np.log(2.0 ** np.arange(GROUPS)), np.log(group_means), 1)[0]
    return float(slope), int(np.sum(np.diff(group_means) >= 0)), group_means


@pytest.fixture(scope="module")
def rdd_trained_on_counts():
    bonus = RDD(COUNT_SPACE, ACTIONS, seed=0, noise_mode="per_visit")
    result = train_on_counts(bonus, tol=1e-5, cap=4000)
    bonus.bonus_form = "sqrt"
    result["trained_sqrt"] = bonus.compute(transitions(TRAINED[None]))[0]
    bonus.bonus_form = "sq"
    return result


@pytest.mark.parametrize("form, low, high", [("sq", -1.3, -0.7), ("sqrt", -0.65, -0.35)])
def test_d3_neural_decay_law(rdd_trained_on_counts, form, low, high):
    """T-D3: 8 groups of 16 one-hot states visited 2^g times, per-visit draws, 2 x 256 MLP trained to
    convergence: slope of log b vs log n in [-1.3, -0.7] ("sq") / [-0.65, -0.35] ("sqrt"); group means
    decreasing in n with at most one inversion."""
    result = rdd_trained_on_counts
    bonus = result["trained"] if form == "sq" else result["trained_sqrt"]
    slope, inversions, group_means = slope_and_inversions(bonus)
    print(f"T-D3 {form}: steps={result['steps']} slope={slope:.3f} inversions={inversions} "
          f"group means (n=1..128) {np.array2string(group_means, precision=4)}")  # fmt: skip
    assert low <= slope <= high
    assert inversions <= 1


def test_d4_novel_beats_familiar(rdd_trained_on_counts):
    """T-D4: after T-D3, every unseen one-hot state's bonus is >= 5x the mean bonus of the n = 64 group."""
    result = rdd_trained_on_counts
    n64 = result["trained"].reshape(GROUPS, PER_GROUP)[6].mean()
    print(f"T-D4 unseen bonus min {result['unseen'].min():.4f} mean {result['unseen'].mean():.4f}; n=64 group {n64:.4f}")
    assert result["unseen"].min() >= 5 * n64


def test_r4_rnd_bonus_after_convergence_is_near_zero_and_not_a_count():
    """T-R4 (documentation, RND): same count dataset, predictor and training as T-D3. RND's bonus at trained
    states is near zero. |Spearman rho(bonus, count)| < 0.5 is *expected* by the spec but depends on where
    optimisation stops; it is recorded, and only the near-zero property is asserted.

    RND's raw target is smaller than RDD's rescaled mu, so the stopping tolerance is T-D3's relative one
    (1e-5 times the initial mean bonus).
    """
    bonus = RND(COUNT_SPACE, ACTIONS, seed=0)
    scale = float(bonus.compute(transitions(TRAINED[None])).mean())
    result = train_on_counts(bonus, tol=1e-5 * scale, cap=3000)
    trained = result["trained"]
    rho = spearmanr(trained, COUNTS).statistic
    _, _, group_means = slope_and_inversions(trained)
    print(f"T-R4 steps={result['steps']} spearman rho(bonus, count)={rho:.3f} (spec expects |rho| < 0.5); "
          f"group means (n=1..128) {np.array2string(group_means, precision=2)}; "
          f"before training {result['before'].mean():.3g}")  # fmt: skip
    if abs(rho) >= 0.5:
        print("T-R4: |rho| >= 0.5: the residual left when optimisation stops is ordered by each state's loss weight")
    assert trained.max() <= 1e-2 * result["before"].mean()
    assert result["unseen"].mean() >= 100 * trained.mean()


# ------------------------------------------------------------------------------------------------- T-D5
def test_d5_initial_normalised_bonus_is_about_one():
    """T-D5: zero-initialised last layer, mu_scale = 1: mean z = b / sigma^2 over 1000 unseen states in [0.8, 1.2]."""
    rng = np.random.default_rng(0)
    bonus = RDD(GRID, ACTIONS, seed=0, sigma=1.0)
    bonus.warm_up(transitions(grid_states(rng, 2048)[None]))  # obs-norm init batch: fits the mu scale
    unseen = transitions(grid_states(rng, 1000)[None])
    z = bonus.compute(unseen)[0] / bonus.sigma**2
    print(f"T-D5 mean z over 1000 unseen states = {z.mean():.3f}")
    assert 0.8 <= z.mean() <= 1.2
    x = bonus.normalize(torch.as_tensor(unseen.next_obs[0]))
    with torch.no_grad():  # zero last layer: the bonus is exactly (1/d)||mu||^2
        np.testing.assert_allclose(z, bonus.mu(x).pow(2).mean(-1).numpy(), rtol=1e-5)


def test_mu_scale_fitted_once_and_saved():
    rng = np.random.default_rng(0)
    states = grid_states(rng, 512)
    # No warm_up: the first update batch fits the scale, later batches leave it alone.
    bonus = RDD(GRID, ACTIONS, seed=0, mu_scale=2.0)
    assert not bool(bonus.target.fitted)
    bonus.update(transitions(states[None]))
    scale = bonus.target.scale.clone()
    x = bonus.normalize(torch.as_tensor(states))
    with torch.no_grad():
        rms_at_fit = float(bonus.target(x).pow(2).mean().sqrt())
    assert abs(rms_at_fit - 2.0) < 1e-4  # on the first batch, whitened with the statistics that include it
    bonus.update(transitions(grid_states(rng, 512)[None]))
    assert bool(bonus.target.fitted) and torch.equal(bonus.target.scale, scale)
    assert "scale" in bonus.state_dict()["target"]
    # warm_up fits it when given; mu_scale=None keeps the raw target (the RND target).
    warmed = RDD(GRID, ACTIONS, seed=0, mu_scale=1.0)
    warmed.warm_up(transitions(states[None]))
    with torch.no_grad():
        torch.testing.assert_close(warmed.mu(warmed.normalize(torch.as_tensor(states))).pow(2).mean(), torch.tensor(1.0))
    raw = RDD(GRID, ACTIONS, seed=0, mu_scale=None)
    raw.warm_up(transitions(states[None]))
    assert not bool(raw.target.fitted) and float(raw.target.scale) == 1.0


def test_state_dict_restores_scale_and_generators():
    rng = np.random.default_rng(0)
    batches = [transitions(grid_states(rng, 8).reshape(2, 4, *GRID.shape)) for _ in range(2)]
    a = RDD(GRID, ACTIONS, seed=0, sigma_mode="net", noise_mode="per_visit")
    a.update(batches[0])
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)
    buffer.seek(0)
    b = RDD(GRID, ACTIONS, seed=5, sigma_mode="net", noise_mode="per_visit")
    b.load_state_dict(torch.load(buffer))
    assert torch.equal(a.target.scale, b.target.scale)
    assert a.update(batches[1]) == b.update(batches[1])
    np.testing.assert_array_equal(a.compute(batches[1]), b.compute(batches[1]))


# ------------------------------------------------------------------------------------------------- T-D6
def _run_updates(bonus: RND, batches: list[Transitions]) -> None:
    for batch in batches:
        bonus.update(batch)


@pytest.mark.parametrize("variant", ["rnd_defaults", "rdd_defaults"])
def test_d6_sigma_zero_reduces_to_rnd(variant):
    """T-D6: sigma = 0, same seed and data: 100 RDD updates give the same predictor as 100 RND updates with
    target mu (to 1e-6), hence the same bonuses.

    "rnd_defaults": RDD without its two additions (mu_scale=None, zero_init_predictor=False) against plain RND.
    "rdd_defaults": RDD as shipped (mu rescaled, last layer zeroed) against RND given the same target mu
    (RDD's fitted target module) and the same zeroed last layer.
    """
    rng = np.random.default_rng(0)
    warm = transitions(grid_states(rng, 64)[None])
    batches = [transitions(grid_states(rng, 16).reshape(2, 8, *GRID.shape)) for _ in range(100)]
    common = dict(seed=3, n_epochs=1, n_minibatches=2, update_proportion=0.5)
    rnd = RND(GRID, ACTIONS, **common)
    if variant == "rnd_defaults":
        rdd = RDD(GRID, ACTIONS, sigma=0.0, mu_scale=None, zero_init_predictor=False, **common)
    else:
        rdd = RDD(GRID, ACTIONS, sigma=0.0, **common)
    rnd.warm_up(warm)
    rdd.warm_up(warm)  # fits RDD's mu scale
    if variant == "rdd_defaults":
        assert float(rdd.target.scale) != 1.0
        rnd.target = rdd.target  # RND with target mu (frozen, not trained by either)
        last = rnd.predictor[-1][-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
    _run_updates(rnd, batches)
    _run_updates(rdd, batches)
    for p_rnd, p_rdd in zip(rnd.predictor.parameters(), rdd.predictor.parameters(), strict=True):
        torch.testing.assert_close(p_rnd, p_rdd, atol=1e-6, rtol=0)
    np.testing.assert_allclose(rnd.compute(batches[0]), rdd.compute(batches[0]), atol=1e-6)


# ------------------------------------------------------------------------------------------------- T-D7
def test_d7_per_visit_vs_per_update_tabular():
    """T-D7: 20 states, one stored visit each, 1000 epochs with a 1/k-step table (the exact mean of what it
    was shown). per_visit (one draw reused every epoch): mean b within 15% of sigma^2; per_update (a fresh
    draw every epoch): mean b < 0.01 sigma^2. Draws and bonus formula are RDD's."""
    space = gym.spaces.Discrete(20)
    x = one_hot_inputs(np.arange(20))
    mean_bonus = {}
    for mode in ("per_visit", "per_update"):
        bonus = RDD(space, ACTIONS, seed=0, noise_mode=mode)
        bonus.warm_up(transitions(np.arange(20)[None]))
        stored = bonus.draw_stored_noise(20)  # what update() draws once per call; None in per_update mode
        assert (stored is None) == (mode == "per_update")
        table = torch.zeros(20, bonus.embedding_dim)
        with torch.no_grad():
            for k in range(1, 1001):
                table += (bonus.targets(x, stored) - table) / k
            mean_bonus[mode] = float(bonus.bonus_from_prediction(table, x).mean())
    print(f"T-D7 mean b: per_visit {mean_bonus['per_visit']:.3f}, per_update {mean_bonus['per_update']:.5f} (sigma^2 = 1)")
    assert abs(mean_bonus["per_visit"] - 1.0) <= 0.15
    assert mean_bonus["per_update"] < 0.01


@pytest.mark.parametrize("mode", ["per_visit", "per_update"])
def test_d7_update_path_reuses_or_redraws_noise(mode, monkeypatch):
    """Inside `update`, per_visit reuses each sample's eps in every epoch; per_update draws a fresh one."""
    n_states, epochs = 16, 3
    bonus = RDD(gym.spaces.Discrete(n_states), ACTIONS, seed=0, noise_mode=mode, n_epochs=epochs, n_minibatches=2)
    seen = {s: [] for s in range(n_states)}
    original = bonus.targets

    def recording_targets(x, stored_noise=None):
        y = original(x, stored_noise)
        eps = (y - bonus.mu(x)) / bonus.sigma
        for state, e in zip(x.long().tolist(), eps.detach()):  # test bookkeeping only
            seen[state].append(e)
        return y

    monkeypatch.setattr(bonus, "targets", recording_targets)
    bonus.update(transitions(np.arange(n_states)[None]))
    for draws in seen.values():
        assert len(draws) == epochs
        same = [torch.allclose(draws[0], e, atol=1e-5) for e in draws[1:]]
        assert all(same) if mode == "per_visit" else not any(same)
