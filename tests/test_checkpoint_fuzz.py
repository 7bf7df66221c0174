"""Crafted checkpoints: valid weights with altered metadata (and altered weights) either load
into a usable mapping or are refused with one ``CheckpointError``, in memory proportional to
the file.

The probes of the hardening issue each have a test; hypothesis then mutates the metadata of
the shipped mappings (type swaps, deletions, huge, negative and NaN numbers, deep nesting,
wrong shapes and dtypes): ``EXAMPLES`` in the default suite, ``SLOW_EXAMPLES`` under
``make test-slow``.
"""

from __future__ import annotations

import copy
import json
import math
import resource
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save as st_save

from meta_rl.cli import main
from meta_rl.envs import TaskSpace
from meta_rl.errors import CheckpointError
from meta_rl.infra import files
from meta_rl.infra.files import META_KEY, load_tensors
from meta_rl.mapping.checkpoint import TrainedMapping, resolve_checkpoint

EXAMPLES = 300
SLOW_EXAMPLES = 2500
MEMORY_FACTOR = 8
"""A load may use at most this many times the file's size (Python heap, and resident
memory where Linux reports its peak)."""

DEEP = "__deep_nesting_{}__"
"""A string the writer replaces with that many nested arrays (json.dumps cannot nest deep)."""


# ----------------------------------------------------------------------------- helpers
def _shipped(name: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    return load_tensors(resolve_checkpoint(name))


SHIPPED = {name: _shipped(name) for name in ("pendulum", "cartpole")}


def write(path: Path, tensors: dict[str, torch.Tensor], meta: Any) -> Path:
    """A safetensors file of ``tensors`` and ``meta`` (JSON text as it is, or any value:
    NaN and infinities as JSON's extensions write them, ``DEEP`` markers expanded)."""
    text = meta if isinstance(meta, str) else json.dumps(meta)
    while "__deep_nesting_" in text:
        start = text.index('"__deep_nesting_')
        end = text.index('__"', start) + 3
        depth = int(text[start + len('"__deep_nesting_') : end - 3])
        text = text[:start] + "[" * depth + "]" * depth + text[end:]
    payload = {k: v.contiguous() for k, v in tensors.items()}
    path.write_bytes(st_save(payload, metadata={META_KEY: text}))
    return path


def _status(key: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the process's peak resident memory (Linux 4.0+); whether it could."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return _status("VmHWM") is not None


@contextmanager
def address_space_guard(extra: int) -> Iterator[None]:
    """Refuse allocations beyond ``extra`` bytes more address space than the process holds
    (an allocation of the size a crafted checkpoint claims then fails at once, as an error
    the test reports, instead of filling the machine's memory)."""
    size = _status("VmSize")
    if size is None or not hasattr(resource, "RLIMIT_AS"):
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = size + extra
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def use(mapping: TrainedMapping) -> None:
    """What a loaded mapping is for: it must all work."""
    params = mapping.predict(None)
    assert params.shape == (mapping.spec.numel,) and bool(torch.isfinite(params).all())
    mapping.predict(mapping.task_space.sample(1, 0)[0])
    assert isinstance(mapping.training_tasks, list)
    mapping.training_region()
    json.dumps(mapping.metadata())


def load_measured(path: Path) -> tuple[Exception | None, int, int | None]:
    """Load (and use) ``path``: the exception it raised (``None`` if it loaded), the peak
    of Python's heap during the load, and the peak growth of resident memory (``None``
    where the platform does not report it)."""
    size = path.stat().st_size
    rss_before = _status("VmRSS")
    measure_rss = rss_before is not None and _reset_peak_rss()
    tracemalloc.start()
    error: Exception | None = None
    try:
        with address_space_guard(max(512 << 20, 64 * size)):
            use(TrainedMapping.load(path))
    except Exception as err:  # the test judges every exception
        error = err
    finally:
        heap = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    rss = _status("VmHWM") - rss_before if measure_rss else None  # type: ignore[operator]
    return error, heap, rss


def assert_refused_or_usable(path: Path) -> BaseException | None:
    """The load ends in a ``CheckpointError`` naming the file, or in a usable mapping; in
    memory within ``MEMORY_FACTOR`` times the file's size."""
    error, heap, rss = load_measured(path)
    if error is not None and not isinstance(error, CheckpointError):
        raise AssertionError(f"{type(error).__name__} instead of CheckpointError") from error
    if error is not None:
        message = str(error)
        assert str(path) in message and "Traceback" not in message
    limit = MEMORY_FACTOR * path.stat().st_size
    assert heap <= limit, f"the load's Python heap peaked at {heap} bytes (limit {limit})"
    assert rss is None or rss <= limit, f"resident memory grew by {rss} bytes (limit {limit})"
    return error


@pytest.fixture(scope="module", autouse=True)
def warm() -> None:
    """Load once first: imports and one-time caches are no checkpoint's cost."""
    for name in SHIPPED:
        use(TrainedMapping.load(name))


@pytest.fixture
def base() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, meta = SHIPPED["pendulum"]
    return dict(tensors), copy.deepcopy(meta)


def refused(tmp_path: Path, tensors: dict, meta: Any, match: str) -> None:
    path = write(tmp_path / "crafted.safetensors", tensors, meta)
    error = assert_refused_or_usable(path)
    assert error is not None, "the crafted checkpoint loaded"
    assert match in str(error), str(error)


# -------------------------------------------------------------------- the probes
def test_the_shipped_mappings_load_within_the_memory_bound(tmp_path):
    for name, (tensors, meta) in SHIPPED.items():
        path = write(tmp_path / f"{name}.safetensors", tensors, meta)
        assert assert_refused_or_usable(path) is None


def test_deeply_nested_metadata_is_refused_before_parsing(tmp_path, base):
    tensors, meta = base
    meta["info"]["notes"] = DEEP.format(100_000)  # two levels below the top
    refused(tmp_path, tensors, meta, "nest 100002 deep")
    limit = files.MAX_JSON_DEPTH
    meta["info"]["notes"] = DEEP.format(limit - 1)
    refused(tmp_path, tensors, meta, f"nest {limit + 1} deep")
    meta["info"]["notes"] = DEEP.format(limit - 2)  # free-form info, deep enough
    assert assert_refused_or_usable(write(tmp_path / "ok.safetensors", tensors, meta)) is None


def test_negative_policy_layer_is_refused(tmp_path, base):
    tensors, meta = base
    meta["policy"]["arch"]["pi"] = [-5, 64]
    refused(tmp_path, tensors, meta, "policy.arch.pi")


def test_info_that_is_not_an_object_is_refused(tmp_path, base):
    tensors, meta = base
    meta["info"] = [1, 2]
    refused(tmp_path, tensors, meta, "info must be an object")


def test_layout_that_is_not_a_list_is_refused(tmp_path, base):
    tensors, meta = base
    meta["policy"]["layout"] = 5
    refused(tmp_path, tensors, meta, "policy.layout")


@pytest.mark.parametrize("hidden", [[10**7, 10**7], [20000, 20000], [64, 64, 64], [65, 64]])
def test_hidden_sizes_that_do_not_fit_the_weights_are_refused_before_allocating(
    tmp_path, base, hidden
):
    tensors, meta = base
    meta["mapping"]["hidden"] = hidden
    refused(tmp_path, tensors, meta, "do not match")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("name", ["base", "head.weight", "trunk.0.bias"])
def test_non_finite_weights_are_refused_at_load(tmp_path, base, name, value):
    tensors, meta = base
    bad = tensors[name].clone()
    bad.view(-1)[bad.numel() // 2] = value
    refused(tmp_path, {**tensors, name: bad}, meta, f"{name} holds NaN or infinite")


def test_finite_weights_that_overflow_are_refused_at_load(tmp_path, base):
    tensors, meta = base
    huge = torch.full_like(tensors["head.weight"], 3e38)
    refused(tmp_path, {**tensors, "head.weight": huge}, meta, "the weights overflow")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.int32, torch.bool])
def test_weights_of_another_dtype_are_refused(tmp_path, base, dtype):
    tensors, meta = base
    refused(
        tmp_path, {**tensors, "trunk.0.bias": tensors["trunk.0.bias"].to(dtype)}, meta, "float32"
    )


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("format_version", True, "format version"),
        ("format_version", 1.0, "format version"),
        ("family", 5, "family"),
        ("family", "NoSuchFamily", "not installed"),
        ("objective", "nope", "objective"),
        ("objective", "sacd", "does not serve"),
        ("objective", ["td3"], "objective"),
        ("recipe", None, "recipe"),
        ("task_space", {"m": 1}, "task space"),
        ("mapping", {"hidden": [64, 64], "rank": -3}, "mapping.rank"),
        ("mapping", {"hidden": [], "rank": 32}, "mapping.hidden"),
        ("versions", [1], "versions"),
    ],
)
def test_top_level_fields_of_the_wrong_type_or_range_are_refused(
    tmp_path, base, field, value, match
):
    tensors, meta = base
    meta[field] = value
    if field == "family":  # a family of no known module (one with a module: below)
        meta.pop("family_module", None)
    refused(tmp_path, tensors, meta, match)


def test_an_unknown_family_of_a_recorded_module_names_the_module(tmp_path, base):
    tensors, meta = base
    meta["family"], meta["family_module"] = "NoSuchFamily", "no_such_module"
    refused(tmp_path, tensors, meta, "--module no_such_module")


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda m: m["task_space"][0].update(name=5), "identifier"),
        (lambda m: m["task_space"][0].update(low=10**400), "finite number"),
        (lambda m: m["task_space"][0].update(extra=1), "unknown fields"),
        (lambda m: m["policy"]["arch"].update(obs_dim=0), "policy.arch.obs_dim"),
        (lambda m: m["policy"]["arch"].update(action_kind="tuple"), "action_kind"),
        (lambda m: m["policy"]["arch"].update(log_std_init=math.nan), "log_std_init"),
        (lambda m: m["policy"]["arch"].update(vf=[64]), "do not match"),
        (lambda m: m["policy"]["layout"].__setitem__(0, ["log_std", [2]]), "layout"),
        (lambda m: m["recipe"]["finetune"].update(n_steps=-5), "finetune.n_steps"),
        (lambda m: m["recipe"]["finetune"].update(n_steps=10**12), "finetune.n_steps"),
        (lambda m: m["recipe"]["finetune"].update(tensorboard_log="/tmp/x"), "unknown setting"),
        (lambda m: m["recipe"]["ppo"].update(learning_rate=math.inf), "ppo.learning_rate"),
        (lambda m: m["recipe"].update(n_envs=0), "n_envs"),
        (lambda m: m["recipe"].update(objective="x+y"), "objective"),
        (lambda m: m["recipe"].pop("finetune"), "missing finetune"),
        (lambda m: m["info"]["split"]["train"].append({"m": "heavy"}), "info.split.train"),
        (lambda m: m["info"]["split"]["test"].append(7), "info.split.test"),
        (lambda m: m["info"].update(split_kind="sideways"), "info.split_kind"),
        (lambda m: m["info"].update(env_steps=-1), "info.env_steps"),
        (lambda m: m["info"].update(td3_tasks=[{"nope": 1.0}]), "info.td3_tasks"),
    ],
)
def test_nested_fields_of_the_wrong_type_or_range_are_refused(tmp_path, base, mutate, match):
    tensors, meta = base
    mutate(meta)
    refused(tmp_path, tensors, meta, match)


def test_metadata_numbers_python_cannot_read_are_refused(tmp_path, base):
    tensors, meta = base
    text = json.dumps(meta).replace('"seed": 0', '"seed": ' + "7" * 5000)
    assert "7" * 5000 in text
    refused(tmp_path, tensors, text, "corrupted metadata")


def test_metadata_that_is_not_an_object_is_refused(tmp_path, base):
    tensors, _ = base
    for text in ("[1, 2]", "5", "null", '"pendulum"'):
        refused(tmp_path, tensors, text, "not a JSON object")


@pytest.mark.parametrize(
    "data",
    [None, 5, [], [5], [{"name": "x"}], [{"name": "x", "default": 0, "low": 1, "high": 2}]],
)
def test_malformed_task_spaces_in_files_are_a_checkpoint_error(data):
    with pytest.raises(CheckpointError, match="malformed task space"):
        TaskSpace.from_json(data)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t.pop("trunk.2.bias"),
        lambda t: t.update(extra=torch.zeros(3)),
        lambda t: t.update(base=t["base"][:-1].clone()),
        lambda t: t.update({"head.weight": t["head.weight"].T.contiguous()}),
        lambda t: t.update({"trunk.0.bias": torch.tensor(1.0)}),
    ],
)
def test_weights_of_the_wrong_names_or_shapes_are_refused(tmp_path, base, change):
    tensors, meta = base
    change(tensors)
    path = write(tmp_path / "crafted.safetensors", tensors, meta)
    error = assert_refused_or_usable(path)
    assert error is not None and ("do not match" in str(error) or "parameters" in str(error))


def test_the_command_line_refuses_a_crafted_checkpoint_in_one_line(tmp_path, base, capsys):
    tensors, meta = base
    meta["mapping"]["hidden"] = [10**7, 10**7]
    path = write(tmp_path / "crafted.safetensors", tensors, meta)
    assert main(["evaluate", str(path), "--episodes", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("meta-rl: error:") and err.count("\n") == 1 and "do not match" in err


# ------------------------------------------------------------------ hypothesis mutations
_NASTY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.sampled_from([0, -1, -5, 10**7, 2**31, 2**63, 10**400, -(10**400), 10**4000]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, -0.0, 5e-324]),
    st.text(max_size=8),
    st.lists(st.integers(min_value=-5, max_value=10**7), max_size=4),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
    st.sampled_from([30, 64, 65, 1000, 100_000]).map(DEEP.format),
)


def _children(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return list(node)
    if isinstance(node, list):
        return list(range(len(node)))
    return []


@st.composite
def _mutated_metadata(draw: st.DrawFn, meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` with one to three fields changed: deleted, swapped for a nasty value, wrapped
    in a list or an object, scaled, or (a list) shortened or grown."""
    meta = copy.deepcopy(meta)
    for _ in range(draw(st.integers(1, 3))):
        parent, key = None, None
        node: Any = meta
        while _children(node) and (parent is None or draw(st.integers(0, 3)) > 0):
            parent, key = node, draw(st.sampled_from(_children(node)))
            node = node[key]
        if parent is None:
            continue
        how = draw(
            st.sampled_from(["delete", "nasty", "nasty", "wrap", "scale", "shorten", "grow"])
        )
        if how == "delete":
            del parent[key]
        elif how == "nasty":
            parent[key] = draw(_NASTY)
        elif how == "wrap":
            parent[key] = draw(st.sampled_from([[node], {"value": node}, str(node)[:50]]))
        elif how == "scale" and isinstance(node, int | float) and not isinstance(node, bool):
            parent[key] = node * draw(st.sampled_from([-1, 0, 2, 10**6, 10**300]))
        elif how == "shorten" and isinstance(node, list) and node:
            parent[key] = node[: draw(st.integers(0, len(node) - 1))]
        elif how == "grow" and isinstance(node, list):
            parent[key] = [*node, draw(_NASTY)]
    return meta


@st.composite
def _mutated_weights(draw: st.DrawFn, tensors: dict[str, torch.Tensor]) -> dict:
    """``tensors``, most often as they are, else with one changed: deleted, reshaped,
    cast, or holding a NaN, an infinity or a huge value."""
    tensors = dict(tensors)
    if draw(st.integers(0, 3)) > 0:
        return tensors
    name = draw(st.sampled_from(sorted(tensors)))
    t = tensors[name]
    how = draw(st.sampled_from(["delete", "shorter", "longer", "scalar", "dtype", "value"]))
    if how == "delete":
        del tensors[name]
    elif how == "shorter":
        tensors[name] = t[:-1].clone()
    elif how == "longer":
        tensors[name] = torch.cat([t, t[:1]])
    elif how == "scalar":
        tensors[name] = torch.tensor(0.5)
    elif how == "dtype":
        tensors[name] = t.to(draw(st.sampled_from([torch.float64, torch.float16, torch.int64])))
    else:
        value = draw(st.sampled_from([math.nan, math.inf, -math.inf, 3e38]))
        t = t.clone()
        t.view(-1)[draw(st.integers(0, t.numel() - 1))] = value
        tensors[name] = t
    return tensors


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def fuzz(folder: Path, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(SHIPPED)))
    tensors, meta = SHIPPED[name]
    crafted = data.draw(_mutated_metadata(meta))
    weights = data.draw(_mutated_weights(tensors))
    assert_refused_or_usable(write(folder / "crafted.safetensors", weights, crafted))


_FUZZ = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}


@settings(max_examples=EXAMPLES, **_FUZZ)
@given(data=st.data())
def test_mutated_checkpoints_load_usable_or_are_refused_within_memory(fuzz_dir, data):
    fuzz(fuzz_dir, data)


@pytest.mark.slow
@settings(max_examples=SLOW_EXAMPLES, **_FUZZ)
@given(data=st.data())
def test_many_mutated_checkpoints_load_usable_or_are_refused_within_memory(fuzz_dir, data):
    fuzz(fuzz_dir, data)
