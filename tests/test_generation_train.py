"""Training of the generation stage (docs/design.md §2.4, §4.7, §5.7, §6.3, §7): crop tokens, retrieval conditions with
self-exclusion, the three training loops (checkpoint, resume, selection on val), DDP with two CPU processes.

Everything runs on real samples of the embedded dataset (a 42-sample cut), with small real components: a
tokenizer whose codebooks are initialised from real motion by its own first training forward, and a
randomly initialised part retriever whose database is built from the cut's train split.
:func:`build_components` is shared with ``test_pipeline.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import free_port

REPO = Path(__file__).resolve().parents[1]
_BUILT: dict[str, dict] = {}

TINY_MASK = dict(latent_dim=32, token_dim=32, ff_size=64, num_heads=2, ssta_layers=1, joint_layers=1, time_layers=1)
TINY_RESIDUAL = dict(latent_dim=32, code_dim=32, ff_size=64, num_heads=2, layers=1, joint_layers=1, time_layers=1)
TINY_LENGTH = dict(hidden=[32, 16])


def build_components(base: Path) -> dict:
    """A 42-sample cut of the embedded dataset, a tokenizer and a retriever + database (built once per session).

    Dataset: 12 train clips and their mirrored twins (``M<id>``), 6 val and 4 test clips, 40 <= T < 200.
    Tokenizer: ``cpu`` preset shrunk (width 8, 32 codes of 16-d, 3 layers, no quantiser dropout); its
    codebooks are set from the encoder outputs of real windows by its own first training-mode forward.
    Retriever: random 64-d part retriever (seeded); database: build_database over the cut's train split.

    Returns:
        {"root", "tokenizer", "retriever", "cache", "train_ids"} paths / lists.
    """
    key = str(base)
    if key in _BUILT:
        return _BUILT[key]
    from remomask.data.embedded import resolve_dataset
    from remomask.data.normalization import normalize
    from remomask.retrieval.config import RetrieverConfig
    from remomask.retrieval.encode import build_database
    from remomask.retrieval.model import PartRetriever
    from remomask.tokenizer import MotionTokenizer, TokenizerConfig
    from remomask.tokenizer.train import tokenizer_stats

    src = resolve_dataset("embedded", progress=False)
    root = base / "data"
    (root / "new_joint_vecs").mkdir(parents=True)
    (root / "texts").mkdir()

    def usable(i: str) -> bool:
        return 40 <= np.load(src / "new_joint_vecs" / f"{i}.npy", mmap_mode="r").shape[0] < 200

    ids = {}
    for split, count in (("train", 12), ("val", 6), ("test", 4)):
        listed = [x for x in (src / f"{split}.txt").read_text().split() if not x.startswith("M")]
        chosen = [i for i in listed if usable(i) and (split != "train" or usable("M" + i))][:count]
        if split == "train":
            chosen += ["M" + i for i in chosen]
        ids[split] = chosen
        for i in chosen:
            shutil.copy(src / "new_joint_vecs" / f"{i}.npy", root / "new_joint_vecs")
            shutil.copy(src / "texts" / f"{i}.txt", root / "texts")
        (root / f"{split}.txt").write_text("\n".join(chosen) + "\n")
    for name in ("Mean.npy", "Std.npy"):
        shutil.copy(src / name, root / name)

    mean, std = tokenizer_stats(np.load(root / "Mean.npy"), np.load(root / "Std.npy"))
    torch.manual_seed(0)
    tok = MotionTokenizer(TokenizerConfig.preset("cpu", branches=["2d"], width=8, code_dim=16, num_codes=32,
                                                 num_quantizers=3, quantizer_dropout=0.0), mean, std)
    windows = [normalize(np.load(root / "new_joint_vecs" / f"{i}.npy")[:40], mean, std) for i in ids["train"]]
    tok.train()
    with torch.no_grad():
        tok(torch.from_numpy(np.stack(windows)).float())        # first forward: codebooks from real latents
    tok.eval().save_pretrained(base / "tokenizer")

    cfg = RetrieverConfig.preset_config("cpu", d_model=32, num_layers=1, num_heads=2, ff_size=64, embed_dim=64,
                                        text_ff_size=128, dropout=0.0, attn_dropout=0.0, head_dropout=0.0)
    retriever = PartRetriever(cfg, np.load(root / "Mean.npy"), np.load(root / "Std.npy")).eval()
    retriever.save_pretrained(base / "retriever")
    build_database(retriever, str(root), "train", progress=False).save(base / "retriever" / "database")
    _BUILT[key] = {"root": root, "tokenizer": base / "tokenizer", "retriever": base / "retriever",
                   "cache": base / "token_cache", "train_ids": ids["train"]}
    return _BUILT[key]


@pytest.fixture(scope="module")
def parts(tmp_path_factory) -> dict:
    return build_components(tmp_path_factory.getbasetemp() / "generation_components")


def _cfg(parts, out: Path, kind: str, **kw):
    from remomask.generation.train import GenerationTrainConfig

    over = {"mask": TINY_MASK, "residual": TINY_RESIDUAL, "length": TINY_LENGTH}[kind]
    fields = dict(dataset=str(parts["root"]), out=str(out), tokenizer=str(parts["tokenizer"]),
                  retriever=str(parts["retriever"]), token_cache_dir=str(parts["cache"]), iterations=2,
                  batch_size=4, warmup=1, eval_every=2, checkpoint_every=1, log_every=1, progress=False,
                  model_overrides=dict(over))
    fields.update(kw)
    return GenerationTrainConfig.preset_defaults(kind, "cpu", **fields)


# ---- crops and tokens ----------------------------------------------------------------------------------------
def test_possible_crops_follow_the_crop_rule():
    from remomask.generation.data import TokenSource

    for length in range(40, 200):
        crops = TokenSource.possible_crops(length)
        units = length // 4
        single, double = units * 4, (units - 1) * 4          # docs/design.md §2.4: single / double coin
        expected = {(s, single) for s in range(length - single + 1)} | {(s, double) for s in range(length - double + 1)}
        assert set(crops) == expected and len(crops) == len(expected) <= 12


def test_token_cache_equals_online_encoding(parts):
    """Cached crop tokens are exactly the tokenizer's encoding of the crop alone; draws follow the crop rule."""
    from remomask.data.normalization import normalize
    from remomask.generation.data import TokenSource, draw_crop, load_generation_records
    from remomask.tokenizer import MotionTokenizer

    records = load_generation_records(parts["root"], "train")
    tok = MotionTokenizer.from_pretrained(parts["tokenizer"])
    cache = TokenSource(records, tok, mode="cache", cache_dir=parts["cache"], name="train")
    assert cache.cache_file.is_file()
    again = TokenSource(records, tok, mode="cache", cache_dir=parts["cache"], name="train", build=False)
    rng = np.random.default_rng(0)
    crops = [draw_crop(records[i], int(i), rng) for i in rng.integers(len(records), size=24)]
    grid = cache.tokens(crops)
    assert torch.equal(grid, again.tokens(crops))
    assert torch.equal(grid, TokenSource(records, tok, mode="online").tokens(crops))
    n = max(c.length for c in crops) // 4
    assert grid.shape == (24, n, 6, 3)
    for b, c in enumerate(crops):                               # each crop alone through the tokenizer
        motion = records[c.index].motion[c.start: c.start + c.length]
        x = torch.from_numpy(normalize(motion, tok.mean.numpy(), tok.std.numpy())).float()[None]
        alone = tok.encode(x)[0]
        assert torch.equal(grid[b, : c.length // 4], alone)
        assert (grid[b, c.length // 4:] == -1).all()
    assert len(grid[..., 0][grid[..., 0] >= 0].unique()) > 8    # real, varied codes
    with pytest.raises(FileNotFoundError):
        TokenSource(records, tok, mode="cache", cache_dir=parts["cache"] / "empty", name="train", build=False)


def test_retrieval_excludes_own_motion_and_its_mirror(parts):
    from remomask.generation.data import ConditionEncoder, load_generation_records
    from remomask.retrieval import PartRetriever, RetrievalDatabase

    retriever = PartRetriever.from_pretrained(parts["retriever"])
    db = RetrievalDatabase.load(parts["retriever"] / "database", model=retriever)
    records = load_generation_records(parts["root"], "train")
    motions = db.num_motions
    assert motions == 24
    enc = ConditionEncoder(retriever.text_encoder, retriever, db, k=motions)   # k = every motion
    texts = [r.captions[0].text for r in records[:6]]
    own = [r.motion_id for r in records[:6]]
    free = enc(texts, keep_hits=True)
    excl = enc(texts, own, keep_hits=True)
    twin = {m: (m[1:] if m.startswith("M") else "M" + m) for m in own}
    for b, m in enumerate(own):
        got = [h["motion_id"] for h in free.hits[b]]
        assert len(got) == motions and m in got and twin[m] in got
        kept = [h["motion_id"] for h in excl.hits[b]]
        assert len(kept) == motions - 2 and m not in kept and twin[m] not in kept
    assert free.sentence.shape == (6, 384) and excl.retrieval.motion.shape == (6, motions, 64)
    assert bool(excl.retrieval.valid[:, : motions - 2].all()) and not bool(excl.retrieval.valid[:, -2:].any())
    # the stored embeddings of the hits are what the generator gets
    first = excl.hits[0][0]
    row = db.entry_ids.index(first["entry_id"])
    np.testing.assert_allclose(excl.retrieval.motion[0, 0].numpy(), db.motion_emb[row], atol=1e-6)


# ---- training loops ------------------------------------------------------------------------------------------
def test_mask_transformer_checkpoint_resume_and_selection(parts, tmp_path):
    from remomask.generation import MaskTransformer
    from remomask.generation.train import TrainingError, train_generation

    out = tmp_path / "mask"
    model_dir = train_generation(_cfg(parts, out, "mask"))
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 2 and ckpt["kind"] == "mask"
    model = MaskTransformer.from_pretrained(model_dir)
    assert model.config.use_retrieval and model.config.retrieval_dim == 64 and model.config.num_codes == 32
    card = model.card
    assert card["selected_step"] == 2 and card["metrics"]["val"]["ce"] == pytest.approx(ckpt["best"])
    assert 0.0 < card["metrics"]["val"]["ce"] < 10 and 0.0 <= card["metrics"]["val"]["accuracy"] <= 1.0
    assert card["exclude_self"] is True and card["text_encoder"] == "minilm"
    assert "val" in card["selection"] and any((out / "tb").iterdir())

    train_generation(_cfg(parts, out, "mask", iterations=3, eval_every=3))          # resume to step 3
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 3
    assert {int(s["step"]) for s in ckpt["optimizer"]["state"].values()} == {3}        # optimiser carried over
    # a checkpoint written before a config field existed (memory_fusion, session 13) still resumes
    del ckpt["model_config"]["memory_fusion"]
    torch.save(ckpt, out / "checkpoint.pt")
    train_generation(_cfg(parts, out, "mask", iterations=4, eval_every=4))
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 4
    with pytest.raises(TrainingError, match="another model"):
        train_generation(_cfg(parts, out, "mask", iterations=5,
                              model_overrides=dict(TINY_MASK, latent_dim=64, token_dim=64)))


def test_residual_length_and_no_retrieval_baseline_train(parts, tmp_path):
    from remomask.generation import LengthEstimator, MaskTransformer, ResidualTransformer
    from remomask.generation.train import train_generation

    res = ResidualTransformer.from_pretrained(train_generation(_cfg(parts, tmp_path / "res", "residual",
                                                                    iterations=1, eval_every=1)))
    assert res.config.num_quantizers == 3 and set(res.card["metrics"]["val"]) == {"ce", "ce_q1", "ce_q2", "accuracy"}
    length = LengthEstimator.from_pretrained(train_generation(_cfg(parts, tmp_path / "len", "length",
                                                                   iterations=1, eval_every=1)))
    metrics = length.card["metrics"]["val"]
    assert metrics["mae_frames"] >= 0 and 0 <= metrics["accuracy"] <= 1
    base = MaskTransformer.from_pretrained(train_generation(_cfg(parts, tmp_path / "norag", "mask", iterations=1,
                                                                 eval_every=1, use_retrieval=False, retriever=None)))
    assert not base.config.use_retrieval and "retriever" not in base.card


def test_ddp_two_cpu_processes(parts, tmp_path):
    out = tmp_path / "ddp"
    env = dict(os.environ, PYTHONPATH=str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1")
    sets = [a for k, v in TINY_MASK.items() for a in ("--set", f"{k}={v}")]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
           "-m", "remomask.cli", "train", "mask-transformer", "--dataset", str(parts["root"]),
           "--out", str(out), "--tokenizer", str(parts["tokenizer"]), "--retriever", str(parts["retriever"]),
           "--token-cache-dir", str(tmp_path / "cache"), "--iterations", "2", "--batch-size", "2",
           "--eval-every", "2", "--warmup", "1", "--threads", "1", "--no-progress", *sets]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 2
    meta = json.loads((out / "model" / "config.json").read_text())
    assert meta["card"]["batch_size"] == 4                                         # 2 crops x 2 processes


def test_training_command_errors_are_one_line_exit_2(parts, tmp_path):
    from click.testing import CliRunner

    from remomask.cli.train import train_mask_transformer

    runner = CliRunner()
    res = runner.invoke(train_mask_transformer, ["--dataset", str(parts["root"]), "--out", str(tmp_path / "x"),
                                                 "--tokenizer", str(tmp_path / "missing"), "--retriever",
                                                 str(parts["retriever"]), "--no-progress"])
    assert res.exit_code == 2 and "no trained tokenizer" in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1
    res = runner.invoke(train_mask_transformer, ["--dataset", str(parts["root"]), "--out", str(tmp_path / "y"),
                                                 "--tokenizer", str(parts["tokenizer"]), "--retriever",
                                                 str(tmp_path / "none"), "--no-progress"])
    assert res.exit_code == 2 and "--no-retrieval" in res.output
    res = runner.invoke(train_mask_transformer, ["--dataset", str(tmp_path / "no_data"), "--out", str(tmp_path / "z"),
                                                 "--tokenizer", str(parts["tokenizer"]), "--no-retrieval",
                                                 "--no-progress"])
    assert res.exit_code == 2 and "does not exist" in res.output
    res = runner.invoke(train_mask_transformer, ["--set", "latent_dim"])
    assert res.exit_code == 2 and "KEY=VALUE" in res.output
