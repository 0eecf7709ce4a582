"""The generation cascade: :class:`ReMoMaskPipeline` (arXiv 2508.02605, Sec. 3; docs/design.md).

text -> text encoder -> retrieval -> length -> masked transformer (RAG-CFG) -> residual transformer ->
tokenizer decoder -> features -> joints; the steps are drawn in the :mod:`remomask.pipeline` docstring.
Loading and saving live in :mod:`.folder`, the model card in :mod:`.card`.
"""

from __future__ import annotations

import contextlib
import secrets

import numpy as np

from ..constants import FRAMES_PER_TOKEN, MAX_FRAMES, MIN_FRAMES
from .card import model_card
from .folder import load_components, load_folder, save_folder
from .output import GenerationOutput
from .request import check_min_frames, check_prompts, frames_from_request

__all__ = ["DEFAULT_SAMPLING", "ReMoMaskPipeline"]

DEFAULT_SAMPLING = {"steps": 10, "cond_scale": 4.0, "residual_cond_scale": 5.0, "text_scale": 0.0,
                    "retrieval_scale": 0.0, "retrieval_min_score": 0.0}
"""Sampling settings a model folder may override in ``pipeline.json`` ("sampling"; chosen on ``val``)."""


class ReMoMaskPipeline:
    """Text-to-motion generation with the ReMoMask cascade (:mod:`remomask.pipeline`; arXiv 2508.02605, Sec. 3).

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
        from ..generation.data import ConditionEncoder

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
                from ..text import load_text_encoder

                text_encoder = load_text_encoder(text_encoder_name)
        self.text_encoder = text_encoder
        self._check_fit()
        self.conditions = ConditionEncoder(text_encoder, retriever, database, k=mc.retrieval_k,
                                           k_t2t=mc.retrieval_k_t2t if retriever is not None else 0,
                                           tokens=retriever is not None and mc.retrieval_form == "tokens")
        self._readme: dict[str, str | None] = {}
        self.captioner_dir = None          # a trained captioner folder (pipeline.json "captioner"), for caption()
        self._captioner = None
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
        from ..generation.conditions import column_codes_of

        want_columns = column_codes_of(tok)
        models = [("masked transformer", mc)]
        if self.residual_transformer is not None:
            models.append(("residual transformer", self.residual_transformer.config))
        for name, cfg in models:
            have = getattr(cfg, "column_codes", None)
            have = tuple(have) if have is not None else None
            if have != want_columns:
                raise ValueError(f"the {name} restricts its token columns to {have or 'no'} code ranges but the "
                                 f"tokenizer's columns have {want_columns or 'one range of ' + str(codes)} codes; "
                                 "they come from different runs (docs/generation.md, \"Token columns\")")
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
        if self.database is not None and mc.retrieval_form == "tokens":   # docs/design.md §5.8: DatabaseError
            from ..generation.data import tokenizer_fingerprint

            self.database.check_tokens(tokenizer_fingerprint(tok))

    # ---- loading and saving ----------------------------------------------------------------------------------
    # ---- loading and saving (remomask.pipeline.folder, remomask.pipeline.card) ----------------------------------
    from_components = classmethod(load_components)
    from_pretrained = classmethod(load_folder)
    save_pretrained = save_folder
    model_card = model_card

    def set_sampling_defaults(self, **values) -> "ReMoMaskPipeline":
        """Change the settings used when a call does not give them (saved in ``pipeline.json``).

        Args:
            **values: any of ``steps`` (int >= 1), ``cond_scale``, ``residual_cond_scale``, ``text_scale``,
                ``retrieval_scale`` (floats >= 0; the four-way RAG-CFG terms of docs/design.md §5.5),
                ``retrieval_min_score`` (the similarity gate of docs/design.md §4.10, in [0, 1]; 0 = off).

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
            if name == "retrieval_min_score":
                from ..generation.data import check_min_score

                check_min_score(value)
            self.sampling_defaults[name] = int(value) if name == "steps" else float(value)
        return self

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

    # ---- captioning (motion to text) ---------------------------------------------------------------------------
    def caption(self, motions, *, beam: int = 1, retrieval: bool = True) -> list[str]:
        """Describe motions in words with the folder's trained captioner (motion tokens + the retrieved caption
        and motion as context, as in ReMoGPT; docs/captioning.md), over this pipeline's own tokenizer,
        retriever and database.

        Args:
            motions: one or a list of: joints (T, 22, 3) metres or HumanML3D features (T, 263) at 20 fps, as
                arrays, or ``.npy`` / ``.bvh`` paths (see :class:`~remomask.captioning.MotionCaptioner`).
            beam: beam width (1 = greedy). retrieval: False decodes without the retrieved context.

        Returns:
            One caption per motion.

        Raises:
            ValueError: the pipeline has no captioner (or no retriever), or a bad motion (non-finite values,
                a wrong shape); the captioner's load errors for a corrupt folder.
        """
        if self._captioner is None:
            if self.captioner_dir is None or self.retriever is None:
                raise ValueError("this pipeline has no trained captioner; use remomask.captioning.RetrievalCaptioner "
                                 "or `remomask assemble --captioner DIR`")
            from ..captioning.trained_captioner import MotionCaptioner, load_captioner_model

            model, vocab, meta = load_captioner_model(self.captioner_dir)
            self._captioner = MotionCaptioner(model.to(self.device), vocab, self.tokenizer, self.retriever,
                                              self.database, meta)
        return self._captioner.caption(motions, beam=beam, retrieval=retrieval)

    # ---- generation --------------------------------------------------------------------------------------------
    def __call__(self, texts, seconds=None, frames=None, *, num_samples: int = 1, seed: int | None = None,
                 generator=None, steps: int | None = None, cond_scale: float | None = None,
                 text_scale: float | None = None, retrieval_scale: float | None = None, temperature: float = 1.0, top_k: int | None = None,
                 gumbel: bool = False, residual_cond_scale: float | None = None, residual_top_k: int | None = None,
                 residual_temperature: float = 1.0, length_mode: str = "sample", use_retrieval: bool = True,
                 batch_size: int = 32, length_batching: bool = True, precision: str | None = None,
                 min_frames: int = MIN_FRAMES, retrieval_texts=None,
                 diverse_neighbours: bool = False, retrieval_min_score: float | None = None) -> GenerationOutput:
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
                (arXiv 2508.02605, Sec. 3, RAG-CFG; see :class:`~remomask.generation.SamplingConfig`).
            residual_cond_scale, residual_top_k, residual_temperature: residual-layer sampling
                (arXiv 2508.02605, Sec. 3).
                ``steps``, ``cond_scale``, ``residual_cond_scale``, ``text_scale`` and ``retrieval_scale``
                left at None take the model's :attr:`sampling_defaults` (``pipeline.json``; else 10, 4, 5, 0
                and 0: the paper's two-way guidance). A default ``retrieval_scale`` is ignored when the call
                samples without retrieval.
            length_mode: ``"sample"`` or ``"argmax"`` for the length estimator.
            use_retrieval: False drops the retrieval input (text-only conditional generation).
            batch_size: largest forward batch; motions are grouped by length so that little compute goes
                to padding (:func:`~remomask.generation.batching.plan_length_batches`).
            length_batching: False keeps the request order in batches of ``batch_size`` (each padded to
                its longest motion); only the speed and the random numbers each motion draws differ.
            precision: ``"fp32"`` or ``"bf16"`` (autocast); None = bf16 on CUDA, fp32 on the CPU.
            min_frames: shortest ``frames`` accepted (40 = 2 s). The evaluation protocol lowers it to one
                token (:data:`~remomask.constants.FRAMES_PER_TOKEN` frames) to generate at the ground-truth
                length of the dataset's 1-2 s clips; the user-facing CLI keeps 2 s.
            retrieval_texts: None (retrieve with the prompts), or B other sentences, one per prompt, to retrieve
                with instead, while the text condition stays the prompt's (the evaluation's deliberately wrong
                neighbour, ``remomask evaluate t2m --wrong-neighbour``). Ignored without retrieval.
            diverse_neighbours: fill the text-to-text retrieval slots with the best neighbours whose (action,
                style) labels differ from the other neighbours' (docs/design.md §4.9), so that an unseen
                combination can draw on one neighbour of each; needs a model with text-to-text slots and a
                database with action and style labels. Ignored without retrieval.
            retrieval_min_score: similarity gate (docs/design.md §4.10): prompts whose best neighbour scores below
                it are generated without retrieval (and list no neighbours); 0 = off; None = the model's
                :attr:`sampling_defaults`.

        Returns:
            :class:`GenerationOutput`.

        Raises:
            ValueError: empty prompts, durations outside 2-9.8 s, no duration without a length estimator, bad
                sampling settings.
        """
        import torch

        from ..data.features import joints_from_features
        from ..generation import SamplingConfig, generate_tokens
        from ..generation.batching import plan_length_batches
        from ..generation.data import check_min_score

        texts = check_prompts(texts)
        if retrieval_texts is not None:
            retrieval_texts = check_prompts(retrieval_texts)
            if len(retrieval_texts) != len(texts):
                raise ValueError(f"retrieval_texts must hold one sentence per prompt ({len(texts)}), "
                                 f"got {len(retrieval_texts)}")
        if not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be an integer >= 1, got {num_samples!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if length_mode not in ("sample", "argmax"):
            raise ValueError(f"length_mode must be 'sample' or 'argmax', got {length_mode!r}")
        check_min_frames(min_frames)
        requested = frames_from_request(len(texts), seconds, frames, min_frames=min_frames)
        if any(r is None for r in requested) and self.length_estimator is None:
            raise ValueError("this pipeline has no length estimator: give the duration (seconds= or frames=)")
        d = self.sampling_defaults
        steps = d["steps"] if steps is None else steps
        cond_scale = d["cond_scale"] if cond_scale is None else cond_scale
        residual_cond_scale = d["residual_cond_scale"] if residual_cond_scale is None else residual_cond_scale
        text_scale = d.get("text_scale", 0.0) if text_scale is None else text_scale
        if retrieval_scale is None:
            retrieval_scale = d.get("retrieval_scale", 0.0) if use_retrieval and self.retriever is not None else 0.0
        min_score = check_min_score(d["retrieval_min_score"] if retrieval_min_score is None else retrieval_min_score)
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
        queries = None if retrieval_texts is None else [t for t in retrieval_texts for _ in range(num_samples)]
        sentence, retrieval, tokens, retrieved = self._conditions(all_texts, all_req, batch_size, generator,
                                                                  length_mode, use_r, queries,
                                                                  bool(diverse_neighbours), min_score)
        # 2. token generation and decoding in batches of similar length (generation/batching.py)
        n_max = int(tokens.max())
        d = self.tokenizer.config.feature_dim
        feats = np.zeros((b, n_max * FRAMES_PER_TOKEN, d), dtype=np.float32)
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
                    feats[rows, : n_tok * FRAMES_PER_TOKEN] = self.tokenizer.denormalize(motion).cpu().numpy()
            gids = gids.cpu().numpy().astype(np.int64)
            if ids is None:
                ids = np.full((b, n_max, gids.shape[2], gids.shape[3]), -1, dtype=np.int64)
            ids[group, : gids.shape[1]] = gids
        lengths = (tokens * FRAMES_PER_TOKEN).numpy().astype(np.int64)
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
                        retrieval_k=self.mask_transformer.config.retrieval_k if use_r else 0,
                        retrieval_min_score=min_score if use_r else 0.0)
        return GenerationOutput(all_texts, joints, feats, lengths, retrieved, source, ids, settings)

    # ---- editing and timelines (remomask.pipeline.editing, remomask.pipeline.timeline) -------------------------
    def edit(self, source, text: str, frames=None, *, parts=None, extend: int = 0, seed: int | None = None,
             generator=None, steps: int | None = None, cond_scale: float | None = None,
             residual_cond_scale: float | None = None, use_retrieval: bool = True, blend: int = 8, dataset=None,
             keyframes=None):
        """Regenerate a frame range (or only some body parts over it) of ``source`` with ``text``.

        Args:
            source: a motion file (``.npy`` joints (T, 22, 3) / features (T, 263), ``.npz``, ``.bvh``), a dataset
                id of the embedded dataset, or an array.
            text: prompt of the new content. frames: (start, end) at 20 fps, end exclusive (None = all).
            parts: None or names of :data:`remomask.pipeline.editing.PARTS` (``"right_arm"``, ``"upper"``, ...).
            extend: frames appended and generated after the source (continuation).
            seed, generator, steps, cond_scale, residual_cond_scale, use_retrieval: as in :meth:`__call__`.
            blend: seam fade in frames. dataset: dataset folder for an id source.
            keyframes: None or ``{frame: pose}``, poses (22, 3) metres in the source's coordinates or
                ``(motion, frame)``, frames inside the range (:mod:`remomask.pipeline.keyframes`).

        Returns:
            :class:`~remomask.pipeline.editing.EditResult` (joints (T', 22, 3) metres; frames outside the range
            are the source's, bit for bit).

        Raises:
            UsageError: a range outside the source, an unknown part, an empty text; file errors of the source.

        Source: arXiv 2508.02605 Sec. 3; MoMask temporal in-painting; :mod:`remomask.pipeline.editing`.
        """
        from .editing import edit_motion

        return edit_motion(self, source, text, frames, parts=parts, extend=extend, seed=seed, generator=generator,
                           steps=steps, cond_scale=cond_scale, residual_cond_scale=residual_cond_scale,
                           use_retrieval=use_retrieval, blend=blend, dataset=dataset, keyframes=keyframes)

    def inbetween(self, start, end, text: str, frames: int, **kwargs):
        """``frames`` new frames with ``text`` leading from ``start`` (a (22, 3) pose or a motion: its last frame)
        to ``end`` (a pose or a motion: its first frame); see :func:`remomask.pipeline.keyframes.inbetween` for the
        options, the returned :class:`~remomask.pipeline.editing.EditResult` and the errors (``UsageError``).

        Source: keyframe in-betweening on the masked token grid, :mod:`remomask.pipeline.keyframes`.
        """
        from .keyframes import inbetween

        return inbetween(self, start, end, text, frames, **kwargs)

    def compose(self, segments, *, seed: int | None = None, steps: int | None = None,
                cond_scale: float | None = None, residual_cond_scale: float | None = None,
                use_retrieval: bool = True, context: int = 10, blend: int = 8, precision: str | None = None):
        """One continuous motion from ``[(text, seconds[, seed]), ...]`` segments, of any length.

        Args:
            segments: :class:`~remomask.pipeline.timeline.Segment` s, tuples or dicts (``text``, ``seconds``,
                ``seed``); each at least one token (0.2 s).
            seed: base seed (segment i without its own uses ``seed + i``). steps, cond_scale,
                residual_cond_scale, use_retrieval, precision: as in :meth:`__call__`.
            context: token rows of the motion so far each window sees. blend: seam cross-fade in frames.

        Returns:
            :class:`~remomask.pipeline.timeline.TimelineResult` (joints (T, 22, 3) metres, T = 4 x tokens).

        Raises:
            UsageError: an empty timeline, a segment shorter than one token, bad settings.

        Source: arXiv 2508.02605 Sec. 3; FlowMDM (long compositions); :mod:`remomask.pipeline.timeline`.
        """
        from .timeline import compose_timeline

        return compose_timeline(self, segments, seed=seed, steps=steps, cond_scale=cond_scale,
                                residual_cond_scale=residual_cond_scale, use_retrieval=use_retrieval,
                                context=context, blend=blend, precision=precision)

    def _autocast(self, precision: str):
        import torch

        if precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _conditions(self, texts, requested, batch_size, generator, length_mode, use_r, queries=None,
                    diverse=False, min_score=0.0):
        """Sentence embeddings (B, Dt) on the device, :class:`Retrieved` (B, k, E) on the CPU or None, token
        lengths (B,) long on the CPU (given, or drawn from the length estimator) and the hits per prompt.
        ``queries``: None, or B sentences to retrieve with instead of ``texts``. ``diverse``: diverse neighbours.
        ``min_score``: the similarity gate (docs/design.md §4.10)."""
        import torch

        from ..generation import Retrieved

        sentences, parts, tokens, hits = [], [], [], []
        with torch.no_grad():
            for s in range(0, len(texts), batch_size):
                own = queries is None
                cond = self.conditions(texts[s: s + batch_size], keep_hits=use_r and own, retrieve=use_r and own,
                                       diverse=diverse and own, min_score=min_score)
                if use_r and not own:  # a deliberately wrong neighbour: retrieve with another sentence
                    found = self.conditions(queries[s: s + batch_size], keep_hits=True, retrieve=True,
                                            diverse=diverse, min_score=min_score)
                else:
                    found = cond
                sentence = cond.sentence.to(self.device)
                req = requested[s: s + batch_size]
                tok = torch.tensor([0 if r is None else r // FRAMES_PER_TOKEN for r in req], device=self.device)
                need = torch.tensor([r is None for r in req], device=self.device)
                if bool(need.any()):
                    tok[need] = self.length_estimator.predict(
                        sentence[need], mode=length_mode, min_tokens=MIN_FRAMES // FRAMES_PER_TOKEN,
                        max_tokens=MAX_FRAMES // FRAMES_PER_TOKEN, generator=generator)
                sentences.append(sentence)
                tokens.append(tok.cpu())
                hits.extend(found.hits)
                if use_r:
                    parts.append(found.retrieval)
        retrieval = Retrieved.cat(parts) if use_r else None
        return torch.cat(sentences), retrieval, torch.cat(tokens).long(), hits
