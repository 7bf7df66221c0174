"""The ``meta-rl`` command line.

Commands: ``families``, ``train``, ``add-inference``, ``adapt``, ``evaluate``,
``rollout``, ``benchmark``, ``select-objective``, ``select-finetune`` and ``demo``. Bad
input exits with status 2 and one line on stderr; an internal error prints its traceback
and exits with status 1 (``--debug``: a traceback for every error). Commands that report
results take ``--json`` and then print one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import torch

from meta_rl.envs import TaskSpace, families, get_family
from meta_rl.envs.registry import UNAVAILABLE
from meta_rl.errors import MetaRLError
from meta_rl.infra.parallel import WorkerDied

if TYPE_CHECKING:
    from meta_rl.training.config import TrainConfig


class UsageError(MetaRLError):
    """Bad input from the command line: exit status 2, one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def parse_task(
    text: str | None, space: TaskSpace, *, extrapolate: bool = False
) -> dict[str, float]:
    """Parse ``k=v,k=v`` into a validated task (missing features take defaults).

    Raises:
        UsageError: malformed text, an unknown feature, or a bad value; a value out of
            bounds unless ``extrapolate``.
    """
    raw: dict[str, object] = {}
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise UsageError(f"--task takes name=value pairs separated by commas, got {item!r}")
        if key in raw:
            raise UsageError(f"--task gives {key!r} twice")
        try:
            raw[key] = float(value)
        except ValueError:
            raise UsageError(
                f"--task {key}={value!r}: the value must be a number; "
                f"features: {space.describe_bounds()}"
            ) from None
    from meta_rl.agents.adapt import resolve_task

    try:
        return resolve_task(space, raw, extrapolate=extrapolate)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _emit(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data) if getattr(args, "json", False) else text)


def _load(args: argparse.Namespace):
    from meta_rl.mapping.checkpoint import TrainedMapping

    return TrainedMapping.load(args.checkpoint)


def _writable(path: str | Path | None, default: str | Path | None = None) -> Path:
    """The output ``path`` (``default`` when the option was not given), checked before any
    work (:func:`meta_rl.infra.files.output_path`): an empty path, a directory, a special
    file or an unwritable folder is a ``PathError``; a symbolic link is followed."""
    from meta_rl.infra.files import output_path

    given = default if path is None else path
    output_path(given)  # raises PathError
    return Path(given)


def _fmt_task(task: dict[str, float]) -> str:
    return ",".join(f"{k}={v:.4g}" for k, v in task.items())


# ---------------------------------------------------------------- commands
def cmd_families(args: argparse.Namespace) -> int:
    from meta_rl.envs.family import load_entry_points

    broken: list[str] = []
    load_entry_points(errors=broken)  # families of installed packages too
    for message in broken:  # a broken package is said, the others listed
        logging.getLogger("meta_rl").warning("%s", message)
    registered = families()
    if args.json:
        print(
            json.dumps(
                {
                    f.name: {
                        "id": f.id,
                        "summary": f.summary,
                        "max_episode_steps": f.max_episode_steps,
                        "features": f.task_space.to_json(),
                    }
                    for f in registered.values()
                }
            )
        )
        return 0
    for f in registered.values():
        print(f"{f.id}  ({f.summary}; {f.max_episode_steps} steps)")
        width = max(len(x.name) for x in f.task_space.features)
        for x in f.task_space.features:
            bounds = f"[{x.low:g}, {x.high:g}]"
            print(
                f"    {x.name:<{width}}  default {x.default:<8g} bounds {bounds:<18} "
                f"{x.unit or '-':<6} {x.kind}, {x.scale}"
            )
    for hint in UNAVAILABLE.values():
        print(f"(not installed: {hint})")
    return 0


def _add_phase_settings(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--keep-going",
        action="store_true",
        help="train on past a base policy no better than random play (by default a run "
        "whose experts start from the base stops there and says what to try)",
    )
    p.add_argument(
        "--rl-iterations", type=_positive, default=None, help="iterations of rl (default: 250)"
    )
    p.add_argument(
        "--rl-lr", type=_positive_float, default=None, help="learning rate of rl (default: 1e-4)"
    )
    for phase in ("td3", "sac", "sacd"):  # the off-policy objectives
        p.add_argument(
            f"--{phase}-iterations",
            type=_positive,
            default=None,
            help=f"iterations of {phase} (default: the recipe's, else 40)",
        )
        p.add_argument(
            f"--{phase}-tasks",
            type=_at_least(2),
            default=None,
            help=f"training tasks {phase} draws from (it trains no experts, so they cost no "
            "env steps; default: 256)",
        )


def _phase_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The ``rl``, ``td3``, ``sac`` and ``sacd`` settings of ``TrainConfig`` that the command line
    gives (the off-policy ones over the family recipe's ``off_policy``; a phase with no
    option given is left to ``TrainConfig``: its defaults, or ``--budget quick``'s), and
    ``keep_going`` where asked."""
    from meta_rl.objectives.on_policy import RLConfig
    from meta_rl.training.config import OFF_POLICY_CONFIGS, phase_settings
    from meta_rl.training.recipes import recipe_for

    settings: dict[str, Any] = {}
    rl = {k: v for k in ("iterations", "lr") if (v := getattr(args, f"rl_{k}")) is not None}
    if rl:
        settings["rl"] = RLConfig(**rl)
    for name, cls in OFF_POLICY_CONFIGS.items():
        given = {
            key: value
            for key in ("iterations", "tasks")
            if (value := getattr(args, f"{name}_{key}")) is not None
        }
        if given:
            settings[name] = phase_settings(cls, {**recipe_for(args.family).off_policy, **given})
    if args.keep_going:  # else the default, which a smoke benchmark sets to True
        settings["keep_going"] = True
    return settings


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The ``TrainConfig`` of parsed ``meta-rl train`` arguments."""
    from meta_rl.mapping.network import MappingConfig
    from meta_rl.training.config import TrainConfig
    from meta_rl.training.inference import InferenceConfig

    return TrainConfig(
        family=args.family,
        objective=args.objective,
        seed=args.seed,
        split_seed=args.split_seed,
        split=args.split,
        workdir=Path(args.workdir),
        workers=args.workers,
        backend=args.backend,
        budget=args.budget,
        mapping=MappingConfig(hidden=tuple(args.hidden), rank=args.rank or None),
        n_train=args.n_train,
        # Left out where not given: their defaults, or --budget quick's.
        **{
            name: value
            for name in ("budget_scale", "rounds", "steps_per_round", "states_per_task")
            if (value := getattr(args, name)) is not None
        },
        **_phase_settings(args),
        inference=InferenceConfig() if args.inference else None,
        resume=args.resume,
        progress=not args.json,
    )


def cmd_train(args: argparse.Namespace) -> int:
    from meta_rl.infra.files import output_path, remove_leftovers, run_lock
    from meta_rl.training.trainer import train

    config = train_config(args)
    family_name = get_family(args.family).name.lower()
    out = _writable(args.out, config.workdir / f"{family_name}.safetensors")
    target = output_path(out)
    # Two runs must not write one checkpoint: the second fails now, not after hours.
    with run_lock(target.parent / f".{target.name}.lock", f"the checkpoint {out}"):
        remove_leftovers(target.parent, target.name)
        trained, _ = train(config)
        trained.save(out)
    result = {
        "checkpoint": str(out),
        "log": str(config.workdir / trained.family_name.lower() / "train_log.json"),
        "family": trained.family_name,
        "objective": trained.objective,
        "val_return": trained.info["val_return"],
        "summary": trained.info["summary"],
        "env_steps": trained.info["env_steps"],
        "seconds": trained.info["seconds"],
    }
    _emit(args, result, "\n".join(f"{k}: {v}" for k, v in result.items()))
    return 0


def cmd_add_inference(args: argparse.Namespace) -> int:
    from meta_rl.errors import PathError
    from meta_rl.training.inference import InferenceConfig, describe, train_inference

    mapping = _load(args)
    default = Path(f"{Path(str(args.checkpoint)).stem}-infer.safetensors")
    if args.out is None and default.exists():
        raise PathError(
            f"{default} exists; pass --out to name the new checkpoint (the path of an existing "
            "file replaces it)"
        )
    out = _writable(args.out, default)
    config = InferenceConfig(probe_steps=args.probe_steps, min_steps=args.min_steps)
    mapping.inference = train_inference(mapping, config, seed=args.seed)
    mapping.save(out)
    report = mapping.inference.report
    result = {"checkpoint": str(out), "family": mapping.family_name, **report}
    lines = [*describe(report), f"probes: {report['env_steps']} env steps, {report['seconds']} s"]
    _emit(args, result, "\n".join([*lines, f"saved to {out}"]))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from meta_rl.agents import evaluate
    from meta_rl.evaluation import summarise

    mapping = _load(args)
    task = parse_task(args.task, mapping.task_space, extrapolate=args.extrapolate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # parse_task has said what the task is
        scores = evaluate(
            mapping,
            task,
            episodes=args.episodes,
            seed=args.seed,
            extrapolate=args.extrapolate,
            infer=args.infer,
        )
    result = {"family": mapping.family_name, "task": task, **summarise(list(scores.returns))}
    text = (
        f"{mapping.family_name} {_fmt_task(task)}: zero-shot return "
        f"{result['return_mean']:.1f} +- {result['return_std']:.1f} over {args.episodes} episodes"
    )
    if scores.belief is not None:
        result["inferred"] = scores.belief.to_json()
        text += f" ({_fmt_belief(scores.belief)})"
    _emit(args, result, text)
    return 0


def cmd_adapt(args: argparse.Namespace) -> int:
    from meta_rl.agents import adapt
    from meta_rl.evaluation import ParamsPolicy, model_policy, run_episodes
    from meta_rl.infra.divergence import DivergenceGuard
    from meta_rl.infra.files import atomic_open
    from meta_rl.infra.sb3 import algo_name

    mapping = _load(args)
    task = parse_task(args.task, mapping.task_space, extrapolate=args.extrapolate)
    out = _writable(args.out, f"{mapping.family_name.lower()}-adapted.zip")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = adapt(
            mapping,
            task=task,
            algo=args.algo,
            seed=args.seed,
            extrapolate=args.extrapolate,
            infer=args.infer,
        )
    belief = getattr(model, "belief", None)
    env = mapping.family.make(task=task, extrapolate=args.extrapolate)

    def score(policy: Any) -> float:
        returns = run_episodes(env, policy, episodes=args.episodes, seed=args.seed + 1)
        return sum(returns) / args.episodes

    warm = int(getattr(model, "warm_steps", 0))  # an off-policy warm start's own env steps
    try:
        if belief is None:
            params = mapping.predict(task, extrapolate=True)
        else:
            params = mapping.predict_descriptor(belief.descriptor)
        zero_shot = score(ParamsPolicy(mapping.spec, params, env.action_space))
        learn = max(0, args.steps - warm)
        if learn:
            model.learn(learn, progress_bar=False, callback=DivergenceGuard())
        tuned = score(model_policy(model, mapping.spec, env.action_space))
    finally:
        env.close()
    with atomic_open(out, "wb") as fh:
        model.save(fh)
    result = {
        "family": mapping.family_name,
        "task": task,
        "algo": algo_name(model),
        "steps": warm + learn,
        "zero_shot_return": zero_shot,
        "fine_tuned_return": tuned,
        "model": str(out),
    }
    text = (
        f"{mapping.family_name} {_fmt_task(task)}: zero-shot {zero_shot:.1f}, after "
        f"{warm + learn} fine-tune env steps of {result['algo']}: {tuned:.1f}; SB3 model saved "
        f"to {out}"
    )
    if belief is not None:
        result["inferred"] = belief.to_json()
        text += f" ({_fmt_belief(belief)}, not counted in the fine-tune's steps)"
    _emit(args, result, text)
    return 0


def cmd_rollout(args: argparse.Namespace) -> int:
    from meta_rl.rollout import rollout

    mapping = _load(args)
    task = parse_task(args.task, mapping.task_space, extrapolate=args.extrapolate)
    result = rollout(
        mapping,
        task,
        episodes=args.episodes,
        seed=args.seed,
        gif=None if args.gif is None else _writable(args.gif),
        extrapolate=args.extrapolate,
        infer=args.infer,
    )
    lines = [f"{mapping.family_name} {_fmt_task(task)}:"]
    if "inferred" in result:
        inferred = result["inferred"]
        lines[0] += (
            f" the policy for {_fmt_task(inferred['task'])}, inferred from a probe of "
            f"{inferred['probe_steps']} steps"
        )
    lines += [f"  episode {i}: return {r:.1f}" for i, r in enumerate(result["returns"])]
    if args.gif is not None:
        lines.append(f"  GIF of episode 0 written to {args.gif}")
    _emit(args, result, "\n".join(lines))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from meta_rl.demo import run_demo

    result = run_demo(
        checkpoint=args.checkpoint,
        out_dir=Path(args.out_dir),
        n_tasks=args.tasks,
        steps=args.steps,
        seed=args.seed,
        progress=not args.json,
        workers=args.workers,
    )
    _emit(args, result, result["table"] + f"\n\nplot: {result['plot']}")
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    from meta_rl.benchmarks.benchmark import BenchmarkConfig, run_benchmark
    from meta_rl.benchmarks.score import ScoreConfig, score_mapping

    family = get_family(args.family)
    baselines = tuple(args.baselines)
    if args.checkpoint is not None:
        from meta_rl.mapping.checkpoint import TrainedMapping

        TrainedMapping.load(args.checkpoint, family=family.name)  # a clear error if foreign
        config = ScoreConfig(
            checkpoint=args.checkpoint,
            out_dir=Path(args.out_dir),
            budget=args.budget,
            oracle_budget=args.oracle_budget,
            sac_budget=args.sac_budget,
            seed=args.seed,
            oracle_seed=args.split_seed,
            workers=args.workers,
            backend=args.backend,
            progress=not args.json,
            finetune_steps=tuple(args.finetune_steps),
            finetune_algos=tuple(args.finetune_algos) if args.finetune_algos else None,
            context="context" in baselines,
            maml="maml" in baselines,
            recurrent="recurrent" in baselines,
            context_sac="context-sac" in baselines,
            infer_steps=args.infer_steps,
        )
        result = score_mapping(config)
    else:
        suite = BenchmarkConfig(
            family=family.name,
            budget=args.budget,
            oracle_budget=args.oracle_budget,
            sac_budget=args.sac_budget,
            seeds=args.seeds,
            split_seed=args.split_seed,
            splits=tuple(args.splits),
            out_dir=Path(args.out_dir),
            workdir=Path(args.workdir),
            workers=args.workers,
            backend=args.backend,
            finetune_steps=tuple(args.finetune_steps),
            finetune_algos=tuple(args.finetune_algos) if args.finetune_algos else None,
            baselines=baselines,
            train={"objective": args.objective, **_phase_settings(args)},
            progress=not args.json,
            infer_steps=args.infer_steps,
        )
        result = run_benchmark(suite)
    _emit(args, result.to_json(), result.table + f"\n\nreport: {result.report}")
    return 0


def cmd_select_finetune(args: argparse.Namespace) -> int:
    from meta_rl.benchmarks.finetune import FinetuneSelectionConfig, run_finetune_selection
    from meta_rl.mapping.checkpoint import TrainedMapping

    family = get_family(args.family)
    checkpoint = args.checkpoint or family.name.lower()
    TrainedMapping.load(checkpoint, family=family.name)  # a clear error if foreign or missing
    config = FinetuneSelectionConfig(
        checkpoint=checkpoint,
        candidates=tuple(args.candidates),
        val_tasks=args.val_tasks,
        points=tuple(args.points),
        episodes=args.episodes,
        seed=args.seed,
        out_dir=Path(args.out_dir),
        workers=args.workers,
    )
    result = run_finetune_selection(config)
    _emit(args, result, result["table"] + f"\n\nreport: {Path(args.out_dir) / 'results.md'}")
    return 0


def cmd_select_objective(args: argparse.Namespace) -> int:
    from meta_rl.benchmarks.selection import SelectionConfig, run_selection

    config = SelectionConfig(
        family=get_family(args.family).name,
        objectives=tuple(args.objectives),
        seeds=args.seeds,
        split=args.split,
        split_seed=args.split_seed,
        val_tasks=args.val_tasks,
        episodes=args.episodes,
        budget=args.budget,
        out_dir=Path(args.out_dir),
        workdir=Path(args.workdir),
        workers=args.workers,
        backend=args.backend,
        train=_phase_settings(args),
        progress=not args.json,
    )
    result = run_selection(config)
    _emit(args, result.to_json(), result.table + f"\n\nreport: {result.report}")
    return 0


# ------------------------------------------------------------------ parser
def _at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


_positive = _at_least(1)
_non_negative = _at_least(0)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _objective(text: str) -> str:
    """An argparse type: an objective, phases joined by ``+`` (``distill+rl``)."""
    from meta_rl.objectives.registry import parse_objective

    try:
        parse_objective(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _backend_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backend",
        choices=["local", "ray"],
        default="local",
        help="where jobs run: local processes, or Ray tasks (RAY_ADDRESS names a cluster)",
    )


def _budget(text: str) -> str:
    from meta_rl.benchmarks.score import budget_scale

    try:
        budget_scale(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _sac_budget(text: str) -> str:
    from meta_rl.benchmarks.score import sac_scale

    try:
        sac_scale(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{err}, or 0 to leave SAC out") from None
    return text


def _checkpoint_args(p: argparse.ArgumentParser, *, episodes: int) -> None:
    p.add_argument("checkpoint", help="checkpoint path, or a shipped mapping's name (pendulum)")
    p.add_argument("--task", help="feature values, e.g. m=1.5,l=0.8 (others: defaults)")
    p.add_argument(
        "--episodes", type=_positive, default=episodes, help=f"episodes (default: {episodes})"
    )
    p.add_argument(
        "--seed", type=_non_negative, default=0, help="seed of the first episode (the next: +1)"
    )
    p.add_argument(
        "--extrapolate",
        action="store_true",
        help="accept a task outside the family's bounds (warns: the mapping never saw it)",
    )
    p.add_argument(
        "--infer",
        type=_positive,
        metavar="STEPS",
        help="hide the task from the model: a probe of STEPS env steps infers it (the task "
        "only makes the env; the mapping needs an inference model)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _fmt_belief(belief: Any) -> str:
    """What a probe inferred, for the command's output."""
    return f"inferred {_fmt_task(belief.task)} from a probe of {belief.steps} steps"


def build_parser() -> argparse.ArgumentParser:
    from meta_rl.benchmarks.benchmark import BASELINES, DEFAULT_BASELINES

    parser = _Parser(prog="meta-rl", description="Policies ready for a new environment at once.")
    parser.add_argument("--debug", action="store_true", help="print the traceback of any error")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("families", help="list families with their task features")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_families)

    p = sub.add_parser("train", help="train a mapping: base policy, experts, mapping network")
    p.add_argument("family", help="family name, e.g. Pendulum")
    p.add_argument(
        "--objective",
        type=_objective,
        default=None,
        help="distill, params, rl (PPO through the mapping), td3 (TD3 through the mapping; "
        "Box actions), sac (SAC through the mapping; Box actions), sacd (discrete SAC "
        "through the mapping; discrete actions), or two "
        "in sequence (default: the family's, chosen on validation tasks: td3 for "
        "Pendulum; rl for CartPole, Acrobot and MountainCarContinuous; distill elsewhere)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="go on from the last finished round of an interrupted run with the same settings",
    )
    _add_phase_settings(p)
    p.add_argument("--seed", type=_non_negative, default=0)
    p.add_argument(
        "--split-seed",
        type=_non_negative,
        default=None,
        help="seed of the train/validation/test split (default: --seed)",
    )
    p.add_argument(
        "--split",
        choices=["interpolation", "extrapolation"],
        default="interpolation",
        help="how test tasks are held out (extrapolation: the upper edge of the first feature)",
    )
    p.add_argument("--workdir", default="runs", help="cache of base and experts, training log")
    p.add_argument("--out", help="checkpoint path (default: WORKDIR/<family>.safetensors)")
    p.add_argument("--workers", type=_non_negative, default=2, help="expert worker processes")
    _backend_arg(p)
    p.add_argument(
        "--budget",
        choices=("full", "quick"),
        default="full",
        help="quick: a first run of a few minutes on a classic-control-sized env (every "
        "budget, round and iteration count not given here shrunk)",
    )
    p.add_argument(
        "--budget-scale",
        type=_positive_float,
        default=None,
        help="factor on the env-step budgets of the base, experts and oracle (default: 1)",
    )
    p.add_argument("--n-train", type=_positive, default=None, help="training tasks")
    p.add_argument("--rounds", type=_positive, default=None, help="distill rounds (default: 6)")
    p.add_argument("--steps-per-round", type=_positive, default=None, help="default: 500")
    p.add_argument(
        "--states-per-task",
        type=_positive,
        default=None,
        help="states collected per task and round (distill; default: 1000)",
    )
    p.add_argument("--hidden", type=_positive, nargs="+", default=[64, 64])
    p.add_argument("--rank", type=_non_negative, default=32, help="low-rank output (0: full)")
    p.add_argument(
        "--inference",
        action="store_true",
        help="also train an inference model, so that the task can be inferred from a probe "
        "(evaluate/adapt/rollout --infer)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "add-inference",
        help="train an inference model for a mapping (tasks from a probe) and save both",
    )
    p.add_argument("checkpoint", help="checkpoint path, or a shipped mapping's name (pendulum)")
    p.add_argument(
        "--out",
        help="the new checkpoint (default: <name>-infer.safetensors here; give the input's "
        "path to replace it)",
    )
    p.add_argument(
        "--probe-steps", type=_positive, default=200, help="the longest probe trained on"
    )
    p.add_argument("--min-steps", type=_positive, default=20, help="the shortest probe trained on")
    p.add_argument("--seed", type=_non_negative, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_add_inference)

    p = sub.add_parser("evaluate", help="zero-shot return of the predicted policy on a task")
    _checkpoint_args(p, episodes=10)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("adapt", help="predict, fine-tune, and save an SB3 model")
    _checkpoint_args(p, episodes=5)
    p.add_argument(
        "--steps",
        type=_non_negative,
        default=5000,
        help="fine-tune env steps (for sac and td3, the warm start's own steps included)",
    )
    p.add_argument(
        "--algo",
        choices=["ppo", "a2c", "sac", "td3"],
        help="the fine-tune (default: the family's, chosen on validation tasks; sac and td3 "
        "need continuous actions)",
    )
    p.add_argument("--out", help="SB3 model zip (default: <family>-adapted.zip)")
    p.set_defaults(func=cmd_adapt)

    p = sub.add_parser("rollout", help="example episodes of the predicted policy")
    _checkpoint_args(p, episodes=1)
    p.add_argument("--gif", help="write the first episode as an animated GIF")
    p.set_defaults(func=cmd_rollout)

    p = sub.add_parser(
        "benchmark",
        help="train mappings over seeds and splits; score them against the baselines",
    )
    p.add_argument("family", help="family name, e.g. Pendulum")
    p.add_argument(
        "--checkpoint",
        help="score this trained mapping (path or shipped name) on its own test tasks instead",
    )
    p.add_argument(
        "--budget",
        type=_budget,
        default="full",
        help="small (a smoke run), full, or a fraction such as 0.25 of every training budget",
    )
    p.add_argument(
        "--oracle-budget",
        type=_budget,
        default=None,
        help="the oracle's budget (default: full; a fraction only where full runs do not fit, "
        "since a weaker oracle raises every score; the report states it)",
    )
    p.add_argument(
        "--sac-budget",
        type=_sac_budget,
        default=None,
        help="the budget of the oracle's SAC run alone (default: the oracle's), e.g. where "
        "SAC's full run does not fit but PPO's does; 0 leaves SAC out; the report states it",
    )
    p.add_argument("--seeds", type=_positive, default=3, help="training seeds per split")
    p.add_argument(
        "--objective",
        type=_objective,
        default=None,
        help="the mapping's objective (default: the family's; see train --help)",
    )
    _add_phase_settings(p)
    p.add_argument(
        "--splits",
        nargs="+",
        choices=["interpolation", "extrapolation"],
        default=["interpolation", "extrapolation"],
    )
    p.add_argument("--seed", type=_non_negative, default=0, help="seed of --checkpoint's run")
    p.add_argument(
        "--split-seed", type=_non_negative, default=0, help="seed of the tasks every seed shares"
    )
    p.add_argument("--workers", type=_non_negative, default=2)
    _backend_arg(p)
    p.add_argument("--workdir", default="runs", help="cache of bases and experts")
    p.add_argument("--out-dir", default="benchmark-out")
    p.add_argument(
        "--finetune-steps", type=_non_negative, nargs="+", default=[0, 1000, 2000, 5000, 10000]
    )
    p.add_argument(
        "--finetune-algos",
        nargs="+",
        choices=["ppo", "a2c", "sac", "td3"],
        help="fine-tunes curved from the prediction and the default-task expert (default: the "
        "family's, then ppo)",
    )
    p.add_argument(
        "--baselines",
        nargs="*",
        choices=list(BASELINES),
        default=list(DEFAULT_BASELINES),
        help="trained baselines to include (default: context maml recurrent; recurrent: "
        "RecurrentPPO with the task hidden; context-sac: SAC with the descriptor observed, "
        "for continuous actions; none: --baselines with no value)",
    )
    p.add_argument(
        "--infer-steps",
        type=_non_negative,
        default=None,
        help="probe steps of the 'task inferred' column (default: 200, or a --checkpoint's "
        "inference model's; 0: no column); each trained mapping gets an inference model",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_benchmark)

    p = sub.add_parser(
        "select-objective",
        help="train every objective over seeds; choose one on validation tasks (never test)",
    )
    p.add_argument("family", help="family name, e.g. Pendulum")
    p.add_argument(
        "--objectives",
        nargs="+",
        type=_objective,
        default=["distill", "rl", "distill+rl"],
        help="candidates; the first is the reference of the paired differences",
    )
    p.add_argument("--seeds", type=_positive, default=3, help="training seeds per objective")
    p.add_argument("--split", choices=["interpolation", "extrapolation"], default="interpolation")
    p.add_argument("--split-seed", type=_non_negative, default=0, help="seed of the split")
    p.add_argument("--val-tasks", type=_positive, default=24, help="validation tasks scored")
    p.add_argument("--episodes", type=_positive, default=5, help="episodes per task")
    p.add_argument("--budget", type=_budget, default="full", help="small, full or a fraction")
    _add_phase_settings(p)
    p.add_argument("--workers", type=_non_negative, default=2)
    _backend_arg(p)
    p.add_argument("--workdir", default="runs", help="cache of bases and experts")
    p.add_argument("--out-dir", default="objectives-out")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_select_objective)

    p = sub.add_parser(
        "select-finetune",
        help="choose the family's default fine-tune on validation tasks",
    )
    p.add_argument("family", help="family name, e.g. Pendulum")
    p.add_argument(
        "--checkpoint", help="the mapping (path or shipped name; default: the family's shipped)"
    )
    p.add_argument(
        "--candidates",
        nargs="+",
        default=["ppo", "a2c", "sac", "td3"],
        help="fine-tunes to compare: an algorithm, optionally with settings "
        "(sac:learning_rate=3e-4,gradient_steps=2)",
    )
    p.add_argument("--val-tasks", type=_positive, default=6, help="validation tasks scored")
    p.add_argument(
        "--points",
        type=_non_negative,
        nargs="+",
        default=[0, 1000, 2000, 5000],
        help="env-step budgets of the curves",
    )
    p.add_argument("--episodes", type=_positive, default=10, help="episodes per point")
    p.add_argument("--seed", type=_non_negative, default=0)
    p.add_argument("--workers", type=_non_negative, default=2)
    p.add_argument("--out-dir", default="finetune-out")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_select_finetune)

    p = sub.add_parser(
        "demo",
        help="the demo: the shipped Pendulum mapping on unseen tasks, zero-shot and fine-tuned",
    )
    p.add_argument("--checkpoint", default="pendulum")
    p.add_argument("--tasks", type=_positive, default=2, help="unseen tasks to show")
    p.add_argument("--steps", type=_positive, default=5000, help="fine-tune budget")
    p.add_argument("--seed", type=_non_negative, default=0)
    p.add_argument("--workers", type=_non_negative, default=2, help="processes (0: this one)")
    p.add_argument("--out-dir", default="meta-rl-demo")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_demo)
    for command in sub.choices.values():
        command.add_argument(
            "--module",
            action="append",
            default=[],
            metavar="MODULE",
            help="import this module first: one that defines your own family with "
            "make_family (the current folder is searched too); repeatable",
        )
        command.add_argument(
            "--debug", action="store_true", help="print the traceback of any error"
        )
    return parser


def _import_modules(names: Sequence[str]) -> None:
    """Import the ``--module`` modules (families defined in the user's code), the current
    folder searched first as ``python -m`` does."""
    if names and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in names:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name is not None and name.startswith(err.name):  # the module itself
                raise UsageError(
                    f"--module {name}: no such module here; run from the folder that holds "
                    "it, add that folder to PYTHONPATH, or install its package"
                ) from None
            raise UsageError(f"--module {name}: importing it failed: {err}") from err
        except Exception as err:  # the user's module raised: say where, not "internal"
            raise UsageError(
                f"--module {name}: importing it raised {type(err).__name__}: {err} (--debug "
                "shows the traceback)"
            ) from err


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``meta-rl``; returns the exit status.

    Input meta-rl can tell is wrong (:class:`~meta_rl.errors.MetaRLError`, bad arguments)
    exits with status 2 and one line; anything else is a bug and prints its traceback
    (status 1). ``--debug`` prints the traceback of every error.
    """
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING, format="meta-rl: %(message)s")
    logging.getLogger("meta_rl").setLevel(logging.INFO)  # its own notes; others' warnings
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # known before parsing, so that parse errors show it too
    parser = build_parser()
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)  # SIGTERM ends a run like Ctrl-C does
    try:
        args = parser.parse_args(argv)
        _import_modules(args.module)
        return args.func(args)
    except (UsageError, MetaRLError) as err:
        if debug:
            traceback.print_exc()
        message = " ".join(str(err).split())
        print(f"meta-rl: error: {message}", file=sys.stderr)
        return 2
    except WorkerDied as err:
        if debug:
            traceback.print_exc()
        print(f"meta-rl: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # Every file is written atomically, so what is on disk is whole: cached experts,
        # oracle runs, and the state a resumed `meta-rl train --resume` goes on from.
        print("meta-rl: interrupted; finished work is saved", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        print(
            "meta-rl: internal error (the traceback above): please report it with the command "
            "that caused it",
            file=sys.stderr,
        )
        return 1
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)


def _terminate(signum: int, frame: Any) -> NoReturn:
    raise KeyboardInterrupt


def run() -> NoReturn:
    """Console-script wrapper: ``sys.exit(main())``."""
    sys.exit(main())


if __name__ == "__main__":
    run()
