"""Motion captioning: motion in, text out (the motion-to-text direction; docs/design.md §4.6, §4.7).

Public API (imported lazily, so ``import remomask.captioning`` stays light)::

    from remomask.captioning import MotionCaptioner, RetrievalCaptioner

    cap = RetrievalCaptioner.from_pretrained()          # the bundled retriever and database
    cap.caption(["walk.bvh", joints, features])         # one string per motion
    res = cap.caption_results(joints, top_k=3)[0]       # res.captions, res.scores, res.entry_ids

    trained = MotionCaptioner.from_pretrained()         # the trained captioner (the default bundle's captioner/)
    trained.caption(joints, beam=3)                     # a new sentence; retrieval=False drops the context

Modules: ``retrieval_captioner`` (:class:`RetrievalCaptioner`: TMR-style motion-to-text retrieval over the
database's caption embeddings, the baseline), ``trained_captioner`` (:class:`MotionCaptioner`: the trained
retrieval-augmented captioner, ReMoGPT-style m2t + m2m context), ``model`` (its transformer), ``vocab`` (its
word vocabulary), ``train`` (:func:`train_captioner`), ``library`` (:func:`import_motions`: a folder of the user's
mocap -> a captioned HumanML3D-layout dataset that ``remomask retriever build-db`` indexes). Commands:
``remomask caption``, ``remomask data import`` (:mod:`remomask.cli`).
"""

from __future__ import annotations

from .._lazy import lazy_exports

__all__ = ["RetrievalCaptioner", "CaptionResult", "motion_features", "resolve_model", "TARGETS",
           "import_motions", "motion_paths", "ImportSummary", "segment_starts", "LIBRARY_SUFFIXES",
           "MotionCaptioner", "TrainedCaptionResult", "CaptionerLoadError", "CaptionTransformer", "CaptionerConfig",
           "Vocabulary", "train_captioner", "CaptionerTrainConfig"]

_WHERE = {
    "RetrievalCaptioner": "retrieval_captioner", "CaptionResult": "retrieval_captioner",
    "motion_features": "retrieval_captioner", "resolve_model": "retrieval_captioner", "TARGETS": "retrieval_captioner",
    "import_motions": "library", "motion_paths": "library", "ImportSummary": "library", "segment_starts": "library",
    "LIBRARY_SUFFIXES": "library",
    "MotionCaptioner": "trained_captioner", "TrainedCaptionResult": "trained_captioner",
    "CaptionerLoadError": "trained_captioner", "CaptionTransformer": "model", "CaptionerConfig": "model",
    "Vocabulary": "vocab", "train_captioner": "train", "CaptionerTrainConfig": "train",
}


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
