"""The embedded-dataset evaluator, the protocol, the baselines and ``remomask evaluate t2m``.

Runs on the real embedded dataset (its ``val`` split: 232 samples, 7 batches of 32) with the evaluator
shipped in the package, and on the real HumanML3D fixture clip.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from remomask.data.embedded import EMBEDDED_DIR, resolve_dataset
from remomask.data.layout import MotionLayout
from remomask.evaluation.baselines import RealBaseline, RetrievalBaseline, source_clip
from remomask.cli.evaluate import evaluate_t2m as evaluate_cmd
from remomask.evaluation.evaluator import (
    DEFAULT_EVALUATOR_DIR,
    EvaluatorConfig,
    EvaluatorError,
    T2MEvaluator,
    load_evaluator,
)
from remomask.evaluation.protocol import (
    ProtocolError,
    evaluate_reconstruction,
    evaluate_t2m,
    format_table,
    results_to_json,
)
from remomask.evaluation.training import validate_classifiers, validate_embedder


@pytest.fixture(scope="module")
def val_layout():
    return MotionLayout(resolve_dataset("embedded", progress=False), "val", progress=False)


@pytest.fixture(scope="module")
def small_val(val_layout):
    """Every other sample of ``val`` (116 samples: 3 batches of 32), to keep the protocol tests fast. The first
    116 of them: dataset v2 appended its CMU and ReActIdle items after v1's, so these are v1's samples."""
    small = copy.copy(val_layout)
    small.records = val_layout.records[::2][:116]
    return small


@pytest.fixture(scope="module")
def evaluator():
    return load_evaluator()


@pytest.fixture(scope="module")
def clip(fixtures_dir):
    return torch.from_numpy(np.load(fixtures_dir / "humanml3d" / "new_joint_vecs__012314.npy"))  # (170, 263)


# -- the model ---------------------------------------------------------------------------------------

def test_save_load_roundtrip_padding_and_batching(tmp_path, clip):
    torch.manual_seed(0)
    mean, std = np.load(EMBEDDED_DIR / "Mean.npy"), np.load(EMBEDDED_DIR / "Std.npy")
    model = T2MEvaluator(EvaluatorConfig(classes={"action": ["walk", "run", "bow"]}), mean, std).eval()
    motion = torch.zeros(2, 196, 263)
    motion[0, :168], motion[1, :96] = clip[:168], clip[40:136]
    lengths = torch.tensor([168, 96])
    emb = model.encode_motion(motion, lengths)
    assert emb.shape == (2, 256)
    torch.testing.assert_close(emb.norm(dim=-1), torch.full((2,), 10.0))
    # anything after a sample's length is ignored, and a sample's embedding does not depend on its batch
    noisy = motion.clone()
    noisy[1, 96:] = 3.0
    torch.testing.assert_close(model.encode_motion(noisy, lengths), emb)
    torch.testing.assert_close(model.encode_motion(motion[1:, :96], lengths[1:]), emb[1:], atol=1e-5, rtol=1e-5)
    # the evaluator normalises itself: the same motion given normalised is a different input
    assert not torch.allclose(model.encode_motion((motion - model.mean) / model.std, lengths), emb)

    model.save_pretrained(tmp_path / "ev", card="# card\n")
    again = T2MEvaluator.from_pretrained(tmp_path / "ev")
    torch.testing.assert_close(again.encode_motion(motion, lengths), emb)
    assert again.config.classes == {"action": ["walk", "run", "bow"]}
    assert (tmp_path / "ev" / "README.md").read_text() == "# card\n"
    logits = again.classify(motion, lengths)["action"]
    assert logits.shape == (2, 3)


def test_bad_inputs_and_folders(tmp_path, clip):
    with pytest.raises(EvaluatorError, match="unknown evaluator config keys"):
        EvaluatorConfig.from_dict({"embed_dimm": 3})
    with pytest.raises(EvaluatorError, match="train one"):
        T2MEvaluator.from_pretrained(tmp_path)
    model = T2MEvaluator(EvaluatorConfig())
    with pytest.raises(EvaluatorError, match="263"):
        model.encode_motion(torch.zeros(1, 40, 259), torch.tensor([40]))
    with pytest.raises(EvaluatorError, match="lengths"):
        model.encode_motion(clip[None, :40].float(), torch.tensor([41]))


def test_bundled_evaluator_matches_real_pairs(evaluator, val_layout):
    """The shipped evaluator ranks real val pairs far above chance (3/32) and recognises their labels."""
    card = (DEFAULT_EVALUATOR_DIR / "README.md").read_text()
    content_hash = json.loads((EMBEDDED_DIR / "stats.json").read_text())["content_hash"]
    assert content_hash in card
    assert set(evaluator.label_names) == {"action", "style"}
    emb = validate_embedder(evaluator, val_layout, repeats=1, seed=5)
    assert emb["top3"] > 0.5 and emb["top1"] > 0.25
    clf = validate_classifiers(evaluator, val_layout, repeats=1, seed=5)
    assert clf["action_acc"] > 0.5  # 41 classes
    assert clf["style_acc"] > 0.3  # 19 classes


# -- baselines ---------------------------------------------------------------------------------------

def _prompts(layout, n=24, seed=0):
    from remomask.data.datasets import EvalTextMotionDataset, collate

    ds = EvalTextMotionDataset(layout, mean=np.zeros(263, np.float32), std=np.ones(263, np.float32), seed=seed)
    batch = collate([ds[i] for i in range(0, len(ds), max(1, len(ds) // n))][:n])
    labels = [{**lab, "key": k, "motion_id": m} for lab, k, m in zip(batch["labels"], batch["key"], batch["motion_id"])]
    return batch, labels


def _sources_of(window: np.ndarray, records) -> list:
    """Records that contain ``window`` (n, D) as consecutive frames."""
    found = []
    for r in records:
        n = len(window)
        for s in np.flatnonzero((r.motion == window[0]).all(axis=1)):
            if s + n <= r.length and np.array_equal(r.motion[s: s + n], window):
                found.append(r)
                break
    return found


def test_disjoint_real_baseline_uses_other_clips_with_the_same_labels(val_layout):
    batch, labels = _prompts(val_layout)
    base = RealBaseline(val_layout, "disjoint", seed=3)
    out, lengths = base(batch["caption"], batch["length"], labels)
    assert out.shape[0] == len(labels) and (lengths <= batch["length"]).all()
    matched = 0
    for i, lab in enumerate(labels):
        n = int(lengths[i])
        window = out[i, :n].numpy()
        # find the record this window was cut from
        sources = _sources_of(window, val_layout.records)
        assert sources, f"prompt {i}: the answer is not a window of a real val motion"
        rec = sources[0]
        assert source_clip(rec.labels, rec.motion_id) != source_clip(lab, lab["motion_id"])
        assert rec.labels["action"] == lab["action"] or base.fallbacks["same_action"] + base.fallbacks["any"] > 0
        matched += rec.labels["action"] == lab["action"] and rec.labels.get("style") == lab.get("style")
    assert matched >= len(labels) - base.fallbacks["same_action"] - base.fallbacks["any"]
    # padding stays zero
    assert float(out[0, int(lengths[0]):].abs().sum()) == 0.0


def test_resample_real_baseline_returns_the_prompt_clip(val_layout):
    batch, labels = _prompts(val_layout, n=8)
    out, lengths = RealBaseline(val_layout, "resample", seed=1)(batch["caption"], batch["length"], labels)
    assert torch.equal(lengths, batch["length"])
    for i, lab in enumerate(labels):
        rec = next(r for r in val_layout.records if r.key == lab["key"])
        n = int(lengths[i])
        assert _sources_of(out[i, :n].numpy(), [rec]) == [rec]


def test_retrieval_baseline_crops_to_the_requested_length(clip):
    short = clip[:30].numpy()
    base = RetrievalBaseline(lambda caps: [clip.numpy(), short])
    out, lengths = base(["a person walks", "a person bows"], torch.tensor([100, 60]), [{}, {}])
    assert lengths.tolist() == [100, 30]
    torch.testing.assert_close(out[0, :100], clip[:100].float())
    torch.testing.assert_close(out[1, :30], clip[:30].float())
    assert float(out[1, 30:].abs().sum()) == 0.0


# -- the protocol ------------------------------------------------------------------------------------

class _Shuffled:
    """Real motions handed to the wrong captions (each prompt gets the next prompt's ground truth)."""

    name = "shuffled real"

    def __init__(self, layout):
        self.by_key = {r.key: r for r in layout.records}

    def __call__(self, captions, lengths, labels):
        order = list(range(1, len(labels))) + [0]
        out = torch.zeros(len(labels), 196, 263)
        used = []
        for i, j in enumerate(order):
            rec = self.by_key[labels[j]["key"]]
            n = min(int(lengths[i]), rec.length)
            out[i, :n] = torch.from_numpy(rec.motion[:n])
            used.append(n)
        return out, torch.tensor(used)


class _Frozen(_Shuffled):
    """The prompt's real first frame held for the whole length: right pose, no motion."""

    name = "frozen first frame"

    def __call__(self, captions, lengths, labels):
        out = torch.zeros(len(labels), 196, 263)
        for i, lab in enumerate(labels):
            first = torch.from_numpy(self.by_key[lab["key"]].motion[0])
            out[i, : int(lengths[i])] = first
        return out


def test_protocol_real_versus_shuffled(evaluator, small_val):
    real = evaluate_t2m(RealBaseline(small_val, "resample"), "val", repeats=2, evaluator=evaluator,
                        layout=small_val, progress=False)
    shuffled = evaluate_t2m(_Shuffled(small_val), "val", repeats=1, evaluator=evaluator, layout=small_val,
                            progress=False)
    frozen = evaluate_t2m(_Frozen(small_val), "val", repeats=1, evaluator=evaluator, layout=small_val,
                          progress=False)
    assert real.info["samples_per_repeat"] == 96
    # the real motions of the prompts match their captions; shuffled ones fall towards chance (1/32)
    assert real.metrics["top1"]["mean"] > 0.25
    assert shuffled.metrics["top1"]["mean"] < 0.5 * real.metrics["top1"]["mean"]
    assert shuffled.metrics["mm_dist"]["mean"] > real.metrics["mm_dist"]["mean"]
    # another crop of the same clips is close to the ground-truth distribution
    assert real.metrics["fid"]["mean"] < 0.2 * real.reference["diversity"]["mean"] ** 2
    # a motion frozen in its first pose is far from the real distribution
    assert frozen.metrics["fid"]["mean"] > 10 * max(real.metrics["fid"]["mean"], 0.05)
    # repeat 0 of both runs sees the same ground truth (same seed): identical reference numbers
    assert real.per_repeat["gt_top1"][0] == shuffled.per_repeat["gt_top1"][0]
    assert real.per_repeat["gt_diversity"][0] != real.per_repeat["gt_diversity"][1]  # repeats differ
    assert np.isnan(real.metrics["multimodality"]["mean"])  # deterministic source: no MModality
    doc = results_to_json([real, shuffled])
    for row in doc["rows"]:
        for name in ("top1", "top2", "top3", "fid", "mm_dist", "diversity", "action_acc", "style_acc"):
            assert set(row["metrics"][name]) == {"mean", "ci95"}
    table = format_table([real, shuffled])
    assert "Real (resampled crop)" in table and "shuffled real" in table and "±" in table


def test_protocol_is_reproducible_and_checks_sources(evaluator, small_val):
    class Noisy:
        name, stochastic = "noisy real", True

        def __init__(self):
            self.base = RealBaseline(small_val, "resample")

        def set_seed(self, seed):
            self.base.set_seed(seed)

        def __call__(self, captions, lengths, labels):
            out, n = self.base(captions, lengths, labels)
            return out + 0.01 * torch.randn_like(out), n

    runs = [evaluate_t2m(Noisy(), "val", repeats=1, evaluator=evaluator, layout=small_val, progress=False,
                         mm_batches=1, mm_repeats=10) for _ in range(2)]
    assert runs[0].per_repeat == runs[1].per_repeat
    assert runs[0].metrics["multimodality"]["mean"] > 0

    def wrong(captions, lengths, labels):
        return torch.zeros(len(captions), 196, 259)

    with pytest.raises(ProtocolError, match="de-normalised"):
        evaluate_t2m(wrong, "val", repeats=1, evaluator=evaluator, layout=small_val, progress=False)


def test_reconstruction_fid_and_mpjpe(evaluator, small_val):
    """A perfect tokenizer scores FID 0 and MPJPE 0; lifting one joint by 1 cm gives MPJPE 10/22 mm."""
    perfect = evaluate_reconstruction(lambda m, n: m, "val", repeats=1, evaluator=evaluator, layout=small_val,
                                      progress=False)
    assert abs(perfect.metrics["fid"]["mean"]) < 1e-2 and perfect.metrics["mpjpe_mm"]["mean"] == 0.0
    assert perfect.metrics["top1"]["mean"] == perfect.reference["top1"]["mean"]

    def lift_left_hip(motion, lengths):
        out = motion.clone()
        out[..., 5] += 0.01  # ric y of joint 1 (dims 4:67 hold joints 1..21 as xyz), metres
        return out

    lifted = evaluate_reconstruction(lift_left_hip, "val", repeats=1, evaluator=evaluator, layout=small_val,
                                     progress=False)
    assert lifted.metrics["mpjpe_mm"]["mean"] == pytest.approx(10 / 22, rel=1e-4)
    assert lifted.metrics["fid"]["mean"] > perfect.metrics["fid"]["mean"]


def test_cli_writes_json_and_rejects_bad_options(tmp_path):
    out = tmp_path / "res.json"
    runner = CliRunner()
    res = runner.invoke(evaluate_cmd, ["--split", "val", "--repeats", "1", "--json", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "Real (disjoint clips)" in res.output
    doc = json.loads(out.read_text())
    assert doc["meta"]["split"] == "val" and doc["rows"][0]["metrics"]["fid"]["mean"] >= 0
    bad = runner.invoke(evaluate_cmd, ["--repeats", "0"])
    assert bad.exit_code == 2 and "error:" in bad.output
    missing = runner.invoke(evaluate_cmd, ["--split", "nosuchsplit", "--repeats", "1"])
    assert missing.exit_code == 2 and "nosuchsplit" in missing.output
    for args, words in ((["--max-batches", "0"], "--max-batches"), (["--mm-repeats", "1"], "--mm-repeats"),
                        (["--cond-scale", "2"], "--model"), (["--without-retrieval"], "--model")):
        bad = runner.invoke(evaluate_cmd, args)
        assert bad.exit_code == 2 and words in bad.output, (args, bad.output)


def test_max_batches_scores_a_random_subset_per_repeat(evaluator, small_val):
    """--max-batches 1: 32 samples a repeat, another shuffled subset each repeat, the same metric set."""
    full = evaluate_t2m(RealBaseline(small_val, "resample"), "val", repeats=1, evaluator=evaluator,
                        layout=small_val, progress=False)
    part = evaluate_t2m(RealBaseline(small_val, "resample"), "val", repeats=2, evaluator=evaluator,
                        layout=small_val, progress=False, max_batches=1)
    assert full.info["samples_per_repeat"] == 96 and part.info["samples_per_repeat"] == 32
    assert part.info["max_batches"] == 1 and set(part.metrics) == set(full.metrics)
    assert part.per_repeat["gt_diversity"][0] != part.per_repeat["gt_diversity"][1]  # other prompts each repeat
    # fewer samples: the reference diversity is estimated on 32 instead of 96 motions, FID stays finite
    assert np.isfinite(part.metrics["fid"]["mean"]) and part.metrics["fid"]["mean"] >= 0


def test_interrupted_run_resumes_to_the_same_numbers(evaluator, small_val, tmp_path):
    """A run stopped in repeat 2 keeps repeat 1 in its progress file; running again gives the numbers of an
    uninterrupted run, and a progress file of other settings is refused with a clear error."""

    class Noisy:
        name, stochastic = "noisy real", True

        def __init__(self, fail_after=None):
            self.base, self.calls, self.fail_after = RealBaseline(small_val, "resample"), 0, fail_after
            self.generator = None

        def set_seed(self, seed):  # like the pipeline's source: a private generator restarted every repeat
            self.base.set_seed(seed)
            self.generator = torch.Generator().manual_seed(seed)

        def __call__(self, captions, lengths, labels):
            self.calls += 1
            if self.fail_after is not None and self.calls > self.fail_after:
                raise KeyboardInterrupt  # the user presses Ctrl-C in the middle of repeat 2
            out, n = self.base(captions, lengths, labels)
            return out + 0.01 * torch.randn(out.shape, generator=self.generator), n

    kw = dict(evaluator=evaluator, layout=small_val, progress=False, max_batches=2, mm_batches=1, mm_repeats=3)
    whole = evaluate_t2m(Noisy(), "val", repeats=2, **kw)
    state = tmp_path / "row0.json"
    calls_per_repeat = 2 + 3  # two scored batches, one batch generated 3 more times for MModality
    with pytest.raises(KeyboardInterrupt):
        evaluate_t2m(Noisy(fail_after=calls_per_repeat + 1), "val", repeats=2, progress_file=state, **kw)
    saved = json.loads(state.read_text())
    assert len(saved["per"]["fid"]) == 1
    source = Noisy()
    resumed = evaluate_t2m(source, "val", repeats=2, progress_file=state, **kw)
    assert resumed.info["resumed_repeats"] == 1 and source.calls == calls_per_repeat  # only repeat 2 ran
    # the wall time of the resumed repeat is kept, so the cost of a stopped-and-continued run is known
    assert len(saved["seconds"]) == 1 and resumed.info["repeat_seconds"][0] == saved["seconds"][0]
    assert len(resumed.info["repeat_seconds"]) == 2 and all(t > 0 for t in resumed.info["repeat_seconds"])
    assert resumed.per_repeat == whole.per_repeat
    assert resumed.metrics == whole.metrics
    with pytest.raises(ProtocolError, match="other settings"):
        evaluate_t2m(Noisy(), "val", repeats=2, progress_file=state, **{**kw, "max_batches": 1})
    with pytest.raises(ProtocolError, match="more than the 1"):
        evaluate_t2m(Noisy(), "val", repeats=1, progress_file=state, **kw)
    state.write_text("{not json")
    with pytest.raises(ProtocolError, match="delete it"):
        evaluate_t2m(Noisy(), "val", repeats=2, progress_file=state, **kw)


def test_cli_resumes_from_its_progress_folder(tmp_path, monkeypatch):
    """`remomask evaluate t2m --json OUT` keeps finished repeats in OUT.progress/ and removes it when done."""
    import remomask.evaluation.protocol as protocol

    out = tmp_path / "res.json"
    args = ["--split", "val", "--repeats", "2", "--max-batches", "1", "--json", str(out), "--no-progress"]
    real_save = protocol._save_state
    saves = []

    def save_then_stop(path, key, per, seconds):
        real_save(path, key, per, seconds)
        saves.append(path)
        raise KeyboardInterrupt

    monkeypatch.setattr(protocol, "_save_state", save_then_stop)
    stopped = CliRunner().invoke(evaluate_cmd, args)
    assert stopped.exit_code != 0 and not out.exists() and len(saves) == 1
    assert (tmp_path / "res.json.progress" / "row0.json").is_file()
    monkeypatch.setattr(protocol, "_save_state", real_save)
    stopped = CliRunner().invoke(evaluate_cmd, [*args[:2], "--repeats", "1", *args[4:], "--restart"])
    assert stopped.exit_code == 0 and "resumed" not in stopped.output  # --restart discarded the progress
    out.unlink()
    monkeypatch.setattr(protocol, "_save_state", save_then_stop)
    assert CliRunner().invoke(evaluate_cmd, args).exit_code != 0 and len(saves) == 2  # stopped again
    monkeypatch.setattr(protocol, "_save_state", real_save)
    res = CliRunner().invoke(evaluate_cmd, args)
    assert res.exit_code == 0, res.output
    assert "resumed 1 finished repeat" in res.output
    assert not (tmp_path / "res.json.progress").exists()
    resumed = json.loads(out.read_text())["rows"][0]
    fresh_out = tmp_path / "fresh.json"
    fresh = CliRunner().invoke(evaluate_cmd, [*args[:-3], "--json", str(fresh_out), "--no-progress"])
    assert fresh.exit_code == 0, fresh.output
    assert json.loads(fresh_out.read_text())["rows"][0]["per_repeat"] == resumed["per_repeat"]


def test_request_size_merges_batches_without_changing_what_is_scored(evaluator, small_val):
    """A source with ``request_size`` 64 gets two 32-prompt batches per call (and the MModality repetitions
    of a batch together); a deterministic source then scores exactly as with one batch per call."""

    class Counting:
        name, stochastic = "real, counted", True

        def __init__(self, request_size=None):
            self.base, self.sizes = RealBaseline(small_val, "resample"), []
            if request_size is not None:
                self.request_size = request_size

        def set_seed(self, seed):
            self.base.set_seed(seed)

        def __call__(self, captions, lengths, labels):
            self.sizes.append(len(captions))
            assert len(labels) == len(captions) == len(lengths)
            return self.base(captions, lengths, labels)

    kw = dict(evaluator=evaluator, layout=small_val, progress=False, mm_batches=1, mm_repeats=4)
    single, merged = Counting(), Counting(request_size=64)
    evaluate_t2m(single, "val", repeats=1, **kw)
    evaluate_t2m(merged, "val", repeats=1, **kw)
    assert single.sizes == [32] * 7  # 3 scored batches + 4 MModality repetitions of the first
    assert merged.sizes == [64, 64, 64, 32]  # batches 1-2, MModality of batch 1 (2 + 2), batch 3
    # without MModality both draw the same random numbers in the same order: identical scores
    one = evaluate_t2m(Counting(), "val", repeats=1, multimodality=False, **kw)
    two = evaluate_t2m(Counting(request_size=96), "val", repeats=1, multimodality=False, **kw)
    for key in ("top1", "top3", "fid", "mm_dist", "diversity", "action_acc", "style_acc"):
        assert two.per_repeat[key] == pytest.approx(one.per_repeat[key], rel=1e-6), key
    with pytest.raises(ProtocolError, match="request_size"):
        evaluate_t2m(Counting(request_size=0), "val", repeats=1, **kw)


def test_cli_scores_the_bundled_model_with_and_without_retrieval(tmp_path):
    """`--without-retrieval` samples the same weights in RAG-CFG's text-only mode: another row name and
    other motions (so other scores) from the same seed and prompts."""
    from remomask.pipeline import DEFAULT_MODEL_DIR

    rows = {}
    for flag in ([], ["--without-retrieval"]):
        out = tmp_path / f"res{len(flag)}.json"
        res = CliRunner().invoke(evaluate_cmd, ["--model", str(DEFAULT_MODEL_DIR), "--split", "val", "--repeats", "1",
                                                "--max-batches", "1", "--mm-batches", "0", "--steps", "2",
                                                *flag, "--json", str(out), "--no-progress"])
        assert res.exit_code == 0, res.output
        rows[bool(flag)] = json.loads(out.read_text())["rows"][0]
    assert "no retrieval at sampling" in rows[True]["name"] and "no retrieval" not in rows[False]["name"]
    assert rows[True]["per_repeat"]["gt_top1"] == rows[False]["per_repeat"]["gt_top1"]  # same prompts
    assert rows[True]["per_repeat"]["fid"] != rows[False]["per_repeat"]["fid"]
