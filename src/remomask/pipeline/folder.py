"""The pipeline folder: load the components and write them as one folder (docs/design.md; the folder layout
is in the :mod:`remomask.pipeline` docstring).

The functions take the pipeline class as an argument (``cls``), so this module does not import the cascade
and torch is imported only when models are loaded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .._pretrained import read_format_json, replaced_folder
from ..constants import FPS
from .request import MAX_SECONDS, MIN_SECONDS

__all__ = ["DEFAULT_MODEL_DIR", "FORMAT", "VERSION", "COMPONENTS", "ASSEMBLE_HINT", "load_components",
           "load_folder", "save_folder", "pipeline_meta"]

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "assets" / "models" / "default"
"""The bundled default pipeline folder (shipped by the release)."""
FORMAT = "remomask-pipeline"
"""``"format"`` of ``pipeline.json``."""
VERSION = 1
"""``"version"`` of ``pipeline.json`` this remomask reads and writes."""
COMPONENTS = ("tokenizer", "retriever", "database", "mask_transformer", "residual_transformer", "length_estimator",
              "captioner")
"""Sub-folders a pipeline folder may hold, in ``pipeline.json``'s ``"components"`` order. ``captioner`` (optional)
is a trained motion-to-text model over the folder's own tokenizer, retriever and database (docs/captioning.md),
loaded only by :meth:`ReMoMaskPipeline.caption <remomask.pipeline.ReMoMaskPipeline>`."""
ASSEMBLE_HINT = ("train the components (remomask train tokenizer / retriever / mask-transformer / "
                 "residual-transformer / length-estimator) and put them in one folder with "
                 "`remomask assemble --out DIR`, then pass that folder")
"""How to make a pipeline folder (ends error messages about missing folders)."""


def _as_path(x) -> Path | None:
    return Path(x) if isinstance(x, (str, os.PathLike)) else None


def _read_text(path: Path) -> str | None:
    return path.read_text() if path.is_file() else None


def load_components(cls, *, tokenizer, mask_transformer, residual_transformer=None, length_estimator=None,
                    retriever=None, database=None, device="cpu", text_encoder_name: str = "minilm"):
    """Build a pipeline from model objects or their folders (paths are loaded): the classmethod
    :meth:`ReMoMaskPipeline.from_components <remomask.pipeline.ReMoMaskPipeline>` (arXiv 2508.02605, Sec. 3;
    docs/design.md).

    ``database`` None with a retriever folder means ``<retriever>/database``. A retriever is loaded only
    when the masked transformer uses retrieval. The README of every loaded folder is kept for the card.

    Args:
        cls: the pipeline class. tokenizer, mask_transformer, residual_transformer, length_estimator,
            retriever, database: models or folders. device: torch device. text_encoder_name: encoder used
            without a retriever when the masked transformer's card names none.

    Returns:
        The pipeline.

    Raises:
        FileNotFoundError: a folder that does not exist. CheckpointError / DatabaseError /
        RetrieverLoadError: corrupt or mismatched files. ValueError: components that do not fit, or a
        retrieval model without retriever / database.
    """
    from ..generation import LengthEstimator, MaskTransformer, ResidualTransformer
    from ..tokenizer import MotionTokenizer

    readme = {}

    def load(obj, loader, name):
        path = _as_path(obj)
        if path is None:
            return obj
        if not path.is_dir():
            raise FileNotFoundError(f"{name} folder {path} does not exist; {ASSEMBLE_HINT}")
        readme[name] = _read_text(path / "README.md")
        return loader(path)

    tok = load(tokenizer, lambda p: MotionTokenizer.from_pretrained(p), "tokenizer")
    mask = load(mask_transformer, lambda p: MaskTransformer.from_pretrained(p), "mask_transformer")
    res = None if residual_transformer is None else load(
        residual_transformer, lambda p: ResidualTransformer.from_pretrained(p), "residual_transformer")
    length = None if length_estimator is None else load(
        length_estimator, lambda p: LengthEstimator.from_pretrained(p), "length_estimator")
    if mask.config.use_retrieval:
        from ..retrieval import PartRetriever, RetrievalDatabase

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


def load_folder(cls, directory=None, *, device="cpu"):
    """Load a pipeline folder written by :func:`save_folder`; None = the bundled default model
    (:data:`remomask.pipeline.DEFAULT_MODEL_DIR`, looked up at call time). The classmethod
    ``ReMoMaskPipeline.from_pretrained(directory=None, *, device="cpu")``. Source: docs/design.md.

    Args:
        cls: the pipeline class. directory: the pipeline folder or None. device: torch device.

    Returns:
        The pipeline, with the sampling defaults of ``pipeline.json``.

    Raises:
        FileNotFoundError: no such folder, or no bundled model yet (the message says how to make one).
        ValueError: not a pipeline folder, another format version, or corrupt / mismatched components.
    """
    from .. import pipeline as package  # the package attribute, so that it can be redirected

    folder = package.DEFAULT_MODEL_DIR if directory is None else Path(directory)
    meta_path = folder / "pipeline.json"
    if not meta_path.is_file():
        if directory is None:
            raise FileNotFoundError(f"no bundled default model at {folder} (the release ships it); "
                                    f"{ASSEMBLE_HINT} with --model DIR / from_pretrained(DIR)")
        if not folder.is_dir():
            raise FileNotFoundError(f"model folder {folder} does not exist; pass a folder written by "
                                    "ReMoMaskPipeline.save_pretrained")
        raise FileNotFoundError(f"{meta_path} is missing: {folder} is not a remomask pipeline folder; "
                                f"{ASSEMBLE_HINT}")
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
    pipe = load_components(cls, tokenizer=part("tokenizer"), mask_transformer=part("mask_transformer"),
                           residual_transformer=part("residual_transformer"),
                           length_estimator=part("length_estimator"), retriever=part("retriever"),
                           database=part("database"), device=device,
                           text_encoder_name=meta.get("text_encoder", "minilm"))
    pipe.set_sampling_defaults(**(meta.get("sampling") or {}))
    pipe.captioner_dir = part("captioner")
    return pipe


def _copy_captioner(source: Path, dest: Path) -> None:
    """Copy a trained captioner folder into a pipeline folder, its components pointing at the pipeline's own."""
    import shutil

    from ..captioning.trained_captioner import CONFIG_FILE

    meta = json.loads((Path(source) / CONFIG_FILE).read_text())
    shutil.copytree(source, dest)
    meta["components"] = {"tokenizer": "../tokenizer", "retriever": "../retriever", "database": "../database"}
    (dest / CONFIG_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")


def pipeline_meta(pipe, components: dict) -> dict:
    """The ``pipeline.json`` record of ``pipe`` (docs/design.md).

    Args:
        pipe: a :class:`~remomask.pipeline.ReMoMaskPipeline`. components: ``{name: sub-folder or None}``
            for every name of :data:`COMPONENTS`.

    Returns:
        ``{"format", "version", "components", "text_encoder", "fps", "durations_seconds", "sampling"}``.
    """
    return {"format": FORMAT, "version": VERSION, "components": components,
            "text_encoder": getattr(pipe.text_encoder, "name", "minilm"),
            "fps": int(FPS) if float(FPS).is_integer() else FPS,
            "durations_seconds": [MIN_SECONDS, MAX_SECONDS], "sampling": dict(pipe.sampling_defaults)}


def save_folder(pipe, directory, *, db_dtype: str = "float32") -> Path:
    """Write ``pipe`` as a pipeline folder (layout in :mod:`remomask.pipeline`), replaced atomically
    (:func:`remomask.files.replaced_folder`); the method ``ReMoMaskPipeline.save_pretrained(directory, *,
    db_dtype="float32")``. Source: docs/design.md.

    Args:
        pipe: the pipeline (``self``).
        directory: destination folder (replaced when it exists).
        db_dtype: storage precision of the retrieval database embeddings (``"float32"`` or
            ``"float16"``; see :meth:`remomask.retrieval.database.RetrievalDatabase.save`).

    Returns:
        The folder path.

    Raises:
        OSError: the folder cannot be written (the old one is then left as it was).
    """
    from .card import model_card

    folder = Path(directory)
    with replaced_folder(folder) as work:
        comp = {name: None for name in COMPONENTS}
        pipe.tokenizer.save_pretrained(work / "tokenizer", card=getattr(pipe.tokenizer, "card", None))
        comp["tokenizer"] = "tokenizer"
        for name in ("mask_transformer", "residual_transformer", "length_estimator"):
            model = getattr(pipe, name)
            if model is not None:
                model.save_pretrained(work / name, card=getattr(model, "card", None))
                comp[name] = name
        if pipe.retriever is not None:
            pipe.retriever.save_pretrained(work / "retriever", card=pipe._readme.get("retriever"))
            pipe.database.save(work / "database", dtype=db_dtype)
            comp["retriever"], comp["database"] = "retriever", "database"
            if getattr(pipe, "captioner_dir", None) is not None:
                _copy_captioner(pipe.captioner_dir, work / "captioner")
                comp["captioner"] = "captioner"
        (work / "pipeline.json").write_text(json.dumps(pipeline_meta(pipe, comp), indent=1, sort_keys=True) + "\n")
        (work / "README.md").write_text(model_card(pipe))
    return folder

