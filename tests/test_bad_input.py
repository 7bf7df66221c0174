"""Bad input, tried in bulk (hypothesis): every family, the Python API and the command line
either accept a task and build exactly that environment, or refuse it with a clear error.

Examples tried per run (the README quotes these): see ``EXAMPLES``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meta_rl.agents import ExtrapolationWarning, resolve_task
from meta_rl.cli import UsageError, main, parse_task
from meta_rl.envs import families, get_family
from meta_rl.mapping.checkpoint import TrainedMapping

from .conftest import FAMILY_NAMES

EXAMPLES = {"validate": 300, "make": 40, "api": 300, "cli_parser": 400, "cli": 15}

_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e300, max_value=1e300),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.booleans(),
    st.none(),
    st.text(max_size=8),
    st.lists(st.floats(), max_size=2),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e308, -1e308, 0.0, -0.0]),
)


def _tasks(name: str) -> st.SearchStrategy:
    space = get_family(name).task_space
    features = [f.name for f in space.features]
    keys = st.one_of(st.sampled_from(features), st.text(max_size=6))
    valid = st.fixed_dictionaries(
        {}, optional={f.name: st.floats(f.low, f.high) for f in space.features}
    )
    # Good tasks with one feature spoilt, so most refusals are about one value.
    spoilt = st.tuples(valid, st.sampled_from(features), _values).map(
        lambda t: {**t[0], t[1]: t[2]}
    )
    return st.one_of(
        valid,
        spoilt,
        st.dictionaries(keys, _values, max_size=len(features) + 2),
        st.fixed_dictionaries({f: _values for f in features}),
        st.none(),
        _values,
    )


def _check_accepted(space, given_task, accepted) -> None:
    """An accepted task is complete, finite, in bounds, and what was given."""
    assert set(accepted) == {f.name for f in space.features}
    for feature in space.features:
        value = accepted[feature.name]
        assert isinstance(value, float) and math.isfinite(value)
        assert feature.low <= value <= feature.high
        if isinstance(given_task, dict) and feature.name in given_task:
            assert value == float(given_task[feature.name])


@pytest.mark.parametrize("name", FAMILY_NAMES)
@settings(max_examples=EXAMPLES["validate"], deadline=None)
@given(data=st.data())
def test_task_space_accepts_exactly_or_refuses_clearly(name, data):
    space = get_family(name).task_space
    task = data.draw(_tasks(name))
    try:
        accepted = space.validate(task)
    except ValueError as err:
        assert str(err)  # a message, never a bare error
        return
    _check_accepted(space, task, accepted)


@pytest.mark.parametrize("name", FAMILY_NAMES)
@settings(
    max_examples=EXAMPLES["make"],
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_envs_are_built_for_exactly_the_task_or_refused(name, data):
    family = families()[name]
    task = data.draw(_tasks(name))
    try:
        env = family.make(task=task)
    except ValueError as err:
        assert str(err)
        return
    try:
        accepted = env.unwrapped.task
        _check_accepted(family.task_space, task, accepted)
        assert np.all(np.isfinite(env.unwrapped.descriptor))
        env.reset(seed=0)
        env.step(env.action_space.sample())
    finally:
        env.close()


@settings(max_examples=EXAMPLES["api"], deadline=None)
@given(task=_tasks("Pendulum"), extrapolate=st.booleans())
def test_api_predicts_for_valid_tasks_only(task, extrapolate):
    mapping = TrainedMapping.load("pendulum")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        try:
            accepted = resolve_task(mapping.task_space, task, extrapolate=extrapolate)
        except ValueError as err:
            assert str(err)
            return
        try:
            params = mapping.predict(accepted, extrapolate=extrapolate)
        except ValueError as err:  # only a task far outside the bounds may overflow
            assert extrapolate and "too far outside the bounds" in str(err)
            return
    assert params.shape == (mapping.spec.numel,) and bool(params.isfinite().all())
    if not extrapolate:
        _check_accepted(mapping.task_space, task, accepted)


_task_text = st.one_of(
    st.text(max_size=40),
    st.lists(
        st.tuples(
            st.sampled_from(["m", "l", "g", "max_torque", "x", "", " m "]),
            st.one_of(
                st.floats(allow_nan=True, allow_infinity=True).map(repr),
                st.sampled_from(["nan", "inf", "-inf", "1e999", "", "abc", "1,2", "0x10"]),
            ),
        ),
        max_size=5,
    ).map(lambda pairs: ",".join(f"{k}={v}" for k, v in pairs)),
)


@settings(max_examples=EXAMPLES["cli_parser"], deadline=None)
@given(text=_task_text)
def test_command_line_task_parser(text):
    space = get_family("Pendulum").task_space
    try:
        accepted = parse_task(text, space)
    except UsageError as err:
        assert str(err) and "\n" not in str(err)
        return
    _check_accepted(space, None, accepted)


@settings(
    max_examples=EXAMPLES["cli"],
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=_task_text.filter(lambda t: "=" in t))
def test_command_line_exits_2_with_one_line(capsys, text):
    space = get_family("Pendulum").task_space
    try:
        parse_task(text, space)
    except UsageError:
        status = main(["evaluate", "pendulum", "--task", text, "--episodes", "1"])
        err = capsys.readouterr().err
        assert status == 2 and err.startswith("meta-rl: error:") and err.count("\n") == 1


def test_predict_refuses_a_task_whose_prediction_overflows():
    mapping = TrainedMapping.load("pendulum")
    far = {"m": 1.0, "l": 1.0, "g": 1.7014117838986683e39, "max_torque": 3.4028235677973366e38}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        accepted = resolve_task(mapping.task_space, far, extrapolate=True)
        with pytest.raises(ValueError, match="too far outside the bounds"):
            mapping.predict(accepted, extrapolate=True)
