"""The ``remomask`` command line: one module per command family (docs/design.md §11).

===================  ==========================================================
module               commands
===================  ==========================================================
``generate``         ``remomask generate``
``retrieve``         ``remomask retrieve``, ``remomask retriever build-db``
``data``             ``remomask data build | stats | export``
``train``            ``remomask train tokenizer | retriever | evaluator | ...``
``evaluate``         ``remomask evaluate tokenizer | retrieval | t2m``
``export``           ``remomask export-bvh``, ``remomask render``
``caption``          ``remomask caption``, ``remomask data import``
``assemble``         ``remomask assemble``
===================  ==========================================================

Commands are imported only when they run, and stage packages contain no click: the command modules
parse arguments, check them before any model loads, and call the library. Every error of the package
prints one line ``error: ...`` and exits with 2; Ctrl-C exits with 130 (:mod:`remomask.cli._core`).
``python -m remomask.cli`` (e.g. under ``torchrun``) runs the same command line.
"""

from __future__ import annotations

import sys

import click

from ._core import LazyGroup

__all__ = ["main"]


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]}, lazy={
    "generate": ("remomask.cli.generate:generate", "Text to motion: joints, features, video, result.json."),
    "edit": ("remomask.cli.edit:edit", "Regenerate a frame range or body parts of a motion with a new text."),
    "retrieve": ("remomask.cli.retrieve:retrieve", "Retrieve the database motions nearest to a text."),
    "caption": ("remomask.cli.caption:caption", "Caption motion files (BVH, joints, features) by retrieval."),
    "assemble": ("remomask.cli.assemble:assemble", "Assemble trained stages into one pipeline folder."),
    "export-bvh": ("remomask.cli.export:export_bvh", "Write a motion file (joints or features) as a BVH file."),
    "render": ("remomask.cli.export:render", "Render motion files as a stick-figure video or strip."),
    "data": ("remomask.cli.data:data", "Build, inspect and export motion datasets (HumanML3D layout)."),
    "train": ("remomask.cli.train:train", "Train a stage (resumable, seeded; DDP under torchrun)."),
    "evaluate": ("remomask.cli.evaluate:evaluate", "Score a stage with the project's evaluation protocol."),
    "retriever": ("remomask.cli.retrieve:retriever", "Retrieval database tools."),
    "studio": ("remomask.cli.studio:studio", "Serve a local web page: generate, view in 3D, compare, download."),
})
@click.version_option(package_name="remomask")
def main() -> None:
    """remomask: retrieval-augmented masked text-to-motion generation (ReMoMask).

    Everything works offline: the default model and the dataset it was trained on
    (real mocap: Bandai-Namco, HDM05) ship inside the package.
    """


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
