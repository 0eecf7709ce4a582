"""ReMoMaskPipeline (docs/design.md §4.7, §7, §8) and the ``remomask generate`` contract (issue 5, item 8).

The pipeline is put together from small real components on real data (see ``build_components`` in
test_generation_train.py: a cut of the embedded dataset, a tokenizer with data-initialised codebooks, a part
retriever and its database) and small randomly initialised transformers and length estimator (seeded), so
these tests check the wiring, shapes, units, seeding, persistence and error handling, not motion quality.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from test_generation_train import build_components

REPO = Path(__file__).resolve().parents[1]


def _models(num_codes: int, num_quantizers: int, retrieval_dim: int, use_retrieval: bool = True):
    from remomask.generation import (
        LengthEstimator,
        LengthEstimatorConfig,
        MaskTransformer,
        MaskTransformerConfig,
        ResidualTransformer,
        ResidualTransformerConfig,
    )

    torch.manual_seed(0)
    small = dict(num_codes=num_codes, num_columns=6, text_dim=384, latent_dim=32, num_heads=2, ff_size=64,
                 joint_layers=1, time_layers=1)
    mask = MaskTransformer(MaskTransformerConfig.preset("cpu", token_dim=32, ssta_layers=1, retrieval_dim=retrieval_dim,
                                                       use_retrieval=use_retrieval, **small))
    res = ResidualTransformer(ResidualTransformerConfig.preset("cpu", code_dim=32, layers=1,
                                                               num_quantizers=num_quantizers, **small))
    length = LengthEstimator(LengthEstimatorConfig.preset("cpu", text_dim=384, hidden=(32, 16)))
    return mask, res, length


@pytest.fixture(scope="module")
def parts(tmp_path_factory) -> dict:
    return build_components(tmp_path_factory.getbasetemp() / "generation_components")


@pytest.fixture(scope="module")
def pipe_dir(parts, tmp_path_factory) -> Path:
    from remomask.pipeline import ReMoMaskPipeline
    from remomask.retrieval import PartRetriever, RetrievalDatabase
    from remomask.tokenizer import MotionTokenizer

    tok = MotionTokenizer.from_pretrained(parts["tokenizer"])
    retriever = PartRetriever.from_pretrained(parts["retriever"])
    db = RetrievalDatabase.load(parts["retriever"] / "database", model=retriever)
    mask, res, length = _models(tok.config.num_codes, tok.num_quantizers, db.dim)
    pipe = ReMoMaskPipeline(tok, mask, res, length, retriever=retriever, database=db)
    folder = tmp_path_factory.mktemp("pipeline") / "model"
    pipe.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def pipe(pipe_dir):
    from remomask import ReMoMaskPipeline

    return ReMoMaskPipeline.from_pretrained(pipe_dir)


# ---- persistence ------------------------------------------------------------------------------------------------
def test_save_and_load_round_trip(pipe_dir, pipe, parts):
    from remomask.pipeline import ReMoMaskPipeline

    names = sorted(p.name for p in pipe_dir.iterdir())
    assert names == ["README.md", "database", "length_estimator", "mask_transformer", "pipeline.json",
                     "residual_transformer", "retriever", "tokenizer"]
    meta = json.loads((pipe_dir / "pipeline.json").read_text())
    assert meta["format"] == "remomask-pipeline" and meta["text_encoder"] == "minilm"
    card = (pipe_dir / "README.md").read_text()
    assert "retrieval on (k = 1)" in card and "24 motions" in card and "CC BY-NC" in card
    # saving the loaded pipeline again gives the same generations (weights, database and stats survive)
    again = ReMoMaskPipeline.from_pretrained(pipe.save_pretrained(pipe_dir.parent / "copy"))
    a = pipe(["a person bows"], seconds=2.4, seed=5)
    b = again(["a person bows"], seconds=2.4, seed=5)
    np.testing.assert_array_equal(a.token_ids, b.token_ids)
    np.testing.assert_allclose(a.features, b.features, atol=1e-5)
    np.testing.assert_array_equal(np.load(pipe_dir / "tokenizer" / "mean.npy"),
                                  np.load(parts["tokenizer"] / "mean.npy"))


def test_sampling_defaults_are_saved_and_used(pipe, tmp_path):
    """A folder's pipeline.json "sampling" (chosen on val) replaces the paper defaults when a call gives none."""
    from remomask.pipeline import DEFAULT_SAMPLING, ReMoMaskPipeline

    assert pipe.sampling_defaults == DEFAULT_SAMPLING
    pipe.set_sampling_defaults(cond_scale=2.0, steps=3)
    try:
        folder = pipe.save_pretrained(tmp_path / "tuned")
    finally:
        pipe.set_sampling_defaults(**DEFAULT_SAMPLING)
    assert json.loads((folder / "pipeline.json").read_text())["sampling"]["cond_scale"] == 2.0
    assert "cond_scale 2 (base layer)" in (folder / "README.md").read_text()
    tuned = ReMoMaskPipeline.from_pretrained(folder)
    out = tuned(["a person bows"], seconds=2.4, seed=5)
    assert out.settings["cond_scale"] == 2.0 and out.settings["steps"] == 3
    explicit = tuned(["a person bows"], seconds=2.4, seed=5, cond_scale=2.0, steps=3)
    np.testing.assert_array_equal(out.token_ids, explicit.token_ids)
    assert tuned(["a person bows"], seconds=2.4, seed=5, cond_scale=4.0).settings["cond_scale"] == 4.0
    with pytest.raises(ValueError, match="unknown sampling default"):
        tuned.set_sampling_defaults(top_p=0.9)
    with pytest.raises(ValueError, match="steps must be"):
        tuned.set_sampling_defaults(steps=0)


def test_four_way_guidance_defaults(pipe, tmp_path):
    """text_scale / retrieval_scale chosen on val travel in pipeline.json (docs/design.md §5.5); a call without
    retrieval ignores the default retrieval term instead of failing."""
    from remomask.pipeline import DEFAULT_SAMPLING, ReMoMaskPipeline

    pipe.set_sampling_defaults(text_scale=1.5, retrieval_scale=2.0)
    try:
        folder = pipe.save_pretrained(tmp_path / "four_way")
    finally:
        pipe.set_sampling_defaults(**DEFAULT_SAMPLING)
    sampling = json.loads((folder / "pipeline.json").read_text())["sampling"]
    assert sampling["text_scale"] == 1.5 and sampling["retrieval_scale"] == 2.0
    assert "(base layer), text_scale 1.5, retrieval_scale 2, " in (folder / "README.md").read_text()
    tuned = ReMoMaskPipeline.from_pretrained(folder)
    out = tuned(["a person kicks with the right leg"], seconds=2.4, seed=11)
    assert out.settings["text_scale"] == 1.5 and out.settings["retrieval_scale"] == 2.0
    explicit = pipe(["a person kicks with the right leg"], seconds=2.4, seed=11, text_scale=1.5, retrieval_scale=2.0)
    np.testing.assert_array_equal(out.token_ids, explicit.token_ids)
    no_rag = tuned(["a person kicks with the right leg"], seconds=2.4, seed=11, use_retrieval=False)
    assert no_rag.settings["retrieval_scale"] == 0.0 and no_rag.settings["text_scale"] == 1.5


# ---- generation --------------------------------------------------------------------------------------------------
def test_shapes_lengths_and_denormalised_output(pipe, pipe_dir):
    from remomask.data.features import joints_from_features
    from remomask.tokenizer import MotionTokenizer

    texts = ["a person waves with the right hand", "someone walks forward", "a person jumps"]
    out = pipe(texts, seconds=[2.0, 3.3, 9.8], seed=0)
    requested = [40, 66, 196]
    assert len(out) == 3 and out.texts == texts
    assert out.joints.shape == (3, 196, 22, 3) and out.joints.dtype == np.float32
    assert out.features.shape == (3, 196, 263) and out.features.dtype == np.float32
    for i, want in enumerate(requested):
        n = int(out.lengths[i])
        assert n % 4 == 0 and want - 4 < n <= want                   # whole tokens, never longer than asked
        assert np.isfinite(out.joints[i, :n]).all() and (out.joints[i, n:] == 0).all()
        assert (out.features[i, n:] == 0).all()
    assert out.length_source == ["given"] * 3
    np.testing.assert_allclose(out.seconds, out.lengths / 20)
    # features are the tokenizer's decoding de-normalised with the statistics saved beside it
    tok = MotionTokenizer.from_pretrained(pipe_dir / "tokenizer")
    mean, std = np.load(pipe_dir / "tokenizer" / "mean.npy"), np.load(pipe_dir / "tokenizer" / "std.npy")
    for i in range(3):
        n = int(out.lengths[i])
        assert (out.token_ids[i, : n // 4] >= 0).all() and (out.token_ids[i, n // 4:] == -1).all()
        with torch.no_grad():                       # each motion is decoded from its own tokens alone
            decoded = tok.decode(torch.from_numpy(out.token_ids[i: i + 1, : n // 4]))[0].numpy()
        np.testing.assert_allclose(out.features[i, :n], decoded * std + mean, atol=1e-4, rtol=1e-4)
        joints, feats = out.sample(i)
        np.testing.assert_allclose(joints, joints_from_features(feats.astype(np.float64)), atol=1e-3)
    # joints in metres: the pelvis height comes from the de-normalised root-height channel (about 0.9 m)
    pelvis = out.joints[0, : out.lengths[0], 0, 1]
    assert 0.3 < float(np.median(pelvis)) < 1.5
    assert out.token_ids.shape[:3] == (3, 49, 6) and (out.token_ids[0, 10:] == -1).all()


def test_seed_makes_generation_reproducible(pipe):
    a = pipe(["a person turns around"], frames=48, seed=11, num_samples=2)
    b = pipe(["a person turns around"], frames=48, seed=11, num_samples=2)
    c = pipe(["a person turns around"], frames=48, seed=12, num_samples=2)
    np.testing.assert_array_equal(a.joints, b.joints)
    assert not np.array_equal(a.token_ids, c.token_ids)
    assert not np.array_equal(a.token_ids[0], a.token_ids[1])                # two samples differ
    fresh = pipe(["a person turns around"], frames=48)
    assert isinstance(fresh.settings["seed"], int)
    np.testing.assert_array_equal(pipe(["a person turns around"], frames=48, seed=fresh.settings["seed"]).joints,
                                  fresh.joints)


def test_length_estimator_retrieval_and_settings(pipe, parts):
    from remomask.retrieval import RetrievalDatabase

    out = pipe(["a person bows politely", "someone kicks"], seed=3, steps=4, cond_scale=2.5, num_samples=2)
    assert out.length_source == ["estimated"] * 4
    assert all(n % 4 == 0 and 40 <= n <= 196 for n in out.lengths)
    assert out.texts == ["a person bows politely"] * 2 + ["someone kicks"] * 2
    db = RetrievalDatabase.load(parts["retriever"] / "database")
    for hits in out.retrieved:
        assert len(hits) == 1
        h = hits[0]
        row = db.entry_ids.index(h["entry_id"])
        assert db.captions[row] == h["caption"] and db.motion_ids[row] == h["motion_id"] and -1 <= h["score"] <= 1
    s = out.settings
    assert (s["steps"], s["cond_scale"], s["residual_cond_scale"], s["seed"]) == (4, 2.5, 5.0, 3)
    assert s["use_retrieval"] is True
    searches = []
    real_search = pipe.database.search
    pipe.database.search = lambda *a, **k: searches.append(a) or real_search(*a, **k)
    try:                                     # a fresh caption, so that no cached retrieval could answer
        plain = pipe(["a person bows politely, then sits"], seconds=2.0, seed=3, use_retrieval=False)
    finally:
        pipe.database.search = real_search
    assert plain.retrieved == [[]] and plain.settings["use_retrieval"] is False
    assert searches == []                    # text-only generation does not search the database


def test_bad_input_raises_clear_errors(pipe, tmp_path, monkeypatch):
    import remomask.pipeline as pipeline_module
    from remomask.pipeline import ReMoMaskPipeline

    with pytest.raises(ValueError, match="prompt 1 is empty"):
        pipe(["a person walks", "  "], seconds=3)
    for kwargs, match in ((dict(seconds=1.5), "outside 2-9.8 s"), (dict(seconds=10.0), "outside 2-9.8 s"),
                          (dict(frames=300), "outside 40-196 frames"), (dict(seconds=3, frames=60), "not both"),
                          (dict(seconds=[3, 4]), "one duration per prompt")):
        with pytest.raises(ValueError, match=match):
            pipe("a person walks", **kwargs)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ReMoMaskPipeline.from_pretrained(tmp_path / "nowhere")
    monkeypatch.setattr(pipeline_module, "DEFAULT_MODEL_DIR", tmp_path / "default")
    with pytest.raises(FileNotFoundError, match="bundled default model"):
        ReMoMaskPipeline.from_pretrained()
    no_length = ReMoMaskPipeline(pipe.tokenizer, pipe.mask_transformer, pipe.residual_transformer, None,
                                 retriever=pipe.retriever, database=pipe.database)
    with pytest.raises(ValueError, match="no length estimator"):
        no_length("a person walks")
    mask, res, _ = _models(16, 3, 64)                                # a vocabulary the tokenizer does not have
    with pytest.raises(ValueError, match="different runs"):
        ReMoMaskPipeline(pipe.tokenizer, mask, res, retriever=pipe.retriever, database=pipe.database)
    with pytest.raises(ValueError, match="retriever and its database"):
        ReMoMaskPipeline(pipe.tokenizer, pipe.mask_transformer)


def test_no_retrieval_pipeline_and_motion_source(pipe, tmp_path):
    from remomask.pipeline import EVAL_REQUEST_SIZE, ReMoMaskPipeline, load_motion_source

    mask, res, length = _models(pipe.tokenizer.config.num_codes, pipe.tokenizer.num_quantizers, 64,
                                use_retrieval=False)
    folder = ReMoMaskPipeline(pipe.tokenizer, mask, res, length).save_pretrained(tmp_path / "norag")
    assert not (folder / "retriever").exists() and not (folder / "database").exists()
    source = load_motion_source(folder)
    assert source.stochastic and "no retrieval" in source.name
    # the protocol may send a whole pass per call; 32 restores one batch per call; 0 is refused
    assert source.request_size == EVAL_REQUEST_SIZE >= 768
    assert load_motion_source(folder, request_size=32).request_size == 32
    with pytest.raises(ValueError, match="request_size"):
        load_motion_source(folder, request_size=0)
    lengths = torch.tensor([40, 64])
    source.set_seed(7)
    feats, got = source(["a person waves", "a person sits down"], lengths, [{}, {}])
    source.set_seed(7)
    again, _ = source(["a person waves", "a person sits down"], lengths, [{}, {}])
    assert isinstance(feats, torch.Tensor) and feats.shape == (2, 64, 263) and torch.equal(got, lengths)
    assert torch.equal(feats, again)
    # the embedded dataset's 1-2 s clips: the protocol generates at their length, the user API keeps 2 s
    short, got = source(["a person waves", "a person sits down"], torch.tensor([24, 37]), [{}, {}])
    assert got.tolist() == [24, 36] and short.shape[1] == 36
    with pytest.raises(ValueError, match="outside 40-196 frames"):
        source.pipeline(["a person waves"], frames=36)


def test_import_remomask_is_light():
    code = ("import sys, remomask; assert 'torch' not in sys.modules; "
            "from remomask import ReMoMaskPipeline; assert 'torch' not in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": str(REPO / "src")})
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


# ---- the generate command ------------------------------------------------------------------------------------------
def test_generate_command_writes_the_contract_files(pipe_dir, tmp_path):
    from remomask.cli.generate import generate

    out = tmp_path / "gen"
    res = CliRunner().invoke(generate, ["a person waves with the left hand", "--seconds", "2", "--seed", "4",
                                        "--num-samples", "2", "--steps", "3", "--cond-scale", "3", "--model",
                                        str(pipe_dir), "--out", str(out), "--video-format", "gif"])
    assert res.exit_code == 0, res.output
    result = json.loads((out / "result.json").read_text())
    assert result["prompt"] == "a person waves with the left hand" and result["seed"] == 4
    assert result["settings"]["steps"] == 3 and result["settings"]["cond_scale"] == 3.0
    assert len(result["samples"]) == 2
    for i, sample in enumerate(result["samples"]):
        assert sample["frames"] == 40 and sample["seconds"] == 2.0 and sample["length_source"] == "given"
        files = sample["files"]
        assert files == {"joints": f"sample_{i}.joints.npy", "features": f"sample_{i}.features.npy",
                         "video": f"sample_{i}.gif"}
        joints, feats = np.load(out / files["joints"]), np.load(out / files["features"])
        assert joints.shape == (40, 22, 3) and joints.dtype == np.float32 and np.isfinite(joints).all()
        assert feats.shape == (40, 263) and feats.dtype == np.float32
        assert (out / files["video"]).stat().st_size > 1000
        hit = sample["retrieved"][0]
        assert set(hit) == {"id", "motion_id", "caption", "score"} and hit["caption"]
    # the same command reproduces the same motion
    res = CliRunner().invoke(generate, ["a person waves with the left hand", "--seconds", "2", "--seed", "4",
                                        "--num-samples", "2", "--steps", "3", "--cond-scale", "3", "--model",
                                        str(pipe_dir), "--out", str(tmp_path / "gen2"), "--no-video"])
    assert res.exit_code == 0 and not (tmp_path / "gen2" / "sample_0.gif").exists()
    np.testing.assert_array_equal(np.load(tmp_path / "gen2" / "sample_1.joints.npy"),
                                  np.load(out / "sample_1.joints.npy"))


def test_generate_prompts_file(pipe_dir, tmp_path):
    from remomask.cli.generate import generate

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# comment line\na person waves#3.2\n\nsomeone walks in a circle\n")
    res = CliRunner().invoke(generate, ["--prompts", str(prompts), "--frames", "60", "--num-samples", "2",
                                        "--model", str(pipe_dir), "--out", str(tmp_path / "p"), "--no-video",
                                        "--seed", "1", "--steps", "2"])
    assert res.exit_code == 0, res.output
    result = json.loads((tmp_path / "p" / "result.json").read_text())
    assert result["prompts"] == ["a person waves", "someone walks in a circle"] and result["prompt"] is None
    assert [s["prompt_index"] for s in result["samples"]] == [0, 0, 1, 1]
    assert [s["frames"] for s in result["samples"]] == [64, 64, 60, 60]        # 3.2 s -> 64; --frames 60


@pytest.mark.parametrize("args, message", [
    (["", "--no-video"], "prompt is empty"),
    (["a person waves", "--seconds", "12"], "outside 2-9.8 s"),
    (["a person waves", "--seconds", "1.9"], "outside 2-9.8 s"),
    (["a person waves", "--frames", "20"], "outside 40-196 frames"),
    (["a person waves", "--seconds", "3", "--frames", "60"], "not both"),
    (["a person waves", "--model", "MISSING"], "does not exist"),
    (["--prompts", "BADFILE"], "not a number of seconds"),
    (["a person waves", "--prompts", "BADFILE"], "not both"),
    (["--num-samples", "0", "a person waves"], "--num-samples"),
])
def test_generate_bad_input_is_one_line_exit_2(args, message, pipe_dir, tmp_path):
    from remomask.cli.generate import generate

    bad = tmp_path / "bad.txt"
    bad.write_text("a person waves#three\n")
    args = [str(tmp_path / "missing") if a == "MISSING" else str(bad) if a == "BADFILE" else a for a in args]
    if "--model" not in args:
        args += ["--model", str(pipe_dir)]
    res = CliRunner().invoke(generate, args + ["--out", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    assert message in res.output and len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    assert not (tmp_path / "o" / "result.json").exists()


def test_column_code_ranges_must_match_the_tokenizer(pipe):
    """A generator whose per-column code ranges differ from its tokenizer's (issue 20's dual-tokenizer masks)
    is refused when the pipeline is put together, not at decode time."""
    import copy

    from remomask import ReMoMaskPipeline
    from remomask.generation.conditions import column_codes_of

    assert column_codes_of(pipe.tokenizer) is None  # one range: nothing to restrict
    mask = copy.deepcopy(pipe.mask_transformer)
    cols = mask.config.num_columns
    object.__setattr__(mask.config, "column_codes", (mask.config.num_codes,) * (cols - 1) + (1,))
    with pytest.raises(ValueError, match="code ranges.*different runs"):
        ReMoMaskPipeline(pipe.tokenizer, mask, pipe.residual_transformer, retriever=pipe.retriever,
                         database=pipe.database)
