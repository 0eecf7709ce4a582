"""Shared test fixtures: locate ../shared (the reference fixtures and raw mocap) and seed RNGs."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("REMOMASK_SHARED", REPO.parent / "shared"))
FIXTURES = SHARED / "data" / "fixtures"


@pytest.fixture(autouse=True)
def _seed_everything():
    """Seed python, numpy and torch before every test so failures reproduce."""
    random.seed(1234)
    np.random.seed(1234)
    try:
        import torch

        torch.manual_seed(1234)
    except ImportError:  # pragma: no cover
        pass


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"shared fixtures not found at {FIXTURES}; set REMOMASK_SHARED")
    return FIXTURES
