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


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One torch thread for the whole suite: on the 2-core CI machine OpenMP threads that wait on
    each other run several times slower than one (measured by several stages' tests)."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def free_port() -> int:
    """A TCP port that is free on localhost now, for torchrun's rendezvous in the DDP tests (a
    fixed port collides with any other run on the machine)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"shared fixtures not found at {FIXTURES}; set REMOMASK_SHARED")
    return FIXTURES
