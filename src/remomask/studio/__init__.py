"""remomask studio: a local web page to generate, view and download motions (docs/studio.md).

``remomask studio`` serves one page with a prompt form, an interactive three.js skeleton viewer per sample,
the retrieved database entries beside each sample, a retrieval search tab, a timeline tab, an editor panel
per motion (regenerate a frame range or body parts with a new text) and downloads (BVH, joints, features,
video, ``result.json``), on top of a JSON API that scripts can call too. The generation itself is
the ReMoMask cascade (arXiv 2508.02605, Sec. 3) run by :class:`remomask.pipeline.ReMoMaskPipeline`.

- :mod:`.service`: :class:`Studio` (model, worker lock, retrieval, request checks), no HTTP;
- :mod:`.app`: :func:`create_app`, the Starlette application (routes, limits, errors as one JSON line);
- :mod:`.store`: :class:`FileStore`, generated files by opaque id in a private temporary folder;
- ``static/``: the page (``index.html``, ``studio.js``, ``viewer.js``, ``studio.css``) and three.js 0.187.0.

Importing this package imports neither torch nor Starlette.
"""

from __future__ import annotations

__all__ = ["create_app", "Studio", "FileStore"]


def __getattr__(name: str):
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "Studio":
        from .service import Studio

        return Studio
    if name == "FileStore":
        from .store import FileStore

        return FileStore
    raise AttributeError(name)
