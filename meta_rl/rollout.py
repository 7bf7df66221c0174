"""Example rollouts of a predicted policy, optionally rendered to an animated GIF."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from meta_rl.envs import Task
from meta_rl.errors import DependencyError
from meta_rl.evaluation import ParamsPolicy, run_episodes, summarise
from meta_rl.infra.files import atomic_open
from meta_rl.mapping.checkpoint import TrainedMapping


@contextmanager
def _offscreen() -> Iterator[None]:
    """SDL's dummy video driver while frames are drawn off screen, unless the user chose a
    driver: pygame's default one looks for a display session and prints an error where
    there is none (``XDG_RUNTIME_DIR is invalid``), though ``rgb_array`` needs no display."""
    chosen = "SDL_VIDEODRIVER" in os.environ
    if not chosen:
        os.environ["SDL_VIDEODRIVER"] = "dummy"
    try:
        yield
    finally:
        if not chosen:
            os.environ.pop("SDL_VIDEODRIVER", None)


def rollout(
    mapping: TrainedMapping,
    task: Task,
    *,
    episodes: int = 1,
    seed: int = 0,
    gif: Path | None = None,
    extrapolate: bool = False,
    fps: int = 30,
    infer: int | None = None,
) -> dict[str, Any]:
    """Deterministic episodes of the zero-shot policy for ``task``.

    Args:
        mapping: The trained mapping.
        task: A validated task.
        episodes: Number of episodes.
        seed: Seed of the first episode.
        gif: Write the first episode, rendered, to this GIF file (needs the ``plots``
            extra: imageio and pygame).
        extrapolate: The task may lie outside the bounds.
        fps: Frames per second of the GIF.
        infer: Probe steps: the policy is then the prediction for the task a probe of an
            env of ``task`` infers (``task`` only makes the env; ``out["inferred"]`` says
            what the probe found).
    """
    out: dict[str, Any] = {"family": mapping.family_name, "task": task}
    if infer is None:
        params = mapping.predict(task, extrapolate=True)
    else:
        from meta_rl.agents.infer import infer_task, probe_seed

        belief = infer_task(
            mapping, task=task, steps=infer, seed=probe_seed(seed), extrapolate=True
        )
        params = mapping.predict_descriptor(belief.descriptor)
        out["inferred"] = belief.to_json()
    if gif is not None:
        try:
            import imageio.v3 as iio
        except ImportError as err:
            raise DependencyError("--gif needs imageio: pip install 'meta-rl[plots]'") from err
        frames: list[np.ndarray] = []
        with _offscreen():
            env = mapping.family.make(task=task, extrapolate=extrapolate, render_mode="rgb_array")
            policy = ParamsPolicy(mapping.spec, params, env.action_space)
            try:
                run_episodes(
                    env,
                    policy,
                    episodes=1,
                    seed=seed,
                    on_step=lambda e: frames.append(e.render()),
                )
            finally:
                env.close()
        buffer = io.BytesIO()
        iio.imwrite(buffer, np.stack(frames), extension=".gif", duration=1000 / fps, loop=0)
        with atomic_open(gif, "wb") as fh:
            fh.write(buffer.getvalue())
        out["gif"] = str(gif)
        out["frames"] = len(frames)
    env = mapping.family.make(task=task, extrapolate=extrapolate)
    try:
        policy = ParamsPolicy(mapping.spec, params, env.action_space)
        out.update(summarise(run_episodes(env, policy, episodes=episodes, seed=seed)))
    finally:
        env.close()
    return out
