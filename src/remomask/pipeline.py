"""Text -> motion, end to end: :class:`ReMoMaskPipeline` (spec 4.7, 7, 8).

One call runs the whole cascade for B prompts::

    text --frozen text encoder--> sentence (B, Dt), token features
         --retriever text side + database search (top-k, text -> motion)--> R_m, R_t (B, k, E)
    [no duration given] --length estimator--> tokens (frames / 4)
    --masked transformer: iterative masked decoding with RAG-CFG (steps, cond_scale)--> base ids (B, n, J')
    --residual transformer (its own CFG scale)--> ids (B, n, J', Q)
    --tokenizer.decode--> normalised features --de-normalise--> features (B, T, 263)
    --joints_from_features (recover_from_ric)--> joints (B, T, 22, 3) metres, 20 fps

A trained pipeline is one folder (HuggingFace convention), written by :meth:`ReMoMaskPipeline.save_pretrained`::

    pipeline.json            {"format": "remomask-pipeline", "version": 1, "components": {...}, "text_encoder": ...}
    README.md                model card (components, data, training, metrics, licence)
    tokenizer/               MotionTokenizer folder (with its normalisation statistics)
    retriever/               PartRetriever folder          (absent for a no-retrieval model)
    database/                RetrievalDatabase folder       (absent for a no-retrieval model)
    mask_transformer/        MaskTransformer folder
    residual_transformer/    ResidualTransformer folder     (optional: base layer only without it)
    length_estimator/        LengthEstimator folder         (optional: then a duration is required)

Quick use::

    from remomask import ReMoMaskPipeline
    pipe = ReMoMaskPipeline.from_pretrained("runs/pipeline_cpu")      # no argument: the bundled model
    out = pipe(["a person waves with the right hand"], seconds=4.0, seed=0)
    out.joints.shape, out.lengths, out.retrieved[0][0]["caption"]
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ._pretrained import read_format_json, replaced_folder

__all__ = [
    "DEFAULT_MODEL_DIR",
    "FPS",
    "MIN_SECONDS",
    "MAX_SECONDS",
    "GenerationOutput",
    "ReMoMaskPipeline",
    "PipelineMotionSource",
    "EVAL_REQUEST_SIZE",
    "load_motion_source",
    "frames_from_request",
]

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "assets" / "models" / "default"
"""The bundled default pipeline folder (shipped by the release)."""
FORMAT = "remomask-pipeline"
VERSION = 1
FPS = 20
"""Frames per second of generated motion (HumanML3D)."""
UNIT = 4
"""Frames per token."""
MIN_SECONDS, MAX_SECONDS = 2.0, 9.8
"""Allowed motion durations (40 to 196 frames, the range of the training crops)."""
MIN_FRAMES, MAX_FRAMES = 40, 196
DEFAULT_SAMPLING = {"steps": 10, "cond_scale": 4.0, "residual_cond_scale": 5.0}
"""Sampling settings a model folder may override in ``pipeline.json`` ("sampling"; chosen on ``val``)."""

_COMPONENTS = ("tokenizer", "retriever", "database", "mask_transformer", "residual_transformer", "length_estimator")
_ASSEMBLE_HINT = ("train the components (remomask train tokenizer / retriever / mask-transformer / "
                  "residual-transformer / length-estimator) and put them in one folder with "
                  "`python -m remomask.generation.commands assemble --out DIR`, then pass that folder")


@dataclass
class GenerationOutput:
    """Result of one :class:`ReMoMaskPipeline` call (B = prompts x num_samples, prompt-major order).

    Attributes:
        texts: B prompts.
        joints: (B, T, 22, 3) float32 joint positions in metres (Y up, 20 fps); zeros after each length.
        features: (B, T, 263) float32 de-normalised HumanML3D features; zeros after each length.
        lengths: (B,) int64 frames of each motion (a multiple of 4, within the requested length).
        retrieved: per sample, the retrieved database entries (``entry_id``, ``motion_id``, ``caption``,
            ``score``), best first; empty lists without retrieval.
        length_source: per sample ``"given"`` or ``"estimated"`` (length estimator).
        token_ids: (B, n, J', Q) int64 generated token ids, -1 on padding rows.
        settings: the sampling settings used, including the seed.
    """

    texts: list
    joints: np.ndarray
    features: np.ndarray
    lengths: np.ndarray
    retrieved: list
    length_source: list
    token_ids: np.ndarray
    settings: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def seconds(self) -> np.ndarray:
        """(B,) float durations in seconds."""
        return self.lengths / FPS

    def sample(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(joints (L, 22, 3), features (L, 263))`` of sample ``i`` cut to its length."""
        n = int(self.lengths[i])
        return self.joints[i, :n], self.features[i, :n]


def frames_from_request(count: int, seconds=None, frames=None, *, min_frames: int = MIN_FRAMES) -> list[int | None]:
    """Requested frames per prompt from ``seconds`` or ``frames`` (a scalar or one value per prompt; None
    entries mean "estimate"). ``min_frames`` lowers the 40-frame floor of ``frames`` (evaluation only: the
    embedded dataset holds 1-2 s clips, and the protocol generates at the ground-truth length).

    Raises:
        ValueError: both given, wrong list length, non-numbers, or a length outside 2-9.8 s (40-196 frames).
    """
    if seconds is not None and frames is not None:
        raise ValueError("give the duration as seconds or as frames, not both")
    values = seconds if seconds is not None else frames
    if values is None:
        return [None] * count
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) and not hasattr(values, "__len__"):
        values = [values] * count
    values = list(values)
    if len(values) != count:
        raise ValueError(f"give one duration per prompt ({count}), got {len(values)}")
    out: list[int | None] = []
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
            continue
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"duration {v!r} of prompt {i} is not a number") from None
        if seconds is not None:
            if not (MIN_SECONDS - 1e-9 <= x <= MAX_SECONDS + 1e-9) or math.isnan(x):
                raise ValueError(f"length {x:g} s of prompt {i} is outside {MIN_SECONDS:g}-{MAX_SECONDS:g} s; "
                                 "choose a duration in that range")
            out.append(int(round(x * FPS)))
        else:
            if x != int(x) or not min_frames <= x <= MAX_FRAMES:
                raise ValueError(f"length {v!r} frames of prompt {i} is outside {min_frames}-{MAX_FRAMES} frames "
                                 f"({MIN_SECONDS:g}-{MAX_SECONDS:g} s at {FPS} fps); choose a whole number in "
                                 "that range")
            out.append(int(x))
    return out


def _check_texts(texts) -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, Sequence) or not texts:
        raise ValueError("give at least one prompt (a non-empty sentence such as 'a person walks forward')")
    out = []
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            raise ValueError(f"prompt {i} is empty; give a sentence such as 'a person walks forward'")
        out.append(t.strip())
    return out


def _as_path(x) -> Path | None:
    return Path(x) if isinstance(x, (str, os.PathLike)) else None


def _read_text(path: Path) -> str | None:
    return path.read_text() if path.is_file() else None


class ReMoMaskPipeline:
    """Text-to-motion generation with the ReMoMask cascade (module docstring; spec 4.7, 7, 8).

    Args:
        tokenizer: :class:`~remomask.tokenizer.MotionTokenizer` (its statistics de-normalise the output).
        mask_transformer: :class:`~remomask.generation.MaskTransformer`.
        residual_transformer: :class:`~remomask.generation.ResidualTransformer` or None (base layer only).
        length_estimator: :class:`~remomask.generation.LengthEstimator` or None (durations required).
        retriever, database: :class:`~remomask.retrieval.PartRetriever` and its
            :class:`~remomask.retrieval.RetrievalDatabase`; required when the masked transformer uses retrieval.
        text_encoder: frozen text encoder; None = the retriever's, or ``text_encoder_name`` without one.
        text_encoder_name: encoder loaded when there is neither ``text_encoder`` nor a retriever (``minilm``).
        device: ``"cpu"`` (default) or ``"cuda"``.

    Raises:
        ValueError: components that do not fit together (vocabulary, columns, text width, retrieval width),
            or a retrieval model without retriever / database.
    """

    def __init__(self, tokenizer, mask_transformer, residual_transformer=None, length_estimator=None, *,
                 retriever=None, database=None, text_encoder=None, text_encoder_name: str = "minilm",
                 device="cpu") -> None:
        from .generation.data import ConditionEncoder

        self.tokenizer, self.mask_transformer = tokenizer, mask_transformer
        self.residual_transformer, self.length_estimator = residual_transformer, length_estimator
        mc = mask_transformer.config
        if not mc.use_retrieval:
            retriever = database = None
        elif retriever is None or database is None:
            raise ValueError("this masked transformer was trained with retrieval: it needs the retriever and its "
                             "database (pass retriever= and database=)")
        self.retriever, self.database = retriever, database
        if text_encoder is None:
            if retriever is not None:
                text_encoder = retriever.text_encoder
            else:
                from .text import load_text_encoder

                text_encoder = load_text_encoder(text_encoder_name)
        self.text_encoder = text_encoder
        self._check_fit()
        self.conditions = ConditionEncoder(text_encoder, retriever, database, k=mc.retrieval_k)
        self._readme: dict[str, str | None] = {}
        self.sampling_defaults: dict[str, float] = dict(DEFAULT_SAMPLING)
        self.device = None
        self.to(device)

    # ---- consistency ---------------------------------------------------------------------------------------
    def _check_fit(self) -> None:
        tok, mc = self.tokenizer, self.mask_transformer.config
        codes = max(tok.config.num_codes, tok.config.num_codes_1d) if tok.dual else tok.config.num_codes
        if (mc.num_codes, mc.num_columns) != (codes, tok.num_columns):
            raise ValueError(f"the masked transformer predicts {mc.num_codes} codes x {mc.num_columns} columns but "
                             f"the tokenizer has {codes} x {tok.num_columns}; they come from different runs")
        dim = int(self.text_encoder.dim)
        parts = [("masked transformer", mc.text_dim)]
        if self.residual_transformer is not None:
            rc = self.residual_transformer.config
            if ((rc.num_codes, rc.num_columns) != (mc.num_codes, mc.num_columns)
                    or rc.num_quantizers > tok.num_quantizers):
                raise ValueError(f"the residual transformer ({rc.num_codes} codes, {rc.num_columns} columns, "
                                 f"Q={rc.num_quantizers}) does not fit the tokenizer ({codes}, {tok.num_columns}, "
                                 f"Q={tok.num_quantizers})")
            parts.append(("residual transformer", rc.text_dim))
        if self.length_estimator is not None:
            parts.append(("length estimator", self.length_estimator.config.text_dim))
        for name, want in parts:
            if want != dim:
                raise ValueError(f"the {name} takes {want}-d text embeddings but the text encoder "
                                 f"({getattr(self.text_encoder, 'name', '?')}) makes {dim}-d ones")
        if self.database is not None and self.database.dim != mc.retrieval_dim:
            raise ValueError(f"the database holds {self.database.dim}-d embeddings, the masked transformer takes "
                             f"{mc.retrieval_dim}-d ones")

    # ---- loading and saving ----------------------------------------------------------------------------------
    @classmethod
    def from_components(cls, *, tokenizer, mask_transformer, residual_transformer=None, length_estimator=None,
                        retriever=None, database=None, device="cpu", text_encoder_name: str = "minilm"
                        ) -> "ReMoMaskPipeline":
        """Build a pipeline from model objects or their folders (paths are loaded).

        ``database`` None with a retriever folder means ``<retriever>/database``. A retriever is loaded only
        when the masked transformer uses retrieval.

        Raises:
            FileNotFoundError: a folder that does not exist. CheckpointError / DatabaseError /
            RetrieverLoadError: corrupt or mismatched files. ValueError: components that do not fit.
        """
        from .generation import LengthEstimator, MaskTransformer, ResidualTransformer
        from .tokenizer import MotionTokenizer

        readme = {}

        def load(obj, loader, name):
            path = _as_path(obj)
            if path is None:
                return obj
            if not path.is_dir():
                raise FileNotFoundError(f"{name} folder {path} does not exist; {_ASSEMBLE_HINT}")
            readme[name] = _read_text(path / "README.md")
            return loader(path)

        tok = load(tokenizer, lambda p: MotionTokenizer.from_pretrained(p), "tokenizer")
        mask = load(mask_transformer, lambda p: MaskTransformer.from_pretrained(p), "mask_transformer")
        res = None if residual_transformer is None else load(
            residual_transformer, lambda p: ResidualTransformer.from_pretrained(p), "residual_transformer")
        length = None if length_estimator is None else load(
            length_estimator, lambda p: LengthEstimator.from_pretrained(p), "length_estimator")
        if mask.config.use_retrieval:
            from .retrieval import PartRetriever, RetrievalDatabase

            if retriever is None:
                raise ValueError("this masked transformer uses retrieval: give the retriever folder")
            ret = load(retriever, lambda p: PartRetriever.from_pretrained(p), "retriever")
            if database is None:
                rpath = _as_path(retriever)
                if rpath is None:
                    raise ValueError("give the retrieval database (or the retriever as a folder holding database/)")
                database = rpath / "database"
            db = RetrievalDatabase.load(database, model=ret) if _as_path(database) is not None else database
        else:
            ret = db = None
        name = (mask.card or {}).get("text_encoder", text_encoder_name) if hasattr(mask, "card") else text_encoder_name
        pipe = cls(tok, mask, res, length, retriever=ret, database=db, text_encoder_name=name, device=device)
        pipe._readme = readme
        return pipe

    @classmethod
    def from_pretrained(cls, directory=None, *, device="cpu") -> "ReMoMaskPipeline":
        """Load a pipeline folder written by :meth:`save_pretrained`; None = the bundled default model.

        Raises:
            FileNotFoundError: no such folder, or no bundled model yet (the message says how to make one).
            ValueError: not a pipeline folder, another format version, or corrupt / mismatched components.
        """
        folder = DEFAULT_MODEL_DIR if directory is None else Path(directory)
        meta_path = folder / "pipeline.json"
        if not meta_path.is_file():
            if directory is None:
                raise FileNotFoundError(f"no bundled default model at {folder} (the release ships it); "
                                        f"{_ASSEMBLE_HINT} with --model DIR / from_pretrained(DIR)")
            if not folder.is_dir():
                raise FileNotFoundError(f"model folder {folder} does not exist; pass a folder written by "
                                        "ReMoMaskPipeline.save_pretrained")
            raise FileNotFoundError(f"{meta_path} is missing: {folder} is not a remomask pipeline folder; "
                                    f"{_ASSEMBLE_HINT}")
        meta = read_format_json(meta_path, FORMAT, VERSION, ValueError,
                                invalid="{path} is not valid JSON ({exc}); save the pipeline again",
                                wrong_format="{path} is not a remomask pipeline description",
                                wrong_version="{path} has format version {got}; this remomask reads {version}")
        comp = meta.get("components", {})

        def part(name):
            sub = comp.get(name)
            return None if sub is None else folder / sub

        if part("tokenizer") is None or part("mask_transformer") is None:
            raise ValueError(f"{meta_path} names no tokenizer or masked transformer")
        pipe = cls.from_components(tokenizer=part("tokenizer"), mask_transformer=part("mask_transformer"),
                                   residual_transformer=part("residual_transformer"),
                                   length_estimator=part("length_estimator"), retriever=part("retriever"),
                                   database=part("database"), device=device,
                                   text_encoder_name=meta.get("text_encoder", "minilm"))
        pipe.set_sampling_defaults(**(meta.get("sampling") or {}))
        return pipe

    def set_sampling_defaults(self, **values) -> "ReMoMaskPipeline":
        """Change the settings used when a call does not give them (saved in ``pipeline.json``).

        Args:
            **values: any of ``steps`` (int >= 1), ``cond_scale``, ``residual_cond_scale`` (floats >= 0).

        Returns:
            self.

        Raises:
            ValueError: an unknown name or a bad value.
        """
        for name, value in values.items():
            if name not in DEFAULT_SAMPLING:
                raise ValueError(f"unknown sampling default {name!r}; choose from {sorted(DEFAULT_SAMPLING)}")
            if name == "steps" and (int(value) != value or value < 1):
                raise ValueError(f"steps must be an integer >= 1, got {value!r}")
            if name != "steps" and not float(value) >= 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
            self.sampling_defaults[name] = int(value) if name == "steps" else float(value)
        return self

    def save_pretrained(self, directory, *, db_dtype: str = "float32") -> Path:
        """Write the pipeline folder (module docstring). The folder is replaced atomically.

        Args:
            directory: destination folder (replaced when it exists).
            db_dtype: storage precision of the retrieval database embeddings (``"float32"`` or
                ``"float16"``; see :meth:`remomask.retrieval.database.RetrievalDatabase.save`).

        Returns:
            The folder path.
        """
        folder = Path(directory)
        with replaced_folder(folder, mode=0o755) as work:
            comp = {name: None for name in _COMPONENTS}
            self.tokenizer.save_pretrained(work / "tokenizer", card=getattr(self.tokenizer, "card", None))
            comp["tokenizer"] = "tokenizer"
            for name in ("mask_transformer", "residual_transformer", "length_estimator"):
                model = getattr(self, name)
                if model is not None:
                    model.save_pretrained(work / name, card=getattr(model, "card", None))
                    comp[name] = name
            if self.retriever is not None:
                self.retriever.save_pretrained(work / "retriever", card=self._readme.get("retriever"))
                self.database.save(work / "database", dtype=db_dtype)
                comp["retriever"], comp["database"] = "retriever", "database"
            meta = {"format": FORMAT, "version": VERSION, "components": comp,
                    "text_encoder": getattr(self.text_encoder, "name", "minilm"), "fps": FPS,
                    "durations_seconds": [MIN_SECONDS, MAX_SECONDS], "sampling": dict(self.sampling_defaults)}
            (work / "pipeline.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
            (work / "README.md").write_text(self.model_card())
        return folder

    def model_card(self) -> str:
        """Markdown model card: components, training data and commands, validation metrics, licence."""
        mc = self.mask_transformer.config
        lines = ["# remomask text-to-motion pipeline (ReMoMask)", "",
                 "Retrieval-augmented masked text-to-motion generation, re-implemented from the ReMoMask paper "
                 "(spec sections 3-8): a 2D residual VQ-VAE tokenizer, a part-level retriever and its database, a "
                 "masked transformer with SSTA and RAG classifier-free guidance, a residual transformer and a "
                 "length estimator. Output: HumanML3D features and 22 joints in metres at 20 fps, 2-9.8 s.", "",
                 "## Components", "",
                 f"- text encoder: frozen `{getattr(self.text_encoder, 'name', '?')}` ({self.text_encoder.dim}-d)",
                 f"- tokenizer: {self.tokenizer.config.num_quantizers} layers x {self.tokenizer.config.num_codes} "
                 f"codes, {self.tokenizer.num_columns} token columns",
                 f"- masked transformer: SSTA `{mc.ssta}`, latent {mc.latent_dim}, {mc.ssta_layers} SSTA + "
                 f"{mc.joint_layers} joint + {mc.time_layers} time layers, retrieval "
                 + (f"on (k = {mc.retrieval_k})" if mc.use_retrieval else "off (MoMask-style baseline)")]
        if self.residual_transformer is not None:
            rc = self.residual_transformer.config
            lines.append(f"- residual transformer: latent {rc.latent_dim}, {rc.layers} + {rc.joint_layers} + "
                         f"{rc.time_layers} layers, layers 1..{rc.num_quantizers - 1}")
        else:
            lines.append("- residual transformer: none (base layer only)")
        lines.append("- length estimator: " + ("yes" if self.length_estimator is not None else
                                               "none (a duration must be given)"))
        if self.database is not None:
            lines.append(f"- retrieval database: {len(self.database)} entries of {self.database.num_motions} motions")
        lines += ["", "## Training and validation", ""]
        for name in ("mask_transformer", "residual_transformer", "length_estimator"):
            card = getattr(getattr(self, name), "card", None) or {}
            if not card:
                continue
            lines.append(f"**{name.replace('_', ' ')}**: " + ", ".join(
                f"{k} {v}" for k, v in card.items() if k in ("preset", "iterations", "batch_size", "selected_step")))
            if card.get("command"):
                lines.append(f"    {card['command']}")
            if card.get("dataset"):
                lines.append(f"- data: {card['dataset']}")
            for split, metrics in (card.get("metrics") or {}).items():
                lines.append(f"- {split}: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                                      for k, v in metrics.items()))
            lines.append("")
        d = self.sampling_defaults
        lines += ["## Sampling defaults", "",
                  f"{d['steps']} decoding steps, cond_scale {d['cond_scale']:g} (base layer), "
                  f"{d['residual_cond_scale']:g} (residual layers), top-k 10 % of the codes, "
                  "temperature 1, categorical sampling for the base layer, Gumbel for the residual layers (spec 7, 9).",
                  "", "## Licence", "",
                  "Code MIT. Weights trained on the bundled remomask dataset (Bandai-Namco Research Motiondataset, "
                  "CC BY-NC 4.0; HDM05, CC BY-SA 3.0): non-commercial use. The frozen text encoder "
                  "all-MiniLM-L6-v2 is Apache-2.0.", ""]
        return "\n".join(lines)

    # ---- device ------------------------------------------------------------------------------------------------
    def to(self, device) -> "ReMoMaskPipeline":
        """Move every model to ``device`` (``"cpu"`` / ``"cuda"``); returns self.

        Raises:
            ValueError: CUDA asked for but not available.
        """
        import torch

        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for but torch sees no CUDA GPU; use --device cpu")
        for m in (self.tokenizer, self.mask_transformer, self.residual_transformer, self.length_estimator,
                  self.retriever):
            if m is not None:
                m.to(dev).eval()
        self.text_encoder.to(dev)
        self.device = dev
        return self

    # ---- generation --------------------------------------------------------------------------------------------
    def __call__(self, texts, seconds=None, frames=None, *, num_samples: int = 1, seed: int | None = None,
                 generator=None, steps: int | None = None, cond_scale: float | None = None, text_scale: float = 0.0,
                 retrieval_scale: float = 0.0, temperature: float = 1.0, top_k: int | None = None,
                 gumbel: bool = False, residual_cond_scale: float | None = None, residual_top_k: int | None = None,
                 residual_temperature: float = 1.0, length_mode: str = "sample", use_retrieval: bool = True,
                 batch_size: int = 32, length_batching: bool = True, precision: str | None = None,
                 min_frames: int = MIN_FRAMES) -> GenerationOutput:
        """Generate motions for prompts.

        Args:
            texts: one prompt or a list of B prompts (non-empty sentences).
            seconds: duration (2-9.8 s), one per prompt or one for all; None entries = estimate.
            frames: the same in frames at 20 fps (40-196); give ``seconds`` or ``frames``, not both.
                Each motion has ``4 * floor(frames / 4)`` frames (whole tokens), never more than asked.
            num_samples: motions per prompt (output order: prompt-major).
            seed: int seed (None = a fresh one, reported in ``settings["seed"]``); generator: a
                ``torch.Generator`` on the device instead (then ``settings["seed"]`` is None).
            steps, cond_scale, text_scale, retrieval_scale, temperature, top_k, gumbel: base-layer sampling
                (spec 5.5, 7; see :class:`~remomask.generation.SamplingConfig`).
            residual_cond_scale, residual_top_k, residual_temperature: residual-layer sampling (spec 6.4).
                ``steps``, ``cond_scale`` and ``residual_cond_scale`` left at None take the model's
                :attr:`sampling_defaults` (``pipeline.json``; else 10, 4 and 5 as in the paper).
            length_mode: ``"sample"`` or ``"argmax"`` for the length estimator.
            use_retrieval: False drops the retrieval input (text-only conditional generation).
            batch_size: largest forward batch; motions are grouped by length so that little compute goes
                to padding (:func:`~remomask.generation.batching.plan_length_batches`).
            length_batching: False keeps the request order in batches of ``batch_size`` (each padded to
                its longest motion); only the speed and the random numbers each motion draws differ.
            precision: ``"fp32"`` or ``"bf16"`` (autocast); None = bf16 on CUDA, fp32 on the CPU.
            min_frames: shortest ``frames`` accepted (40 = 2 s). The evaluation protocol lowers it to
                :data:`UNIT` to generate at the ground-truth length of the dataset's 1-2 s clips; the
                user-facing CLI keeps 2 s.

        Returns:
            :class:`GenerationOutput`.

        Raises:
            ValueError: empty prompts, durations outside 2-9.8 s, no duration without a length estimator, bad
                sampling settings.
        """
        import torch

        from .data.features import joints_from_features
        from .generation import SamplingConfig, generate_tokens
        from .generation.batching import plan_length_batches

        texts = _check_texts(texts)
        if not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be an integer >= 1, got {num_samples!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if length_mode not in ("sample", "argmax"):
            raise ValueError(f"length_mode must be 'sample' or 'argmax', got {length_mode!r}")
        if not UNIT <= min_frames <= MIN_FRAMES:
            raise ValueError(f"min_frames must be in {UNIT}-{MIN_FRAMES}, got {min_frames}")
        requested = frames_from_request(len(texts), seconds, frames, min_frames=min_frames)
        if any(r is None for r in requested) and self.length_estimator is None:
            raise ValueError("this pipeline has no length estimator: give the duration (seconds= or frames=)")
        d = self.sampling_defaults
        steps = d["steps"] if steps is None else steps
        cond_scale = d["cond_scale"] if cond_scale is None else cond_scale
        residual_cond_scale = d["residual_cond_scale"] if residual_cond_scale is None else residual_cond_scale
        sampling = SamplingConfig(steps=steps, cond_scale=cond_scale, text_scale=text_scale,
                                  retrieval_scale=retrieval_scale, top_k=top_k, temperature=temperature,
                                  gumbel=gumbel, residual_cond_scale=residual_cond_scale,
                                  residual_top_k=residual_top_k, residual_temperature=residual_temperature)
        precision = precision or ("bf16" if self.device.type == "cuda" else "fp32")
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
        if generator is None:
            seed = secrets.randbelow(2 ** 31) if seed is None else int(seed)
            generator = torch.Generator(device=self.device).manual_seed(seed)
        else:
            seed = None
        use_r = bool(use_retrieval and self.retriever is not None)

        all_texts = [t for t in texts for _ in range(num_samples)]
        all_req = [r for r in requested for _ in range(num_samples)]
        b = len(all_texts)
        # 1. conditions and lengths, in request order (text encoding and retrieval in chunks of batch_size)
        sentence, retrieval, tokens, retrieved = self._conditions(all_texts, all_req, batch_size, generator,
                                                                  length_mode, use_r)
        # 2. token generation and decoding in batches of similar length (generation/batching.py)
        n_max = int(tokens.max())
        d = self.tokenizer.config.feature_dim
        feats = np.zeros((b, n_max * UNIT, d), dtype=np.float32)
        ids = None
        groups = (plan_length_batches(tokens.tolist(), batch_size) if length_batching else
                  [list(range(s, min(b, s + batch_size))) for s in range(0, b, batch_size)])
        for group in groups:
            idx = torch.tensor(group, dtype=torch.long)
            with torch.no_grad():
                retr = None if retrieval is None else retrieval.take(idx)
                with self._autocast(precision):
                    gids = generate_tokens(self.mask_transformer, self.residual_transformer,
                                           sentence[idx.to(self.device)], tokens[idx].to(self.device), retr,
                                           config=sampling, generator=generator)
                # decode every motion at its own length (no trailing padding in the decoder's receptive
                # field), so its features do not depend on the other prompts of the call
                group_len = tokens[idx]
                for n_tok in torch.unique(group_len).tolist():
                    sel = (group_len == n_tok).nonzero().flatten()
                    motion = self.tokenizer.decode(gids[sel.to(gids.device), :n_tok]).float()  # (m, 4n, D)
                    rows = [group[i] for i in sel.tolist()]
                    feats[rows, : n_tok * UNIT] = self.tokenizer.denormalize(motion).cpu().numpy()
            gids = gids.cpu().numpy().astype(np.int64)
            if ids is None:
                ids = np.full((b, n_max, gids.shape[2], gids.shape[3]), -1, dtype=np.int64)
            ids[group, : gids.shape[1]] = gids
        lengths = (tokens * UNIT).numpy().astype(np.int64)
        for i, n in enumerate(lengths):
            feats[i, n:] = 0.0
        with torch.no_grad():
            j = joints_from_features(torch.from_numpy(feats))                     # (B, T, J, 3)
        joints = j.numpy().astype(np.float32)
        for i, n in enumerate(lengths):
            joints[i, n:] = 0.0
        source = ["estimated" if r is None else "given" for r in all_req]
        settings = dict(sampling.to_dict(), seed=seed, num_samples=num_samples, length_mode=length_mode,
                        use_retrieval=use_r, device=str(self.device), precision=precision,
                        retrieval_k=self.mask_transformer.config.retrieval_k if use_r else 0)
        return GenerationOutput(all_texts, joints, feats, lengths, retrieved, source, ids, settings)

    def _autocast(self, precision: str):
        import torch

        if precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _conditions(self, texts, requested, batch_size, generator, length_mode, use_r):
        """Sentence embeddings (B, Dt) on the device, :class:`Retrieved` (B, k, E) on the CPU or None, token
        lengths (B,) long on the CPU (given, or drawn from the length estimator) and the hits per prompt."""
        import torch

        from .generation import Retrieved

        sentences, parts, tokens, hits = [], [], [], []
        with torch.no_grad():
            for s in range(0, len(texts), batch_size):
                cond = self.conditions(texts[s: s + batch_size], keep_hits=use_r, retrieve=use_r)
                sentence = cond.sentence.to(self.device)
                req = requested[s: s + batch_size]
                tok = torch.tensor([0 if r is None else r // UNIT for r in req], device=self.device)
                need = torch.tensor([r is None for r in req], device=self.device)
                if bool(need.any()):
                    tok[need] = self.length_estimator.predict(
                        sentence[need], mode=length_mode, min_tokens=MIN_FRAMES // UNIT,
                        max_tokens=MAX_FRAMES // UNIT, generator=generator)
                sentences.append(sentence)
                tokens.append(tok.cpu())
                hits.extend(cond.hits)
                if use_r:
                    parts.append(cond.retrieval)
        retrieval = Retrieved.cat(parts) if use_r else None
        return torch.cat(sentences), retrieval, torch.cat(tokens).long(), hits


# ---- evaluation adapter ----------------------------------------------------------------------------------------
EVAL_REQUEST_SIZE = 1024
"""Prompts per call of the evaluation protocol for a pipeline: a whole embedded test pass (768) in one."""


class PipelineMotionSource:
    """A :class:`~remomask.evaluation.protocol.MotionSource` over a pipeline (spec 10.2).

    ``source(captions, lengths, labels) -> (features (B, T, 263) de-normalised torch tensor, lengths (B,))``
    with the ground-truth lengths; ``labels`` are ignored. ``set_seed(seed)`` restarts its generator (the
    protocol calls it at every repeat); without it each call draws a seed from torch's global RNG.

    Args:
        pipeline: a :class:`ReMoMaskPipeline`. name: row name.
        request_size: prompts the protocol may send in one call (:data:`EVAL_REQUEST_SIZE`; None = one batch
            of 32 at a time). A whole pass in one call lets the pipeline group all prompts by length (8 test
            batches: 4.90 s a batch against 5.95 s one batch at a time, ``benchmarks/bench_generation.py
            --protocol test --protocol-batches 8``); the forward batches stay at most 32.
        **sampling: keyword arguments of the call.

    Raises:
        ValueError: ``request_size`` < 1.
    """

    stochastic = True

    def __init__(self, pipeline: ReMoMaskPipeline, name: str = "ReMoMask", *,
                 request_size: int | None = None, **sampling) -> None:
        if request_size is not None and int(request_size) < 1:
            raise ValueError(f"request_size must be >= 1, got {request_size}")
        self.pipeline, self.name, self.sampling = pipeline, name, sampling
        self.request_size = None if request_size is None else int(request_size)
        self._generator = None

    def set_seed(self, seed: int) -> None:
        """Restart the sampling generator from ``seed``."""
        import torch

        self._generator = torch.Generator(device=self.pipeline.device).manual_seed(int(seed))

    def __call__(self, captions, lengths, labels=None):
        import torch

        if self._generator is None:
            self.set_seed(int(torch.randint(0, 2 ** 62, ())))
        out = self.pipeline(list(captions), frames=[int(x) for x in torch.as_tensor(lengths).tolist()],
                            generator=self._generator, min_frames=UNIT, **self.sampling)
        return torch.from_numpy(out.features), torch.from_numpy(out.lengths)


def load_motion_source(model_dir, device="cpu", request_size: int | None = EVAL_REQUEST_SIZE,
                       **sampling) -> PipelineMotionSource:
    """The evaluation protocol's motion source for a pipeline folder (used by ``remomask evaluate t2m --model``).

    ``request_size``: see :class:`PipelineMotionSource` (default :data:`EVAL_REQUEST_SIZE`).

    Raises:
        FileNotFoundError / ValueError: see :meth:`ReMoMaskPipeline.from_pretrained`.
    """
    pipe = ReMoMaskPipeline.from_pretrained(model_dir, device=device)
    name = "ReMoMask" if pipe.retriever is not None else "ReMoMask (no retrieval)"
    return PipelineMotionSource(pipe, f"{name} [{Path(model_dir).name}]", request_size=request_size, **sampling)
