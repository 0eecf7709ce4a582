"""The trained captioner: motion tokens + ReMoGPT-style retrieval context -> a new sentence (docs/captioning.md).

:class:`MotionCaptioner` ties four frozen parts to the trained :class:`~remomask.captioning.model.CaptionTransformer`:

1. the **tokenizer** (2D residual VQ-VAE, docs/design.md §3): the motion's base-layer token grid, first
   ``min(T, 196)`` frames rounded down to whole tokens of 4 frames (the database's rule, §4.8), normalised
   with the tokenizer's statistics;
2. the **retriever**'s motion tower (§4.2): the motion's embedding (first 224 frames);
3. the **database** (§4.6, §4.8): with that embedding, the top-1 caption by motion-to-text (m2t, against the
   stored caption embeddings) and the top-1 motion by motion-to-motion (m2m, against the stored motion
   embeddings), whose stored token grid is the retrieved motion; at training time both searches skip the
   sample's own motion and its mirrored twin (:func:`retrieval_context`, as the generators do, §4.7);
4. the **vocabulary** (:mod:`remomask.captioning.vocab`) for the words.

A model folder (``save_pretrained`` / ``from_pretrained``) holds ``config.json`` (format, model sizes, the
component folders relative to the model folder with their fingerprints, training record), ``model.safetensors``,
``vocab.json`` and a card ``README.md``. Loading checks that the database was built by the retriever and that
its token grids come from the tokenizer, so a mismatched set is one clear error.

Source: ReMoGPT (retrieval-augmented motion-language model: m2t and m2m neighbours as context), TM2T (motion
tokens -> words), docs/design.md §3, §4.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..bundled import CAPTIONER_DIR
from ..errors import MissingFileError, RemomaskError, UsageError
from .model import CaptionerConfig, CaptionTransformer
from .retrieval_captioner import _as_list, motion_features
from .vocab import PAD, Vocabulary

__all__ = ["MotionCaptioner", "TrainedCaptionResult", "CaptionerLoadError", "retrieval_context", "token_grids",
           "DEFAULT_CAPTIONER_DIR", "load_captioner_model", "FORMAT", "VERSION", "batch_inputs"]

FORMAT, VERSION = "remomask-captioner", 1
CONFIG_FILE, WEIGHTS_FILE, CARD_FILE = "config.json", "model.safetensors", "README.md"
DEFAULT_CAPTIONER_DIR = CAPTIONER_DIR
"""The shipped trained captioner: the default bundle's ``captioner/``, beside the components it uses."""
TOKEN_MAX_FRAMES = 196
"""Frames of a motion that are tokenised (as the database's grids, docs/design.md §4.8)."""


class CaptionerLoadError(RemomaskError, ValueError):
    """A trained captioner folder is missing, corrupt, or does not fit its retriever / database / tokenizer."""


def _frames(length: int) -> int:
    m = min(int(length), TOKEN_MAX_FRAMES)
    return m - m % 4


@torch.no_grad()
def token_grids(tokenizer, feats: Sequence[np.ndarray], batch_size: int = 64) -> list[np.ndarray]:
    """Base-layer token grids of de-normalised feature arrays, as the database stores them (§4.8).

    Args:
        tokenizer: a frozen ``MotionTokenizer``.
        feats: N arrays (T_i, 263), T_i >= 4 frames at 20 fps.
        batch_size: motions per tokenizer call (grouped by equal length, so a grid does not depend on its batch).

    Returns:
        N int64 arrays (n_i, J'), n_i = min(T_i, 196) // 4 rows.

    Raises:
        UsageError: a motion of fewer than 4 frames.
    """
    from ..data.normalization import normalize

    frames = np.array([_frames(len(f)) for f in feats])
    if len(frames) and frames.min() < 4:
        raise UsageError("a motion of fewer than 4 frames (0.2 s at 20 fps) cannot be captioned: the tokenizer "
                         "makes one token per 4 frames")
    mean, std = tokenizer.mean.cpu().numpy(), tokenizer.std.cpu().numpy()
    dev = tokenizer.mean.device
    out: list[np.ndarray] = [None] * len(feats)  # type: ignore[list-item]
    for f in np.unique(frames):
        group = np.flatnonzero(frames == f)
        for s in range(0, len(group), batch_size):
            job = group[s: s + batch_size]
            x = np.stack([normalize(np.asarray(feats[i][:f], dtype=np.float32), mean, std) for i in job])
            ids = tokenizer.encode(torch.from_numpy(x.astype(np.float32)).to(dev))[..., 0].cpu().numpy()
            for row, i in enumerate(job):
                out[i] = ids[row].astype(np.int64)
    return out


def retrieval_context(database, motion_emb, exclude: Sequence[str | None] | None = None,
                      exclude_mirrors: bool = True) -> tuple[list[str], list[np.ndarray], list[str], list[str]]:
    """The ReMoGPT context of N motions: the top-1 m2t caption and the top-1 m2m motion's token grid.

    Args:
        database: a :class:`~remomask.retrieval.database.RetrievalDatabase` with token grids (§4.8).
        motion_emb: (N, E) retriever motion embeddings of the motions.
        exclude: None (inference), or N motion ids that must not be retrieved (training: each sample's own).
        exclude_mirrors: with ``exclude``, also skip the mirrored twin (``M<id>`` <-> ``<id>``), as the
            generators' condition encoder does (docs/design.md §4.7, §15.5).

    Returns:
        ``(captions, grids (m_i, J') int64, caption motion ids, grid motion ids)``, N each.

    Raises:
        DatabaseError: a database without token grids, or bad query shapes.
    """
    from ..retrieval.database import DatabaseError

    if database.tokens is None:
        raise DatabaseError("the retrieval database has no token grids; the trained captioner reads them: add them "
                            "with `remomask retriever build-db --model MODEL_DIR --tokenizer TOKENIZER_DIR`")
    excl = None if exclude is None else [None if e is None else [e] for e in exclude]
    t = database.search(motion_emb, 1, target="text", exclude=excl, exclude_mirrors=exclude_mirrors)
    m = database.search(motion_emb, 1, target="motion", exclude=excl, exclude_mirrors=exclude_mirrors)
    tok = database.tokens
    captions = [h[0].caption for h in t.hits]
    rows = [int(tok.row[h[0].index]) for h in m.hits]
    grids = [tok.ids[r, : int(tok.lengths[r])].astype(np.int64) for r in rows]
    return captions, grids, [h[0].motion_id for h in t.hits], [h[0].motion_id for h in m.hits]


def batch_inputs(grids: Sequence[np.ndarray], ret_grids: Sequence[np.ndarray], ret_captions: Sequence[str],
                 vocab: Vocabulary, context_words: int, device="cpu") -> tuple[torch.Tensor, ...]:
    """Pad one batch for :meth:`CaptionTransformer.encode`.

    Returns:
        ``(motion (B, n, J'), ret_motion (B, m, J'), ret_words (B, W))`` long, -1 / PAD padded; the retrieved
        caption is encoded without ``<bos>`` / ``<eos>``, cut to ``context_words``.
    """
    def pad_grids(gs):
        n = max(len(g) for g in gs)
        out = torch.full((len(gs), n, gs[0].shape[1]), -1, dtype=torch.long)
        for i, g in enumerate(gs):
            out[i, : len(g)] = torch.from_numpy(np.asarray(g, dtype=np.int64))
        return out.to(device)

    words = [vocab.encode(c, context_words + 2)[1:-1] or [PAD] for c in ret_captions]
    w = torch.full((len(words), max(len(x) for x in words)), PAD, dtype=torch.long)
    for i, x in enumerate(words):
        w[i, : len(x)] = torch.tensor(x)
    return pad_grids(grids), pad_grids(ret_grids), w.to(device)


@dataclass
class TrainedCaptionResult:
    """The caption of one motion by :class:`MotionCaptioner`.

    Attributes:
        caption: the generated sentence. log_prob: its log-probability under the model (sum over words, nats).
        retrieved_caption: the m2t context caption ("" without retrieval).
        retrieved_motion: database motion id of the m2m context ("" without retrieval).
        frames: feature frames tokenised (<= 196). total_frames: feature frames of the input.
        source: the file the motion came from, or ``"<array>"``. beam: beam size used (1 = greedy).
    """

    caption: str
    log_prob: float
    retrieved_caption: str = ""
    retrieved_motion: str = ""
    frames: int = 0
    total_frames: int = 0
    source: str = "<array>"
    beam: int = 1

    def to_dict(self) -> dict:
        """A JSON-friendly dict (``remomask caption --captioner trained --out``)."""
        return {"file": self.source, "caption": self.caption, "log_prob": round(self.log_prob, 4),
                "beam": self.beam, "frames": self.frames, "total_frames": self.total_frames,
                "retrieved": {"caption": self.retrieved_caption, "motion_id": self.retrieved_motion}}


def _component(folder: Path, rel: str | None, given, name: str) -> Path:
    if given is not None:
        return Path(given).expanduser()
    if not rel:
        raise CaptionerLoadError(f"{folder / CONFIG_FILE} names no {name} folder; pass {name}=")
    path = Path(rel)
    return path if path.is_absolute() else (folder / path).resolve()


def load_captioner_model(folder: str | os.PathLike, *, shipped: bool = False):
    """The trained part of a captioner folder: its :class:`CaptionTransformer`, :class:`Vocabulary` and
    ``config.json`` record, without the frozen components (a pipeline passes its own; docs/captioning.md).

    Args:
        folder: a folder written by :meth:`MotionCaptioner.save_pretrained`. shipped: word the missing-folder
            error for the default location.

    Returns:
        ``(model, vocab, meta)``; the model is on the CPU.

    Raises:
        MissingFileError: no such folder, or a missing file.
        CaptionerLoadError: a corrupt ``config.json``, weights or vocabulary.
    """
    from .._pretrained import load_safetensors, read_format_json, state_mismatch

    folder = Path(folder)
    if not folder.is_dir():
        where = "" if not shipped else " (the default bundle has no captioner/: reinstall remomask)"
        raise MissingFileError(f"{folder} is not a folder{where}; pass a trained captioner folder "
                               "(remomask train captioner --out DIR)")
    cfg_path = folder / CONFIG_FILE
    if not cfg_path.is_file():
        raise MissingFileError(f"{cfg_path} is missing; {folder} is not a trained captioner folder")
    meta = read_format_json(cfg_path, FORMAT, VERSION, CaptionerLoadError,
                            invalid="{path} is not valid JSON ({exc}); the captioner folder is corrupt",
                            wrong_format="{path} is not a trained captioner config (format {got!r})")
    try:
        config = CaptionerConfig.from_dict(meta["model"])
    except (KeyError, TypeError) as exc:
        raise CaptionerLoadError(f"{cfg_path} has no valid model record ({exc}); the folder is corrupt") from exc
    vocab = Vocabulary.load(folder)
    try:
        state = load_safetensors(folder / WEIGHTS_FILE, CaptionerLoadError, folder="captioner folder")
    except FileNotFoundError as exc:
        raise MissingFileError(str(exc)) from exc
    model = CaptionTransformer(config)
    bad = state_mismatch(state, model.state_dict())
    if bad:
        raise CaptionerLoadError(f"{folder / WEIGHTS_FILE} does not fit {cfg_path}: {bad}")
    model.load_state_dict(state)
    return model, vocab, meta


class MotionCaptioner:
    """Caption motions with the trained retrieval-augmented captioner (module docstring).

    Args:
        model: a trained :class:`CaptionTransformer` (put in eval mode here).
        vocab: its :class:`Vocabulary`.
        tokenizer: the frozen ``MotionTokenizer`` whose grids the model was trained on.
        retriever: the frozen ``PartRetriever`` (motion tower only).
        database: its ``RetrievalDatabase`` with the tokenizer's token grids.
        info: the folder's ``config.json`` record (training provenance; informative).

    Raises:
        CaptionerLoadError: a database of another retriever, grids of another tokenizer, or a vocabulary /
            tokenizer size that does not fit the model.

    Source: ReMoGPT (retrieval context), TM2T (token-to-text model); docs/captioning.md.
    """

    def __init__(self, model: CaptionTransformer, vocab: Vocabulary, tokenizer, retriever, database,
                 info: dict | None = None) -> None:
        from ..generation.data import tokenizer_fingerprint
        from ..retrieval.database import DatabaseError

        try:
            database.check_model(retriever)
            database.check_tokens(tokenizer_fingerprint(tokenizer))
        except DatabaseError as exc:
            raise CaptionerLoadError(str(exc)) from exc
        if len(vocab) != model.config.vocab_size:
            raise CaptionerLoadError(f"the vocabulary has {len(vocab)} words, the model {model.config.vocab_size}")
        if tokenizer.num_columns != model.config.num_columns:
            raise CaptionerLoadError(f"the tokenizer has {tokenizer.num_columns} columns, the model "
                                     f"{model.config.num_columns}")
        self.model = model.eval()
        self.vocab, self.tokenizer, self.retriever, self.database = vocab, tokenizer.eval(), retriever.eval(), database
        self.info = dict(info or {})
        self._embedder = None

    # -- files -------------------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str | os.PathLike | None = None, *, retriever: str | os.PathLike | None = None,
                        database: str | os.PathLike | None = None, tokenizer: str | os.PathLike | None = None,
                        device: str = "cpu") -> "MotionCaptioner":
        """Load a captioner folder (None = the default bundle's ``captioner/``) and its components.

        Args:
            path: the folder written by :meth:`save_pretrained`.
            retriever, database, tokenizer: other component folders than the ones ``config.json`` names.
            device: torch device.

        Raises:
            MissingFileError: no such folder or a missing file.
            CaptionerLoadError: a corrupt ``config.json`` / weights / vocabulary, or components that do not fit.
            RetrieverLoadError / DatabaseError / tokenizer load errors: a broken component folder.
        """
        from ..retrieval.database import RetrievalDatabase
        from ..retrieval.model import PartRetriever
        from ..tokenizer.model import MotionTokenizer

        folder = Path(path).expanduser() if path is not None else DEFAULT_CAPTIONER_DIR
        model, vocab, meta = load_captioner_model(folder, shipped=path is None)
        comps = meta.get("components", {})
        ret = PartRetriever.from_pretrained(_component(folder, comps.get("retriever"), retriever, "retriever"),
                                            device=device)
        db = RetrievalDatabase.load(_component(folder, comps.get("database"), database, "database"), model=ret)
        tok = MotionTokenizer.from_pretrained(_component(folder, comps.get("tokenizer"), tokenizer, "tokenizer"),
                                              map_location=device)
        return cls(model.to(device), vocab, tok, ret, db, meta)

    def save_pretrained(self, folder: str | os.PathLike, *, components: dict[str, str | os.PathLike],
                        card: str | None = None, record: dict | None = None) -> Path:
        """Write ``config.json``, ``model.safetensors``, ``vocab.json`` (and ``README.md`` when ``card`` is given).

        Args:
            folder: the model folder (created; files replaced atomically).
            components: ``{"retriever": dir, "database": dir, "tokenizer": dir}``; stored relative to ``folder``.
            card: the model card text. record: training provenance stored under ``"training"``.

        Raises:
            OSError: the folder cannot be written.
        """
        from safetensors.torch import save_file

        from .._pretrained import atomic_write, cpu_state
        from ..files import atomic_write_text
        from ..generation.data import tokenizer_fingerprint

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        rel = {k: os.path.relpath(Path(v).resolve(), folder.resolve()) for k, v in components.items()}
        meta = {"format": FORMAT, "version": VERSION, "model": self.model.config.to_dict(), "components": rel,
                "retriever_hash": self.retriever.model_hash(), "tokenizer_fingerprint": tokenizer_fingerprint(
                    self.tokenizer), "training": record or self.info.get("training", {})}
        state = cpu_state(self.model)
        atomic_write(folder / WEIGHTS_FILE, lambda p: save_file(state, p, metadata={"format": "pt"}))
        self.vocab.save(folder)
        atomic_write_text(folder / CONFIG_FILE, json.dumps(meta, indent=1, sort_keys=True) + "\n")
        if card is not None:
            atomic_write_text(folder / CARD_FILE, card)
        return folder

    # -- inputs ------------------------------------------------------------------------------------------------
    def embed(self, feats: Sequence[np.ndarray]) -> torch.Tensor:
        """Retriever motion embeddings (N, E) of de-normalised features (first 224 frames), L2-normalised."""
        from .retrieval_captioner import RetrievalCaptioner

        if self._embedder is None:
            self._embedder = RetrievalCaptioner(self.retriever, self.database)
        return self._embedder._embed_features(feats)

    def contexts(self, feats: Sequence[np.ndarray], exclude: Sequence[str | None] | None = None):
        """Token grids and retrieval context of feature arrays: ``(grids, captions, ret grids, ret motion ids)``
        (see :func:`token_grids`, :func:`retrieval_context`)."""
        grids = token_grids(self.tokenizer, feats)
        caps, rgrids, _, rids = retrieval_context(self.database, self.embed(feats), exclude)
        return grids, caps, rgrids, rids

    # -- captioning --------------------------------------------------------------------------------------------
    @torch.no_grad()
    def caption_features(self, feats: Sequence[np.ndarray], *, beam: int = 1, retrieval: bool = True,
                         batch_size: int = 64, context=None) -> list[tuple[str, float, str, str]]:
        """Captions of de-normalised feature arrays (T_i, 263): ``(caption, log_prob, ret caption, ret motion)``.

        Args:
            feats: N arrays, T_i >= 4 frames. beam: 1 = greedy, > 1 = beam search. retrieval: False drops the
                context (the "without retrieval" variant). batch_size: motions per forward pass.
            context: precomputed :meth:`contexts` output (saves the retriever and tokenizer passes).

        Raises:
            UsageError: ``beam < 1``, a motion of fewer than 4 frames.
        """
        if isinstance(beam, bool) or int(beam) < 1:
            raise UsageError(f"beam must be >= 1, got {beam}")
        grids, caps, rgrids, rids = context if context is not None else self.contexts(feats)
        dev = next(self.model.parameters()).device
        out = []
        for s in range(0, len(grids), batch_size):
            sl = slice(s, s + batch_size)
            motion, ret_motion, ret_words = batch_inputs(grids[sl], rgrids[sl], caps[sl], self.vocab,
                                                         self.model.config.context_words, dev)
            memory, pad = self.model.encode(motion, ret_motion, ret_words, use_retrieval=retrieval)
            if int(beam) == 1:
                ids, score = self.model.greedy(memory, pad)
                ids = [r.tolist() for r in ids]
            else:
                ids, score = self.model.beam(memory, pad, beam=int(beam))
            for i, (seq, sc) in enumerate(zip(ids, score.tolist())):
                j = s + i
                out.append((self.vocab.decode(seq), float(sc), caps[j] if retrieval else "",
                            rids[j] if retrieval else ""))
        return out

    def caption_results(self, motions: Any, *, beam: int = 1, retrieval: bool = True) -> list[TrainedCaptionResult]:
        """One :class:`TrainedCaptionResult` per motion, in input order.

        Args:
            motions: one motion or a list: paths (``.bvh``, ``.npy``, ``.npz``), ``MotionFile`` s, joints
                (T, 22, 3) metres or features (T, 263) (see :func:`~remomask.captioning.motion_features`).
            beam, retrieval: as :meth:`caption_features`.

        Raises:
            UsageError: an empty list, bad shapes or values, ``beam < 1``; file errors of the motion reader.
        """
        loaded = [motion_features(m) for m in _as_list(motions)]
        feats = [f for f, _ in loaded]
        res = self.caption_features(feats, beam=beam, retrieval=retrieval)
        return [TrainedCaptionResult(c, lp, rc, rm, frames=_frames(len(f)), total_frames=len(f), source=src,
                                     beam=int(beam))
                for (c, lp, rc, rm), (f, src) in zip(res, loaded)]

    def caption(self, motions: Any, *, beam: int = 1, retrieval: bool = True) -> list[str]:
        """The caption of each motion, in input order (arguments and errors: :meth:`caption_results`)."""
        return [r.caption for r in self.caption_results(motions, beam=beam, retrieval=retrieval)]

    @torch.no_grad()
    def log_prob(self, feats: Sequence[np.ndarray], captions: Sequence[str], *, retrieval: bool = True) -> torch.Tensor:
        """Log-probability (N,) of given captions of the motions under the model (sum over words, nats)."""
        grids, caps, rgrids, _ = self.contexts(feats)
        dev = next(self.model.parameters()).device
        motion, ret_motion, ret_words = batch_inputs(grids, rgrids, caps, self.vocab, self.model.config.context_words,
                                                     dev)
        memory, pad = self.model.encode(motion, ret_motion, ret_words, use_retrieval=retrieval)
        ids = [self.vocab.encode(c, self.model.config.max_words) for c in captions]
        y = torch.full((len(ids), max(map(len, ids))), PAD, dtype=torch.long)
        for i, x in enumerate(ids):
            y[i, : len(x)] = torch.tensor(x)
        return self.model.sequence_logprob(memory, pad, y.to(dev)).cpu()

    def __repr__(self) -> str:
        c = self.model.config
        return (f"MotionCaptioner(dim={c.dim}, layers={c.enc_layers}+{c.dec_layers}, vocab={len(self.vocab)}, "
                f"database={self.database!r})")
