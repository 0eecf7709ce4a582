"""Tokenizer stage: the 2D residual VQ-VAE that turns motion into token grids (docs/design.md §3).

Public API (imported lazily, so that ``import remomask.tokenizer`` loads without torch):

- :func:`to_grid` / :func:`from_grid` / :func:`grid_layout`: (B, T, D) features <-> (B, T, J', 12) grid
  (docs/design.md §3.1).
- :class:`TokenizerConfig` with presets ``cpu`` and ``paper`` (:data:`PRESETS`); :class:`MotionTokenizer`
  with ``encode``, ``decode``, ``save_pretrained`` / ``from_pretrained``; :class:`CheckpointError`
  (docs/design.md §3.2-§3.3).
- :class:`ResidualVQ` / :class:`QuantizeEMAReset`: the EMA residual quantiser (docs/design.md §3.3).
- ``remomask.tokenizer.train.train_tokenizer`` (docs/design.md §3.4) and
  ``remomask.tokenizer.evaluate.evaluate_tokenizer`` (reconstruction metrics and, with the T2M evaluator,
  reconstruction FID: ``reconstruction_fid``).
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "PRESETS": "config", "TokenizerConfig": "config",
    "to_grid": "grid", "from_grid": "grid", "grid_layout": "grid",
    "MotionTokenizer": "model", "TokenizerOutput": "model",
    "CheckpointError": "pretrained",
    "QuantizeEMAReset": "quantizer", "ResidualVQ": "quantizer",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
