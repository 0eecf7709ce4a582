"""``remomask export-bvh``: write a motion ``.npy`` as a BVH file (project issue 7, item 3).

Registered lazily in :mod:`remomask.cli`; bad input prints one line ``error: ...`` and exits with
code 2 (the ``UsageFailure`` of the CLI).
"""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["export_bvh_command"]


@click.command("export-bvh")
@click.argument("motion", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="Output .bvh file.")
@click.option("--fps", type=float, default=20.0, show_default=True, help="Frames per second of the motion.")
@click.option("--scale", type=float, default=100.0, show_default=True,
              help="BVH units per metre: 100 writes centimetres, 1 metres.")
@click.option("--order", default="ZXY", show_default=True, help="Euler order of the rotation channels.")
@click.option("--positions", type=click.Choice(["auto", "root", "all"]), default="auto", show_default=True,
              help="Joints with position channels: 'auto' where the skeleton is not rigid (exact), "
                   "'root' only (classic, approximate for non-rigid motions), or 'all'.")
def export_bvh_command(motion: Path, out: Path, fps: float, scale: float, order: str, positions: str) -> None:
    """Write MOTION (.npy joints (T, 22, 3) in metres or HumanML3D features (T, 263)) as a BVH file.

    The BVH is on the 22-joint HumanML3D skeleton (joint names pelvis, left_hip, ...), Y up, in
    centimetres by default; rotations come from inverse kinematics on the joint positions.
    """
    import numpy as np

    from ..cli import UsageFailure
    from .bvh import BvhExportError, export_bvh

    if not motion.is_file():
        raise UsageFailure(f"{motion} does not exist; pass a .npy of joints (T, 22, 3) or features (T, 263)")
    if out.suffix.lower() != ".bvh":
        raise UsageFailure(f"the output {out} must end in .bvh")
    try:
        array = np.load(motion, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UsageFailure(f"{motion} is not a readable .npy array ({exc})") from exc
    try:
        solved = export_bvh(out, array, fps=fps, scale=scale, order=order, positions=positions)
    except BvhExportError as exc:
        raise UsageFailure(f"{motion}: {exc}") from exc
    except OSError as exc:
        raise UsageFailure(f"cannot write {out}: {exc}") from exc
    unit = "cm" if scale == 100.0 else ("m" if scale == 1.0 else f"1/{scale:g} m")
    extra = int(solved.position_channels[1:].sum())
    click.echo(f"wrote {out}: {solved.num_frames} frames at {solved.fps:g} fps, {len(solved.names)} joints, "
               f"units {unit}, {extra} non-root joints with position channels; forward-kinematics error "
               f"max {solved.max_error_m * 100:.3f} cm, mean {solved.mean_error_m * 100:.3f} cm")
