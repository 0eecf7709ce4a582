"""The standard HumanML3D / KIT-ML evaluator: checkpoint layout, GloVe files, POS tokens, forward pass.

The real weights and GloVe vectors are not redistributable; the tests build files of exactly the released
layout (shapes from ``fixtures/evaluator/t2m_evaluator_layout.json``) with random values, and use the real
HumanML3D caption file and the evaluator's real mean/std from the fixtures.
"""

from __future__ import annotations

import collections
import datetime
import json
import pickle

import numpy as np
import pytest
import torch

from remomask.data.captions import evaluator_tokens, read_captions
from remomask.evaluation.evaluator import EvaluatorError
from remomask.evaluation.official import (
    POS_ENUMERATOR,
    VIP_LISTS,
    OfficialT2MEvaluator,
    WordVectorizer,
    checkpoint_path,
)


@pytest.fixture(scope="module")
def layout(fixtures_dir):
    return json.loads((fixtures_dir / "evaluator" / "t2m_evaluator_layout.json").read_text())


def _fake_checkpoint(layout, dataset, seed=0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    ckpt = {name: {k: torch.randn(*shape, generator=gen) * 0.05 for k, shape in layout[dataset][name].items()}
            for name in ("movement_encoder", "text_encoder", "motion_encoder")}
    ckpt["epoch"] = 7
    return ckpt


@pytest.fixture(scope="module")
def checkpoints_dir(tmp_path_factory, layout, fixtures_dir):
    """A release-like ``checkpoints/`` folder: t2m/text_mot_match/model/finest.tar and Comp_v6_KLD005/meta."""
    tmp_path = tmp_path_factory.mktemp("release")
    model_dir = tmp_path / "checkpoints" / "t2m" / "text_mot_match" / "model"
    model_dir.mkdir(parents=True)
    torch.save(_fake_checkpoint(layout, "humanml3d"), model_dir / "finest.tar")
    meta = tmp_path / "checkpoints" / "t2m" / "Comp_v6_KLD005" / "meta"
    meta.mkdir(parents=True)
    np.save(meta / "mean.npy", np.load(fixtures_dir / "evaluator" / "t2m_mean.npy"))
    np.save(meta / "std.npy", np.load(fixtures_dir / "evaluator" / "t2m_std.npy"))
    return tmp_path / "checkpoints"


def _write_glove(folder, fixtures_dir):
    caps, _ = read_captions(fixtures_dir / "humanml3d" / "texts__000000.txt")
    words = ["sos", "eos", "unk"] + sorted({w for c in caps for w, _ in c.tokens})
    rng = np.random.default_rng(0)
    folder.mkdir()
    np.save(folder / "our_vab_data.npy", rng.normal(size=(len(words), 300)).astype(np.float32))
    with open(folder / "our_vab_words.pkl", "wb") as f:
        pickle.dump(words, f)
    with open(folder / "our_vab_idx.pkl", "wb") as f:
        pickle.dump({w: i for i, w in enumerate(words)}, f)
    return folder


@pytest.fixture(scope="module")
def glove_dir(tmp_path_factory, fixtures_dir):
    """GloVe files in the released format, covering the words of the real caption fixture plus sos/eos/unk."""
    return _write_glove(tmp_path_factory.mktemp("glove") / "glove", fixtures_dir)


@pytest.fixture(scope="module")
def official(checkpoints_dir, glove_dir):
    return OfficialT2MEvaluator.from_files(checkpoints_dir, glove_dir)


def test_module_layout_equals_the_released_checkpoint_layout(layout):
    for dataset in ("humanml3d", "kit"):
        model = OfficialT2MEvaluator(dataset)
        for name in ("movement_encoder", "text_encoder", "motion_encoder"):
            own = {k: list(v.shape) for k, v in getattr(model, name).state_dict().items()}
            assert own == layout[dataset][name], (dataset, name)
    assert POS_ENUMERATOR == layout["pos_enumerator"]
    lists = layout["vip_word_lists"]
    assert [list(v) for v in VIP_LISTS.values()] == [lists[k] for k in
                                                      ("Loc_list", "Body_list", "Obj_List", "Act_list", "Desc_list")]


def test_load_finest_tar_and_embed(official, checkpoints_dir, fixtures_dir):
    model = official
    # every tensor of the checkpoint arrived in the module
    ckpt = torch.load(checkpoint_path(checkpoints_dir), weights_only=True)
    for name in ("movement_encoder", "text_encoder", "motion_encoder"):
        for k, v in getattr(model, name).state_dict().items():
            torch.testing.assert_close(v, ckpt[name][k])
    np.testing.assert_allclose(model.mean.numpy(), np.load(fixtures_dir / "evaluator" / "t2m_mean.npy"), rtol=1e-6)

    # motion side: the real fixture clip, de-normalised, padded to 196 frames
    clip = torch.from_numpy(np.load(fixtures_dir / "humanml3d" / "new_joint_vecs__012314.npy"))  # (170, 263)
    motion = torch.zeros(2, 196, 263)
    motion[0, :168], motion[1, :120] = clip[:168], clip[:120]
    emb = model.motion_embeddings(motion, torch.tensor([168, 120]))
    assert emb.shape == (2, 512) and torch.isfinite(emb).all()
    # the padding after each length does not matter (packed GRU over length // 4 steps)
    other = motion.clone()
    other[1, 120:] = 5.0
    torch.testing.assert_close(model.motion_embeddings(other, torch.tensor([168, 120])), emb)

    # text side: the real caption file -> word/POS tokens padded to 22
    caps, _ = read_captions(fixtures_dir / "humanml3d" / "texts__000000.txt")
    toks = [evaluator_tokens(c.token_strings)[0] for c in caps[:3]]
    lens = [evaluator_tokens(c.token_strings)[1] for c in caps[:3]]
    text = model.text_embeddings({"tokens": toks, "sent_len": torch.tensor(lens)})
    assert text.shape == (3, 512) and torch.isfinite(text).all()


def test_text_encoder_packs_by_sentence_length(official):
    """A caption embedded in a padded batch equals the same caption embedded alone without padding."""
    model = official
    words = torch.randn(2, 22, 300)
    pos = torch.zeros(2, 22, 15)
    pos[..., 14] = 1
    batch = model.encode_text(words, pos, torch.tensor([22, 9]))
    alone = model.encode_text(words[1:, :9], pos[1:, :9], torch.tensor([9]))
    torch.testing.assert_close(batch[1:], alone, atol=1e-5, rtol=1e-5)


def test_word_vectorizer_pos_and_unknown_words(glove_dir):
    vec = WordVectorizer(glove_dir)
    # tokens of the real caption "a man kicks something or someone with his left leg."
    assert [vec.pos_category(t) for t in ("left/ADJ", "leg/NOUN", "kick/VERB", "man/NOUN", "or/CCONJ")] == \
        ["Loc_VIP", "Body_VIP", "Act_VIP", "NOUN", "OTHER"]
    known = [w for w in vec.index if w not in ("sos", "eos", "unk")]
    vip = next(w for w in known if any(w in v for v in VIP_LISTS.values()))
    plain = next(w for w in known if not any(w in v for v in VIP_LISTS.values()))
    category = next(k for k, v in VIP_LISTS.items() if vip in v)
    word_vec, onehot = vec(f"{vip}/VERB")
    assert onehot.argmax() == POS_ENUMERATOR[category] and onehot.sum() == 1
    np.testing.assert_array_equal(word_vec, vec.vectors[vec.index[vip]])
    assert vec(f"{plain}/NOUN")[1].argmax() == POS_ENUMERATOR["NOUN"]
    assert vec(f"{plain}/INTJ")[1].argmax() == POS_ENUMERATOR["OTHER"]  # tag outside the 15 categories
    unk_vec, unk_pos = vec("zyzzyva/NOUN")
    np.testing.assert_array_equal(unk_vec, vec.vectors[vec.index["unk"]])
    assert unk_pos.argmax() == POS_ENUMERATOR["OTHER"]


def test_bad_files_give_clear_errors(tmp_path, layout, fixtures_dir):
    model = OfficialT2MEvaluator("humanml3d")
    # a KIT checkpoint does not fit the HumanML3D layout
    kit = tmp_path / "kit.tar"
    torch.save(_fake_checkpoint(layout, "kit"), kit)
    with pytest.raises(EvaluatorError, match="does not fit"):
        model.load_checkpoint(kit)
    # weights_only refuses pickled objects other than tensors and plain containers
    bad = tmp_path / "bad.tar"
    torch.save({"movement_encoder": datetime.date(2020, 1, 1)}, bad)
    with pytest.raises(EvaluatorError, match="weights_only"):
        model.load_checkpoint(bad)
    with pytest.raises(EvaluatorError, match="finest.tar"):
        checkpoint_path(tmp_path / "nowhere")
    # a GloVe pickle that would run code is refused
    glove_dir = _write_glove(tmp_path / "glove", fixtures_dir)
    with open(glove_dir / "our_vab_idx.pkl", "wb") as f:
        pickle.dump(collections.OrderedDict(walk=3), f)
    with pytest.raises(EvaluatorError, match="refusing"):
        WordVectorizer(glove_dir)
    with pytest.raises(EvaluatorError, match="not found"):
        WordVectorizer(tmp_path / "missing")


def _one_batch_dataset(folder):
    """A HumanML3D-layout folder whose ``val`` split holds 40 real clips of the embedded dataset (one batch)."""
    import os

    from remomask.data.embedded import resolve_dataset
    from remomask.data.layout import MotionLayout

    root = resolve_dataset("embedded", progress=False)
    ids = [r.motion_id for r in MotionLayout(root, "val", progress=False).records[::5]][:40]
    for sub in ("new_joint_vecs", "texts"):
        (folder / sub).mkdir(parents=True)
        for mid in ids:
            os.symlink(root / sub / f"{mid}.{'npy' if sub == 'new_joint_vecs' else 'txt'}",
                       folder / sub / f"{mid}.{'npy' if sub == 'new_joint_vecs' else 'txt'}")
    for name in ("Mean.npy", "Std.npy", "labels.json"):
        os.symlink(root / name, folder / name)
    (folder / "val.txt").write_text("\n".join(ids) + "\n")
    return folder


def test_cli_scores_with_the_official_evaluator(checkpoints_dir, glove_dir, tmp_path):
    """`remomask evaluate t2m --official ... --glove ...` runs the protocol with the standard evaluator."""
    from click.testing import CliRunner

    from remomask.cli.evaluate import evaluate_t2m

    out = tmp_path / "official.json"
    data = _one_batch_dataset(tmp_path / "data")
    res = CliRunner().invoke(evaluate_t2m, ["--dataset", str(data), "--split", "val", "--repeats", "1",
                                            "--baseline", "real-resample", "--official", str(checkpoints_dir),
                                            "--glove", str(glove_dir), "--json", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    row = doc["rows"][0]
    assert row["info"]["evaluator"] == "official-t2m-evaluator"
    assert "action_acc" not in row["metrics"]  # the standard evaluator has no label classifiers
    assert row["metrics"]["fid"]["mean"] >= 0 and row["metrics"]["mm_dist"]["mean"] > 0
    res = CliRunner().invoke(evaluate_t2m, ["--dataset", str(data), "--split", "val", "--official",
                                            str(checkpoints_dir)])
    assert res.exit_code == 2 and "--glove" in res.output
