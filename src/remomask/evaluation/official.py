"""The standard text-to-motion evaluator of HumanML3D / KIT-ML (Guo et al. 2022; docs/design.md §10.1, §2.4).

Users who have the released evaluator files get numbers comparable with the papers:

- weights: ``<checkpoints>/<t2m|kit>/text_mot_match/model/finest.tar``, a dict with the sub-dicts
  ``movement_encoder``, ``text_encoder``, ``motion_encoder`` (and ``epoch``), read with
  ``torch.load(weights_only=True)`` into modules with exactly that parameter layout;
- statistics: the evaluator's own ``mean.npy`` / ``std.npy`` (``<checkpoints>/<t2m|kit>/Comp_v6_KLD005/
  meta/``), applied to de-normalised features;
- words: 300-d GloVe vectors from ``our_vab_data.npy``, ``our_vab_words.pkl``, ``our_vab_idx.pkl``, and a
  15-d POS one-hot from the ``word/POS`` tokens of the HumanML3D text files, where words of the VIP
  lists override the tag.

Shapes (HumanML3D; KIT-ML has 251-d features): movement encoder Conv1d(259 -> 512, k4 s2 p1) -> Dropout
-> LeakyReLU -> Conv1d(512 -> 512) -> Dropout -> LeakyReLU -> Linear(512 -> 512); motion encoder
Linear(512 -> 1024) -> BiGRU(1024) over ``length // 4`` steps -> Linear(2048 -> 1024) -> LayerNorm ->
LeakyReLU -> Linear(1024 -> 512); text encoder word (300) + Linear(POS 15 -> 300) -> Linear(300 -> 512) ->
BiGRU(512) over ``sent_len`` tokens -> Linear(1024 -> 512) -> LayerNorm -> LeakyReLU -> Linear(512 -> 512).
Embeddings are not normalised (the published distances, e.g. MM-Dist 2.97 for real HumanML3D, are in
this raw space).
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .evaluator import EvaluatorError, MovementEncoder, SequenceEncoder, _on_canvas, _valid_steps

__all__ = [
    "POS_ENUMERATOR",
    "VIP_LISTS",
    "OFFICIAL_DIMS",
    "WordVectorizer",
    "OfficialTextEncoder",
    "OfficialT2MEvaluator",
    "checkpoint_path",
]

POS_ENUMERATOR = {
    "VERB": 0, "NOUN": 1, "DET": 2, "ADP": 3, "NUM": 4, "AUX": 5, "PRON": 6, "ADJ": 7, "ADV": 8,
    "Loc_VIP": 9, "Body_VIP": 10, "Obj_VIP": 11, "Act_VIP": 12, "Desc_VIP": 13, "OTHER": 14,
}
"""Index of each POS category in the evaluator's 15-d one-hot (docs/design.md §2.4)."""

VIP_LISTS = {
    "Loc_VIP": ("left", "right", "clockwise", "counterclockwise", "anticlockwise", "forward", "back",
                "backward", "up", "down", "straight", "curve"),
    "Body_VIP": ("arm", "chin", "foot", "feet", "face", "hand", "mouth", "leg", "waist", "eye", "knee",
                 "shoulder", "thigh"),
    "Obj_VIP": ("stair", "dumbbell", "chair", "window", "floor", "car", "ball", "handrail", "baseball",
                "basketball"),
    "Act_VIP": ("walk", "run", "swing", "pick", "bring", "kick", "put", "squat", "throw", "hop", "dance",
                "jump", "turn", "stumble", "dance", "stop", "sit", "lift", "lower", "raise", "wash", "stand",
                "kneel", "stroll", "rub", "bend", "balance", "flap", "jog", "shuffle", "lean", "rotate", "spin",
                "spread", "climb"),
    "Desc_VIP": ("slowly", "carefully", "fast", "careful", "slow", "quickly", "happy", "angry", "sad",
                 "happily", "angrily", "sadly"),
}
"""Words whose POS tag the evaluator replaces by a VIP category, checked in this order (docs/design.md §2.4)."""

OFFICIAL_DIMS = {"humanml3d": 263, "kit": 251}
"""Feature size per dataset; the movement encoder sees ``dim - 4``."""

_DATASET_DIR = {"humanml3d": "t2m", "kit": "kit"}
_WORD_DIM, _POS_DIM, _TEXT_HIDDEN, _MOTION_HIDDEN, _LATENT, _EMBED = 300, 15, 512, 1024, 512, 512


class _PlainUnpickler(pickle.Unpickler):
    """Unpickler for plain lists / dicts of str and numbers: any other class is refused (no code runs)."""

    _ALLOWED = {("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: the GloVe word files must hold only "
                                     "a list of words and a dict word -> index")


def _load_plain_pickle(path: Path):
    try:
        with open(path, "rb") as f:
            return _PlainUnpickler(io.BytesIO(f.read())).load()
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise EvaluatorError(f"cannot read {path}: {exc}") from exc


class WordVectorizer:
    """GloVe vectors and POS one-hots of ``word/POS`` tokens, as the standard evaluator reads them.

    Args:
        glove_dir: folder with ``<prefix>_data.npy`` (N, 300), ``<prefix>_words.pkl`` (list of N words) and
            ``<prefix>_idx.pkl`` (dict word -> row).
        prefix: ``"our_vab"``.

    A token whose word is in the vocabulary gets its vector and its POS one-hot (a VIP category when the
    word is in :data:`VIP_LISTS`, ``OTHER`` for a tag outside :data:`POS_ENUMERATOR`); an unknown word
    gets the ``unk`` vector and ``OTHER``.

    Raises:
        EvaluatorError: a missing file, an unsafe or malformed pickle, or no ``unk`` entry.
    """

    def __init__(self, glove_dir: str | os.PathLike, prefix: str = "our_vab") -> None:
        folder = Path(glove_dir).expanduser()
        paths = {k: folder / f"{prefix}_{k}" for k in ("data.npy", "words.pkl", "idx.pkl")}
        for p in paths.values():
            if not p.is_file():
                raise EvaluatorError(f"GloVe file {p} not found; pass the folder holding {prefix}_data.npy, "
                                     f"{prefix}_words.pkl and {prefix}_idx.pkl (checkpoints/glove of the "
                                     "evaluator release)")
        self.vectors = np.load(paths["data.npy"], allow_pickle=False).astype(np.float32)
        words = _load_plain_pickle(paths["words.pkl"])
        idx = _load_plain_pickle(paths["idx.pkl"])
        if self.vectors.ndim != 2 or self.vectors.shape[1] != _WORD_DIM:
            raise EvaluatorError(f"{paths['data.npy']} has shape {self.vectors.shape}; expected (N, {_WORD_DIM})")
        if not isinstance(idx, dict) or not isinstance(words, (list, tuple)):
            raise EvaluatorError(f"{paths['idx.pkl']} must hold a dict and {paths['words.pkl']} a list")
        self.index = {str(w): int(i) for w, i in idx.items()}
        bad = [w for w, i in self.index.items() if not 0 <= i < len(self.vectors)]
        if bad:
            raise EvaluatorError(f"{paths['idx.pkl']} points past the {len(self.vectors)} vectors (e.g. {bad[0]!r})")
        if "unk" not in self.index:
            raise EvaluatorError(f"{paths['idx.pkl']} has no 'unk' entry")
        self.words = list(words)
        self._vip = {}
        for category, listed in VIP_LISTS.items():
            for w in listed:
                self._vip.setdefault(w, category)

    def __len__(self) -> int:
        return len(self.vectors)

    def pos_category(self, token: str) -> str:
        """POS category of a ``word/POS`` token (see the class docstring)."""
        word, pos = _split_token(token)
        if word not in self.index:
            return "OTHER"
        if word in self._vip:
            return self._vip[word]
        return pos if pos in POS_ENUMERATOR else "OTHER"

    def __call__(self, token: str) -> tuple[np.ndarray, np.ndarray]:
        """``word/POS`` -> (word vector (300,), POS one-hot (15,))."""
        word, _ = _split_token(token)
        vec = self.vectors[self.index.get(word, self.index["unk"])]
        onehot = np.zeros(_POS_DIM, np.float32)
        onehot[POS_ENUMERATOR[self.pos_category(token)]] = 1.0
        return vec, onehot

    def encode(self, tokens: Sequence[Sequence[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        """B token lists of equal length L -> (word_emb (B, L, 300), pos_ohot (B, L, 15)) float tensors.

        Raises:
            EvaluatorError: token lists of different lengths (pad them with ``unk/OTHER`` first).
        """
        if len({len(t) for t in tokens}) > 1:
            raise EvaluatorError("token lists must share one length; the evaluation loader pads them to 22")
        pairs = [[self(tok) for tok in seq] for seq in tokens]
        words = torch.from_numpy(np.array([[p[0] for p in seq] for seq in pairs], np.float32))
        pos = torch.from_numpy(np.array([[p[1] for p in seq] for seq in pairs], np.float32))
        return words, pos


def _split_token(token: str) -> tuple[str, str]:
    if "/" not in token:
        return token, "OTHER"
    word, pos = token.rsplit("/", 1)
    return word, pos


class OfficialTextEncoder(SequenceEncoder):
    """The evaluator's text encoder: word (300) + Linear(POS 15 -> 300), then a packed BiGRU and head."""

    def __init__(self) -> None:
        super().__init__(_WORD_DIM, _TEXT_HIDDEN, _TEXT_HIDDEN, _EMBED)
        self.pos_emb = nn.Linear(_POS_DIM, _WORD_DIM)

    def forward(self, word_emb: torch.Tensor, pos_ohot: torch.Tensor, sent_len: torch.Tensor) -> torch.Tensor:
        """word_emb (B, L, 300), pos_ohot (B, L, 15), sent_len (B,) tokens -> (B, 512)."""
        return super().forward(word_emb + self.pos_emb(pos_ohot), sent_len)


def checkpoint_path(checkpoints: str | os.PathLike, dataset: str = "humanml3d") -> Path:
    """``finest.tar`` given either its path or the release's ``checkpoints`` folder.

    Raises:
        EvaluatorError: nothing found at either place.
    """
    p = Path(checkpoints).expanduser()
    if p.is_file():
        return p
    candidate = p / _DATASET_DIR[dataset] / "text_mot_match" / "model" / "finest.tar"
    if candidate.is_file():
        return candidate
    raise EvaluatorError(f"no evaluator weights at {p}: pass text_mot_match/model/finest.tar or the checkpoints "
                         f"folder that holds {_DATASET_DIR[dataset]}/text_mot_match/model/finest.tar")


class OfficialT2MEvaluator(nn.Module):
    """The standard evaluator (Guo et al. 2022) with the exact parameter layout of ``finest.tar``.

    Args:
        dataset: ``"humanml3d"`` (263-d) or ``"kit"`` (251-d).
        mean, std: the evaluator's (D,) statistics (``Comp_v6_KLD005/meta/mean.npy``, ``std.npy``).
        vectorizer: a :class:`WordVectorizer` (needed for :meth:`text_embeddings`).

    Submodules ``movement_encoder``, ``text_encoder``, ``motion_encoder`` take the checkpoint's sub-dicts
    with ``load_state_dict(strict=True)``.

    Raises:
        EvaluatorError: unknown dataset or statistics of the wrong size.
    """

    def __init__(self, dataset: str = "humanml3d", mean=None, std=None, vectorizer: WordVectorizer | None = None):
        super().__init__()
        if dataset not in OFFICIAL_DIMS:
            raise EvaluatorError(f"dataset must be one of {sorted(OFFICIAL_DIMS)}, got {dataset!r}")
        self.dataset, self.dim = dataset, OFFICIAL_DIMS[dataset]
        self.movement_encoder = MovementEncoder(self.dim - 4, _LATENT, _LATENT, 0.2)
        self.motion_encoder = SequenceEncoder(_LATENT, _MOTION_HIDDEN, _MOTION_HIDDEN, _EMBED)
        self.text_encoder = OfficialTextEncoder()
        mean = np.zeros(self.dim) if mean is None else np.asarray(mean, np.float64).reshape(-1)
        std = np.ones(self.dim) if std is None else np.asarray(std, np.float64).reshape(-1)
        if mean.shape != (self.dim,) or std.shape != (self.dim,):
            raise EvaluatorError(f"the {dataset} evaluator needs ({self.dim},) mean/std, got {mean.shape}/{std.shape}")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(np.where(std <= 1e-8, 1.0, std), dtype=torch.float32))
        self.vectorizer = vectorizer
        self.eval()

    name = "official-t2m-evaluator"

    def load_checkpoint(self, path: str | os.PathLike) -> int:
        """Load ``finest.tar`` with ``torch.load(weights_only=True)``; returns its ``epoch`` (-1 if absent).

        Raises:
            EvaluatorError: unreadable file, a missing sub-dict, or keys / shapes that do not match the layout.
        """
        path = Path(path)
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a pickle that needs classes, a truncated file, ...
            raise EvaluatorError(f"cannot load {path} with weights_only=True: {exc}") from exc
        if not isinstance(ckpt, Mapping):
            raise EvaluatorError(f"{path} holds a {type(ckpt).__name__}; expected a dict of sub-dicts")
        for name in ("movement_encoder", "text_encoder", "motion_encoder"):
            if name not in ckpt:
                raise EvaluatorError(f"{path} has no {name!r} entry (keys: {sorted(ckpt)}); is it text_mot_match's "
                                     "finest.tar?")
            module = getattr(self, name)
            own = module.state_dict()
            theirs = ckpt[name]
            missing = sorted(set(own) - set(theirs))
            extra = sorted(set(theirs) - set(own))
            shapes = [f"{k} {tuple(theirs[k].shape)} != {tuple(v.shape)}" for k, v in own.items()
                      if k in theirs and tuple(theirs[k].shape) != tuple(v.shape)]
            if missing or extra or shapes:
                raise EvaluatorError(f"{path}: {name} does not fit the {self.dataset} evaluator layout "
                                     f"(missing {missing[:4]}, unexpected {extra[:4]}, shapes {shapes[:3]}); "
                                     "use the checkpoint of this dataset")
            module.load_state_dict(theirs, strict=True)
        epoch = ckpt.get("epoch", -1)
        return int(epoch) if isinstance(epoch, (int, float)) or torch.is_tensor(epoch) else -1

    @classmethod
    def from_files(cls, checkpoint: str | os.PathLike, glove_dir: str | os.PathLike | None,
                   mean_path: str | os.PathLike | None = None, std_path: str | os.PathLike | None = None, *,
                   dataset: str = "humanml3d") -> "OfficialT2MEvaluator":
        """Build from the release files (see the module docstring).

        Args:
            checkpoint: ``finest.tar`` or the ``checkpoints`` folder.
            glove_dir: folder of the ``our_vab_*`` files (None: only motion embeddings work).
            mean_path, std_path: the evaluator's statistics; None = ``<checkpoints>/<t2m|kit>/Comp_v6_KLD005/meta/``
                when ``checkpoint`` is the folder.

        Raises:
            EvaluatorError: a file is missing or does not fit.
        """
        if dataset not in OFFICIAL_DIMS:
            raise EvaluatorError(f"dataset must be one of {sorted(OFFICIAL_DIMS)}, got {dataset!r}")
        if mean_path is None or std_path is None:
            meta = Path(checkpoint).expanduser() / _DATASET_DIR[dataset] / "Comp_v6_KLD005" / "meta"
            mean_path, std_path = mean_path or meta / "mean.npy", std_path or meta / "std.npy"
        stats = []
        for p in (mean_path, std_path):
            if not Path(p).is_file():
                raise EvaluatorError(f"evaluator statistics {p} not found; pass the evaluator's mean.npy and std.npy "
                                     "(Comp_v6_KLD005/meta), not the dataset's Mean.npy/Std.npy")
            stats.append(np.load(p, allow_pickle=False))
        vectorizer = WordVectorizer(glove_dir) if glove_dir is not None else None
        model = cls(dataset, stats[0], stats[1], vectorizer)
        model.load_checkpoint(checkpoint_path(checkpoint, dataset))
        return model

    def train(self, mode: bool = True) -> "OfficialT2MEvaluator":
        """The evaluator is frozen: it always stays in eval mode (dropout off)."""
        return super().train(False)

    @torch.no_grad()
    def encode_motion(self, features: torch.Tensor, lengths) -> torch.Tensor:
        """De-normalised (B, T, D) features, lengths (B,) frames -> (B, 512) raw embeddings."""
        if features.ndim != 3 or features.shape[-1] != self.dim:
            raise EvaluatorError(f"the {self.dataset} evaluator takes (B, T, {self.dim}) features, got "
                                 f"{tuple(features.shape)}")
        lengths = torch.as_tensor(lengths, dtype=torch.long).reshape(-1)
        if lengths.shape[0] != features.shape[0] or (lengths < 4).any() or (lengths > features.shape[1]).any():
            raise EvaluatorError(f"need one length in [4, {features.shape[1]}] frames per motion, "
                                 f"got {lengths.tolist()[:8]}")
        features = _on_canvas(features, lengths, 196)  # the reference loader pads to 196 frames
        x = (features.float().to(self.mean.device) - self.mean) / self.std
        # The reference loader zero-pads in normalised space, and the last valid conv steps see up to 6
        # frames past the length, so the padding must be zeros here too, whatever the caller padded with.
        x = x * (torch.arange(x.shape[1], device=x.device)[None, :] < lengths.to(x.device)[:, None])[..., None]
        steps = self.movement_encoder(x[..., :-4])  # (B, T/4, 512)
        valid = _valid_steps(lengths.to(steps.device), 4, steps.shape[1])
        return self.motion_encoder(steps, valid)

    @torch.no_grad()
    def encode_text(self, word_emb: torch.Tensor, pos_ohot: torch.Tensor, sent_len) -> torch.Tensor:
        """(B, L, 300) word vectors, (B, L, 15) POS one-hots, (B,) lengths -> (B, 512) raw embeddings."""
        sent_len = torch.as_tensor(sent_len, dtype=torch.long).reshape(-1)
        dev = self.mean.device
        return self.text_encoder(word_emb.float().to(dev), pos_ohot.float().to(dev), sent_len)

    def text_embeddings(self, batch: Mapping) -> torch.Tensor:
        """Protocol hook: embeddings of ``batch["tokens"]`` (B lists of ``word/POS``) and ``batch["sent_len"]``.

        Raises:
            EvaluatorError: no GloVe files were given.
        """
        if self.vectorizer is None:
            raise EvaluatorError("text embeddings need the GloVe files: build with glove_dir=...")
        words, pos = self.vectorizer.encode(batch["tokens"])
        return self.encode_text(words, pos, batch["sent_len"])

    def motion_embeddings(self, features: torch.Tensor, lengths) -> torch.Tensor:
        """Protocol hook: :meth:`encode_motion`."""
        return self.encode_motion(features, lengths)
