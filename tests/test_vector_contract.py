"""The batched family envs keep Gymnasium's ``VectorEnv`` contract, as ``SyncVectorEnv`` of
the family's single env keeps it: what one refuses the other refuses, and what both accept
gives the same results where the contract fixes them (a list of seeds: the same start states,
then each sub-env's own random stream through its autoresets)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import ResetNeeded
from gymnasium.vector import AutoresetMode

from meta_rl.envs import get_family
from meta_rl.envs.vector import FamilyVectorEnv
from meta_rl.errors import FamilyError

BATCHED = ["CartPole", "Pendulum", "MountainCarContinuous", "Acrobot"]
N = 4
SEEDS = [10, 11, 12, 13]  # each probe starts here, so that accepted inputs compare

Probe = Callable[[gym.vector.VectorEnv], Any]


def _sync(name: str, **kwargs: Any) -> gym.vector.VectorEnv:
    family = get_family(name)
    return gym.vector.SyncVectorEnv([lambda: family.make(**kwargs)] * N)


def _probes(discrete: bool) -> dict[str, tuple[Probe, bool]]:
    """Inputs by name: a probe (from a reset with ``SEEDS``) and whether the contract fixes
    its results (an int seed does not: Gymnasium seeds sub-env i with seed + i, the batched
    env one stream for all)."""
    good = np.zeros(N, np.int64) if discrete else np.zeros((N, 1), np.float32)

    def step(actions: Any) -> tuple[Probe, bool]:
        return (lambda env: (env.reset(seed=SEEDS), env.step(actions)[:4])), True

    def reset(seed: Any, fixed: bool = True, **options: Any) -> tuple[Probe, bool]:
        return (lambda env: (env.reset(seed=SEEDS), env.reset(seed=seed, options=options))), fixed

    def mask(m: Any) -> tuple[Probe, bool]:
        return reset(None, reset_mask=m)

    probes = {
        "actions None": step(None),
        "actions scalar": step(good[0].item()),
        "actions n-1": step(good[:-1]),
        "actions (n, 1, 1)": step(good.reshape(N, 1, 1)),
        "actions str": step(good.astype(str)),
        "actions None each": step(np.full(good.shape, None, dtype=object)),
        "actions nan": step(np.full(good.shape, np.nan)),
        "actions list": step(good.tolist()),
        "actions int32": step(good.astype(np.int32)),
        "actions float64": step(good.astype(np.float64)),
        "actions bool array": step(good.astype(bool)),
        "actions valid": step(good),
        "seed [1, 2, 3]": reset([1, 2, 3]),
        "seed list": reset([5, 6, 7, 8]),
        "seed tuple": reset((5, 6, 7, 8)),
        "seed [None] * n": reset([None] * N),
        "seed [5, None, ...]": reset([5] + [None] * (N - 1)),
        "seed [True] * n": reset([True] * N),
        "seed None": reset(None),
        "seed int": reset(7, fixed=False),
        "seed True": reset(True, fixed=False),
        "seed 2**70": reset(2**70, fixed=False),
        "seed -1": reset(-1),
        "seed 1.5": reset(1.5),
        "seed 'abcd'": reset("abcd"),
        "seed np.int64": reset(np.int64(3)),
        "seed np.arange": reset(np.arange(N)),
        "seed [1.5] * n": reset([1.5] * N),
        "seed [-1] * n": reset([-1] * N),
        "mask float": mask(np.ones(N)),
        "mask nan": mask(np.full(N, np.nan)),
        "mask int": mask(np.ones(N, np.int64)),
        "mask list": mask([True] * N),
        "mask None": mask(None),
        "mask all False": mask(np.zeros(N, bool)),
        "mask n+1": mask(np.ones(N + 1, bool)),
        "mask valid": mask(np.arange(N) % 2 == 0),
        "seeded mask": reset([20, 21, 22, 23], reset_mask=np.arange(N) % 2 == 1),
        "step before reset": ((lambda env: env.step(good)), True),
        "masked reset then step": (
            (
                lambda env: (
                    env.reset(options={"reset_mask": np.eye(N, dtype=bool)[0]}),
                    env.step(good),
                )
            ),
            True,
        ),
    }
    if discrete:
        probes |= {
            "actions (n, 1)": step(good.reshape(N, 1)),
            "actions 1.0": step(np.ones(N)),
            "actions 0.5": step(np.full(N, 0.5)),
            "actions out of range": step(np.full(N, 5)),
            "actions -1": step(np.full(N, -1)),
        }
    else:
        probes |= {
            "actions (n,)": step(good.reshape(N)),
            "actions (n, 2)": step(np.zeros((N, 2), np.float32)),
            "actions inf": step(np.full((N, 1), np.inf)),
            "actions beyond bounds": step(np.full((N, 1), -1e3)),
            "actions int64": step(np.ones((N, 1), np.int64)),
        }
    return probes


# Refused by the batched env, accepted by SyncVectorEnv of the family's single env, and why.
STRICTER = {
    # The single Box envs read the first number of whatever they are given
    # (``reshape(-1)[0]``, numeric strings included); none of these is an element of
    # action_space, and Gymnasium's own Pendulum-v1 and MountainCarContinuous-v0 refuse
    # (n, 1, 1), (n,) and strings in SyncVectorEnv.
    ("Box", "actions (n, 1, 1)"),
    ("Box", "actions (n,)"),
    ("Box", "actions (n, 2)"),
    ("Box", "actions str"),
    # ... and read None as NaN (np.asarray(None, dtype=float) is nan): NaN in every sub-env.
    ("Box", "actions None each"),
}
# Extra reset options: the single envs honour their start-range options (low, high, ...),
# the batched start states cannot, so it refuses them rather than ignore them.
OPTIONS = {"low": -0.01, "high": 0.01}


def _outcome(probe: Probe, env: gym.vector.VectorEnv) -> tuple[str, Any]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the single envs' checker warns about NaN
            return "accepted", probe(env)
    except Exception as err:  # any refusal counts: the types are Gymnasium's mix
        return "refused", err


def _results(out: Any) -> list[np.ndarray]:
    """The arrays of an accepted probe's last call (observations, and a step's rest)."""
    last = out[-1] if isinstance(out, tuple) and isinstance(out[0], tuple) else out
    return [np.asarray(x, dtype=np.float64) for x in last if not isinstance(x, dict)]


@pytest.mark.parametrize("name", BATCHED)
def test_refuses_what_sync_vector_env_refuses(name):
    family = get_family(name)
    discrete = isinstance(family.make().action_space, gym.spaces.Discrete)
    kind = "Discrete" if discrete else "Box"
    mismatched, compared = [], 0
    for label, (probe, fixed) in _probes(discrete).items():
        batched, batched_out = _outcome(probe, FamilyVectorEnv(family, N))
        sync, sync_out = _outcome(probe, _sync(name))
        if (kind, label) in STRICTER:
            assert batched == "refused", f"{name}: the batched env accepts {label}"
            assert isinstance(batched_out, ValueError | TypeError)
            continue
        if batched != sync:
            mismatched.append(f"{label}: batched {batched} ({batched_out!r}), sync {sync}")
        elif batched == "accepted" and fixed:
            # Same start states, same dynamics: equal up to the float32 observations.
            for a, b in zip(_results(batched_out), _results(sync_out), strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=f"{name}: {label}")
            compared += 1
        elif batched == "refused":
            # The batched env's refusals are ValueError/TypeError (bad argument) or Gymnasium's
            # ResetNeeded; SyncVectorEnv's own are a mix (TypeError from len(), AssertionError
            # and gymnasium.error.Error from the sub-envs), so only the refusal is compared.
            assert isinstance(batched_out, ValueError | TypeError | ResetNeeded), label
    assert not mismatched, f"{name}:\n" + "\n".join(mismatched)
    assert compared >= 10
    for env in (FamilyVectorEnv(family, N), _sync(name)):
        env.reset(seed=SEEDS)
        # Both accept start-range options; the batched env refuses what it cannot honour.
        if isinstance(env, FamilyVectorEnv):
            with pytest.raises(FamilyError, match=r"'high', 'low'.*SyncVectorEnv"):
                env.reset(options=OPTIONS)
        else:
            env.reset(options=OPTIONS)


def test_the_issue_s_probes_at_64_sub_envs():
    """What the batched envs used to accept, as first reported (64 sub-envs)."""
    n = 64
    cartpole, pendulum = FamilyVectorEnv("CartPole", n), FamilyVectorEnv("Pendulum", n)
    with pytest.raises(ResetNeeded):
        pendulum.step(np.zeros((n, 1), np.float32))
    with pytest.raises(TypeError, match="reset_mask"):
        pendulum.reset(options={"reset_mask": np.full(n, np.nan)})
    with pytest.raises(TypeError, match="reset_mask"):
        pendulum.reset(options={"reset_mask": np.ones(n)})
    with pytest.raises(ValueError, match="one per sub-env"):
        pendulum.reset(seed=[1, 2, 3])
    pendulum.reset(seed=0), cartpole.reset(seed=0)
    for actions in (None, np.zeros((n, 1, 1), np.float32)):
        with pytest.raises(ValueError, match="actions must"):
            pendulum.step(actions)
    # SyncVectorEnv refuses bool arrays; a list of Python bools passes there only because
    # Discrete.contains(True) sees an int.
    for actions in (np.ones(n, bool), [True, False] * (n // 2)):
        with pytest.raises(ValueError, match="actions must"):
            cartpole.step(actions)
    # A list of 64 seeds seeds each sub-env with its own, not one stream with the list.
    seeds = list(range(100, 100 + n))
    pendulum.reset(seed=seeds)
    alone = FamilyVectorEnv("Pendulum", 1)
    for i in (0, 17, n - 1):
        alone.reset(seed=[seeds[i]])
        np.testing.assert_array_equal(pendulum.state[i], alone.state[0])
    as_one = pendulum.dynamics.reset(np.random.default_rng(seeds), n, pendulum.task_arrays)
    assert not np.isclose(pendulum.state, as_one).any()


@pytest.mark.parametrize("name", BATCHED)
@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_a_list_of_seeds_starts_each_sub_env_as_sync_vector_env(name, mode):
    """Each sub-env draws from its own stream, seeded as the single env seeds itself: the
    same start states, and after each episode's end the same next start state."""
    family = get_family(name)
    steps = 15
    vec = FamilyVectorEnv(family, N, max_episode_steps=steps, autoreset_mode=mode)
    sync = gym.vector.SyncVectorEnv(
        [lambda: family.make(max_episode_steps=steps)] * N, autoreset_mode=mode
    )
    seeds = [3, 141, 0, 2**40]
    vec.reset(seed=seeds)
    sync.reset(seed=seeds)

    def same_state(i: int) -> None:
        # Equal in the coarser of the two dtypes: Acrobot-v1 rounds its start state to
        # float32 where the batched env keeps float64, the batched MountainCarContinuous
        # holds float32 where its single env starts in float64 (changing either would change
        # every seeded run): the same draws, rounded differently.
        single = np.asarray(sync.envs[i].unwrapped.state)
        coarse = min(single.dtype, vec.state.dtype, key=lambda d: d.itemsize)
        np.testing.assert_array_equal(vec.state[i].astype(coarse), single.astype(coarse))

    for i in range(N):
        same_state(i)
    rng = np.random.default_rng(0)
    space = vec.single_action_space
    restarts = 0
    for _ in range(4 * steps):
        if isinstance(space, gym.spaces.Discrete):
            actions = rng.integers(space.n, size=N)
        else:
            actions = rng.uniform(space.low, space.high, (N, 1)).astype(np.float32)
        obs, reward, terminated, truncated, info = vec.step(actions)
        s_obs, s_reward, s_terminated, s_truncated, s_info = sync.step(actions)
        np.testing.assert_allclose(obs, s_obs, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(reward, s_reward, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(terminated, s_terminated)
        # TimeLimit also flags truncation on the step that terminates; the batched env not.
        np.testing.assert_array_equal(truncated, s_truncated & ~s_terminated)
        if mode == AutoresetMode.SAME_STEP and (terminated | truncated).any():
            ended = info["_final_obs"]
            np.testing.assert_array_equal(ended, s_info["_final_obs"])
            final = np.stack(list(s_info["final_obs"][ended]))
            np.testing.assert_allclose(info["final_obs"][ended], final, rtol=1e-5, atol=1e-5)
        for i in np.flatnonzero(vec.elapsed == 0):  # a new episode: its stream's next draw
            same_state(i)
            restarts += 1
    assert restarts >= 2 * N


@pytest.mark.parametrize("name", BATCHED)
def test_an_int_seed_keeps_one_stream_for_all_sub_envs(name):
    """``reset(seed=int)`` is what it was (seeded training depends on it): all sub-envs draw
    their start states from one ``np.random.default_rng(seed)``, in one call."""
    family = get_family(name)
    tasks = family.task_space.sample(N, 0)
    vec = FamilyVectorEnv(family, N, tasks)
    obs, _ = vec.reset(seed=123)
    expected = vec.dynamics.reset(np.random.default_rng(123), N, vec.task_arrays)
    np.testing.assert_array_equal(vec.state, expected)
    np.testing.assert_array_equal(obs, vec.dynamics.obs(expected))
    assert len({tuple(row) for row in obs}) == N  # distinct sub-envs
    assert vec.np_random_seed == 123
    # Back from a stream per sub-env to the one stream: the same start states again.
    vec.reset(seed=[1, 2, 3, 4])
    np.testing.assert_array_equal(vec.reset(seed=123)[0], obs)


def test_seeds_in_a_list_reseed_only_the_sub_envs_reset():
    vec = FamilyVectorEnv("CartPole", N)
    vec.reset(seed=0)
    before = vec.state.copy()
    mask = np.array([True, False, True, False])
    vec.reset(seed=[7, 8, None, 9], options={"reset_mask": mask})
    np.testing.assert_array_equal(vec.state[~mask], before[~mask])
    alone = FamilyVectorEnv("CartPole", 1)
    alone.reset(seed=[7])
    np.testing.assert_array_equal(vec.state[0], alone.state[0])
    # A None entry continues that sub-env's stream: deterministic given the seeds before.
    again = FamilyVectorEnv("CartPole", N)
    again.reset(seed=0)
    again.reset(seed=[7, 8, None, 9], options={"reset_mask": mask})
    np.testing.assert_array_equal(again.state, vec.state)
    assert not np.array_equal(vec.state[2], before[2])


def test_all_none_seeds_are_no_seed():
    a, b = FamilyVectorEnv("Pendulum", N), FamilyVectorEnv("Pendulum", N)
    a.reset(seed=5), b.reset(seed=5)
    np.testing.assert_array_equal(a.reset(seed=[None] * N)[0], b.reset()[0])
    a.reset(seed=SEEDS), b.reset(seed=SEEDS)
    np.testing.assert_array_equal(a.reset(seed=[None] * N)[0], b.reset()[0])


def test_reading_np_random_seed_does_not_reseed():
    """Gymnasium's VectorEnv makes a new random generator when ``np_random_seed`` is read
    and none was recorded; a seeded batched env records its seed."""
    a, b = FamilyVectorEnv("CartPole", N), FamilyVectorEnv("CartPole", N)
    a.reset(seed=0), b.reset(seed=0)
    assert b.np_random_seed == 0
    np.testing.assert_array_equal(a.reset()[0], b.reset()[0])
    assert isinstance(FamilyVectorEnv("CartPole", N).np_random_seed, int)


@pytest.mark.parametrize(
    ("seed", "options"),
    [
        ([1, 2, 3, -4], None),
        ([1, 2, 3, 4.0], None),
        (0, {"reset_mask": np.zeros(N, bool)}),
        (0, {"reset_mask": np.ones(N, bool), "low": -0.1}),
    ],
)
def test_a_refused_reset_changes_nothing(seed, options):
    vec = FamilyVectorEnv("CartPole", N)
    vec.reset(seed=SEEDS)
    vec.step(np.zeros(N, np.int64))
    state, elapsed = vec.state.copy(), vec.elapsed.copy()
    with pytest.raises((ValueError, TypeError)):
        vec.reset(seed=seed, options=options)
    np.testing.assert_array_equal(vec.state, state)
    np.testing.assert_array_equal(vec.elapsed, elapsed)
    twin = FamilyVectorEnv("CartPole", N)
    twin.reset(seed=SEEDS)
    twin.step(np.zeros(N, np.int64))
    np.testing.assert_array_equal(vec.reset()[0], twin.reset()[0])  # streams untouched


def test_step_needs_every_sub_env_reset():
    vec = FamilyVectorEnv("Acrobot", N)
    with pytest.raises(ResetNeeded, match="reset"):
        vec.step(np.zeros(N, np.int64))
    vec.reset(options={"reset_mask": np.array([True, True, False, False])})
    with pytest.raises(ResetNeeded, match=r"\[2, 3\]"):
        vec.step(np.zeros(N, np.int64))
    vec.reset(options={"reset_mask": np.array([False, False, True, True])})
    assert vec.step(np.zeros(N, np.int64))[0].shape == (N, 6)


def test_the_caller_s_options_are_left_alone():
    """SyncVectorEnv pops ``reset_mask`` from the caller's dict; the batched env does not."""
    vec = FamilyVectorEnv("Pendulum", N)
    vec.reset(seed=0)
    options = {"reset_mask": np.ones(N, bool)}
    vec.reset(options=options)
    vec.reset(options=options)
    assert "reset_mask" in options
