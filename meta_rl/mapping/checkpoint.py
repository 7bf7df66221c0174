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
from meta_rl.errors import CheckpointError, MetaRLError, TaskError
from meta_rl.infra.files import load_tensors, save_tensors
from meta_rl.mapping.critic import PREFIX, TaskCritic
from meta_rl.mapping.inference import PREFIX as INFERENCE_PREFIX
from meta_rl.mapping.inference import TaskInference
from meta_rl.mapping.network import MappingNetwork, check_mapping_fits
from meta_rl.mapping.policy import PolicyArch, PolicySpec
from meta_rl.mapping.schema import FORMAT_VERSION, parse_checkpoint
from meta_rl.objectives.registry import phase_infos
from meta_rl.training.recipes import Recipe

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
        critic: The task-conditioned critic of an off-policy objective (``td3``,
            ``sacd``), from the same validation round as the network; ``None`` for other
            objectives and for checkpoints saved before critics were kept. An off-policy
            fine-tune (``adapt(..., algo="sac")``) starts from it.
        inference: The task encoder that infers the descriptor from a probe of the env
            (:mod:`meta_rl.mapping.inference`); ``None`` until one is trained
            (``meta-rl train --inference``, ``meta-rl add-inference``).
    """

    family_name: str
    task_space: TaskSpace
    arch: PolicyArch
    network: MappingNetwork
    objective: str
    recipe: Recipe
    info: dict[str, Any] = field(default_factory=dict)
    critic: TaskCritic | None = None
    inference: TaskInference | None = None

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
            lists.insert(0, (self.info.get("split") or {}).get("train") or [])
        tasks: list[dict[str, float]] = []
        for task in (t for listed in lists for t in listed):
            if task not in tasks:
                tasks.append(task)
        return tasks

    @property
    def clamps(self) -> bool:
        """Whether :meth:`predict` clamps descriptors to :meth:`training_region`: the
        recipe's ``clamp`` where the family chose it, else the last phase's default."""
        if self.recipe.clamp is not None:
            return self.recipe.clamp
        return phase_infos(self.objective)[-1].clamps

    def training_region(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The descriptor box the mapping's training tasks came from: the task space's
        bounds, less the held-out edge of an extrapolation split (``info["split_kind"]``,
        which every trained checkpoint records; split with the default holdout)."""
        low, high = self.task_space.training_region(self.info.get("split_kind", "interpolation"))
        return torch.as_tensor(low), torch.as_tensor(high)

    def input_descriptor(
        self, descriptor: torch.Tensor, *, clamp: bool | None = None
    ) -> torch.Tensor:
        """The descriptor the network reads for ``descriptor``: clamped to
        :meth:`training_region` where ``clamp`` (default :attr:`clamps`) says so."""
        clamp = self.clamps if clamp is None else clamp
        return torch.clamp(descriptor, *self.training_region()) if clamp else descriptor

    def predict(
        self, task: dict[str, float] | None, *, extrapolate: bool = False, clamp: bool | None = None
    ) -> torch.Tensor:
        """Flat policy parameters for ``task``.

        Args:
            task: Feature values (missing ones take defaults).
            extrapolate: Accept values outside the bounds.
            clamp: Predict for the nearest descriptor inside :meth:`training_region`
                (default: :attr:`clamps`, true for a ``td3`` mapping unless its family's
                recipe says otherwise). Inside the region it changes nothing.

        Raises:
            ValueError: The task is invalid, or (with ``extrapolate``) so far outside the
                bounds that its descriptor (or, unclamped, the prediction) overflows.
        """
        d = torch.as_tensor(self.descriptor(task, extrapolate=extrapolate))
        try:
            return self.predict_descriptor(d, clamp=clamp)
        except TaskError:
            raise TaskError(
                f"cannot predict a policy for {task}: it lies too far outside the bounds "
                f"({self.task_space.describe_bounds()}) and its descriptor or prediction "
                "overflows; choose values nearer the bounds"
            ) from None

    def predict_descriptor(
        self, descriptor: np.ndarray | torch.Tensor, *, clamp: bool | None = None
    ) -> torch.Tensor:
        """Flat policy parameters for a descriptor (a task's, or one a probe inferred),
        clamped to :meth:`training_region` where ``clamp`` (default :attr:`clamps`) says so.

        Raises:
            TaskError: the descriptor or the prediction is not finite.
        """
        d = torch.as_tensor(np.asarray(descriptor, dtype=np.float32))
        with torch.no_grad():
            params = self.network(self.input_descriptor(d, clamp=clamp)).detach()
        if not (torch.isfinite(d).all() and torch.isfinite(params).all()):
            raise TaskError("the descriptor or the mapping's prediction for it is not finite")
        return params

    # ---------------------------------------------------------------- files
    def metadata(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "family": self.family_name,
            "family_id": f"meta_rl/{self.family_name}-v0",
            **({"family_module": module} if (module := self.family.module) else {}),
            "task_space": self.task_space.to_json(),
            "policy": {"arch": self.arch.to_json(), "layout": self.spec.layout()},
            "mapping": {
                "hidden": list(self.network.config.hidden),
                "rank": self.network.config.rank,
            },
            "objective": self.objective,
            "recipe": asdict(self.recipe),
            "info": self.info,
            **({"critic": self.critic.to_json()} if self.critic is not None else {}),
            **({"inference": self.inference.to_json()} if self.inference is not None else {}),
            "versions": _versions(),
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the checkpoint atomically; returns its path."""
        path = Path(path)
        tensors = {k: v for k, v in self.network.state_dict().items()}
        if self.critic is not None:
            tensors.update(self.critic.checkpoint_tensors())
        if self.inference is not None:
            tensors.update(self.inference.checkpoint_tensors())
        save_tensors(path, tensors, self.metadata())
        return path

    @classmethod
    def load(cls, path_or_name: str | os.PathLike, *, family: str | None = None) -> TrainedMapping:
        """Load a checkpoint by path, or by the name of a mapping shipped with the package.

        Args:
            path_or_name: A file path, or a shipped name such as ``"pendulum"``.
            family: If given, the family the checkpoint must be for.

        Raises:
            CheckpointError: missing, corrupted or foreign file; another format version,
                family, task space or policy architecture than expected; metadata or
                weights that break the schema (:mod:`meta_rl.mapping.schema`: every field's
                type and range, the weights' shapes, dtype and finiteness, all checked
                before anything is built). Nothing is ever unpickled.
            FamilyError: the checkpoint's family needs an extra that is not installed.
        """
        path = resolve_checkpoint(path_or_name)
        tensors, meta = load_tensors(path)
        try:
            # Every field and tensor is checked before anything is built from them.
            checked = parse_checkpoint(meta, tensors, family=family)
        except MetaRLError as err:
            raise type(err)(f"{path}: {err}") from None
        network = MappingNetwork(
            checked.task_space.dim, torch.zeros_like(tensors["base"]), checked.config
        )
        try:
            network.load_state_dict(
                {k: v for k, v in tensors.items() if not k.startswith((PREFIX, INFERENCE_PREFIX))},
                strict=True,
            )
        except RuntimeError as err:  # parse_checkpoint has checked every name and shape
            first = str(err).splitlines()[0:2]
            raise CheckpointError(
                f"{path}: weights do not match the mapping's shape: {' '.join(first)}"
            ) from None
        # Finite weights can still overflow: the prediction inside the bounds must be finite,
        # or every task would later be blamed for it.
        space = checked.task_space
        corners = torch.stack(
            [torch.zeros(space.dim), -torch.ones(space.dim), torch.ones(space.dim)]
        )
        with torch.no_grad():
            inside = network(torch.cat([torch.as_tensor(space.to_descriptor({}))[None], corners]))
        if not bool(torch.isfinite(inside).all()):
            raise CheckpointError(
                f"{path}: the weights overflow: the mapping's prediction inside the task "
                "bounds is not finite (weights from a diverged training?); retrain the mapping"
            )
        mapping = cls(
            family_name=checked.family.name,
            task_space=checked.task_space,
            arch=checked.arch,
            network=network,
            objective=checked.objective,
            recipe=checked.recipe,
            info=checked.info,
            critic=checked.critic,
            inference=checked.inference,
        )
        if checked.layout and checked.layout != mapping.spec.layout():
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
