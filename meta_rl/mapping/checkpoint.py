"""A trained mapping as one checkpoint: safetensors weights with JSON metadata, no pickle."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from functools import cached_property
from importlib import metadata as importlib_metadata
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from meta_rl.envs import Family, TaskSpace, get_family
from meta_rl.errors import CheckpointError, TaskError
from meta_rl.infra.files import load_tensors, save_tensors
from meta_rl.mapping.network import MappingConfig, MappingNetwork, check_mapping_fits
from meta_rl.mapping.policy import PolicyArch, PolicySpec
from meta_rl.objectives.registry import phase_infos
from meta_rl.training.recipes import Recipe, recipe_from_json

FORMAT_VERSION = 1
PRETRAINED_DIR = "pretrained"


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("meta-rl", "torch", "stable-baselines3", "gymnasium", "numpy"):
        try:
            out[pkg] = importlib_metadata.version(pkg)
        except importlib_metadata.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


@dataclass
class TrainedMapping:
    """A mapping network with everything needed to use it on its family.

    Attributes:
        family_name: Name of the family it was trained on.
        task_space: The task space of that family at training time.
        arch: The target policy's architecture.
        network: The mapping network.
        objective: The training objective (phases joined by ``+``, see
            :func:`meta_rl.objectives.registry.parse_objective`).
        recipe: The family's recipe (its ``finetune`` settings drive adaptation).
        info: Training summary (splits, returns, env steps), JSON-serialisable.
    """

    family_name: str
    task_space: TaskSpace
    arch: PolicyArch
    network: MappingNetwork
    objective: str
    recipe: Recipe
    info: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def spec(self) -> PolicySpec:
        spec = PolicySpec(self.arch)
        check_mapping_fits(self.network, spec)
        return spec

    @property
    def family(self) -> Family:
        return get_family(self.family_name)

    @property
    def base_params(self) -> torch.Tensor:
        """The base (default-task) policy's parameters."""
        return self.network.base.detach().clone()

    def descriptor(self, task: dict[str, float] | None, *, extrapolate: bool = False) -> np.ndarray:
        """Descriptor of a task (missing features take defaults).

        Raises:
            ValueError: a bad task; a value outside the bounds unless ``extrapolate``.
        """
        return self.task_space.to_descriptor(task or {}, extrapolate=extrapolate)

    @property
    def training_tasks(self) -> list[dict[str, float]]:
        """Every task the mapping's training learned from, each once: the split's training
        tasks where a phase used them (``params``, ``distill``, ``rl``), and the longer list
        an off-policy phase draws from (``info["td3_tasks"]``, ``info["sacd_tasks"]``). The
        baselines of ``meta-rl benchmark`` train on the same tasks."""
        phases = phase_infos(self.objective)
        lists = [self.info.get(f"{phase.name}_tasks") or [] for phase in phases]
        if any(not phase.draws_tasks for phase in phases) or not any(lists):
            lists.insert(0, self.info["split"]["train"])
        tasks: list[dict[str, float]] = []
        for task in (t for listed in lists for t in listed):
            if task not in tasks:
                tasks.append(task)
        return tasks

    @property
    def clamps(self) -> bool:
        """Whether :meth:`predict` clamps descriptors to :meth:`training_region`."""
        return phase_infos(self.objective)[-1].clamps

    def training_region(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The descriptor box the mapping's training tasks came from: the task space's
        bounds, less the held-out edge of an extrapolation split (``info["split_kind"]``,
        which every trained checkpoint records; split with the default holdout)."""
        low, high = self.task_space.training_region(self.info.get("split_kind", "interpolation"))
        return torch.as_tensor(low), torch.as_tensor(high)

    def predict(
        self, task: dict[str, float] | None, *, extrapolate: bool = False, clamp: bool | None = None
    ) -> torch.Tensor:
        """Flat policy parameters for ``task``.

        Args:
            task: Feature values (missing ones take defaults).
            extrapolate: Accept values outside the bounds.
            clamp: Predict for the nearest descriptor inside :meth:`training_region`
                (default: :attr:`clamps`, true for a ``td3`` mapping). Inside the region it
                changes nothing.

        Raises:
            ValueError: The task is invalid, or (with ``extrapolate``) so far outside the
                bounds that its descriptor (or, unclamped, the prediction) overflows.
        """
        d = torch.as_tensor(self.descriptor(task, extrapolate=extrapolate))
        clamp = self.clamps if clamp is None else clamp
        inside = torch.clamp(d, *self.training_region()) if clamp else d
        with torch.no_grad():
            params = self.network(inside).detach()
        if not (torch.isfinite(d).all() and torch.isfinite(params).all()):
            raise TaskError(
                f"cannot predict a policy for {task}: it lies too far outside the bounds "
                f"({self.task_space.describe_bounds()}) and its descriptor or prediction "
                "overflows; "
                "choose values nearer the bounds"
            )
        return params

    # ---------------------------------------------------------------- files
    def metadata(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "family": self.family_name,
            "family_id": f"meta_rl/{self.family_name}-v0",
            "task_space": self.task_space.to_json(),
            "policy": {"arch": self.arch.to_json(), "layout": self.spec.layout()},
            "mapping": {
                "hidden": list(self.network.config.hidden),
                "rank": self.network.config.rank,
            },
            "objective": self.objective,
            "recipe": asdict(self.recipe),
            "info": self.info,
            "versions": _versions(),
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the checkpoint atomically; returns its path."""
        path = Path(path)
        tensors = {k: v for k, v in self.network.state_dict().items()}
        save_tensors(path, tensors, self.metadata())
        return path

    @classmethod
    def load(cls, path_or_name: str | os.PathLike, *, family: str | None = None) -> TrainedMapping:
        """Load a checkpoint by path, or by the name of a mapping shipped with the package.

        Args:
            path_or_name: A file path, or a shipped name such as ``"pendulum"``.
            family: If given, the family the checkpoint must be for.

        Raises:
            ValueError: missing, corrupted or foreign file; another format version, family,
                task space or policy architecture than expected. Nothing is ever unpickled.
        """
        path = resolve_checkpoint(path_or_name)
        tensors, meta = load_tensors(path)
        if not isinstance(meta, dict):
            raise CheckpointError(f"{path}: checkpoint metadata is not a JSON object")
        version = meta.get("format_version")
        if version != FORMAT_VERSION:
            raise CheckpointError(
                f"{path}: checkpoint format version {version!r} is not supported "
                f"(this meta-rl reads version {FORMAT_VERSION}); retrain with `meta-rl train`"
            )
        try:
            family_name = meta["family"]
            space = TaskSpace.from_json(meta["task_space"])
            arch = PolicyArch.from_json(meta["policy"]["arch"])
            config = MappingConfig(
                hidden=tuple(meta["mapping"]["hidden"]), rank=meta["mapping"]["rank"]
            )
            recipe = recipe_from_json(meta["recipe"])
            objective = meta["objective"]
        except (KeyError, TypeError, AttributeError, ValueError) as err:
            raise CheckpointError(
                f"{path}: incomplete or malformed checkpoint metadata ({err})"
            ) from None
        if not isinstance(family_name, str) or not isinstance(objective, str):
            raise CheckpointError(f"{path}: malformed checkpoint metadata (family, objective)")
        if family is not None and family_name.lower() != family.lower():
            raise CheckpointError(f"{path} is a mapping for family {family_name}, not {family}")
        registered = get_family(family_name)
        if registered.task_space != space:
            raise CheckpointError(
                f"{path}: the checkpoint's task space for {family_name} "
                f"({space.describe_bounds()}) differs from the installed family's "
                f"({registered.task_space.describe_bounds()})"
            )
        if "base" not in tensors:
            raise CheckpointError(f"{path}: the checkpoint has no base parameters")
        network = MappingNetwork(space.dim, torch.zeros_like(tensors["base"]), config)
        try:
            network.load_state_dict(tensors, strict=True)
        except RuntimeError as err:
            first = str(err).splitlines()[0:2]
            raise CheckpointError(
                f"{path}: weights do not match the mapping's shape: {' '.join(first)}"
            ) from None
        mapping = cls(
            family_name=family_name,
            task_space=space,
            arch=arch,
            network=network,
            objective=objective,
            recipe=recipe,
            info=meta.get("info", {}),
        )
        layout = [(n, list(s)) for n, s in meta["policy"].get("layout", [])]
        if layout and layout != mapping.spec.layout():
            raise CheckpointError(
                f"{path}: the policy layout does not match this version's MlpPolicy"
            )
        check_mapping_fits(network, mapping.spec)
        return mapping


def shipped_mappings() -> dict[str, Path]:
    """Mappings shipped with the package, by name."""
    folder = resources.files("meta_rl") / PRETRAINED_DIR
    try:
        entries = list(folder.iterdir())
    except FileNotFoundError:
        return {}
    return {Path(str(e)).stem: Path(str(e)) for e in entries if str(e).endswith(".safetensors")}


def resolve_checkpoint(path_or_name: str | os.PathLike) -> Path:
    """A checkpoint path from a path or a shipped mapping's name.

    Raises:
        ValueError: neither an existing file nor a shipped name.
    """
    path = Path(path_or_name)
    if path.is_file():
        return path
    shipped = shipped_mappings()
    name = str(path_or_name).lower()
    if name in shipped:
        return shipped[name]
    names = ", ".join(sorted(shipped)) or "none"
    raise CheckpointError(
        f"no checkpoint file {str(path_or_name)!r}, and no shipped mapping of that name "
        f"(shipped: {names})"
    )
