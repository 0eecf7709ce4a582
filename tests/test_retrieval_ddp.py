"""DDP training of the retriever under torchrun: 2 CPU processes, gloo backend, a few steps (docs/design.md §4.5).

The negative queues must receive the momentum keys of both processes, in rank order, every step.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from remomask.data.datasets import TextMotionDataset
from remomask.data.embedded import resolve_dataset
from remomask.retrieval.config import RetrieverConfig
from remomask.retrieval.train import _EpochSampler
from remomask.text import caption_key

REPO = Path(__file__).resolve().parents[1]
N, B, STEPS = 64, 8, 3  # 64 samples, 8 per process -> 4 steps per epoch; stop after 3


@pytest.mark.slow
def test_two_process_gloo_run_fills_the_queues_from_both_ranks(tmp_path):
    cfg = RetrieverConfig.preset_config(
        "cpu", d_model=32, num_layers=1, num_heads=2, ff_size=64, embed_dim=48, text_ff_size=128, queue_size=64,
        batch_size=B, frames_per_token=4, max_motion_length=64, train_split="val", val_split="val", seed=3)
    cfg.save(tmp_path / "cfg.json")
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "remomask.cli", "train", "retriever", "--config", str(tmp_path / "cfg.json"), "--out", str(out),
           "--max-steps", str(STEPS), "--max-train-samples", str(N), "--max-val-samples", "16", "--quiet",
           "--threads", "1"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (out / "model" / "model.safetensors").is_file()
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["global_step"] == STEPS
    queue = ckpt["hbm"]
    assert int(queue["queue.ptr"]) == STEPS * 2 * B  # global batch of 16 per step
    # Recompute which samples each rank drew and check the queue's sample ids, step by step, rank 0 first.
    ds = TextMotionDataset(resolve_dataset("embedded", progress=False), "val", mode="retriever")
    records = ds.records[:N]
    expected = []
    for step in range(STEPS):
        for rank in range(2):
            sampler = _EpochSampler(N, B, rank, 2, cfg.seed, [r.length for r in records])
            expected += [caption_key("sample:" + records[i].key) for i in sampler.batches()[step].tolist()]
    assert queue["queue.sample_ids"][: STEPS * 2 * B].tolist() == expected
    assert len(set(expected)) == STEPS * 2 * B  # the two shards do not overlap
    history = json.loads((out / "history.json").read_text())
    assert history[-1]["step"] == STEPS
