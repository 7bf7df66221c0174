"""The Ray backend, end to end on a local two-CPU Ray cluster."""

from __future__ import annotations

from dataclasses import replace

import pytest
import ray
import torch

from meta_rl.infra.parallel import run_jobs
from meta_rl.training.config import TrainConfig
from meta_rl.training.trainer import train


@pytest.fixture(scope="module")
def local_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _square(x: int) -> int:
    return x * x


def test_run_jobs_on_ray_keeps_job_order(local_cluster):
    seen: list[int] = []
    results = run_jobs(
        _square,
        [(i,) for i in range(5)],
        workers=2,
        backend="ray",
        on_done=lambda i, r: seen.append(i),
    )
    assert results == [0, 1, 4, 9, 16] and sorted(seen) == [0, 1, 2, 3, 4]


def test_training_through_ray_matches_local_training(local_cluster, tiny_mapping, tmp_path):
    _, local, _, config = tiny_mapping  # trained in this process (workers=0)
    on_ray, _ = train(replace(config, backend="ray", workdir=tmp_path))
    experts = sorted((tmp_path / "pendulum").glob("expert-*.safetensors"))
    assert len(experts) == len(local.info["split"]["train"])  # written here from the results
    for (name, a), b in zip(
        on_ray.network.state_dict().items(), local.network.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="backend must be one of"):
        TrainConfig(backend="spark")
