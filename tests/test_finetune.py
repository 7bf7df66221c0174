"""Off-policy fine-tunes: SB3's SAC and TD3 carrying the prediction and a warm critic."""

from __future__ import annotations

import json
from dataclasses import asdict, fields, replace

import numpy as np
import pytest
import torch
from stable_baselines3 import SAC, TD3

from meta_rl.agents import adapt, evaluate
from meta_rl.agents.warm import WarmStart
from meta_rl.errors import CheckpointError, ConfigError
from meta_rl.mapping.checkpoint import TrainedMapping
from meta_rl.objectives.td3 import TD3Config
from meta_rl.training.config import TrainConfig
from meta_rl.training.trainer import train

from .conftest import TINY_OFF_POLICY, TINY_TRAIN

TASK = {"m": 1.3, "l": 0.9}
QUICK = {"warm_steps": 64, "fit_updates": 20, "critic_updates": 10, "batch_size": 32}


@pytest.fixture(scope="module")
def td3_mapping(tmp_path_factory) -> TrainedMapping:
    """A tiny ``td3`` mapping, which keeps its task-conditioned critic."""
    workdir = tmp_path_factory.mktemp("td3")
    config = TrainConfig(
        objective="td3", workdir=workdir, td3=TD3Config(**TINY_OFF_POLICY), **TINY_TRAIN
    )
    trained, _ = train(config)
    return TrainedMapping.load(trained.save(workdir / "td3.safetensors"))


def test_a_td3_checkpoint_keeps_its_critic(td3_mapping):
    critic = td3_mapping.critic
    assert critic is not None and critic.objective == "td3"
    assert critic.gamma == TD3Config().gamma
    assert set(critic.tensors) == {
        f"{q}.{i}.{p}" for q in ("q1", "q2") for i in (0, 2, 4) for p in ("weight", "bias")
    }


def test_other_objectives_keep_no_critic(tiny_mapping):
    _, trained, _, _ = tiny_mapping
    assert trained.critic is None


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_off_policy_adapt_returns_that_sb3_model_carrying_the_prediction(tiny_mapping, algo):
    path, trained, _, _ = tiny_mapping
    model = adapt(path, task=TASK, algo=algo, seed=0, **{**QUICK, "fit_updates": 0})
    assert isinstance(model, SAC if algo == "sac" else TD3)
    assert model.warm_steps == 64 and model.replay_buffer.size() == 64
    # The hidden layers are the prediction's, exactly (no fit here).
    named = trained.spec.unflatten(trained.predict(TASK))
    actor = model.actor.latent_pi if algo == "sac" else model.actor.mu
    linears = [m for m in actor if isinstance(m, torch.nn.Linear)]
    assert torch.equal(linears[0].weight, named["mlp_extractor.policy_net.0.weight"])
    assert torch.equal(linears[1].bias, named["mlp_extractor.policy_net.2.bias"])
    # Acting: evaluate() runs its deterministic actor; learn() goes on from the warm start.
    assert np.isfinite(evaluate(path, TASK, policy=model, episodes=1).mean)
    model.learn(32)
    assert model.num_timesteps == 32


@pytest.mark.parametrize("head_gain", [3.0, None])
def test_the_converted_actor_acts_like_the_prediction(tiny_mapping, head_gain):
    """The fit brings the squashed actor to the clipped prediction on the states visited,
    from the default gain or from one per action dimension."""
    path, trained, _, _ = tiny_mapping
    model = adapt(
        path, task=TASK, algo="sac", seed=0, warm_steps=200, critic_updates=0, head_gain=head_gain
    )
    env = trained.family.make(task=TASK)
    states = torch.as_tensor(model.replay_buffer.observations[:200, 0])
    mean = trained.spec.action_mean(
        trained.predict(TASK)[trained.spec.actor_rows][None], states[None]
    )[0]
    low, high = env.action_space.low, env.action_space.high
    want = np.clip(mean.numpy(), low, high)
    got = model.predict(states.numpy(), deterministic=True)[0]
    assert np.abs(got - want).mean() < 0.05 * float(high[0] - low[0])


def test_the_copied_head_starts_at_the_gain_that_suits_each_action_dimension():
    """A dimension acting inside the bounds gets a gain near 1 (``tanh(z)`` is ``z`` near
    0); one at the bounds, past them by a little, the steep gain that puts ``tanh`` at the
    fit's ``1 - SATURATION`` there; each is the grid's best for its dimension."""
    from meta_rl.agents.warm import GAINS, SATURATION, _output_gain

    z = torch.linspace(-0.6, 0.6, 101)
    bang = torch.sign(z) * 1.2
    gain = _output_gain(torch.stack([z, bang], dim=1))
    assert 0.9 <= gain[0] <= 1.2 and gain[1] >= 2.0
    for scaled, g in ((z, gain[0]), (bang, gain[1])):
        target = scaled.clamp(-1, 1) * (1 - SATURATION)
        errors = [float(((torch.tanh(c * scaled) - target) ** 2).mean()) for c in GAINS]
        assert float(g) == pytest.approx(float(GAINS[int(np.argmin(errors))]))
    assert torch.equal(_output_gain(torch.empty(0, 3)), torch.ones(3))


def test_the_mapping_critic_becomes_an_ordinary_sb3_critic_exactly(td3_mapping):
    """For one task, the folded critic gives the task-conditioned critic's values on
    SB3's [-1, 1] actions."""
    model = adapt(td3_mapping, task=TASK, algo="sac", seed=0, **{**QUICK, "critic_updates": 0})
    critic = td3_mapping.critic
    descriptor = td3_mapping.input_descriptor(torch.as_tensor(td3_mapping.descriptor(TASK)))
    low, high = (torch.as_tensor(b) for b in (model.action_space.low, model.action_space.high))
    obs = torch.randn(50, 3)
    scaled = torch.rand(50, 1) * 2 - 1
    action = low + (scaled + 1) / 2 * (high - low)
    net = torch.nn.Sequential(
        torch.nn.Linear(3 + 1 + len(descriptor), critic.hidden[0]),
        torch.nn.ReLU(),
        torch.nn.Linear(critic.hidden[0], critic.hidden[1]),
        torch.nn.ReLU(),
        torch.nn.Linear(critic.hidden[1], 1),
    )
    net.load_state_dict({k[3:]: v for k, v in critic.tensors.items() if k.startswith("q1.")})
    with torch.no_grad():
        want = net(torch.cat([obs, action, descriptor.expand(50, -1)], -1))
        got = model.critic(obs, scaled)[0]
        target = model.critic_target(obs, scaled)[0]
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(target, want, rtol=1e-5, atol=1e-4)


def test_seeded_off_policy_fine_tunes_repeat_exactly(tiny_mapping):
    path = tiny_mapping[0]

    def run() -> torch.Tensor:
        model = adapt(path, task=TASK, algo="td3", seed=3, **QUICK)
        model.learn(48)
        return torch.nn.utils.parameters_to_vector(model.policy.parameters()).detach()

    assert torch.equal(run(), run())


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_an_actor_delay_holds_the_actor_while_the_critic_learns(tiny_mapping, algo):
    """The actor stays the converted prediction for ``actor_delay`` env steps (counted by
    the replay buffer, so across ``learn`` calls that reset the step count), then learns."""
    path = tiny_mapping[0]
    model = adapt(path, task=TASK, algo=algo, seed=0, actor_delay=40, **QUICK)

    def weights(part: torch.nn.Module) -> torch.Tensor:
        return torch.nn.utils.parameters_to_vector(part.parameters()).detach().clone()

    actor, critic = weights(model.actor), weights(model.critic)
    model.learn(24)
    model.learn(14)  # step count reset: 38 env steps in all, still held
    assert torch.equal(weights(model.actor), actor)
    assert not torch.equal(weights(model.critic), critic)
    model.learn(8, reset_num_timesteps=False)
    assert not torch.equal(weights(model.actor), actor)
    with pytest.raises(ConfigError, match="actor_delay=100 outlasts the replay buffer"):
        adapt(path, task=TASK, algo=algo, seed=0, actor_delay=100, buffer_size=128, **QUICK)


def test_an_algorithm_that_does_not_fit_the_action_space_is_refused(tiny_mapping):
    from meta_rl.agents import load_mapping

    cartpole = load_mapping("cartpole")
    with pytest.raises(
        ConfigError,
        match=r"CartPole's actions are discrete \(SAC and TD3 need Box actions\); use one of "
        r"a2c, ppo",
    ):
        adapt(cartpole, task={}, algo="sac")
    with pytest.raises(
        ConfigError, match=r"cannot fine-tune with 'dqn'.*use one of a2c, ppo, sac, td3"
    ):
        adapt(tiny_mapping[0], task={}, algo="dqn")


def test_search_keeps_the_candidate_with_the_best_episode_from_the_shared_start(tiny_mapping):
    from meta_rl.agents import base_policy
    from meta_rl.agents.warm import SEARCH_SEED, search_descriptor
    from meta_rl.evaluation import ParamsPolicy, run_episodes

    path, trained, _, _ = tiny_mapping
    quick = {**QUICK, "fit_updates": 0, "search": 3, "search_scale": 0.5}
    model = adapt(path, task=TASK, algo="sac", seed=4, **quick)
    # Four episodes of 200 steps (the prediction and three draws), then the warm-up; every
    # step is in the replay buffer and counts.
    assert model.warm_steps == 4 * 200 + 64 and model.replay_buffer.size() == model.warm_steps
    # The candidates, drawn as the search draws them (within the bounds), each scored
    # again here by one deterministic episode from the start its seed gives.
    d = torch.as_tensor(trained.descriptor(TASK))
    generator = torch.Generator().manual_seed(4 + SEARCH_SEED)
    draws = torch.randn((3, d.numel()), generator=generator)
    candidates = [d, *torch.clamp(d + 0.5 * draws, -1.0, 1.0)]
    env = trained.family.make(task=TASK)
    returns = [
        run_episodes(
            env,
            ParamsPolicy(trained.spec, trained.predict_descriptor(c), env.action_space),
            episodes=1,
            seed=4 + SEARCH_SEED,
        )[0]
        for c in candidates
    ]
    best = int(np.argmax(returns))  # the first of equals, as the search keeps
    assert len(set(returns)) > 1  # the draws are different policies
    assert torch.equal(model.search_descriptor, candidates[best])
    # The actor is the chosen prediction's (its hidden layers exactly, with no fit).
    named = trained.spec.unflatten(trained.predict_descriptor(candidates[best]))
    first = next(m for m in model.actor.latent_pi if isinstance(m, torch.nn.Linear))
    assert torch.equal(first.weight, named["mlp_extractor.policy_net.0.weight"])
    # Seeded: the same search again.
    again = adapt(path, task=TASK, algo="sac", seed=4, **quick)
    assert torch.equal(again.search_descriptor, model.search_descriptor)
    # Without search, the task's own prediction; the base policy has no descriptor to move.
    plain = adapt(path, task=TASK, algo="sac", seed=4, **QUICK)
    assert plain.search_descriptor is None and plain.warm_steps == 64
    expert = base_policy(path, task=TASK, algo="sac", seed=4, **quick)
    assert expert.search_descriptor is None and expert.warm_steps == 64
    # VecNormalize would show the warm start and the search other observations and rewards.
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    normalised = VecNormalize(DummyVecEnv([lambda: trained.family.make(task=TASK)]))
    with pytest.raises(ConfigError, match="without VecNormalize"):
        adapt(path, normalised, algo="sac", **QUICK)
    # A warm-start setting given to PPO is refused by name.
    with pytest.raises(ConfigError, match="search: settings of an off-policy fine-tune"):
        adapt(path, task=TASK, algo="ppo", search=2)
    # The candidates share one start state, so the search takes a single env.
    two = adapt(path, task=TASK, algo="sac", n_envs=2, seed=4, **QUICK)
    with pytest.raises(ConfigError, match="one env; this fine-tune has 2"):
        search_descriptor(
            two, trained.spec, trained.predict_descriptor, d, WarmStart(search=1), seed=0
        )


def test_the_critic_warm_up_bootstraps_n_step_samples_with_their_own_discount(tiny_mapping):
    from stable_baselines3.common.buffers import NStepReplayBuffer

    from meta_rl.agents.warm import _td_target

    path, _, _, _ = tiny_mapping
    model = adapt(path, task=TASK, algo="sac", seed=0, n_steps=3, **QUICK)
    assert isinstance(model.replay_buffer, NStepReplayBuffer)
    data = model.replay_buffer.sample(64)
    assert not torch.allclose(data.discounts, torch.full_like(data.discounts, model.gamma))
    with torch.no_grad():
        next_actions = model.actor(data.next_observations, deterministic=True)
        q1, q2 = model.critic_target(data.next_observations, next_actions)
    want = data.rewards + (1 - data.dones) * data.discounts * torch.minimum(q1, q2)
    assert torch.allclose(_td_target(model, data), want)


def test_warm_start_settings_are_checked():
    with pytest.raises(ConfigError, match="warm_noise must be in"):
        WarmStart(warm_noise=2.0)
    with pytest.raises(ConfigError, match="warm_steps must be at least 1"):
        WarmStart(warm_steps=0)
    with pytest.raises(ConfigError, match="the critic warms up on their transitions"):
        WarmStart(warm_steps=0, fit_updates=0)
    assert WarmStart(warm_steps=0, fit_updates=0, search=2).search == 2
    with pytest.raises(ConfigError, match="search must be a whole number"):
        WarmStart(search=-1)
    with pytest.raises(ConfigError, match="actor_delay must be a whole number"):
        WarmStart(actor_delay=1.5)
    with pytest.raises(ConfigError, match="search_scale must be in"):
        WarmStart(search_scale=0.0)
    for gain in (0.0, "None", True):  # a word or a bool is not a gain
        with pytest.raises(ConfigError, match="head_gain must be a number"):
            WarmStart(head_gain=gain)
    assert WarmStart(head_gain=None).head_gain is None
    warm, rest = WarmStart.split({"warm_steps": 10, "learning_rate": 1e-3})
    assert warm.warm_steps == 10 and rest == {"learning_rate": 1e-3}


def test_a_malformed_critic_is_refused(td3_mapping, tmp_path):
    from meta_rl.infra.files import load_tensors, save_tensors

    path = td3_mapping.save(tmp_path / "m.safetensors")
    tensors, meta = load_tensors(path)

    def broken(tensors: dict, meta: dict, match: str) -> None:
        bad = tmp_path / "bad.safetensors"
        save_tensors(bad, tensors, meta)
        with pytest.raises(CheckpointError, match=match):
            TrainedMapping.load(bad)

    broken(tensors, {**meta, "critic": {**meta["critic"], "gamma": 1.5}}, r"critic\.gamma")
    broken(
        tensors, {**meta, "critic": {**meta["critic"], "objective": "sacd"}}, r"critic\.objective"
    )
    wider = {**meta, "critic": {**meta["critic"], "hidden": [8, 8]}}
    broken(tensors, wider, "weights do not match")
    missing = {k: v for k, v in tensors.items() if k != "critic.q2.4.bias"}
    broken(missing, meta, r"missing \['critic\.q2\.4\.bias'\]")
    no_meta = {k: v for k, v in meta.items() if k != "critic"}
    broken(tensors, no_meta, "unexpected")


def test_select_finetune_scores_candidates_on_validation_tasks_and_resumes(tiny_mapping, tmp_path):
    from meta_rl.benchmarks.finetune import (
        FinetuneSelectionConfig,
        parse_candidate,
        run_finetune_selection,
    )

    path, trained, _, _ = tiny_mapping
    quick = "sac:warm_steps=32,fit_updates=5,critic_updates=5,batch_size=16"
    config = FinetuneSelectionConfig(
        checkpoint=str(path),
        candidates=("ppo:n_steps=32,batch_size=32", quick),
        val_tasks=2,
        points=(0, 64),
        episodes=1,
        out_dir=tmp_path / "select",
        workers=0,
    )
    result = run_finetune_selection(config)
    assert not any(t in trained.info["split"]["val"] for t in result["tasks"])  # past them
    assert not any(t in trained.info["split"]["test"] for t in result["tasks"])
    names = [c["name"] for c in result["candidates"]]
    assert names == list(config.candidates) and result["winner"] in names
    sac = result["candidates"][1]
    assert [s for s, _ in sac["curves"][0]] == [32, 64]  # the warm start's steps count
    assert (tmp_path / "select" / "results.md").read_text().startswith("Fine-tune selection")
    assert (tmp_path / "select" / "curves.png").stat().st_size > 0
    # A rerun finds every curve in the cache: the same result, nothing recomputed, and
    # the wall clock of the run that computed them kept.
    again = run_finetune_selection(config)
    assert again["candidates"] == result["candidates"]
    assert again["seconds"] == result["seconds"] > 0
    # One more candidate: only it runs, and the report gives that run's time.
    more = run_finetune_selection(replace(config, candidates=(*config.candidates, "ppo")))
    assert more["candidates"][:2] == result["candidates"] and more["seconds"] > 0
    again = run_finetune_selection(replace(config, candidates=(*config.candidates, "ppo")))
    assert again["seconds"] == more["seconds"]
    assert parse_candidate("sac:learning_rate=3e-4,ent_coef=auto_0.01") == (
        "sac:learning_rate=3e-4,ent_coef=auto_0.01",
        "sac",
        {"learning_rate": 3e-4, "ent_coef": "auto_0.01"},
    )


def test_the_recipes_own_fine_tune_is_kept_unless_beaten_beyond_the_noise():
    from meta_rl.benchmarks.finetune import CandidateResult, choose_winner

    def candidate(name: str, finals: list[float], worst_drop: float = 0.0) -> CandidateResult:
        curves = [[(0, 0.0), (100, f)] for f in finals]
        mean = [(0, 0.0), (100, float(np.mean(finals)))]
        return CandidateResult(name, name, {}, curves, mean, worst_drop=worst_drop, noise=1.0)

    own = candidate("ppo", [10.0, 20.0, 30.0, 40.0])
    close = candidate("a2c", [11.0, 19.0, 32.0, 40.0])  # +0.5, paired noise 1.3
    far = candidate("sac", [15.0, 26.0, 34.0, 46.0])  # +5.25, paired noise 1.0
    winner, reason = choose_winner([own, close], incumbent="ppo")
    assert winner is own and "within the noise (1.3)" in reason
    winner, reason = choose_winner([own, close, far], incumbent="ppo")
    assert winner is far and "5.2 ahead of the recipe's own `ppo`" in reason
    # No incumbent among the candidates, or an unsafe one: the best safe last point.
    assert choose_winner([close, far], incumbent="ppo")[0] is far
    unsafe_own = candidate("ppo", [50.0] * 4, worst_drop=9.0)
    assert choose_winner([unsafe_own, close], incumbent="ppo")[0] is close
    # None safe: the best last point, and no claim that the recipe's own was kept.
    unsafe_close = candidate("a2c", [11.0, 19.0, 32.0, 40.0], worst_drop=9.0)
    winner, reason = choose_winner([unsafe_own, unsafe_close], incumbent="ppo")
    assert winner is unsafe_own and "recipe's own" not in reason


def test_a_checkpoint_saved_before_the_choice_takes_the_familys_fine_tune():
    from meta_rl.training.recipes import recipe_for, recipe_from_json

    installed = recipe_for("pendulum")
    old = {k: v for k, v in asdict(installed).items() if not k.startswith("finetune_")}
    old["finetune"], old["finetune_n_envs"] = installed.finetune, installed.finetune_n_envs
    recipe = recipe_from_json(old, family="Pendulum")
    assert recipe.finetune_algo == installed.finetune_algo == "sac"
    assert recipe.off_policy_finetune("sac")["gradient_steps"] == 2
    assert recipe_from_json(old).finetune_algo == "ppo"  # no family: the defaults
    saved = {**old, "finetune_algo": "td3"}  # a recorded choice is kept
    assert recipe_from_json(saved, family="Pendulum").finetune_algo == "td3"


def test_a_recipe_records_every_warm_start_setting():
    from meta_rl.agents.warm import WarmStart
    from meta_rl.training.recipes import recipe_for, recipe_from_json

    warm = {f.name: getattr(WarmStart(), f.name) for f in fields(WarmStart)}
    for algo in ("sac", "td3"):
        recipe = replace(recipe_for("pendulum"), **{f"finetune_{algo}": {**warm, "search": 7}})
        again = recipe_from_json(json.loads(json.dumps(asdict(recipe))), family="Pendulum")
        assert again.off_policy_finetune(algo)["search"] == 7
    # A gain per action dimension (None) survives the checkpoint's JSON; a word does not.
    recipe = replace(recipe_for("pendulum"), finetune_sac={"head_gain": None})
    again = recipe_from_json(json.loads(json.dumps(asdict(recipe))), family="Pendulum")
    assert again.off_policy_finetune("sac")["head_gain"] is None
    with pytest.raises(CheckpointError, match="head_gain"):
        recipe_from_json({**asdict(recipe), "finetune_sac": {"head_gain": "steep"}})
    # HalfCheetahVel's fine-tune, chosen on validation tasks, starts from those gains.
    cheetah = recipe_for("HalfCheetahVel")
    assert (
        cheetah.finetune_algo == "sac" and cheetah.off_policy_finetune("sac")["head_gain"] is None
    )


def test_a_recipe_records_every_off_policy_objective_setting():
    # A setting a recipe may give td3 or sacd must survive the checkpoint's JSON: an
    # unknown one would make every mapping of that family fail to load.
    from meta_rl.objectives.sacd import SACDConfig
    from meta_rl.objectives.td3 import TD3Config
    from meta_rl.training.recipes import RECIPES, recipe_for, recipe_from_json

    for config in (TD3Config(), SACDConfig()):
        settings = json.loads(json.dumps(asdict(config)))
        recipe = replace(recipe_for("pendulum"), off_policy=settings)
        again = recipe_from_json(json.loads(json.dumps(asdict(recipe))), family="Pendulum")
        assert again.off_policy == settings
    for name, recipe in RECIPES.items():
        again = recipe_from_json(json.loads(json.dumps(asdict(recipe))), family=name)
        assert again.off_policy == recipe.off_policy, name
    with pytest.raises(CheckpointError, match="hard_share"):
        recipe_from_json({**asdict(recipe_for("pendulum")), "off_policy": {"hard_share": 2.0}})
