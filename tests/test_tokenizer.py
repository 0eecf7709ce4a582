"""The 2D residual VQ-VAE tokenizer (docs/design.md §3.1-§3.4) on real HumanML3D fixture clips.

Models here are tiny (width 8-16) so the whole file stays well under a minute on 2 cores; what is
checked is behaviour (losslessness, shapes, padding, quantiser updates, optimisation, persistence,
resume, DDP), not quality.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import free_port

from remomask.tokenizer import (CheckpointError, MotionTokenizer, QuantizeEMAReset, ResidualVQ, TokenizerConfig,
                                from_grid, grid_layout, to_grid)

FIX = Path(os.environ.get("REMOMASK_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data" / "fixtures" / "humanml3d"
REPO = Path(__file__).resolve().parents[1]
TINY = dict(width=8, code_dim=8, num_codes=16, num_quantizers=3, depth=2, resblock_dropout=0.0, branches=["2d"])


def _dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Exact (N, M) Euclidean distances (torch.cdist's matmul path is only ~1e-3 accurate)."""
    return (a[:, None, :] - b[None, :, :]).norm(dim=-1)


def _clip(mid: str) -> np.ndarray:
    return np.load(FIX / f"new_joint_vecs__{mid}.npy").astype(np.float32)


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    if not FIX.is_dir():
        pytest.fail(f"HumanML3D fixtures not found at {FIX}; set REMOMASK_SHARED")
    return [_clip("000612"), _clip("012314")]


@pytest.fixture(scope="module")
def stats() -> tuple[np.ndarray, np.ndarray]:
    return np.load(FIX / "Mean.npy").astype(np.float32), np.load(FIX / "Std.npy").astype(np.float32)


def _windows(clips, stats, n: int = 8, size: int = 64) -> torch.Tensor:
    mean, std = stats
    long = clips[0]
    starts = np.linspace(0, len(long) - size, n).astype(int)
    return torch.from_numpy(np.stack([(long[s:s + size] - mean) / std for s in starts]))


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory, clips, stats) -> Path:
    """A release-layout folder cut from the two real fixture clips: 3 train clips, 2 val clips."""
    root = tmp_path_factory.mktemp("tok_data")
    (root / "new_joint_vecs").mkdir()
    a, b = clips
    assert len(a) >= 198 and len(b) >= 85
    train = {f"t{i}": a[i * 66: i * 66 + 66] for i in range(3)}     # 199 frames -> 3 x 66
    val = {"v0": b[:42], "v1": b[42:85]}
    for key, arr in {**train, **val}.items():
        np.save(root / "new_joint_vecs" / f"{key}.npy", arr)
    (root / "train.txt").write_text("\n".join(train) + "\n")
    (root / "val.txt").write_text("\n".join(val) + "\n")
    np.save(root / "Mean.npy", stats[0])
    np.save(root / "Std.npy", stats[1])
    return root


# ---- grid (docs/design.md §3.1) -----------------------------------------------------------------------------
def test_grid_round_trip_is_exact_on_real_clips(clips):
    for clip in clips:
        x = torch.from_numpy(clip)[None]                             # (1, T, 263)
        g = to_grid(x)
        assert g.shape == (1, clip.shape[0], 24, 12)
        assert torch.equal(from_grid(g), x)


def test_grid_places_features_by_the_spec_table(clips):
    x = torch.from_numpy(clips[1])                                   # (T, 263), no batch axis
    g = to_grid(x)
    assert torch.equal(g[:, 0], torch.zeros_like(g[:, 0])) and torch.equal(g[:, 23], torch.zeros_like(g[:, 23]))
    root = g[:, 1]                                                   # joint 0 after one padding row
    assert torch.equal(root[:, 0:4], x[:, 0:4])                      # root data
    assert torch.equal(root[:, 4:8], x[:, 259:263])                  # foot contacts
    assert torch.equal(root[:, 9:12], x[:, 193:196])                 # root local velocity
    for j in (1, 7, 21):                                             # ric, cont6d, velocity of joint j
        assert torch.equal(g[:, 1 + j, 0:3], x[:, 4 + 3 * (j - 1): 7 + 3 * (j - 1)])
        assert torch.equal(g[:, 1 + j, 3:9], x[:, 67 + 6 * (j - 1): 73 + 6 * (j - 1)])
        assert torch.equal(g[:, 1 + j, 9:12], x[:, 193 + 3 * j: 196 + 3 * j])


def test_grid_kit_layout_pads_1_before_2_after():
    lay = grid_layout(251)
    assert (lay.num_joints, lay.pad_before, lay.pad_after, lay.columns) == (21, 1, 2, 6)
    x = torch.randn(2, 9, 251, generator=torch.Generator().manual_seed(0))
    assert torch.equal(from_grid(to_grid(x), num_joints=21), x)
    with pytest.raises(ValueError, match="12\\*J - 1"):
        to_grid(torch.zeros(1, 4, 100))


# ---- model API (docs/design.md §3.2, §3.3) ---------------------------------------------------------------------
def test_encode_decode_shapes_padding_and_depth(clips, stats):
    torch.manual_seed(0)
    model = MotionTokenizer(TokenizerConfig(**TINY))
    model(_windows(clips, stats))                                    # initialise the codebooks
    model.eval()
    x = _windows(clips, stats, n=3)[:, :62]                          # T = 62: padded to 64 inside
    lengths = torch.tensor([62, 30, 5])
    ids = model.encode(x, lengths)
    assert ids.shape == (3, 16, 6, 3) and ids.dtype == torch.long
    tok_len = [16, 8, 2]                                             # ceil(length / 4)
    for b, n in enumerate(tok_len):
        assert (ids[b, :n] >= 0).all() and (ids[b, n:] == -1).all()
    # Frames after the length are ignored.
    garbage = x.clone()
    garbage[1, 30:] = 50.0
    assert torch.equal(model.encode(garbage, lengths), ids)
    out = model.decode(ids)
    assert out.shape == (3, 64, 263)
    assert torch.allclose(model.decode(ids, num_layers=2), model.decode(ids[..., :2]))
    assert not torch.allclose(model.decode(ids, num_layers=1), out)
    with pytest.raises(ValueError, match="num_layers"):
        model.decode(ids, num_layers=4)
    with pytest.raises(ValueError, match="lengths"):
        model.encode(x, torch.tensor([63, 1, 1]))
    with pytest.raises(ValueError, match=r"\(B, T, 263\)"):
        model.encode(x[..., :200])


def test_dual_branch_adds_a_1d_column(clips, stats):
    torch.manual_seed(0)
    model = MotionTokenizer(TokenizerConfig(**{**TINY, "branches": ["1d", "2d"]}, code_dim_1d=8, num_codes_1d=12))
    out = model(_windows(clips, stats, n=4))
    assert set(out.branch_motion) == {"1d", "2d"} and out.ids.shape == (4, 16, 7, 3)
    model.eval()
    ids = model.encode(_windows(clips, stats, n=2))
    assert ids.shape == (2, 16, 7, 3) and int(ids[:, :, 6].max()) < 12
    assert model.decode(ids).shape == (2, 64, 263)


# ---- quantiser (docs/design.md §3.3) ----------------------------------------------------------------------------
def test_quantizer_initialises_from_the_first_batch():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 2, generator=g) * 3
    q = QuantizeEMAReset(num_codes=4, dim=2)
    q._init(x)
    assert _dist(q.codebook, x).min(1).values.max() < 1e-6      # codes are batch vectors
    few = QuantizeEMAReset(num_codes=8, dim=16)
    few._init(x.repeat(1, 8)[:2])                                      # 2 vectors for 8 codes: tiled + noise
    d = _dist(few.codebook, x.repeat(1, 8)[:2]).min(1).values
    assert d.max() < 0.02 and len(torch.unique(few.codebook, dim=0)) == 8


def test_quantizer_ema_update_matches_the_formula():
    g = torch.Generator().manual_seed(3)
    q = QuantizeEMAReset(num_codes=4, dim=2, mu=0.9, sample_temperature=0.0)
    q(torch.randn(40, 2, generator=g) * 3)
    code, total, count = q.codebook.clone(), q.code_sum.clone(), q.code_count.clone()
    y = torch.randn(40, 2, generator=g) * 3
    _, idx, _, _ = q(y)
    nearest = _dist(y, code).argmin(1)
    assert torch.equal(idx, nearest)
    for k in range(4):
        exp_sum = 0.9 * total[k] + 0.1 * y[nearest == k].sum(0)
        exp_count = 0.9 * count[k] + 0.1 * (nearest == k).sum()
        assert torch.allclose(q.code_count[k], exp_count, atol=1e-5)
        if exp_count >= 1:
            assert torch.allclose(q.codebook[k], exp_sum / exp_count, atol=1e-5)


def test_quantizer_resets_dead_codes_to_batch_vectors():
    g = torch.Generator().manual_seed(1)
    q = QuantizeEMAReset(num_codes=8, dim=3, mu=0.5, sample_temperature=0.0)
    q(torch.randn(8, 3, generator=g))                                # each code gets its own vector: count 1
    before_sum = q.code_sum.clone()
    cluster = torch.randn(32, 3, generator=g) * 0.01 + torch.tensor([10.0, 0.0, 0.0])
    _, idx, _, _ = q(cluster)
    winner = int(idx[0])
    assert (idx == winner).all()                                     # one code takes the far cluster
    dead = q.code_count < 1
    assert dead.sum() == 7                                           # the others got none: 0.5 * 1 < 1
    for code in q.codebook[dead]:                                    # reset to vectors of this batch
        assert _dist(code[None], cluster).min() < 1e-5
    expected = (0.5 * before_sum[winner] + 0.5 * cluster.sum(0)) / q.code_count[winner]
    assert torch.allclose(q.codebook[winner], expected, atol=1e-4)


def test_residual_vq_layers_reduce_error_and_dropout_drops_layers():
    g = torch.Generator().manual_seed(2)
    rvq = ResidualVQ(num_layers=4, num_codes=32, dim=4, dropout_prob=0.0)
    data = torch.randn(512, 4, generator=g)
    for _ in range(5):
        rvq(data)
    rvq.eval()
    ids = rvq.encode(data)
    errors = [float((rvq.decode(ids[:, :q]) - data).pow(2).mean()) for q in range(1, 5)]
    assert all(b < a for a, b in zip(errors, errors[1:])), errors
    drop = ResidualVQ(num_layers=4, num_codes=32, dim=4, dropout_prob=1.0)
    depths = {int((drop(data).indices >= 0).all(0).sum()) for _ in range(12)}
    assert len(depths) > 1 and min(depths) >= 1 and max(depths) <= 4


# ---- training ---------------------------------------------------------------------------------------
def test_optimisation_reduces_the_loss_on_real_windows(clips, stats):
    from remomask.tokenizer.train import tokenizer_loss

    torch.manual_seed(0)
    model = MotionTokenizer(TokenizerConfig(width=16, code_dim=16, num_codes=32, num_quantizers=2, depth=2,
                                            resblock_dropout=0.0, quantizer_dropout=0.0, branches=["2d"]))
    x = _windows(clips, stats, n=8)
    model(x)                                                         # initialise the codebooks

    def eval_loss() -> float:
        model.eval()
        with torch.no_grad():
            value = tokenizer_loss(model(x), x, slice(4, 67))[0].item()
        model.train()
        return value

    before = eval_loss()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(30):
        loss, _ = tokenizer_loss(model(x), x, slice(4, 67))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert eval_loss() < 0.75 * before


def test_learning_rate_warms_up_then_steps():
    from remomask.tokenizer.train import TrainConfig, learning_rate

    cfg = TrainConfig(lr=1e-3, warmup=9, milestones=(20, 30), gamma=0.1)
    assert learning_rate(cfg, 0) == pytest.approx(1e-4)
    assert learning_rate(cfg, 8) == pytest.approx(9e-4)
    assert learning_rate(cfg, 19) == pytest.approx(1e-3)
    assert learning_rate(cfg, 25) == pytest.approx(1e-4)
    assert learning_rate(cfg, 35) == pytest.approx(1e-5)


def test_tokenizer_stats_divide_root_and_contact_std_once(stats):
    from remomask.tokenizer.train import tokenizer_stats

    mean, std = tokenizer_stats(*stats, feat_bias=5.0)
    assert np.allclose(std[0:4], stats[1][0:4] / 5) and np.allclose(std[259:], stats[1][259:] / 5)
    assert np.array_equal(std[4:259], stats[1][4:259]) and np.array_equal(mean, stats[0])


# ---- persistence ------------------------------------------------------------------------------------
def test_save_load_round_trip_and_corrupt_files(tmp_path, clips, stats):
    torch.manual_seed(0)
    model = MotionTokenizer(TokenizerConfig(**TINY), mean=stats[0], std=stats[1])
    model(_windows(clips, stats))
    model.eval()
    model.save_pretrained(tmp_path / "tok", card={"notes": "test"})
    assert {p.name for p in (tmp_path / "tok").iterdir()} == {"config.json", "model.safetensors", "mean.npy",
                                                              "std.npy", "README.md"}
    assert np.array_equal(np.load(tmp_path / "tok" / "std.npy"), stats[1])
    loaded = MotionTokenizer.from_pretrained(tmp_path / "tok")
    x = _windows(clips, stats, n=2)
    ids = model.encode(x)
    assert torch.equal(loaded.encode(x), ids)
    assert torch.equal(loaded.decode(ids), model.decode(ids))

    bad = tmp_path / "truncated"
    model.save_pretrained(bad)
    blob = (bad / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        MotionTokenizer.from_pretrained(bad)

    other = tmp_path / "mismatch"
    model.save_pretrained(other)
    meta = json.loads((other / "config.json").read_text())
    meta["config"]["width"] = 12
    (other / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="shape mismatch"):
        MotionTokenizer.from_pretrained(other)
    (other / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        MotionTokenizer.from_pretrained(other)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        MotionTokenizer.from_pretrained(tmp_path / "nowhere")


# ---- training loop: resume, evaluation, DDP -----------------------------------------------------------
def _train_cfg(root: Path, out: Path, iterations: int):
    from remomask.tokenizer.train import TrainConfig

    return TrainConfig(dataset=str(root), out=str(out), iterations=iterations, batch_size=4, warmup=2,
                       milestones=(100,), eval_every=3, checkpoint_every=2, log_every=1, progress=False,
                       model_overrides={**{k: v for k, v in TINY.items() if k != "branches"}, "code_dim_1d": 8,
                                        "num_codes_1d": 16}, lr=1e-3)  # the default branches: 1D + 2D


def test_resume_continues_the_step_counter(tmp_path, tiny_dataset):
    from remomask.tokenizer.evaluate import evaluate_tokenizer
    from remomask.tokenizer.train import train_tokenizer

    out = tmp_path / "run"
    train_tokenizer(_train_cfg(tiny_dataset, out, iterations=3))
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 3
    model_dir = train_tokenizer(_train_cfg(tiny_dataset, out, iterations=5))
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 5
    adam_steps = {int(s["step"]) for s in ckpt["optimizer"]["state"].values()}
    assert adam_steps == {5}                                         # the optimiser state carried over
    assert any((out / "tb").iterdir())
    metrics = evaluate_tokenizer(model_dir, dataset=str(tiny_dataset), split="val", progress=False)
    assert set(metrics["mpjpe_mm"]) == {"1", "2", "3"} and metrics["clips"] == 2 and metrics["frames"] == 85
    assert all(np.isfinite(v) and v > 0 for v in metrics["mpjpe_mm"].values())
    assert 0 <= metrics["foot_contact_accuracy"] <= 1
    assert len(metrics["codebooks"]["2d"]) == 3 and len(metrics["codebooks"]["1d"]) == 3  # dual by default
    # The click command writes the same metrics as JSON, and a bad folder is one clear error line.
    from click.testing import CliRunner

    from remomask.cli.evaluate import evaluate_tokenizer as command

    runner = CliRunner()
    res = runner.invoke(command, ["--model", str(model_dir), "--dataset", str(tiny_dataset), "--split", "val",
                                  "--json", str(tmp_path / "m.json")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "m.json").read_text())["mpjpe_mm"] == pytest.approx(metrics["mpjpe_mm"])
    res = runner.invoke(command, ["--model", str(tmp_path / "missing"), "--dataset", str(tiny_dataset)])
    assert res.exit_code == 2 and "does not exist" in res.output


def test_ddp_two_cpu_processes(tmp_path, tiny_dataset):
    out = tmp_path / "ddp"
    env = dict(os.environ, PYTHONPATH=str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
           "-m", "remomask.cli", "train", "tokenizer", "--dataset", str(tiny_dataset), "--out", str(out),
           "--iterations", "3", "--batch-size", "2", "--eval-every", "3", "--warmup", "1", "--width", "8",
           "--threads", "1", "--no-progress"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 3
    assert json.loads((out / "model" / "config.json").read_text())["card"]["batch_size"] == 4  # 2 x 2 processes
    MotionTokenizer.from_pretrained(out / "model")


def _ddp_quantizer_worker(rank: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    torch.manual_seed(10 + rank)                                    # different data and noise per rank
    rvq = ResidualVQ(num_layers=3, num_codes=16, dim=4, dropout_prob=0.5)
    for _ in range(6):
        rvq(torch.randn(50, 4) + rank)
    torch.save({k: v for k, v in rvq.state_dict().items()}, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


def test_ddp_keeps_codebooks_identical_across_processes(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_ddp_quantizer_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # The statistics are pooled: layer 0 (never dropped) counted 2 x 50 vectors per step, from an initial
    # count of 1 per code: sum = mu^6 * 16 + (1 - mu) * 100 * sum_i mu^i.
    mu = 0.99
    pooled = mu ** 6 * 16 + (1 - mu) * 100 * sum(mu ** i for i in range(6))
    assert float(a["layers.0.code_count"].sum()) == pytest.approx(pooled, abs=1e-3)


def test_paper_preset_matches_the_reference_parameter_counts():
    # docs/design.md §3.2 lists the reference modules' sizes at the README configuration (verified there on CPU).
    with torch.device("meta"):
        model = MotionTokenizer(TokenizerConfig.preset("paper", branches=["1d", "2d"]))

    def millions(module) -> float:
        return sum(p.numel() for p in module.parameters()) / 1e6

    assert millions(model.encoder) == pytest.approx(28.9, abs=0.05)
    assert millions(model.decoder) == pytest.approx(27.6, abs=0.05)
    assert millions(model.merge) == pytest.approx(37.75, abs=0.01)
    assert millions(model.encoder_1d) == pytest.approx(9.59, abs=0.01)
    assert millions(model.decoder_1d) == pytest.approx(9.85, abs=0.01)
    assert millions(model.fuse) == pytest.approx(0.14, abs=0.01)
    assert millions(model) == pytest.approx(113.8, abs=0.05)
