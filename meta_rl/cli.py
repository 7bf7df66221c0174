"""The ``meta-rl`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import NoReturn

from meta_rl.envs import Family, families, get_family
from meta_rl.envs.registry import UNAVAILABLE


class UsageError(Exception):
    """Bad input from the command line: exit status 2, one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def parse_task(text: str | None, family: Family) -> dict[str, float]:
    """Parse ``k=v,k=v`` into a validated task (missing features take defaults).

    Raises:
        UsageError: malformed text, an unknown feature, or a bad value.
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
                f"features: {family.task_space.describe_bounds()}"
            ) from None
    try:
        return family.task_space.validate(raw)
    except ValueError as err:
        raise UsageError(str(err)) from None


# ---------------------------------------------------------------- commands
def cmd_families(args: argparse.Namespace) -> int:
    registered = families()
    if args.json:
        out = {
            f.name: {
                "id": f.id,
                "summary": f.summary,
                "max_episode_steps": f.max_episode_steps,
                "features": f.task_space.to_json(),
            }
            for f in registered.values()
        }
        print(json.dumps(out))
        return 0
    for f in registered.values():
        print(f"{f.id}  ({f.summary}; {f.max_episode_steps} steps)")
        width = max(len(x.name) for x in f.task_space.features)
        for x in f.task_space.features:
            print(
                f"    {x.name:<{width}}  default {x.default:<8g} bounds [{x.low:g}, {x.high:g}]"
                f"  {x.unit or '-':<6} {x.kind}, {x.scale}"
            )
    for hint in UNAVAILABLE.values():
        print(f"(not installed: {hint})")
    return 0


def cmd_rollout(args: argparse.Namespace) -> int:
    from meta_rl.evaluation import random_rollout

    family = get_family(args.family)
    task = parse_task(args.task, family)
    result = random_rollout(family, task, episodes=args.episodes, seed=args.seed)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{family.id} task {task}: random policy, {args.episodes} episodes, "
            f"return {result['return_mean']:.1f} +- {result['return_std']:.1f}"
        )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from meta_rl.evaluation import random_rollout

    cmd_families(argparse.Namespace(json=False))
    family = get_family("Pendulum")
    print("\nShort random-policy rollouts on three Pendulum tasks:")
    for task in family.task_space.sample(3, args.seed):
        result = random_rollout(family, task, episodes=2, seed=args.seed)
        shown = ", ".join(f"{k}={v:.2f}" for k, v in task.items())
        print(f"  {shown}: return {result['return_mean']:.1f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="meta-rl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("families", help="list families with their task features")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_families)

    p = sub.add_parser("rollout", help="run example episodes on a task")
    p.add_argument("family", help="family name, e.g. Pendulum")
    p.add_argument("--task", help="feature values, e.g. m=1.5,l=0.8")
    p.add_argument("--episodes", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_rollout)

    p = sub.add_parser("demo", help="the main job, on the Pendulum family")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``meta-rl``; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if getattr(args, "episodes", 1) < 1:
            raise UsageError("--episodes must be at least 1")
        return args.func(args)
    except (UsageError, ValueError) as err:
        print(f"meta-rl: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("meta-rl: interrupted", file=sys.stderr)
        return 130


def run() -> NoReturn:
    """Console-script wrapper: ``sys.exit(main())``."""
    sys.exit(main())


if __name__ == "__main__":
    run()
