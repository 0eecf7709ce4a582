"""What the studio does, without HTTP: check requests, run the pipeline one request at a time, search the
retrieval database, and keep the files (docs/studio.md; the generation cascade: arXiv 2508.02605, Sec. 3).

:class:`Studio` loads the pipeline once (in a background thread started by :meth:`Studio.start_loading`, so
the page answers while the model loads), serialises generation behind one lock (a request waits its turn;
more than ``max_queue`` waiting requests are refused with :class:`BusyError`), and answers with plain
dictionaries that the HTTP layer (:mod:`remomask.studio.app`) sends as JSON.

Requests are checked with the command line's own rules before any model work: the prompt syntax of
:func:`remomask.cli._prompts.parse_prompt` (``text#seconds``), the duration range of
:func:`remomask.pipeline.frames_from_request` (2-9.8 s), the option types of :mod:`remomask.cli._core`
(``SEED``, ``finite(0)``, ``int_range``) and :data:`remomask.cli.generate.MAX_SAMPLES`, plus the studio's own
size bounds (:data:`MAX_PROMPT_CHARS`, :data:`MAX_STUDIO_SAMPLES`, :data:`MAX_RETRIEVE_K`). Every failure is
a :class:`RequestError` (or a subclass) whose message is one line, as the command line prints it.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click

from ..cli._core import SEED, error_line, finite, int_range
from ..cli._prompts import parse_prompt
from ..cli.generate import MAX_SAMPLES
from ..errors import RemomaskError
from .store import FileStore

__all__ = ["Studio", "GenerateRequest", "RequestError", "BusyError", "ModelUnavailableError", "check_generate",
           "check_retrieve", "skeleton_info", "MAX_PROMPT_CHARS", "MAX_STUDIO_SAMPLES", "MAX_RETRIEVE_K",
           "MAX_STEPS", "MAX_QUEUE", "ComposeRequest", "check_compose", "MAX_TIMELINE_SEGMENTS",
           "MAX_TIMELINE_SECONDS", "EditRequest", "check_edit", "MAX_EDIT_EXTEND_SECONDS"]

MAX_PROMPT_CHARS = 500
"""Longest prompt or search text, in characters (HumanML3D captions are far shorter)."""

MAX_STUDIO_SAMPLES = min(MAX_SAMPLES, 8)
"""Most samples of one studio request (each gets a live 3D viewer; browsers cap WebGL contexts at ~16)."""

MAX_RETRIEVE_K = 20
"""Most hits of one retrieval search."""

MAX_STEPS = 100
"""Most masked-decoding steps of one request (the model's default is 10)."""

MAX_QUEUE = 16
"""Most generation requests waiting for the worker; more are refused with HTTP 503."""

MAX_TIMELINE_SEGMENTS = 12
"""Most segments of one studio timeline (``POST /api/compose``)."""

MAX_TIMELINE_SECONDS = 60.0
"""Longest studio timeline, seconds (the library allows more; the studio keeps one request short)."""

MAX_EDIT_EXTEND_SECONDS = 9.8
"""Longest continuation of one edit (``extend``), seconds (one generation window; the range check bounds it too)."""

_MOTION_IDS = 1024
"""Motion ids remembered for ``/api/edit`` (older ones answer 404; their files may have expired anyway)."""

_EDIT_FIELDS = {"motion", "text", "frames", "parts", "extend", "seed", "cond_scale", "steps"}
_COMPOSE_FIELDS = {"segments", "seed", "cond_scale", "steps"}
_GENERATE_FIELDS = {"prompt", "seconds", "frames", "seed", "num_samples", "cond_scale", "steps"}
_RETRIEVE_FIELDS = {"text", "k"}
_TRAJECTORY_COLOUR = "#009E73"   # the renders' root path colour (remomask.render.stick)


class RequestError(RemomaskError, ValueError):
    """A request the studio refuses; ``status`` is the HTTP status (422 by default), the message one line."""

    status = 422

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class BusyError(RequestError):
    """Too many generation requests are waiting (HTTP 503)."""

    status = 503


class ModelUnavailableError(RequestError):
    """The model failed to load (HTTP 503); the message is the load error's line."""

    status = 503


@dataclass(frozen=True)
class GenerateRequest:
    """A checked generation request.

    Attributes:
        text: the prompt without its ``#seconds`` suffix. seconds / frames: the requested duration (at most
            one set; both None: estimated by the model's length estimator). seed: 0..2**63-1 or None (fresh).
        num_samples: 1..:data:`MAX_STUDIO_SAMPLES`. cond_scale: RAG-CFG guidance (>= 0) or None (the model's).
        steps: masked-decoding steps 1..:data:`MAX_STEPS` or None (the model's).
        target_frames: the frames the request asks for (None: estimated), as checked by ``frames_from_request``.
    """

    text: str
    seconds: float | None = None
    frames: int | None = None
    seed: int | None = None
    num_samples: int = 1
    cond_scale: float | None = None
    steps: int | None = None
    target_frames: int | None = None


def _convert(kind: click.ParamType, value, name: str):
    """Check ``value`` with a command-line parameter type; its message becomes ``"<name> must be ..."``."""
    try:
        return kind.convert(value, None, None)
    except click.BadParameter as exc:
        raise RequestError(f"{name} {exc.message}") from None


def _fields(payload, allowed: set[str]) -> dict:
    if not isinstance(payload, dict):
        raise RequestError("the request body must be a JSON object", 400)
    unknown = sorted(set(payload) - allowed)
    if unknown:
        raise RequestError(f"unknown field {unknown[0]!r}; the fields are {', '.join(sorted(allowed))}")
    return {k: v for k, v in payload.items() if v is not None and v != ""}


def _text(value, name: str) -> str:
    if not isinstance(value, str):
        raise RequestError(f"{name} must be text, got {type(value).__name__}")
    if len(value) > MAX_PROMPT_CHARS:
        raise RequestError(f"{name} is {len(value)} characters long; the studio takes at most {MAX_PROMPT_CHARS}",
                           413)
    if not value.replace("\ufeff", "").strip():
        raise RequestError(f"{name} is empty; give a sentence, e.g. \"a person waves\"")
    return value


def check_generate(payload) -> GenerateRequest:
    """Check the JSON body of ``POST /api/generate`` with the command line's rules (module docstring).

    Args:
        payload: ``{"prompt": str, "seconds": float | null, "frames": int | null, "seed": int | null,
            "num_samples": int, "cond_scale": float | null, "steps": int | null}``; only ``prompt`` is required;
            the prompt may end in ``#SECONDS`` (it wins over ``seconds``).

    Returns:
        The :class:`GenerateRequest`.

    Raises:
        RequestError: not an object (400), an unknown field, an empty or over-long prompt (413), a bad number,
            a duration outside 2-9.8 s, both seconds and frames, a count outside its bounds.
    """
    from ..pipeline import frames_from_request

    values = _fields(payload, _GENERATE_FIELDS)
    if "prompt" not in values:
        raise RequestError("the prompt is empty; give a sentence, e.g. \"a person waves\"")
    try:
        text, suffix = parse_prompt(_text(values["prompt"], "the prompt"))
    except RemomaskError as exc:
        if isinstance(exc, RequestError):
            raise
        raise RequestError(error_line(exc)) from None
    seconds = _convert(finite(), values["seconds"], "seconds") if "seconds" in values else None
    frames = _convert(int_range(), values["frames"], "frames") if "frames" in values else None
    if seconds is not None and frames is not None:
        raise RequestError("give seconds or frames, not both")
    if suffix is not None:
        seconds, frames = suffix, None
    try:
        (target,) = frames_from_request(1, seconds=seconds, frames=frames)
    except (ValueError, RemomaskError) as exc:
        raise RequestError(error_line(exc).replace(" of prompt 0", "")) from None
    return GenerateRequest(
        text=text, seconds=seconds, frames=frames,
        seed=_convert(SEED, values["seed"], "seed") if "seed" in values else None,
        num_samples=_convert(int_range(1, MAX_STUDIO_SAMPLES), values.get("num_samples", 1), "num_samples"),
        cond_scale=_convert(finite(0.0), values["cond_scale"], "cond_scale") if "cond_scale" in values else None,
        steps=_convert(int_range(1, MAX_STEPS), values["steps"], "steps") if "steps" in values else None,
        target_frames=target)


@dataclass(frozen=True)
class ComposeRequest:
    """A checked timeline request: ``segments`` as ``({"text", "seconds"[, "seed"]}, ...)``, base ``seed``,
    ``cond_scale`` and ``steps`` (None: the model's)."""

    segments: tuple
    seed: int | None = None
    cond_scale: float | None = None
    steps: int | None = None


def check_compose(payload) -> ComposeRequest:
    """Check the JSON body of ``POST /api/compose``: ``{"segments": [{"text": str, "seconds": float,
    "seed": int | null}, ...], "seed": int | null, "cond_scale": float | null, "steps": int | null}``.

    Each text is checked as a prompt (empty, :data:`MAX_PROMPT_CHARS`), each duration is a finite number
    (the pipeline's ``compose`` checks the one-token minimum), at most :data:`MAX_TIMELINE_SEGMENTS` segments
    and :data:`MAX_TIMELINE_SECONDS` in all.

    Raises:
        RequestError: as :func:`check_generate`.
    """
    values = _fields(payload, _COMPOSE_FIELDS)
    segments = values.get("segments")
    if not isinstance(segments, list) or not segments:
        raise RequestError("the timeline is empty; give segments such as [{\"text\": \"a person walks\", "
                           "\"seconds\": 4}]")
    if len(segments) > MAX_TIMELINE_SEGMENTS:
        raise RequestError(f"the timeline has {len(segments)} segments; the studio takes at most "
                           f"{MAX_TIMELINE_SEGMENTS}", 413)
    checked = []
    for i, seg in enumerate(segments, 1):
        if not isinstance(seg, dict) or set(seg) - {"text", "seconds", "seed"}:
            raise RequestError(f"timeline segment {i}: give 'text' and 'seconds' (and optionally 'seed')")
        text = _text(seg.get("text"), f"the text of timeline segment {i}").strip()
        if seg.get("seconds") in (None, ""):
            raise RequestError(f"timeline segment {i} ({text!r}) has no duration")
        item = {"text": text, "seconds": _convert(finite(positive=True), seg["seconds"], f"segment {i} seconds")}
        if seg.get("seed") not in (None, ""):
            item["seed"] = _convert(SEED, seg["seed"], f"segment {i} seed")
        checked.append(item)
    total = sum(s["seconds"] for s in checked)
    if total > MAX_TIMELINE_SECONDS:
        raise RequestError(f"the timeline lasts {total:g} s; the studio composes at most {MAX_TIMELINE_SECONDS:g} s",
                           413)
    return ComposeRequest(
        segments=tuple(checked), seed=_convert(SEED, values["seed"], "seed") if "seed" in values else None,
        cond_scale=_convert(finite(0.0), values["cond_scale"], "cond_scale") if "cond_scale" in values else None,
        steps=_convert(int_range(1, MAX_STEPS), values["steps"], "steps") if "steps" in values else None)


@dataclass(frozen=True)
class EditRequest:
    """A checked edit request (``POST /api/edit``).

    Attributes:
        motion: the opaque id of a motion the studio made (``samples[i].motion``, a timeline's or an edit's
            ``motion``). text: the new content's prompt. frames: ``(start, end)`` at 20 fps, end exclusive, either
            None for an open end; None = the whole motion. parts: body-part names of
            :data:`remomask.pipeline.editing.PARTS` or None (whole body). extend: frames appended after the end.
        seed / cond_scale / steps: as in :class:`GenerateRequest`.
    """

    motion: str
    text: str
    frames: tuple | None = None
    parts: tuple | None = None
    extend: int = 0
    seed: int | None = None
    cond_scale: float | None = None
    steps: int | None = None


def check_edit(payload) -> EditRequest:
    """Check the JSON body of ``POST /api/edit`` with the rules of ``remomask edit`` (what can be checked
    without the source; :meth:`Studio.edit` checks the range against it before queueing).

    Args:
        payload: ``{"motion": id, "text": str, "frames": [start, end] (integers >= 0 or null; default: the whole
            motion), "parts": [name, ...] | "a,b" | null, "extend": seconds | null, "seed", "cond_scale",
            "steps"}``; ``motion`` and ``text`` are required.

    Returns:
        The :class:`EditRequest`.

    Raises:
        RequestError: not an object (400), an unknown field, a missing or malformed motion id (404), an empty or
            over-long text (413), a malformed range, an unknown body part, parts with an extension, a bad number.

    Source: docs/studio.md ("POST /api/edit"); the checks of :mod:`remomask.cli.edit` and
    :mod:`remomask.pipeline.editing` (``resolve_parts``, ``check_range``).
    """
    from ..constants import FPS
    from ..pipeline.editing import resolve_parts
    from .store import FILE_ID_PATTERN

    values = _fields(payload, _EDIT_FIELDS)
    motion = values.get("motion")
    if not isinstance(motion, str) or not FILE_ID_PATTERN.match(motion):
        raise RequestError("unknown motion id; give the \"motion\" id of a studio answer (e.g. samples[0].motion)",
                           404)
    if "text" not in values:
        raise RequestError("the edit text is empty; give a sentence, e.g. \"a person waves\"")
    text = _text(values["text"], "the edit text").replace("\ufeff", "").strip()
    frames = values.get("frames")
    if frames is not None:
        if not isinstance(frames, list) or len(frames) != 2:
            raise RequestError(f"frames must be [start, end] (frames at 20 fps, end exclusive), got {frames!r}")
        frames = tuple(None if f is None else _convert(int_range(0), f, name) for f, name in
                       zip(frames, ("the range start", "the range end")))
    parts = values.get("parts")
    if parts is not None:
        if isinstance(parts, str):
            parts = [p for p in parts.split(",")]
        if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
            raise RequestError("parts must be a list of body-part names")
        parts = tuple(p.strip() for p in parts if p.strip())
        if len(parts) > 16:
            raise RequestError(f"{len(parts)} body parts given; name each part once", 413)
        try:
            resolve_parts(parts if parts else None)
        except RemomaskError as exc:
            raise RequestError(error_line(exc)) from None
        parts = parts or None
    extend = 0
    if "extend" in values:
        seconds = _convert(finite(0.0), values["extend"], "extend")
        if seconds > MAX_EDIT_EXTEND_SECONDS:
            raise RequestError(f"extend is {seconds:g} s; one edit continues a motion by at most "
                               f"{MAX_EDIT_EXTEND_SECONDS:g} s")
        extend = int(round(seconds * FPS))
    if parts and extend:
        raise RequestError("a body-part edit cannot extend the motion; drop parts or extend")
    return EditRequest(
        motion=motion, text=text, frames=frames, parts=parts, extend=extend,
        seed=_convert(SEED, values["seed"], "seed") if "seed" in values else None,
        cond_scale=_convert(finite(0.0), values["cond_scale"], "cond_scale") if "cond_scale" in values else None,
        steps=_convert(int_range(1, MAX_STEPS), values["steps"], "steps") if "steps" in values else None)


def check_retrieve(payload) -> tuple[str, int]:
    """Check the JSON body of ``POST /api/retrieve``: ``{"text": str, "k": int (1..MAX_RETRIEVE_K, default 5)}``.

    Returns:
        ``(text, k)``.

    Raises:
        RequestError: as :func:`check_generate`.
    """
    values = _fields(payload, _RETRIEVE_FIELDS)
    if "text" not in values:
        raise RequestError("the search text is empty; give a sentence, e.g. \"a person waves\"")
    text = _text(values["text"], "the search text").replace("\ufeff", "").strip()
    return text, _convert(int_range(1, MAX_RETRIEVE_K), values.get("k", 5), "k")


def skeleton_info() -> dict:
    """The skeleton the viewer draws: HumanML3D's 22 joints, its kinematic chains and their side colours,
    exactly as the stick-figure renders colour them (:mod:`remomask.render.stick`; docs/design.md §8).

    Returns:
        ``{"name", "fps", "joint_names", "chains": [[joint, ...], ...], "sides": ["left"|"right"|"centre", ...],
        "colours": {side: "#rrggbb"}, "trajectory_colour": "#rrggbb"}``.
    """
    from ..constants import FPS
    from ..data.skeleton import get_skeleton
    from ..render.stick import SIDE_COLOURS, chain_sides

    skel = get_skeleton("humanml3d")
    return {"name": skel.name, "fps": float(FPS), "joint_names": list(skel.joint_names),
            "chains": [list(map(int, c)) for c in skel.kinematic_chain], "sides": chain_sides(skel),
            "colours": dict(SIDE_COLOURS), "trajectory_colour": _TRAJECTORY_COLOUR}


def _joints_json(joints) -> list:
    """(T, 22, 3) metres -> nested lists rounded to 0.1 mm (what the viewer and scripts read)."""
    import numpy as np

    return np.round(np.asarray(joints, dtype=np.float64), 4).tolist()


class Studio:
    """The studio's model, worker lock, retrieval database and file store.

    Args:
        model_dir: a pipeline folder (``ReMoMaskPipeline.save_pretrained``) or None for the bundled model.
        device: torch device of the pipeline (``cpu`` or ``cuda``).
        store: where files go (a fresh :class:`~remomask.studio.store.FileStore` by default).
        max_queue: most generation requests waiting for the worker.

    The model loads once: :meth:`start_loading` starts it in a thread; :meth:`pipeline` waits for it. A load
    failure is kept as one line (:attr:`load_error`) and every request that needs the model answers it.
    """

    def __init__(self, model_dir: str | Path | None = None, device: str = "cpu", store: FileStore | None = None,
                 max_queue: int = MAX_QUEUE) -> None:
        self.model_dir = Path(model_dir) if model_dir is not None else None
        self.device = device
        self.store = store if store is not None else FileStore()
        self.max_queue = int(max_queue)
        self.load_error: str | None = None
        self.load_seconds: float | None = None
        self._pipe = None
        self._retrieval = None          # (retriever model, database, {entry id: row})
        self._loaded = threading.Event()
        self._load_lock = threading.Lock()
        self._loading = False
        self._work = threading.Lock()    # one generation (or video render) at a time
        self._queue_lock = threading.Lock()
        self._waiting = 0
        self._entries: OrderedDict[str, dict] = OrderedDict()
        self._motions: OrderedDict[str, dict] = OrderedDict()     # motion id -> {"joints", "features", "frames"}
        self._motions_lock = threading.Lock()
        self._skeleton = skeleton_info()

    # -- the model -----------------------------------------------------------------------------------------
    @property
    def status(self) -> str:
        """``"loading"``, ``"ready"`` or ``"error"``."""
        if not self._loaded.is_set():
            return "loading"
        return "error" if self.load_error is not None else "ready"

    def start_loading(self) -> None:
        """Load the model in a background thread (once; later calls do nothing)."""
        with self._load_lock:
            if self._loading:
                return
            self._loading = True
        # not a daemon: an exit (Ctrl-C) during the load waits for it instead of killing torch mid-call
        self._loader = threading.Thread(target=self._load, name="remomask-studio-load", daemon=False)
        self._loader.start()

    def _load(self) -> None:
        start = time.perf_counter()
        try:
            from ..pipeline import ReMoMaskPipeline

            self._pipe = ReMoMaskPipeline.from_pretrained(self.model_dir, device=self.device)
        except Exception as exc:  # noqa: BLE001 - any load failure becomes the page's one error line
            self.load_error = f"the model failed to load: {error_line(exc)}"
            print(f"error: {self.load_error}", file=sys.stderr)
            if os.environ.get("REMOMASK_DEBUG"):
                raise
        finally:
            self.load_seconds = time.perf_counter() - start
            self._loaded.set()

    def pipeline(self):
        """The loaded :class:`~remomask.pipeline.ReMoMaskPipeline` (starts and waits for the load).

        Raises:
            ModelUnavailableError: the model failed to load (the message says why).
        """
        self.start_loading()
        self._loaded.wait()
        if self.load_error is not None:
            raise ModelUnavailableError(self.load_error)
        return self._pipe

    @contextmanager
    def _turn(self):
        """Wait for the worker (one request at a time); refuse when ``max_queue`` requests wait already."""
        with self._queue_lock:
            if self._waiting >= self.max_queue:
                raise BusyError(f"the studio is busy ({self._waiting} requests waiting); try again shortly")
            self._waiting += 1
        try:
            with self._work:
                yield
        finally:
            with self._queue_lock:
                self._waiting -= 1

    # -- generation ----------------------------------------------------------------------------------------
    def generate(self, request: GenerateRequest) -> dict:
        """Run the pipeline for a checked request and register its files.

        Returns:
            ``{"id", "prompt", "seed", "settings", "fps", "seconds_taken", "files": {"result": id},
            "samples": [{"index", "prompt", "frames", "seconds", "length_source", "joints": (T, 22, 3) lists,
            "retrieved": [{"id", "motion_id", "caption", "score", "start", "end"}], "files": {"joints",
            "features", "bvh", "video": file id}}]}`` (docs/studio.md).

        Raises:
            ModelUnavailableError: the model failed to load. BusyError: the queue is full.
            RequestError: the pipeline refused the request (its one line).
        """
        import json

        from ..cli.generate import write_samples

        pipe = self.pipeline()
        with self._turn():
            start = time.perf_counter()
            try:
                out = pipe([request.text], seconds=request.seconds, frames=request.frames,
                           num_samples=request.num_samples, seed=request.seed, steps=request.steps,
                           cond_scale=request.cond_scale)
            except (ValueError, RemomaskError) as exc:
                raise RequestError(error_line(exc)) from None
            taken = time.perf_counter() - start
            rid, folder = self.store.new_result()
            samples = write_samples(out, folder, request.num_samples, no_video=True, video_format="mp4")
        summary = {"prompt": request.text, "prompts": [request.text], "seed": out.settings["seed"],
                   "model": str(self.model_dir) if self.model_dir is not None else "bundled default",
                   "settings": out.settings, "samples": samples}
        answer = []
        for i, sample in enumerate(samples):
            joints, _ = out.sample(i)
            files = {"joints": self.store.add(rid, sample["files"]["joints"], "application/octet-stream"),
                     "features": self.store.add(rid, sample["files"]["features"], "application/octet-stream")}
            sample["files"]["bvh"] = f"sample_{i}.bvh"
            files["bvh"] = self.store.add(rid, sample["files"]["bvh"], "text/plain", _bvh_producer(joints))
            sample["files"]["video"] = f"sample_{i}.mp4"
            files["video"] = self.store.add(rid, sample["files"]["video"], "video/mp4",
                                            self._video_producer(joints, out.texts[i]))
            retrieved = [dict(h, **self._bounds(h["id"])) for h in sample["retrieved"]]
            answer.append({"index": i, "prompt": sample["prompt"], "frames": sample["frames"],
                           "seconds": sample["seconds"], "length_source": sample["length_source"],
                           "motion": self._remember(files, sample["frames"]),
                           "joints": _joints_json(joints), "retrieved": retrieved, "files": files})
        (folder / "result.json").write_text(json.dumps(summary, indent=1) + "\n")
        result_file = self.store.add(rid, "result.json", "application/json")
        return {"id": rid, "prompt": request.text, "seed": out.settings["seed"], "settings": out.settings,
                "fps": self._skeleton["fps"], "seconds_taken": round(taken, 3), "files": {"result": result_file},
                "samples": answer}

    def compose(self, request: ComposeRequest) -> dict:
        """Compose one continuous motion from timeline segments (``ReMoMaskPipeline.compose``; the timeline
        method of docs/generation.md, "Timelines") and register its files.

        Returns:
            ``{"id", "seed", "settings", "fps", "seconds_taken", "frames", "seconds", "joints": (T, 22, 3) lists,
            "segments": [{"text", "seconds", "start", "end", "seed", "retrieved"}], "files": {"joints",
            "features", "bvh", "video", "result"}}``.

        Raises:
            ModelUnavailableError / BusyError: as :meth:`generate`. RequestError: this model cannot compose
            (404), or the pipeline refused the timeline (its one line).
        """
        import json

        import numpy as np

        pipe = self.pipeline()
        if not hasattr(pipe, "compose"):
            raise RequestError("this remomask version cannot compose timelines", 404)
        seed = request.seed
        if seed is None:
            import secrets

            seed = secrets.randbelow(2**31)
        with self._turn():
            start = time.perf_counter()
            try:
                out = pipe.compose([dict(s) for s in request.segments], seed=seed, steps=request.steps,
                                   cond_scale=request.cond_scale)
            except (ValueError, RemomaskError) as exc:
                raise RequestError(error_line(exc)) from None
            taken = time.perf_counter() - start
        joints = np.asarray(out.joints, dtype=np.float32)
        rid, folder = self.store.new_result()
        np.save(folder / "timeline.joints.npy", joints)
        np.save(folder / "timeline.features.npy", np.asarray(out.features, dtype=np.float32))
        segments = json.loads(json.dumps(out.segments, default=_plain))
        title = " | ".join(f"{s['text']}:{s['seconds']:g}" for s in request.segments)
        files = {"joints": self.store.add(rid, "timeline.joints.npy", "application/octet-stream"),
                 "features": self.store.add(rid, "timeline.features.npy", "application/octet-stream"),
                 "bvh": self.store.add(rid, "timeline.bvh", "text/plain", _bvh_producer(joints)),
                 "video": self.store.add(rid, "timeline.mp4", "video/mp4", self._video_producer(joints, title))}
        summary = {"timeline": list(request.segments), "seed": seed, "frames": int(len(joints)),
                   "seconds": len(joints) / self._skeleton["fps"],
                   "model": str(self.model_dir) if self.model_dir is not None else "bundled default",
                   "settings": json.loads(json.dumps(out.settings, default=_plain)), "segments": segments,
                   "files": {"joints": "timeline.joints.npy", "features": "timeline.features.npy",
                             "bvh": "timeline.bvh", "video": "timeline.mp4"}}
        (folder / "result.json").write_text(json.dumps(summary, indent=1) + "\n")
        files["result"] = self.store.add(rid, "result.json", "application/json")
        return {"id": rid, "seed": seed, "settings": summary["settings"], "fps": self._skeleton["fps"],
                "seconds_taken": round(taken, 3), "frames": summary["frames"], "seconds": summary["seconds"],
                "motion": self._remember(files, summary["frames"]),
                "joints": _joints_json(joints), "segments": segments, "files": files}

    # -- editing -------------------------------------------------------------------------------------------
    def _remember(self, files: dict, frames: int) -> str:
        """A fresh motion id for the joints / features files of a result (what ``/api/edit`` takes)."""
        mid = self.store.new_id()
        with self._motions_lock:
            self._motions[mid] = {"joints": files["joints"], "features": files["features"], "frames": int(frames)}
            while len(self._motions) > _MOTION_IDS:
                self._motions.popitem(last=False)
        return mid

    def _motion(self, motion_id: str) -> dict:
        """The registry entry of a motion id. Raises: RequestError (404) for an unknown id."""
        with self._motions_lock:
            item = self._motions.get(motion_id)
        if item is None:
            raise RequestError("unknown motion id (give the \"motion\" id of a studio answer; the studio keeps the "
                               f"motions of its last {self.store.max_results} results)", 404)
        return item

    def edit(self, request: EditRequest) -> dict:
        """Regenerate a frame range (optionally only some body parts) of a motion the studio made
        (``ReMoMaskPipeline.edit``; docs/generation.md, "Editing") and register the result's files.

        The range is checked against the source (``check_range``) before the request waits for the worker.
        Frames outside the range are the source's joints bit for bit (the source is the joints / features
        files the studio wrote, not a re-computation).

        Returns:
            ``{"id", "motion", "source", "text", "seed", "settings", "fps", "seconds_taken", "frames", "seconds",
            "range": [start, end], "source_frames", "parts", "joints": (T', 22, 3) lists, "retrieved": [...],
            "files": {"joints", "features", "bvh", "video", "result"}}`` (docs/studio.md).

        Raises:
            RequestError: an unknown or expired motion id (404), a range outside the source (422), this
                pipeline cannot edit (404), the pipeline refused the edit (its one line).
            ModelUnavailableError / BusyError: as :meth:`generate`.

        Source: docs/studio.md ("POST /api/edit"); arXiv 2508.02605 Sec. 3 and :mod:`remomask.pipeline.editing`.
        """
        import json
        import secrets

        import numpy as np

        from ..pipeline.editing import SourceMotion, check_range
        from .store import UnknownFileError

        item = self._motion(request.motion)
        frames = request.frames
        if request.extend and frames is None:           # a plain continuation, as remomask edit --extend
            frames = (item["frames"], None)
        try:
            check_range(frames, item["frames"], request.extend)
        except RemomaskError as exc:
            raise RequestError(error_line(exc)) from None
        pipe = self.pipeline()
        if not hasattr(pipe, "edit"):
            raise RequestError("this remomask version cannot edit motions", 404)
        try:
            joints = np.load(self.store.get(item["joints"]).path, allow_pickle=False).astype(np.float32)
            feats = np.load(self.store.get(item["features"]).path, allow_pickle=False).astype(np.float32)
        except UnknownFileError:
            raise RequestError("this motion has expired (the studio keeps the files of its last "
                               f"{self.store.max_results} results); generate it again", 404) from None
        source = SourceMotion(joints, feats, f"studio:{request.motion}")
        seed = request.seed if request.seed is not None else secrets.randbelow(2**31)
        with self._turn():
            start = time.perf_counter()
            try:
                res = pipe.edit(source, request.text, frames, parts=list(request.parts or ()) or None,
                                extend=request.extend, seed=seed, steps=request.steps,
                                cond_scale=request.cond_scale)
            except (ValueError, RemomaskError) as exc:
                raise RequestError(error_line(exc)) from None
            taken = time.perf_counter() - start
        out = np.asarray(res.joints, dtype=np.float32)
        a, b = (int(f) for f in res.frames)
        fps = self._skeleton["fps"]
        rid, folder = self.store.new_result()
        np.save(folder / "edit_0.joints.npy", out)
        np.save(folder / "edit_0.features.npy", np.asarray(res.features, dtype=np.float32))
        where = f"{a / fps:.1f}-{b / fps:.1f} s" + (", " + ",".join(res.parts) if res.parts else "")
        title = f"{request.text}  [edited {where}]"
        files = {"joints": self.store.add(rid, "edit_0.joints.npy", "application/octet-stream"),
                 "features": self.store.add(rid, "edit_0.features.npy", "application/octet-stream"),
                 "bvh": self.store.add(rid, "edit_0.bvh", "text/plain", _bvh_producer(out)),
                 "video": self.store.add(rid, "edit_0.mp4", "video/mp4", self._video_producer(out, title))}
        retrieved = [dict({"id": h["entry_id"], "motion_id": h["motion_id"], "caption": h["caption"],
                           "score": round(float(h["score"]), 6)}, **self._bounds(h["entry_id"])) for h in res.retrieved]
        settings = json.loads(json.dumps(res.settings, default=_plain))
        summary = {"source": f"studio:{request.motion}", "prompt": request.text, "frames": [a, b],
                   "seconds": [a / fps, b / fps], "source_frames": int(res.source_frames), "total_frames": len(out),
                   "parts": list(res.parts), "part_joints": [int(j) for j in res.part_joints], "seed": seed,
                   "model": str(self.model_dir) if self.model_dir is not None else "bundled default",
                   "settings": settings, "token_window": [int(w) for w in res.window],
                   "files": {"joints": "edit_0.joints.npy", "features": "edit_0.features.npy", "bvh": "edit_0.bvh",
                             "video": "edit_0.mp4"}, "retrieved": retrieved}
        (folder / "result.json").write_text(json.dumps(summary, indent=1) + "\n")
        files["result"] = self.store.add(rid, "result.json", "application/json")
        return {"id": rid, "motion": self._remember(files, len(out)), "source": request.motion,
                "text": request.text, "seed": seed, "settings": settings, "fps": fps,
                "seconds_taken": round(taken, 3), "frames": int(len(out)), "seconds": len(out) / fps,
                "range": [a, b], "source_frames": int(res.source_frames), "parts": list(res.parts),
                "joints": _joints_json(out), "retrieved": retrieved, "files": files}

    def _video_producer(self, joints, title: str):
        """A producer rendering the stick-figure video on first download (mp4; gif when ffmpeg fails)."""

        def produce(path: Path) -> Path:
            from ..render import render_motions

            with self._turn():
                try:
                    render_motions([joints], path, titles=[title])
                    return path
                except (RuntimeError, OSError, ImportError):
                    gif = path.with_suffix(".gif")
                    render_motions([joints], gif, titles=[title])
                    return gif

        return produce

    # -- retrieval -----------------------------------------------------------------------------------------
    def _database(self):
        """``(retriever, database, {entry id: row})`` of the model (the pipeline's own, else its folders)."""
        if self._retrieval is not None:
            return self._retrieval
        pipe = self.pipeline()
        model, db = getattr(pipe, "retriever", None), getattr(pipe, "database", None)
        if model is None or db is None:
            from ..cli.retrieve import resolve_retriever
            from ..retrieval.database import RetrievalDatabase
            from ..retrieval.model import PartRetriever

            retriever_dir, db_dir = resolve_retriever(self.model_dir, None)
            if not Path(db_dir).is_dir():
                raise RequestError("this model has no retrieval database", 404)
            try:
                model = PartRetriever.from_pretrained(retriever_dir, device=self.device)
                db = RetrievalDatabase.load(db_dir, model=model)
            except (ValueError, OSError, RemomaskError) as exc:
                raise ModelUnavailableError(f"the retrieval database failed to load: {error_line(exc)}") from None
        rows = {entry: row for row, entry in enumerate(db.entry_ids)}
        self._retrieval = (model, db, rows)
        return self._retrieval

    def _bounds(self, entry_id: str) -> dict:
        """``{"start", "end"}`` frames of a database entry (from the pipeline's hit, else the database)."""
        try:
            _, db, rows = self._database()
        except RequestError:
            return {}
        row = rows.get(entry_id)
        return {} if row is None else {"start": int(db.starts[row]), "end": int(db.ends[row])}

    def retrieve(self, text: str, k: int = 5) -> dict:
        """Search the database by text (the retriever's text side, docs/design.md §4.7).

        Returns:
            ``{"text", "k", "hits": [{"id", "motion_id", "caption", "score", "start", "end"}]}``, best first.

        Raises:
            ModelUnavailableError: the model or database failed to load. RequestError: no database.
        """
        model, db, _ = self._database()
        with self._turn():
            try:
                result = db.search_text([text], model, k)
            except (ValueError, RemomaskError) as exc:
                raise RequestError(error_line(exc)) from None
        hits = [{"id": h.entry_id, "motion_id": h.motion_id, "caption": h.caption, "score": round(float(h.score), 6),
                 "start": int(h.start), "end": int(h.end)} for h in result.hits[0]]
        return {"text": text, "k": k, "hits": hits}

    def entry(self, entry_id: str) -> dict:
        """The motion of one database entry, for the viewer (the segment ``start:end`` of its motion file).

        Returns:
            ``{"id", "motion_id", "caption", "start", "end", "frames", "joints": (T, 22, 3) lists}``.

        Raises:
            RequestError: an unknown entry id (404) or a motion file missing from the dataset (404).
        """
        if entry_id in self._entries:
            self._entries.move_to_end(entry_id)
            return self._entries[entry_id]
        _, db, rows = self._database()
        row = rows.get(entry_id) if isinstance(entry_id, str) else None
        if row is None:
            raise RequestError("unknown database entry id", 404)
        import numpy as np

        from ..data.embedded import resolve_dataset
        from ..data.features import joints_from_features

        motion_id = db.motion_ids[row]
        dataset = str(getattr(db, "info", {}).get("dataset") or "embedded")
        try:
            path = resolve_dataset(dataset, progress=False) / "new_joint_vecs" / f"{motion_id}.npy"
            feats = np.load(path)
        except (OSError, ValueError, RemomaskError):
            raise RequestError(f"the motion {motion_id} of entry {entry_id} is not in dataset {dataset}", 404) from None
        start, end = int(db.starts[row]), int(db.ends[row])
        if 0 <= start < end <= len(feats):
            feats = feats[start:end]
        joints = joints_from_features(feats.astype(np.float32))
        item = {"id": entry_id, "motion_id": motion_id, "caption": db.captions[row], "start": start, "end": end,
                "frames": int(len(joints)), "joints": _joints_json(joints)}
        self._entries[entry_id] = item
        while len(self._entries) > 64:
            self._entries.popitem(last=False)
        return item

    # -- the rest ------------------------------------------------------------------------------------------
    def health(self) -> dict:
        """``{"status", "error", "model", "load_seconds", "waiting", "limits", "skeleton", "features", "parts"}``
        (``parts``: the body-part names an edit takes, :data:`remomask.pipeline.editing.PARTS`)."""
        from ..cli.generate import MAX_SAMPLES as cli_max
        from ..pipeline import MAX_SECONDS, MIN_SECONDS
        from ..pipeline.editing import PARTS

        pipe = self._pipe
        return {"status": self.status, "error": self.load_error,
                "model": str(self.model_dir) if self.model_dir is not None else "bundled default",
                "load_seconds": None if self.load_seconds is None else round(self.load_seconds, 3),
                "waiting": self._waiting,
                "limits": {"prompt_chars": MAX_PROMPT_CHARS, "num_samples": MAX_STUDIO_SAMPLES,
                           "cli_num_samples": cli_max, "min_seconds": MIN_SECONDS, "max_seconds": MAX_SECONDS,
                           "retrieve_k": MAX_RETRIEVE_K, "steps": MAX_STEPS, "queue": self.max_queue},
                "skeleton": self._skeleton,
                "features": {"edit": bool(pipe is not None and hasattr(pipe, "edit")),
                             "compose": bool(pipe is not None and hasattr(pipe, "compose"))},
                "parts": list(PARTS)}

    def close(self) -> None:
        """Wait for a model load in progress, then delete the file store."""
        loader = getattr(self, "_loader", None)
        if loader is not None and loader is not threading.current_thread():
            loader.join()
        self.store.close()


def _plain(value):
    """JSON fallback for numpy scalars and arrays in library results."""
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _bvh_producer(joints):
    """A producer writing the joints as BVH on first download (22-joint skeleton, centimetres, 20 fps)."""

    def produce(path: Path) -> Path:
        from ..export import write_bvh

        write_bvh(path, joints, fps=20.0)
        return path

    return produce
