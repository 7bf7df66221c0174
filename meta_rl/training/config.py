"""The settings of a training run (``meta-rl train``) and the key of its results."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

from meta_rl.envs import get_family
from meta_rl.envs.task_space import SPLIT_KINDS
from meta_rl.errors import ConfigError
from meta_rl.infra.keys import cache_key
from meta_rl.infra.parallel import check_backend
from meta_rl.mapping.network import MappingConfig
from meta_rl.objectives.on_policy import RLConfig
from meta_rl.objectives.registry import PHASES, check_objective, phase_infos
from meta_rl.objectives.sac import SACConfig
from meta_rl.objectives.sacd import SACDConfig
from meta_rl.objectives.td3 import TD3Config
from meta_rl.training.inference import InferenceConfig
from meta_rl.training.recipes import Recipe, is_builtin_recipe, recipe_for


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Settings of ``meta-rl train``.

    Attributes:
        family: Family name (``"Pendulum"``).
        objective: ``"distill"`` (behaviour matching with DAgger states), ``"params"``
            (regression onto expert parameters), ``"rl"`` (PPO through the mapping, no
            experts), ``"td3"`` (TD3 through the mapping, no experts, Box actions),
            ``"sac"`` (soft actor-critic through the mapping, no experts, Box actions),
            ``"sacd"`` (discrete soft actor-critic through the mapping, no experts,
            discrete actions), or two in sequence: ``"distill+rl"``, ``"params+distill"``. Default:
            the family recipe's, the one ``meta-rl select-objective`` chose on validation
            tasks where it has been run (``td3`` for Pendulum; ``rl`` for CartPole,
            Acrobot and MountainCarContinuous), ``distill`` for the other built-in
            families, and for a family without a recipe the automatic recipe's (``td3``
            for Box actions, ``rl`` for discrete ones).
        seed: Seed of the base, the experts and the mapping, and of the split unless
            ``split_seed`` is given.
        split_seed: Seed of the train/validation/test split (default: ``seed``). The
            benchmark holds it fixed so that its seeds vary training, not the tasks.
        split: ``"interpolation"`` (test tasks from the whole space) or ``"extrapolation"``
            (test tasks from a held-out edge of the first feature; see ``TaskSpace.split``).
        workdir: Folder of the cached base and experts and the training log.
        workers: Processes that train experts (0: this process).
        backend: ``"local"`` (worker processes here) or ``"ray"`` (experts as Ray tasks;
            see :mod:`meta_rl.infra.parallel`).
        budget: ``"full"``, or ``"quick"``: a first run of a few minutes on a
            classic-control-sized env, every setting not given taking :data:`QUICK`'s
            value (env-step budgets a quarter, fewer training tasks, distill rounds and
            ``rl``/``td3``/``sac``/``sacd`` iterations) instead of its default.
        budget_scale: Factor on the env-step budgets of the family's recipe (the base, the
            experts, the oracle); the phases' rounds and iterations stay (``budget="quick"``
            shrinks them too). Default 1.
        mapping: Shape of the mapping network.
        rounds: Rounds of mapping training; after each ``distill`` round the predicted
            policies visit new states that the experts relabel. Default 6.
        steps_per_round: Gradient steps per round. Default 500.
        states_per_task: States collected per task and round. Default 1000.
        batch_states: States per task in one gradient step.
        lr: Adam learning rate of the mapping.
        value_coef: Weight of the value error in ``distill``.
        n_train: Training tasks (default: the recipe's).
        recipe: How to train and fine-tune agents of the family (default: the family's
            own, a built-in family's, or one derived from its env at the start of training;
            see :func:`~meta_rl.training.recipes.recipe_for`).
        rl: Settings of the ``rl`` phase (default: :class:`RLConfig`'s).
        td3: Settings of the ``td3`` phase (default: :class:`TD3Config`'s, under the
            recipe's ``off_policy``).
        sac: Settings of the ``sac`` phase (default: :class:`SACConfig`'s, under the
            recipe's ``off_policy``).
        sacd: Settings of the ``sacd`` phase (default: :class:`SACDConfig`'s, under the
            recipe's ``off_policy``).
        inference: Train a task encoder at the end (:mod:`meta_rl.training.inference`), so
            that the mapping can infer a task from a probe of its env; ``None``: none.
        keep_going: Train on past a base policy no better than random on the default task
            (by default the run stops there with
            :class:`~meta_rl.training.health.WeakBaseError`, which says what to try).
        resume: Go on from the last finished round of an interrupted run with the same
            settings (its state is saved in ``workdir`` after every round); the result is the
            one an uninterrupted run gives. Without it, training starts afresh.
        progress: Show progress bars.
    """

    family: str = "Pendulum"
    objective: str | None = None
    seed: int = 0
    split_seed: int | None = None
    split: str = "interpolation"
    workdir: Path = Path("runs")
    workers: int = 2
    backend: str = "local"
    budget: str = "full"
    budget_scale: float = None  # type: ignore[assignment]  # resolved in __post_init__
    mapping: MappingConfig = field(default_factory=MappingConfig)
    rounds: int = None  # type: ignore[assignment]
    steps_per_round: int = None  # type: ignore[assignment]
    states_per_task: int = None  # type: ignore[assignment]
    batch_states: int = 128
    lr: float = 1e-3
    value_coef: float = 0.5
    n_train: int | None = None
    recipe: Recipe | None = None
    rl: RLConfig = None  # type: ignore[assignment]
    td3: TD3Config | None = None
    sac: SACConfig | None = None
    sacd: SACDConfig | None = None
    inference: InferenceConfig | None = None
    keep_going: bool = False
    resume: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        family = get_family(self.family)  # a clear error for an unknown family
        if self.recipe is not None and not isinstance(self.recipe, Recipe):
            raise ConfigError(
                "recipe must be a meta_rl.training.recipes.Recipe, got "
                f"{type(self.recipe).__name__}"
            )
        recipe = self.recipe if self.recipe is not None else recipe_for(self.family)
        if self.budget not in BUDGETS:
            raise ConfigError(f"budget must be one of {BUDGETS}, got {self.budget!r}")
        self._resolve(recipe)
        check_objective(self.objective, family)  # before hours of base training
        if self.split not in SPLIT_KINDS:
            raise ConfigError(f"split must be one of {SPLIT_KINDS}, got {self.split!r}")
        object.__setattr__(self, "workdir", Path(self.workdir))
        for name in ("rounds", "steps_per_round", "states_per_task", "batch_states"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be at least 1")
        if self.workers < 0:
            raise ConfigError("workers must be 0 or more")
        check_backend(self.backend)
        if not self.budget_scale > 0:
            raise ConfigError("budget_scale must be positive")
        if not self.lr > 0:
            raise ConfigError("lr must be positive")
        if self.n_train is not None and self.n_train < 2:
            raise ConfigError("n_train must be at least 2")

    def _resolve(self, recipe: Recipe) -> None:
        """Settings not given (``None``) take their defaults, or :data:`QUICK`'s under
        ``budget="quick"``; the objective and the off-policy phases' settings come from
        the recipe. Resolved here, so that cache keys name them."""
        quick = QUICK if self.budget == "quick" else {}
        if self.objective is None:
            object.__setattr__(self, "objective", recipe.objective)
        for name, default in DEFAULTS.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, quick.get(name, default))
        if self.rl is None:
            object.__setattr__(self, "rl", RLConfig(**quick.get("rl", {})))
        for name, cls in OFF_POLICY_CONFIGS.items():
            if getattr(self, name) is None:
                settings = {**recipe.off_policy, **quick.get(name, {})}
                object.__setattr__(self, name, phase_settings(cls, settings))
        if quick and self.n_train is None:
            object.__setattr__(self, "n_train", min(recipe.n_train, quick["n_train"]))

    @property
    def task_split_seed(self) -> int:
        """The seed the split is drawn with."""
        return self.seed if self.split_seed is None else self.split_seed

    def resolved_recipe(self) -> Recipe:
        """The recipe this run trains with: ``recipe`` or the family's, scaled by
        ``budget_scale``, with ``n_train``."""
        recipe = self.recipe if self.recipe is not None else recipe_for(self.family)
        if self.budget_scale != 1.0:
            recipe = recipe.scaled(self.budget_scale)
        if self.n_train is not None:
            recipe = replace(recipe, n_train=self.n_train)
        return recipe


OFF_POLICY_CONFIGS: dict[str, type] = {"td3": TD3Config, "sac": SACConfig, "sacd": SACDConfig}
"""The off-policy phases and their settings' classes."""

DEFAULTS: dict[str, Any] = {
    "budget_scale": 1.0,
    "rounds": 6,
    "steps_per_round": 500,
    "states_per_task": 1000,
}
"""The values of the settings that ``None`` leaves to the budget."""
BUDGETS = ("full", "quick")
QUICK: dict[str, Any] = {
    "budget_scale": 0.25,
    "n_train": 12,
    "rounds": 3,
    "steps_per_round": 250,
    "states_per_task": 500,
    "rl": {"iterations": 50},
    "td3": {"iterations": 12, "warmup_iterations": 2, "eval_every": 2},
    "sac": {"iterations": 12, "warmup_iterations": 2, "eval_every": 2},
    "sacd": {"iterations": 12, "warmup_iterations": 2, "eval_every": 2},
}
"""``budget="quick"``: the values of the settings not given (``n_train``: at most 12; a
phase's settings given as a whole, ``td3=TD3Config(...)`` say, are kept whole)."""


def phase_settings(cls: type, settings: dict) -> Any:
    """An off-policy objective's settings (``cls``: one of :data:`OFF_POLICY_CONFIGS`) from
    those of ``settings`` it has (a recipe's ``off_policy``, say): the others belong to the
    other objectives."""
    names = {f.name for f in dataclass_fields(cls)}
    return cls(**{k: v for k, v in settings.items() if k in names})


RUN_ONLY = ("workdir", "workers", "backend", "progress", "resume", "keep_going")
"""Settings that say where and how a run goes, not what it computes."""


_ADDED_OFF_POLICY_SETTINGS = {"hard_share": 0.0, "bc_coef": 0.0}
"""Off-policy settings added after runs were cached, with the defaults at which a run's
key leaves them out (so that it stays the key the run had before them)."""


def settings_key(config: TrainConfig) -> str:
    """The key of a run's results (the benchmark's cached mapping, a run's resume state).

    It hashes every setting that changes the result (:func:`~meta_rl.infra.keys.cache_key`
    adds the schema's version): all of ``config`` but :data:`RUN_ONLY`, with the split seed
    resolved and the settings of the phases that do not run left out (they cannot change
    the result).
    """
    fields = asdict(config)
    for name in RUN_ONLY:
        fields.pop(name)
    if fields["budget"] == "full":  # keys of runs from before the field stay
        fields.pop("budget")
    if config.recipe is None:
        if is_builtin_recipe(config.family):  # keys of runs from before the field stay
            fields.pop("recipe")
        else:  # a family's own or automatic recipe: a change to it is a new run
            fields["recipe"] = asdict(recipe_for(config.family))
    if fields.get("recipe") is not None:  # how it predicts beyond its region, not training
        fields["recipe"].pop("clamp", None)
        if fields["recipe"].get("activation") == "tanh":  # keys of runs from before it stay
            fields["recipe"].pop("activation")
    if config.inference is None:  # keys of runs from before the field stay
        fields.pop("inference")
    fields["split_seed"] = config.task_split_seed
    running = {info.name for info in phase_infos(config.objective)}
    for phase in PHASES:
        if phase not in running:
            fields.pop(phase, None)
    for phase in OFF_POLICY_CONFIGS:  # keys of runs from before the setting stay
        for name, default in _ADDED_OFF_POLICY_SETTINGS.items():
            if phase in fields and fields[phase].get(name) == default:
                fields[phase].pop(name)
    return cache_key(fields, length=64)
