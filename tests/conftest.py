"""Shared fixtures: every built-in family, tiny budgets, one torch thread."""

from __future__ import annotations

import warnings

import pytest
import torch

import meta_rl  # noqa: F401  (registers the families)
from meta_rl.envs import families

torch.set_num_threads(1)
warnings.filterwarnings("ignore", message=".*settotalmass.*")

FAMILY_NAMES = sorted(families())


@pytest.fixture(params=FAMILY_NAMES)
def family(request: pytest.FixtureRequest):
    return families()[request.param]
