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


def cut_embedded_val(dst: Path, count: int, splits=("train", "val", "test")) -> Path:
    """A small HumanML3D-layout folder cut from the embedded dataset's real val split.

    Args:
        dst: the folder to create (it must not exist yet).
        count: how many ids of the val split to take (the first ones, mirrors included as listed).
        splits: the split files written, each listing all the ids.

    Returns:
        ``dst``, holding ``new_joint_vecs/``, ``texts/``, ``Mean.npy``, ``Std.npy``, ``labels.json`` and the
        split files.
    """
    import shutil

    from remomask.data.embedded import resolve_dataset

    src = resolve_dataset("embedded", progress=False)
    (dst / "new_joint_vecs").mkdir(parents=True)
    (dst / "texts").mkdir()
    ids = (src / "val.txt").read_text().split()[:count]
    for i in ids:
        shutil.copy(src / "new_joint_vecs" / f"{i}.npy", dst / "new_joint_vecs")
        shutil.copy(src / "texts" / f"{i}.txt", dst / "texts")
    for name in ("Mean.npy", "Std.npy", "labels.json"):
        shutil.copy(src / name, dst)
    for split in splits:
        (dst / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return dst


# ---- the tiny generation models of test_generation.py and test_generation_sampling.py -------------------------
TINY_CODES, TINY_COLUMNS, TINY_TEXT, TINY_RETRIEVAL = 32, 6, 16, 24
"""Codes per layer, joint columns, text and retrieval embedding widths of the tiny generation models."""


def sharpen(model, seed: int = 0):
    """Re-draw every Linear weight of ``model`` with std 1/sqrt(fan_in) (instead of the 0.02 training init), so
    that condition effects on the logits are O(1) and a broken gate cannot hide behind a tiny difference.

    Args:
        model: a torch module (changed in place). seed: seed of the weights.

    Returns:
        ``model``.
    """
    import math

    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) / math.sqrt(m.in_features))
    return model


def tiny_mask_config(**overrides):
    """``MaskTransformerConfig`` of a tiny masked transformer (width 32, one layer of each kind, no dropout,
    :data:`TINY_CODES` codes, :data:`TINY_COLUMNS` columns, k = 1); ``overrides`` replace fields.

    Raises:
        TypeError / ValueError: an unknown field or a bad value (from the config).
    """
    from remomask.generation import MaskTransformerConfig

    fields = dict(num_codes=TINY_CODES, num_columns=TINY_COLUMNS, max_tokens=16, token_dim=32, latent_dim=32,
                  num_heads=2, ff_size=64, dropout=0.0, attn_dropout=0.0, ssta_layers=1, joint_layers=1,
                  time_layers=1, text_dim=TINY_TEXT, retrieval_dim=TINY_RETRIEVAL, retrieval_k=1)
    fields.update(overrides)
    return MaskTransformerConfig(**fields)


def tiny_residual_config(**overrides):
    """``ResidualTransformerConfig`` of a tiny residual transformer (width 32, 4 quantiser layers, one layer of
    each kind, no dropout, :data:`TINY_CODES` codes, :data:`TINY_COLUMNS` columns); ``overrides`` replace fields.

    Raises:
        TypeError / ValueError: an unknown field or a bad value (from the config).
    """
    from remomask.generation import ResidualTransformerConfig

    fields = dict(num_codes=TINY_CODES, num_columns=TINY_COLUMNS, num_quantizers=4, max_tokens=16, code_dim=24,
                  latent_dim=32, num_heads=2, ff_size=64, dropout=0.0, attn_dropout=0.0, layers=1, joint_layers=1,
                  time_layers=1, text_dim=TINY_TEXT)
    fields.update(overrides)
    return ResidualTransformerConfig(**fields)


@pytest.fixture(scope="session")
def bundled_pipe():
    """The bundled default pipeline, loaded once per test session."""
    from remomask.pipeline import ReMoMaskPipeline

    return ReMoMaskPipeline.from_pretrained()


@pytest.fixture(scope="session")
def walk_source():
    """Embedded-dataset clip 000110 ("a person walks backwards", 8.5 s) as an editing source."""
    from remomask.pipeline.editing import load_source

    return load_source("000110")


def read_archive_members(archive: Path, wanted: set[str]) -> dict[str, bytes]:
    """The bytes of the members ``wanted`` of a raw ``.tar.xz`` archive, read in one streaming pass that stops
    once all are found; fails the test naming the members the archive lacks."""
    import tarfile

    out: dict[str, bytes] = {}
    with tarfile.open(archive, "r:xz") as tar:
        for member in tar:
            if member.name in wanted:
                out[member.name] = tar.extractfile(member).read()
                if len(out) == len(wanted):
                    break
    missing = wanted - set(out)
    assert not missing, f"{archive} lacks {missing}"
    return out
