"""Task spaces: validation, descriptors, sampling and splits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from meta_rl.envs import Feature, TaskSpace

from .conftest import FAMILY_NAMES


def test_descriptor_round_trip(family):
    space = family.task_space
    for task in [*space.sample(20, np.random.default_rng(0)), space.default_task()]:
        d = space.to_descriptor(task)
        assert d.dtype == np.float32 and d.shape == (space.dim,)
        assert np.all(d >= -1.0 - 1e-6) and np.all(d <= 1.0 + 1e-6)
        back = space.from_descriptor(d)
        for name, value in task.items():
            assert back[name] == pytest.approx(value, rel=1e-5, abs=1e-6)


def test_bounds_map_to_unit_interval(family):
    space = family.task_space
    low = space.to_descriptor({f.name: f.low for f in space.features})
    high = space.to_descriptor({f.name: f.high for f in space.features})
    np.testing.assert_allclose(low, -1.0, atol=1e-6)
    np.testing.assert_allclose(high, 1.0, atol=1e-6)


def test_log_scale_is_linear_in_log():
    f = Feature(name="m", default=1.0, low=0.5, high=2.0, scale="log")
    assert float(f.normalise(1.0)) == pytest.approx(0.0)
    assert float(f.denormalise(0.0)) == pytest.approx(1.0)


def test_sampling_is_seeded_and_in_bounds(family):
    space = family.task_space
    a = space.sample(10, np.random.default_rng(3))
    b = space.sample(10, np.random.default_rng(3))
    c = space.sample(10, np.random.default_rng(4))
    assert a == b and a != c
    for task in a:
        assert space.contains(task)


@pytest.mark.parametrize("kind", ["interpolation", "extrapolation"])
def test_splits_disjoint_and_reproducible(family, kind):
    space = family.task_space
    s1 = space.split(12, 5, n_val=4, kind=kind, seed=7)
    s2 = space.split(12, 5, n_val=4, kind=kind, seed=7)
    s3 = space.split(12, 5, n_val=4, kind=kind, seed=8)
    assert (s1.train, s1.val, s1.test) == (s2.train, s2.val, s2.test)
    assert s1.train != s3.train
    assert (len(s1.train), len(s1.val), len(s1.test)) == (12, 4, 5)
    keys = [tuple(t.values()) for t in s1.train + s1.val + s1.test]
    assert len(set(keys)) == len(keys)


def test_extrapolation_holds_out_an_edge():
    space = TaskSpace(
        [
            Feature(name="a", default=0.0, low=-1, high=1),
            Feature(name="b", default=0.0, low=0, high=4),
        ]
    )
    split = space.split(50, 20, n_val=10, kind="extrapolation", seed=0, holdout_feature="b")
    edge = space["b"].denormalise(0.5)
    assert all(t["b"] < edge for t in split.train + split.val)
    assert all(t["b"] >= edge - 1e-9 for t in split.test)


def test_training_region_holds_the_training_tasks_and_not_the_held_out_ones():
    space = TaskSpace(
        [
            Feature(name="a", default=0.0, low=-1, high=1),
            Feature(name="b", default=0.0, low=0, high=4),
        ]
    )
    low, high = space.training_region("interpolation")
    assert low.tolist() == [-1, -1] and high.tolist() == [1, 1]
    low, high = space.training_region("extrapolation", holdout_feature="b")
    assert low.tolist() == [-1, -1] and high.tolist() == [1, 0.5]
    split = space.split(50, 20, n_val=10, kind="extrapolation", seed=0, holdout_feature="b")
    inside = [space.to_descriptor(t) for t in split.train + split.val]
    assert all(np.all(d >= low) and np.all(d <= high) for d in inside)
    assert all(space.to_descriptor(t)[1] >= 0.5 - 1e-6 for t in split.test)
    with pytest.raises(ValueError, match="split kind"):
        space.training_region("sideways")


BAD_VALUES = [
    ("nan", math.nan),
    ("inf", math.inf),
    ("-inf", -math.inf),
    ("string", "1.0"),
    ("none", None),
    ("bool", True),
    ("list", [1.0]),
    ("huge", 1e300),
]


@pytest.mark.parametrize("name", FAMILY_NAMES)
@pytest.mark.parametrize(("label", "value"), BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_bad_values_name_feature_and_bounds(name, label, value):
    from meta_rl.envs import families

    space = families()[name].task_space
    feature = space.features[0]
    with pytest.raises(ValueError) as err:
        space.validate({feature.name: value})
    assert feature.name in str(err.value)
    assert f"{feature.low:g}" in str(err.value) and f"{feature.high:g}" in str(err.value)


def test_unknown_and_missing_features(family):
    space = family.task_space
    with pytest.raises(ValueError, match="unknown task feature 'nope'"):
        space.validate({"nope": 1.0})
    with pytest.raises(ValueError, match="missing task feature"):
        space.validate({}, complete=True)
    with pytest.raises(ValueError, match="dict"):
        space.validate([1.0, 2.0])  # type: ignore[arg-type]
    assert space.validate(None) == space.default_task()


def test_out_of_bounds_names_bounds(family):
    f = family.task_space.features[-1]
    too_high = f.high + abs(f.high - f.low)
    with pytest.raises(ValueError, match=f"'{f.name}'.*out of bounds"):
        family.task_space.validate({f.name: too_high})


def test_feature_definition_errors():
    with pytest.raises(ValueError, match="low"):
        Feature(name="x", default=0.0, low=1.0, high=0.0)
    with pytest.raises(ValueError, match="default"):
        Feature(name="x", default=5.0, low=0.0, high=1.0)
    with pytest.raises(ValueError, match="log"):
        Feature(name="x", default=0.5, low=0.0, high=1.0, scale="log")
    with pytest.raises(ValueError, match="duplicate"):
        TaskSpace([Feature(name="x", default=0, low=0, high=1)] * 2)


def test_extrapolated_descriptor_leaves_unit_interval():
    space = TaskSpace([Feature(name="x", default=0.0, low=0.0, high=1.0)])
    with pytest.raises(ValueError):
        space.to_descriptor({"x": 2.0})
    assert space.to_descriptor({"x": 2.0}, extrapolate=True)[0] == pytest.approx(3.0)


def test_more_training_tasks_leave_val_and_test_alone(family):
    small = family.task_space.split(8, 4, n_val=3, seed=1)
    large = family.task_space.split(16, 4, n_val=3, seed=1)
    assert small.test == large.test and small.val == large.val
    assert large.train[:8] == small.train
