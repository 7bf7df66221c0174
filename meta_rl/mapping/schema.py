"""What a checkpoint's metadata and weights must be, checked before anything is built from them.

A checkpoint is input from outside: a file someone sent, a download, a file a crash or an
editor cut short. :func:`parse_checkpoint` checks every metadata field that loading or using
the mapping reads (type, range, and agreement with the installed family), then the
weights: the names and shapes that the metadata's sizes make (computed by arithmetic, so a
claimed layer of ten million units allocates nothing), float32, and finite. Every failure
is one :class:`~meta_rl.errors.CheckpointError` naming the field; only after all checks
pass does :meth:`TrainedMapping.load <meta_rl.mapping.checkpoint.TrainedMapping.load>`
build the network, whose size the weights in the file then bound.

The schema (``format_version`` 1)::

    format_version  1
    family          name of an installed family
    family_id       string (informational)
    family_module   optional: the importable module that defines the family (named in the
                    error where the family is not registered here; never imported by
                    loading)
    task_space      list of features (name, default, low, high, unit, kind, scale, doc),
                    equal to the installed family's
    policy.arch     obs_dim, action_dim: positive ints; action_kind: "box" | "discrete";
                    pi, vf: lists of positive ints; activation: "tanh" | "relu" | "elu";
                    log_std_init: finite number
    policy.layout   optional list of [parameter name, shape], equal to this version's
                    MlpPolicy's
    mapping         hidden: non-empty list of positive ints; rank: positive int or null
    objective       phases joined by "+" (parse_objective), each serving the action kind
    recipe          see meta_rl.training.recipes.recipe_from_json
    info            object; where present: split.{train,val,test} and <phase>_tasks lists
                    of tasks of the task space, split_kind "interpolation" |
                    "extrapolation", env_steps a non-negative int
    critic          optional: objective "td3" | "sac" | "sacd" (a phase of the checkpoint's
                    objective), hidden: non-empty list of positive ints, gamma in (0, 1]; its
                    weights are named critic.q1.0.weight and so on
    inference       optional: hidden: non-empty list of positive ints; probe_steps,
                    min_steps: positive ints, min_steps <= probe_steps; noise in [0, 1];
                    report: object; its weights are inference.input_mean,
                    inference.input_std (the transitions' width) and inference.net.0.weight
                    and so on
    versions        optional object of strings
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import torch

from meta_rl.envs import Family, TaskSpace, get_family
from meta_rl.envs.registry import UNAVAILABLE
from meta_rl.envs.task_space import SPLIT_KINDS
from meta_rl.errors import CheckpointError, FamilyError
from meta_rl.mapping.critic import CRITIC_OBJECTIVES, PREFIX, TaskCritic, critic_shapes
from meta_rl.mapping.inference import TaskInference, encoder_shapes, transition_width
from meta_rl.mapping.network import MappingConfig
from meta_rl.mapping.policy import PolicyArch, policy_numel
from meta_rl.objectives.registry import PHASES, phase_infos
from meta_rl.training.recipes import Recipe, recipe_from_json

FORMAT_VERSION = 1
MAX_LAYERS = 64
"""Most hidden layers in the mapping's trunk or in the policy's actor or critic."""
MAX_LAYOUT = 1024
"""Most entries in ``policy.layout``."""

_show = reprlib.Repr()
_show.maxstring = _show.maxother = _show.maxlong = 40
_show.maxlist = _show.maxdict = 6
_show.maxlevel = 2


@dataclass(frozen=True)
class CheckedCheckpoint:
    """A checkpoint's metadata, checked against the schema and its weights."""

    family: Family
    task_space: TaskSpace
    arch: PolicyArch
    config: MappingConfig
    objective: str
    recipe: Recipe
    info: dict[str, Any]
    layout: list[tuple[str, list[int]]] | None
    critic: TaskCritic | None = None
    inference: TaskInference | None = None


def _fail(field: str, must: str, value: Any) -> NoReturn:
    raise CheckpointError(
        f"malformed checkpoint metadata: {field} must be {must}, got {_show.repr(value)}"
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _get(data: Mapping[str, Any], key: str, field: str) -> Any:
    if key not in data:
        raise CheckpointError(f"incomplete checkpoint metadata: no {field}")
    return data[key]


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        _fail(field, "an object", value)
    return value


def _sizes(value: Any, field: str, *, empty: bool) -> list[int]:
    ok = (
        isinstance(value, list)
        and (empty or value)
        and len(value) <= MAX_LAYERS
        and all(_is_int(v) and v >= 1 for v in value)
    )
    if not ok:
        what = "a list" if empty else "a non-empty list"
        _fail(field, f"{what} of at most {MAX_LAYERS} positive whole numbers", value)
    return value


_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,20}")


def _check_family(meta: Mapping[str, Any], expected: str | None) -> tuple[Family, TaskSpace]:
    name = _get(meta, "family", "family")
    if not isinstance(name, str) or not 0 < len(name) <= 100:
        _fail("family", "a family name", name)
    if expected is not None and name.lower() != expected.lower():
        raise CheckpointError(f"a mapping for family {name}, not {expected}")
    family_id = meta.get("family_id", "")
    if not isinstance(family_id, str):
        _fail("family_id", "a string", family_id)
    module = meta.get("family_module")
    if module is not None and not (isinstance(module, str) and _MODULE.fullmatch(module)):
        _fail("family_module", "a module name", module)
    try:
        family = get_family(name)
    except FamilyError as err:
        if name.lower() in UNAVAILABLE:  # its extra installed, the checkpoint loads
            raise
        if module is not None:
            raise CheckpointError(
                f"the checkpoint's family {name} is defined in the module {module}, which is "
                f"not imported here: import {module} first (on the command line: --module "
                f"{module}), or install the package that provides it"
            ) from None
        raise CheckpointError(
            f"the checkpoint's family is not installed here: {err}. The checkpoint names no "
            "module that defines it (the family was made in a script, or the checkpoint was "
            "saved before checkpoints recorded it): define the family in a module "
            "(make_family at import time) and import that module before loading (on the "
            "command line: --module NAME)"
        ) from None
    space = TaskSpace.from_json(_get(meta, "task_space", "task_space"))
    if family.task_space != space:
        raise CheckpointError(
            f"the checkpoint's task space for {name} ({space.describe_bounds()}) differs from "
            f"the installed family's ({family.task_space.describe_bounds()})"
        )
    return family, space


def _check_arch(policy: Mapping[str, Any]) -> PolicyArch:
    data = _object(_get(policy, "arch", "policy.arch"), "policy.arch")
    for key in ("obs_dim", "action_dim"):
        value = _get(data, key, f"policy.arch.{key}")
        if not _is_int(value) or value < 1:
            _fail(f"policy.arch.{key}", "a positive whole number", value)
    for key in ("pi", "vf"):
        if key in data:
            _sizes(data[key], f"policy.arch.{key}", empty=True)
    log_std = data.get("log_std_init", 0.0)
    if not _is_real(log_std) or not -20.0 <= log_std <= 20.0:
        _fail("policy.arch.log_std_init", "a number in [-20, 20]", log_std)
    return PolicyArch.from_json(data)  # the rest: action_kind, activation, unknown keys


def _check_layout(policy: Mapping[str, Any]) -> list[tuple[str, list[int]]] | None:
    layout = policy.get("layout")
    if layout is None:
        return None
    must = f"a list of at most {MAX_LAYOUT} [parameter name, shape] pairs"
    if not isinstance(layout, list) or len(layout) > MAX_LAYOUT:
        _fail("policy.layout", must, layout)
    out = []
    for i, entry in enumerate(layout):
        ok = (
            isinstance(entry, list)
            and len(entry) == 2
            and isinstance(entry[0], str)
            and isinstance(entry[1], list)
            and len(entry[1]) <= 8
            and all(_is_int(n) and n >= 0 for n in entry[1])
        )
        if not ok:
            _fail(f"policy.layout[{i}]", "a [parameter name, shape] pair", entry)
        out.append((entry[0], list(entry[1])))
    return out


def _check_config(meta: Mapping[str, Any]) -> MappingConfig:
    data = _object(_get(meta, "mapping", "mapping"), "mapping")
    hidden = _sizes(_get(data, "hidden", "mapping.hidden"), "mapping.hidden", empty=False)
    rank = data.get("rank")
    if rank is not None and not (_is_int(rank) and rank >= 1):
        _fail("mapping.rank", "a positive whole number or null", rank)
    return MappingConfig(hidden=tuple(hidden), rank=rank)


def _check_critic(
    meta: Mapping[str, Any], objective: str, arch: PolicyArch, space: TaskSpace
) -> tuple[dict[str, Any] | None, dict[str, tuple[int, ...]]]:
    """The critic's metadata (or ``None``) and the shapes of the weights it makes."""
    data = meta.get("critic")
    if data is None:
        return None, {}
    data = _object(data, "critic")
    name = _get(data, "objective", "critic.objective")
    if name not in CRITIC_OBJECTIVES or name not in objective.split("+"):
        _fail("critic.objective", "a phase of the objective, td3, sac or sacd", name)
    hidden = _sizes(_get(data, "hidden", "critic.hidden"), "critic.hidden", empty=False)
    gamma = _get(data, "gamma", "critic.gamma")
    if not _is_real(gamma) or not 0 < gamma <= 1:
        _fail("critic.gamma", "a number in (0, 1]", gamma)
    shapes = critic_shapes(name, arch.obs_dim, arch.action_dim, space.dim, hidden)
    return data, shapes


def _check_inference(
    meta: Mapping[str, Any], arch: PolicyArch, space: TaskSpace
) -> tuple[dict[str, Any] | None, dict[str, tuple[int, ...]]]:
    """The task encoder's metadata (or ``None``) and the shapes of its weights."""
    data = meta.get("inference")
    if data is None:
        return None, {}
    data = _object(data, "inference")
    hidden = _sizes(_get(data, "hidden", "inference.hidden"), "inference.hidden", empty=False)
    steps = {}
    for key in ("probe_steps", "min_steps"):
        value = _get(data, key, f"inference.{key}")
        if not (_is_int(value) and 1 <= value <= 10**7):
            _fail(f"inference.{key}", "a positive whole number", value)
        steps[key] = value
    if steps["min_steps"] > steps["probe_steps"]:
        _fail("inference.min_steps", "at most inference.probe_steps", steps["min_steps"])
    noise = _get(data, "noise", "inference.noise")
    if not _is_real(noise) or not 0 <= noise <= 1:
        _fail("inference.noise", "a number in [0, 1]", noise)
    _object(data.get("report", {}), "inference.report")
    width = transition_width(arch.obs_dim, arch.action_dim)
    return data, encoder_shapes(width, space.dim, hidden)


def _check_weights(
    tensors: Mapping[str, torch.Tensor],
    space: TaskSpace,
    arch: PolicyArch,
    config: MappingConfig,
    critic: Mapping[str, tuple[int, ...]],
    inference: Mapping[str, tuple[int, ...]],
) -> None:
    """The weights are exactly the tensors the metadata's sizes make (the mapping's, the
    critic's and the task encoder's), float32 and finite."""
    if "base" not in tensors:
        raise CheckpointError("the checkpoint has no base parameters")
    numel = policy_numel(arch)
    base = tensors["base"]
    if base.dim() != 1 or base.numel() != numel:
        raise CheckpointError(
            f"the mapping predicts {list(base.shape)} parameters (its base), the policy of "
            f"policy.arch has {numel}: the weights do not match the metadata"
        )
    expected = {**config.parameter_shapes(space.dim, numel), **critic, **inference}
    missing = [name for name in expected if name not in tensors]
    unexpected = [name for name in tensors if name not in expected]
    if missing or unexpected:
        raise CheckpointError(
            "weights do not match the mapping's shape (mapping.hidden, mapping.rank, "
            f"policy.arch): missing {_show.repr(missing)}, unexpected {_show.repr(unexpected)}"
        )
    for name, shape in expected.items():
        tensor = tensors[name]
        if tuple(tensor.shape) != shape:
            raise CheckpointError(
                f"weights do not match the mapping's shape: {name} is {list(tensor.shape)}, "
                f"the metadata (mapping.hidden, mapping.rank, policy.arch) makes it "
                f"{list(shape)}"
            )
        if tensor.dtype != torch.float32:
            raise CheckpointError(f"weights must be float32: {name} is {tensor.dtype}")
        if not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(
                f"the weights are not all finite: {name} holds NaN or infinite values (a "
                "diverged or corrupted training); retrain the mapping"
            )


def _check_objective(meta: Mapping[str, Any], arch: PolicyArch) -> str:
    objective = _get(meta, "objective", "objective")
    if not isinstance(objective, str) or len(objective) > 200:
        _fail("objective", "phases joined by '+' (such as 'distill+rl')", objective)
    try:
        infos = phase_infos(objective)
    except ValueError as err:
        raise CheckpointError(f"malformed checkpoint metadata: objective: {err}") from None
    for info in infos:
        if arch.action_kind not in info.action_kinds:
            raise CheckpointError(
                f"malformed checkpoint metadata: the {info.name} phase of objective "
                f"{objective!r} does not serve the policy's {arch.action_kind} actions"
            )
    return objective


def _check_tasks(value: Any, field: str, space: TaskSpace) -> None:
    if not isinstance(value, list):
        _fail(field, "a list of tasks", value)
    for i, task in enumerate(value):
        try:
            space.validate(task, extrapolate=True)
        except ValueError as err:
            raise CheckpointError(f"malformed checkpoint metadata: {field}[{i}]: {err}") from None


def _check_info(meta: Mapping[str, Any], space: TaskSpace) -> dict[str, Any]:
    """The fields of ``info`` that meta-rl reads; the rest is free-form JSON."""
    info = _object(meta.get("info", {}), "info")
    split = info.get("split")
    if split is not None:
        _object(split, "info.split")
        for key in ("train", "val", "test"):
            if key in split:
                _check_tasks(split[key], f"info.split.{key}", space)
    kind = info.get("split_kind", "interpolation")
    if not isinstance(kind, str) or kind not in SPLIT_KINDS:
        _fail("info.split_kind", f"one of {', '.join(SPLIT_KINDS)}", kind)
    for phase in PHASES:
        if info.get(f"{phase}_tasks") is not None:
            _check_tasks(info[f"{phase}_tasks"], f"info.{phase}_tasks", space)
    steps = info.get("env_steps")
    if steps is not None and not (_is_int(steps) and steps >= 0):
        _fail("info.env_steps", "a non-negative whole number", steps)
    for key in ("val_return", "seconds"):
        value = info.get(key)
        if value is not None and not (
            isinstance(value, float) or (_is_int(value) and abs(value) < 2**1000)
        ):
            _fail(f"info.{key}", "a number", value)
    return info


def parse_checkpoint(
    meta: Any, tensors: Mapping[str, torch.Tensor], *, family: str | None = None
) -> CheckedCheckpoint:
    """Check a checkpoint's metadata (see the module's schema) and weights.

    Args:
        meta: The metadata, as JSON gave it.
        tensors: The weights, by name.
        family: If given, the family the checkpoint must be for.

    Raises:
        CheckpointError: the first field or tensor that breaks the schema (the message
            names it), another format version, or a checkpoint for another family.
        FamilyError: the checkpoint's family needs an extra that is not installed.
    """
    if not isinstance(meta, dict):
        raise CheckpointError("checkpoint metadata is not a JSON object")
    version = meta.get("format_version")
    if not _is_int(version) or version != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint format version {_show.repr(version)} is not supported "
            f"(this meta-rl reads version {FORMAT_VERSION}); retrain with `meta-rl train`"
        )
    family_obj, space = _check_family(meta, family)
    policy = _object(_get(meta, "policy", "policy"), "policy")
    arch = _check_arch(policy)
    layout = _check_layout(policy)
    config = _check_config(meta)
    objective = _check_objective(meta, arch)
    critic_meta, critic = _check_critic(meta, objective, arch, space)
    inference_meta, inference = _check_inference(meta, arch, space)
    _check_weights(tensors, space, arch, config, critic, inference)
    if inference and not bool((tensors["inference.input_std"] > 0).all()):
        raise CheckpointError("inference.input_std must be positive (a corrupted encoder)")
    recipe = recipe_from_json(_get(meta, "recipe", "recipe"), family=family_obj.name)
    info = _check_info(meta, space)
    versions = meta.get("versions", {})
    if not isinstance(versions, dict) or not all(isinstance(v, str) for v in versions.values()):
        _fail("versions", "an object of version strings", versions)
    return CheckedCheckpoint(
        family=family_obj,
        task_space=space,
        arch=arch,
        config=config,
        objective=objective,
        recipe=recipe,
        info=info,
        layout=layout,
        critic=None
        if critic_meta is None
        else TaskCritic.from_state(
            critic_meta["objective"],
            critic_meta["hidden"],
            critic_meta["gamma"],
            {k[len(PREFIX) :]: tensors[k] for k in critic},
        ),
        inference=None
        if inference_meta is None
        else TaskInference.from_json(inference_meta, {k: tensors[k] for k in inference}),
    )
