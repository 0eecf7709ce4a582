"""Text -> motion, end to end: :class:`ReMoMaskPipeline` (arXiv 2508.02605, Sec. 3; docs/design.md).

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

The package, one job a module:

- :mod:`.cascade`: :class:`ReMoMaskPipeline` (the generation cascade) and its sampling defaults;
- :mod:`.output`: :class:`GenerationOutput`, the result of a call;
- :mod:`.request`: prompts and durations of a request (:func:`frames_from_request`, :func:`check_prompts`);
- :mod:`.folder`: the pipeline folder (``pipeline.json``, components) read and written;
- :mod:`.card`: the model card (``README.md``) of a pipeline folder;
- :mod:`.editing`: in-betweening, prefix / suffix / continuation and body-part edits (:meth:`ReMoMaskPipeline.edit`);
- :mod:`.timeline`: timelines of any length from (text, seconds) segments (:meth:`ReMoMaskPipeline.compose`);
- :mod:`.evaluation`: the evaluation protocol's motion source (:func:`load_motion_source`).

Importing this package does not import torch (``import remomask`` stays fast).
"""

from __future__ import annotations

from ..constants import FPS, MAX_FRAMES, MIN_FRAMES
from .card import model_card
from .cascade import DEFAULT_SAMPLING, ReMoMaskPipeline
from .editing import PARTS, EditResult, edit_motion
from .evaluation import EVAL_REQUEST_SIZE, PipelineMotionSource, load_motion_source
from .folder import DEFAULT_MODEL_DIR, FORMAT, VERSION
from .output import GenerationOutput
from .request import MAX_SECONDS, MIN_SECONDS, check_prompts, frames_from_request
from .timeline import Segment, TimelineResult, compose_timeline, parse_timeline, read_timeline

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
    "PARTS",
    "EditResult",
    "edit_motion",
    "Segment",
    "TimelineResult",
    "compose_timeline",
    "parse_timeline",
    "read_timeline",
]
