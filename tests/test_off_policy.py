"""What the off-policy objectives share (``td3`` and ``sac`` on Box actions, ``sacd`` on
discrete ones): each test runs on every learner, on toy problems."""

from __future__ import annotations

import copy

import pytest
import torch

from meta_rl.errors import ConfigError
from meta_rl.infra.divergence import Divergence
from meta_rl.infra.threads import torch_threads
from meta_rl.objectives.off_policy import ReplayBuffer
from meta_rl.objectives.sac import SACConfig, SACLearner
from meta_rl.objectives.sacd import SACDConfig, SACDLearner
from meta_rl.objectives.td3 import TD3Config, TD3Learner

from .conftest import TINY_OFF_POLICY, Drift, Steer, mean_return, toy_problem

LEARNERS = {
    "td3": (TD3Learner, TD3Config, Drift),
    "sac": (SACLearner, SACConfig, Drift),
    "sacd": (SACDLearner, SACDConfig, Steer),
}


def _learner(objective: str, seed: int = 0, **settings):
    """A learner of ``objective`` on its toy problem, and the problem."""
    learner_type, config_type, env_class = LEARNERS[objective]
    family, spec, tasks, descriptors, network = toy_problem(env_class, (-0.4, -0.1, 0.2, 0.45))
    if "descriptors" in settings:
        descriptors = settings.pop("descriptors")
    config = config_type(**{**TINY_OFF_POLICY, **settings})
    learner = learner_type(spec, network, family, tasks, descriptors, config, seed=seed)
    return learner, network


@pytest.mark.slow  # a learning check (about a minute each): make test-slow
@pytest.mark.parametrize(
    ("objective", "floor"),
    # Cancelling the drift keeps |x| near 0 after the first step: about -0.5 over ten steps
    # with a continuous push, about -3 with pushes of 0.5; drifting costs -10 or less.
    [("td3", -2.0), ("sac", -2.0), ("sacd", -4.0)],
)
def test_off_policy_learning_improves_the_return_of_a_tiny_problem(objective, floor):
    learner, network = _learner(
        objective,
        iterations=12,
        tasks_per_iteration=4,
        n_steps=50,
        warmup_iterations=2,
        updates_per_step=1.0,
        batch_tasks=4,
        batch_states=32,
        actor_lr=1e-3,
        gamma=0.9,
    )
    problem = (learner.spec, network, learner.family, learner.tasks, learner.descriptors)
    before = mean_return(*problem, episodes=5)
    seen: list[int] = []
    steps = learner.train(on_iteration=lambda it, s, stats: seen.append(s))
    after = mean_return(*problem, episodes=5)
    assert steps == 12 * 4 * 50 and seen[-1] == steps and len(seen) == 12
    assert after > before + 1.0 and after > floor, (before, after)


@pytest.mark.parametrize("objective", LEARNERS)
def test_the_actor_loss_reaches_the_mapping_through_predicted_parameters_after_warmup(objective):
    learner, network = _learner(objective)
    start = {k: v.clone() for k, v in network.state_dict().items()}
    critic_before = [p.clone() for p in learner.critic.parameters()]
    changed: list[bool] = []

    def record(iteration: int, steps: int, stats: dict) -> None:
        changed.append(any(not torch.equal(v, start[k]) for k, v in network.state_dict().items()))

    learner.train(on_iteration=record)
    # Warm-up: the critic learns alone; then the mapping moves (the base buffer never).
    assert changed == [False, True]
    assert torch.equal(network.base, start["base"])
    assert any(
        not torch.equal(a, b)
        for a, b in zip(critic_before, learner.critic.parameters(), strict=True)
    )


@pytest.mark.parametrize("objective", LEARNERS)
def test_off_policy_learning_runs_on_the_callers_threads(objective):
    # A second thread, taken while another process holds the other core, made gradient
    # steps a hundred times slower: the learner keeps the count it is given.
    learner, _ = _learner(objective)
    seen: list[int] = []
    with torch_threads(1):  # the old second thread showed on any machine of 2 cores or more
        learner.train(on_iteration=lambda *_: seen.append(torch.get_num_threads()))
        assert torch.get_num_threads() == 1
    assert seen == [1, 1]


@pytest.mark.parametrize("objective", LEARNERS)
def test_off_policy_learning_is_seeded(objective):
    runs = []
    for _ in range(2):
        learner, network = _learner(objective, seed=5)
        learner.train()
        runs.append(network.state_dict())
    for key, value in runs[0].items():
        assert torch.equal(value, runs[1][key]), key


@pytest.mark.parametrize("objective", LEARNERS)
def test_the_caller_sees_the_running_average_of_the_mapping(objective):
    learner, network = _learner(objective, seed=3, average_tau=0.05)
    start = copy.deepcopy(network).requires_grad_(False)
    seen: list[dict] = []

    def record(iteration: int, steps: int, stats: dict) -> None:
        seen.append({k: v.clone() for k, v in network.state_dict().items()})

    learner.train(on_iteration=record)
    # After training the mapping holds its own weights again, and the caller saw their
    # average, which is neither the starting weights nor the own ones.
    average = learner.average.state_dict()
    assert all(torch.equal(seen[-1][k], v) for k, v in average.items())
    weights = [k for k in average if not torch.equal(average[k], start.state_dict()[k])]
    assert weights and all(not torch.equal(average[k], network.state_dict()[k]) for k in weights)
    # With the same seed and no average, the own weights are the same: averaging only watches.
    plain, plain_network = _learner(objective, seed=3)
    plain.train()
    for key, value in plain_network.state_dict().items():
        assert torch.equal(value, network.state_dict()[key]), key


@pytest.mark.parametrize("objective", LEARNERS)
@pytest.mark.parametrize("settings", [{}, {"average_tau": 0.05}, {"hard_share": 0.5}])
def test_off_policy_learning_resumes_exactly_from_its_state(objective, settings):
    uninterrupted, reference = _learner(objective, seed=2, iterations=3, **settings)
    uninterrupted.train()

    learner, first = _learner(objective, seed=2, iterations=3, **settings)
    saved: dict = {}

    def stop_after_two(iteration: int, steps: int, stats: dict) -> None:
        if iteration == 2:
            # Copies, as a file would hold them: the learner goes on changing its tensors.
            saved.update(
                network=copy.deepcopy(first.state_dict()),
                tensors=copy.deepcopy(learner.state_tensors()),
            )
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        learner.train(on_iteration=stop_after_two)
    again, second = _learner(objective, seed=2, iterations=3, **settings)
    second.load_state_dict(saved["network"])
    again.load_state(saved["tensors"])
    assert again.train(start_iteration=2) == 3 * 20
    for key, value in reference.state_dict().items():
        assert torch.equal(value, second.state_dict()[key]), key
    for key, value in uninterrupted.state_tensors().items():
        # Exactly equal; a task not rolled out yet has a NaN last reward in both.
        torch.testing.assert_close(
            again.state_tensors()[key], value, rtol=0, atol=0, equal_nan=True
        )


@pytest.mark.parametrize("objective", LEARNERS)
def test_off_policy_learning_stops_on_a_non_finite_prediction(objective):
    _, _, env_class = LEARNERS[objective]
    descriptors = toy_problem(env_class, (-0.4, -0.1, 0.2, 0.45))[3].clone()
    descriptors[0, 0] = float("nan")
    learner, _ = _learner(objective, descriptors=descriptors)
    with pytest.raises(Divergence, match=f"{objective} objective") as err:
        learner.train()
    assert err.value.env_steps == 0


def test_replay_buffer_keeps_tasks_apart_and_samples_within_each():
    buffer = ReplayBuffer(n_tasks=3, capacity=4, obs_dim=1, action_dim=1)
    for step in range(6):  # task 0 and 2 get six transitions each: their rings wrap
        tasks = torch.tensor([0, 2])
        buffer.add(
            tasks,
            obs=torch.tensor([[step], [100 + step]], dtype=torch.float32),
            actions=torch.zeros(2, 1),
            rewards=torch.zeros(2),
            next_obs=torch.zeros(2, 1),
            terminated=torch.zeros(2),
        )
    assert buffer.size.tolist() == [4, 0, 4]
    batch = buffer.sample(5, 50, torch.Generator().manual_seed(0))
    assert sorted(batch["task"].tolist()) == [0, 2]  # task 1 has nothing yet
    for row, task in enumerate(batch["task"].tolist()):
        values = set(batch["obs"][row, :, 0].tolist())
        assert values == {float(s + 100 * (task == 2)) for s in (2, 3, 4, 5)}


def test_replay_buffer_grows_as_it_fills():
    buffer = ReplayBuffer(n_tasks=2, capacity=5000, obs_dim=2, action_dim=1)
    row = {
        "obs": torch.ones(1, 2),
        "actions": torch.ones(1, 1),
        "rewards": torch.ones(1),
        "next_obs": torch.ones(1, 2),
        "terminated": torch.zeros(1),
    }
    assert buffer.obs.shape == (2, 0, 2)
    for _ in range(1025):
        buffer.add(torch.tensor([1]), **row)
    assert buffer.obs.shape == (2, 2048, 2) and buffer.size.tolist() == [0, 1025]
    assert buffer.obs[1, :1025].eq(1).all() and buffer.obs[1, 1025:].eq(0).all()


@pytest.mark.parametrize("objective", LEARNERS)
def test_the_critic_target_bootstraps_only_where_the_episode_went_on(objective):
    learner, _ = _learner(objective)
    gen = torch.Generator().manual_seed(0)
    tasks, states = 2, 5
    terminated = torch.zeros(tasks, states)
    terminated[0, 1] = terminated[1, 3] = 1.0
    batch = {
        "task": torch.tensor([0, 2]),
        "obs": torch.randn(tasks, states, 1, generator=gen),
        "next_obs": torch.randn(tasks, states, 1, generator=gen) + 3.0,
        "rewards": torch.randn(tasks, states, generator=gen),
        "terminated": terminated,
    }
    desc = learner.descriptors[batch["task"]]
    target = learner._target(batch, desc, desc[:, None].expand(-1, states, -1))
    ended = terminated.bool()
    # A terminated transition's target is its reward; the others add the next state's value.
    assert torch.equal(target[ended], batch["rewards"][ended])
    assert (target[~ended] - batch["rewards"][~ended]).abs().min() > 0


@pytest.mark.parametrize("objective", LEARNERS)
def test_hard_share_draws_the_tasks_whose_last_rollout_earned_least(objective):
    learner, _ = _learner(
        objective, tasks=None, tasks_per_iteration=2, batch_tasks=2, hard_share=0.5
    )
    tasks = torch.arange(4)
    # Nothing rolled out yet: a uniform draw, as without hard_share.
    plain, _ = _learner(objective, tasks=None, tasks_per_iteration=2, batch_tasks=2)
    assert torch.equal(learner._draw(tasks, 2), plain._draw(tasks, 2))
    # Task 1 earned least: the hardest quarter of four tasks is task 1, in every draw (half
    # of two), and the other task is any of the rest.
    learner.last_reward = torch.tensor([0.0, -5.0, 1.0, 2.0])
    draws = [learner._draw(tasks, 2).tolist() for _ in range(40)]
    assert all(d[0] == 1 and d[1] != 1 for d in draws)
    assert {d[1] for d in draws} == {0, 2, 3}
    # A rollout records each chosen task's reward per step; the batches draw from the
    # buffer's tasks the same way.
    learner.last_reward = torch.tensor([0.0, -5.0, 1.0, 2.0])
    learner.train()
    assert not torch.isnan(learner.last_reward).any()
    assert set(learner.buffer.filled().tolist()) <= {0, 1, 2, 3}


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_hard_share_is_a_share(share):
    with pytest.raises(ConfigError, match="hard_share"):
        TD3Config(hard_share=share)
