"""The model card (``README.md``) of a pipeline folder, from a template (docs/design.md, the model folders).

:data:`CARD_TEMPLATE` holds the fixed text; :func:`card_fields` computes its fields from the pipeline's
components and their own cards (training command, data, validation metrics).
"""

from __future__ import annotations

from string import Template

__all__ = ["CARD_TEMPLATE", "card_fields", "model_card"]

CARD_TEMPLATE = Template("""\
# remomask text-to-motion pipeline (ReMoMask)

Retrieval-augmented masked text-to-motion generation, re-implemented from the ReMoMask paper \
(docs/design.md §3-§8): a 2D residual VQ-VAE tokenizer, a part-level retriever and its database, a \
masked transformer with SSTA and RAG classifier-free guidance, a residual transformer and a \
length estimator. Output: HumanML3D features and 22 joints in metres at 20 fps, 2-9.8 s.

## Components

$components

## Training and validation

${training}## Sampling defaults

$steps decoding steps, cond_scale $cond_scale (base layer)$four_way, $residual_cond_scale (residual layers), \
top-k 10 % of the codes, temperature 1, categorical sampling for the base layer, Gumbel for the residual \
layers (docs/design.md §7, §9).$gate

## Licence

Code MIT. Weights trained on the bundled remomask dataset (Bandai-Namco Research Motiondataset, \
CC BY-NC 4.0; HDM05, CC BY-SA 3.0; dataset version 2 adds CMU mocap with KIT-ML / HumanML3D captions and \
ReActIdle, see docs/data.md): non-commercial use. The frozen text encoder all-MiniLM-L6-v2 is \
Apache-2.0.
""")
"""The card's text with ``$components``, ``$training``, ``$steps``, ``$cond_scale``, ``$four_way`` (the text-only
and retrieval-only guidance terms when set, docs/design.md §5.5), ``$residual_cond_scale`` and ``$gate`` (the
similarity gate when set, docs/design.md §4.10)."""

_CARD_KEYS = ("preset", "iterations", "batch_size", "selected_step")
"""Entries of a component's card shown on its training line."""


def _components(pipe) -> list[str]:
    tok, mc = pipe.tokenizer, pipe.mask_transformer.config
    retrieval = f"on (k = {mc.retrieval_k})" if mc.use_retrieval else "off (MoMask-style baseline)"
    lines = [f"- text encoder: frozen `{getattr(pipe.text_encoder, 'name', '?')}` ({pipe.text_encoder.dim}-d)",
             f"- tokenizer: {tok.config.num_quantizers} layers x {tok.config.num_codes} codes, "
             f"{tok.num_columns} token columns",
             f"- masked transformer: SSTA `{mc.ssta}`, latent {mc.latent_dim}, {mc.ssta_layers} SSTA + "
             f"{mc.joint_layers} joint + {mc.time_layers} time layers, retrieval {retrieval}"]
    if pipe.residual_transformer is not None:
        rc = pipe.residual_transformer.config
        lines.append(f"- residual transformer: latent {rc.latent_dim}, {rc.layers} + {rc.joint_layers} + "
                     f"{rc.time_layers} layers, layers 1..{rc.num_quantizers - 1}")
    else:
        lines.append("- residual transformer: none (base layer only)")
    lines.append("- length estimator: " + ("yes" if pipe.length_estimator is not None else
                                           "none (a duration must be given)"))
    if pipe.database is not None:
        lines.append(f"- retrieval database: {len(pipe.database)} entries of {pipe.database.num_motions} motions")
    return lines


def _value(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else f"{v}"


def _training(pipe) -> str:
    out = []
    for name in ("mask_transformer", "residual_transformer", "length_estimator"):
        card = getattr(getattr(pipe, name), "card", None) or {}
        if not card:
            continue
        shown = ", ".join(f"{k} {v}" for k, v in card.items() if k in _CARD_KEYS)
        out.append(f"**{name.replace('_', ' ')}**: {shown}")
        if card.get("command"):
            out.append(f"    {card['command']}")
        if card.get("dataset"):
            out.append(f"- data: {card['dataset']}")
        for split, metrics in (card.get("metrics") or {}).items():
            out.append(f"- {split}: " + ", ".join(f"{k} {_value(v)}" for k, v in metrics.items()))
        out.append("")
    return "".join(line + "\n" for line in out)


def card_fields(pipe) -> dict[str, str]:
    """The fields of :data:`CARD_TEMPLATE` for a pipeline (docs/design.md).

    Args:
        pipe: a :class:`~remomask.pipeline.ReMoMaskPipeline`.

    Returns:
        ``{"components", "training", "steps", "cond_scale", "four_way", "residual_cond_scale", "gate"}`` as text.
    """
    d = pipe.sampling_defaults
    return {"components": "\n".join(_components(pipe)), "training": _training(pipe), "steps": f"{d['steps']}",
            "cond_scale": f"{d['cond_scale']:g}", "residual_cond_scale": f"{d['residual_cond_scale']:g}",
            "four_way": "".join(f", {k} {d[k]:g}" for k in ("text_scale", "retrieval_scale") if d.get(k)),
            "gate": (f" Prompts whose best retrieved neighbour scores below {d['retrieval_min_score']:g} are generated "
                     "without retrieval (similarity gate, docs/design.md §4.10)."
                     if d.get("retrieval_min_score") else "")}


def model_card(pipe) -> str:
    """Markdown model card of a pipeline: components, training data and commands, validation metrics,
    sampling defaults, licence (docs/design.md, the model folders).

    Args:
        pipe: a :class:`~remomask.pipeline.ReMoMaskPipeline`.

    Returns:
        The card's text (ends with a newline).
    """
    return CARD_TEMPLATE.substitute(card_fields(pipe))
