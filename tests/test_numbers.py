"""Numbers and types at every entry point of a task: integers beyond float's range, values
extrapolated so far that the env's spaces break, and ``None`` for the default task in a list.

Each ends in a clear ``TaskError`` naming the feature (or, for ``None``, works).
"""

from __future__ import annotations

import warnings
from fractions import Fraction

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meta_rl.agents import adapt
from meta_rl.cli import main
from meta_rl.envs import Feature, families, get_family, make_family
from meta_rl.envs.vector import FamilyVectorEnv
from meta_rl.errors import FamilyError, TaskError
from meta_rl.mapping.checkpoint import TrainedMapping

from .conftest import FAMILY_NAMES, Drift

EXAMPLES = 200

HUGE = [10**400, -(10**400), 10**5000, Fraction(10**400, 3)]
"""Real numbers ``float()`` cannot hold (10**5000 has no ``repr`` either: over 4,300 digits)."""
HUGE_IDS = ["1e400", "-1e400", "1e5000", "fraction"]


@pytest.fixture(scope="module")
def pendulum() -> TrainedMapping:
    return TrainedMapping.load("pendulum")


def _toy():
    """A family without batched dynamics: ``make_vec`` vectorises it with SyncVectorEnv."""
    return make_family(
        "NumbersToy",
        Drift,
        [Feature(name="rate", default=0.0, low=-0.5, high=0.5)],
        apply=lambda env, task: setattr(env, "rate", task["rate"]),
        max_episode_steps=10,
        register=False,
    )


def _entry_points(pendulum: TrainedMapping):
    family = get_family("Pendulum")
    space = family.task_space

    def set_task(task, **kw):
        env = family.make()
        env.unwrapped.set_task(task, **kw)

    return {
        "validate": lambda task, **kw: space.validate(task, **kw),
        "to_descriptor": lambda task, **kw: space.to_descriptor(task, **kw),
        "gym.make": lambda task, **kw: gym.make("meta_rl/Pendulum-v0", task=task, **kw),
        "set_task": set_task,
        "make_vec": lambda task, **kw: family.make_vec(2, tasks=[task, None]),
        "adapt": lambda task, **kw: adapt(pendulum, task=task, **kw),
        "predict": lambda task, **kw: pendulum.predict(task, **kw),
    }


@pytest.mark.parametrize("value", HUGE, ids=HUGE_IDS)
@pytest.mark.parametrize(
    "entry", ["validate", "to_descriptor", "gym.make", "set_task", "make_vec", "adapt", "predict"]
)
@pytest.mark.parametrize("extrapolate", [False, True])
def test_numbers_beyond_float_are_a_task_error_everywhere(pendulum, entry, value, extrapolate):
    call = _entry_points(pendulum)[entry]
    kwargs = {"extrapolate": True} if extrapolate and entry != "make_vec" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TaskError, match="'m' must be a finite number") as info:
            call({"m": value}, **kwargs)
    message = str(info.value)
    assert len(message) < 200 and "\n" not in message


@pytest.mark.parametrize("value", HUGE, ids=HUGE_IDS)
def test_a_sync_vector_env_refuses_numbers_beyond_float(value):
    with pytest.raises(TaskError, match="'rate'"):
        _toy().make_vec(2, tasks=[{"rate": value}, None])


@pytest.mark.parametrize("value", HUGE, ids=HUGE_IDS)
def test_descriptors_beyond_float_are_a_task_error(value):
    with pytest.raises(TaskError, match="descriptor"):
        get_family("Pendulum").task_space.from_descriptor([value, 0.0, 0.0, 0.0])


@pytest.mark.parametrize("attr", ["default", "low", "high"])
def test_feature_bounds_beyond_float_are_a_family_error(attr):
    values = {"default": 0.0, "low": -1.0, "high": 1.0, attr: 10**400}
    with pytest.raises(FamilyError, match=f"{attr} must be a finite number"):
        Feature(name="x", **values)
    with pytest.raises(FamilyError, match="identifier"):
        Feature(name=5, default=0.0, low=-1.0, high=1.0)  # type: ignore[arg-type]


# ---------------------------------------------------- extrapolation the env cannot take
@pytest.mark.parametrize(
    ("task", "named", "why"),
    [
        ({"g": -5.0}, "'g'=-5", "NaN"),
        ({"max_torque": -3.0}, "'max_torque'=-3", "empty"),
        ({"g": -5.0, "m": 3.0, "max_torque": 2.5}, "'g'=-5", "NaN"),  # m=3 alone is fine
        ({"g": -5.0, "max_torque": -3.0}, "'g'=-5 and 'max_torque'=-3", "bound"),
    ],
)
def test_extrapolation_that_breaks_the_spaces_is_a_task_error_naming_the_feature(task, named, why):
    with pytest.raises(TaskError, match="outside the bounds") as info:
        gym.make("meta_rl/Pendulum-v0", task=task, extrapolate=True)
    message = str(info.value)
    assert named in message and why in message and "'m'" not in message
    with pytest.raises(TaskError, match="outside the bounds"):
        get_family("Pendulum").make(task=task, extrapolate=True)
    with pytest.raises(TaskError, match="out of bounds"):
        gym.make("meta_rl/Pendulum-v0", task=task)  # without extrapolate, as before


def test_a_refused_set_task_leaves_the_env_on_its_task():
    env = gym.make("meta_rl/Pendulum-v0", task={"m": 1.5})
    base = env.unwrapped
    before = (base.task, base.descriptor, base.action_space, base.observation_space)
    with pytest.raises(TaskError, match="'max_torque'=-3"):
        base.set_task({"max_torque": -3.0}, extrapolate=True)
    assert base.task == before[0] and np.array_equal(base.descriptor, before[1])
    assert base.action_space == before[2] and base.observation_space == before[3]
    assert base.max_torque == 2.0 and base.m == 1.5
    env.reset(seed=0)
    env.step(env.action_space.sample())


@pytest.mark.parametrize("task", [{"g": 1.0}, {"g": 30.0}, {"max_torque": 0.5}, {"m": 3.0}])
def test_extrapolation_the_env_can_take_still_works(task):
    env = gym.make("meta_rl/Pendulum-v0", task=task, extrapolate=True)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    assert env.unwrapped.task == {**env.unwrapped.task_space.default_task(), **task}


@pytest.mark.filterwarnings("ignore::UserWarning")  # the ExtrapolationWarning that it is
@pytest.mark.parametrize("task", ["g=-5", "max_torque=-3"])
@pytest.mark.parametrize("command", ["evaluate", "adapt"])
def test_the_command_line_refuses_such_extrapolation_in_one_line(capsys, tmp_path, task, command):
    argv = [command, "pendulum", "--task", task, "--extrapolate", "--episodes", "1"]
    if command == "adapt":
        argv += ["--steps", "0", "--out", str(tmp_path / "adapted.zip")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    name = task.split("=")[0]
    assert err.startswith("meta-rl: error:") and err.count("\n") == 1
    assert f"'{name}'" in err and "outside the bounds" in err


def test_adapt_refuses_such_extrapolation(pendulum):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TaskError, match="'max_torque'=-3"):
            adapt(pendulum, task={"max_torque": -3.0}, extrapolate=True)


_far = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6),
    st.sampled_from([-1e300, 1e300, -1e30, 1e30, 0.0, -0.0, 1e-300, -1e-300, -1e-45]),
)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_family_builds_a_sampleable_env_or_refuses_an_extrapolated_task(data):
    family = families()[data.draw(st.sampled_from(FAMILY_NAMES))]
    feature = data.draw(st.sampled_from(family.task_space.features))
    value = data.draw(_far)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            env = family.make(task={feature.name: value}, extrapolate=True)
        except TaskError as err:
            assert repr(feature.name) in str(err)
            return
    try:
        env.action_space.sample()
        env.observation_space.sample()
    finally:
        env.close()


# ------------------------------------------------------- None: the default task in lists
@pytest.mark.parametrize("make", [lambda: get_family("Pendulum"), _toy], ids=["batched", "sync"])
def test_make_vec_takes_none_for_the_default_task(make):
    family = make()
    default = family.task_space.default_task()
    first = family.task_space.features[0]
    other = {first.name: (first.default + first.high) / 2}
    for tasks, want in [
        ([None, None], [default, default]),
        ([None, other], [default, {**default, **other}]),
        (None, [default, default]),
        (other, [{**default, **other}] * 2),
    ]:
        env = family.make_vec(2, tasks=tasks)
        got = env.tasks if isinstance(env, FamilyVectorEnv) else list(env.get_attr("task"))
        assert got == want
        env.reset(seed=0)
        env.step(env.action_space.sample())
        env.close()


@pytest.mark.parametrize("tasks", [[5, None], ["m", None], 5])
def test_make_vec_refuses_tasks_that_are_not_dicts(tasks):
    with pytest.raises(TaskError, match=r"dict of feature values|list of tasks"):
        get_family("Pendulum").make_vec(2, tasks=tasks)


def test_the_batched_env_takes_none_for_the_default_task_when_made_directly():
    family = get_family("Pendulum")
    env = FamilyVectorEnv(family, 2, [None, {"m": 1.5}])
    assert env.tasks == [family.task_space.default_task(), {**env.tasks[0], "m": 1.5}]
    with pytest.raises(TaskError, match="dict of feature values"):
        env.set_tasks([None, 5])
    env.close()
