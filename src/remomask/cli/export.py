"""``remomask export-bvh`` and ``remomask render`` (docs/design.md §8).

Both take motion files through :func:`remomask.data.motion_file.load_motion_file`: ``.npy`` joints
(T, 22, 3) metres or HumanML3D features (T, 263), ``.npz`` with a named array, or ``.bvh``.
"""

from __future__ import annotations

from pathlib import Path

import click

from ._core import command, fail, finite

__all__ = ["export_bvh", "render"]


@command("export-bvh")
@click.argument("motion", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="Output .bvh file.")
@click.option("--array", default=None, help="Name of the array in an .npz file [default: joints/features/motion].")
@click.option("--fps", type=finite(positive=True), default=20.0, show_default=True,
              help="Frames per second of the motion.")
@click.option("--scale", type=finite(positive=True), default=100.0, show_default=True,
              help="BVH units per metre: 100 writes centimetres, 1 metres.")
@click.option("--order", default="ZXY", show_default=True, help="Euler order of the rotation channels.")
@click.option("--positions", type=click.Choice(["auto", "root", "all"]), default="auto", show_default=True,
              help="Joints with position channels: 'auto' where the skeleton is not rigid (exact), "
                   "'root' only (classic, approximate for non-rigid motions), or 'all'.")
def export_bvh(motion: Path, out: Path, array: str | None, fps: float, scale: float, order: str,
               positions: str) -> None:
    """Write MOTION (.npy / .npz joints (T, 22, 3) in metres or HumanML3D features (T, 263), or .bvh) as BVH.

    The BVH is on the 22-joint HumanML3D skeleton (joint names pelvis, left_hip, ...), Y up, in
    centimetres by default; rotations come from inverse kinematics on the joint positions.
    """
    from ..data.motion_file import load_motion_file
    from ..export.bvh import export_bvh as write

    if out.suffix.lower() != ".bvh":
        raise fail(f"the output {out} must end in .bvh")
    loaded = load_motion_file(motion, array=array)
    source = loaded.features if loaded.features is not None else loaded.joints
    solved = write(out, source, fps=fps, scale=scale, order=order, positions=positions)
    unit = "cm" if scale == 100.0 else ("m" if scale == 1.0 else f"1/{scale:g} m")
    extra = int(solved.position_channels[1:].sum())
    click.echo(f"wrote {out}: {solved.num_frames} frames at {solved.fps:g} fps, {len(solved.names)} joints, "
               f"units {unit}, {extra} non-root joints with position channels; forward-kinematics error "
               f"max {solved.max_error_m * 100:.3f} cm, mean {solved.mean_error_m * 100:.3f} cm")


@command("render")
@click.argument("motions", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True,
              help="Output .mp4 or .gif (or .png for a strip of frames).")
@click.option("--title", "titles", multiple=True, help="Caption per motion (repeat).")
@click.option("--fps", type=finite(positive=True), default=20.0, show_default=True)
def render(motions: tuple[Path, ...], out: Path, titles: tuple[str, ...], fps: float) -> None:
    """Render MOTIONS (.npy / .npz joints (T, 22, 3) or features (T, 263), or .bvh) as a stick-figure video."""
    from ..data.motion_file import load_motion_file

    if out.suffix.lower() not in (".mp4", ".gif", ".png"):
        raise fail(f"the output {out} must end in .mp4, .gif or .png")
    if out.is_dir():
        raise fail(f"the output {out} is a directory; give a file name ending in .mp4, .gif or .png")
    if titles and len(titles) != len(motions):
        raise fail(f"give one --title per motion ({len(motions)}), got {len(titles)}")
    if out.suffix.lower() == ".png" and len(motions) != 1:
        raise fail("a .png strip takes exactly one motion")
    arrays = [load_motion_file(path).joints for path in motions]
    from ..render import render_motions, render_strip

    if out.suffix.lower() == ".png":
        render_strip(arrays[0], out, title=titles[0] if titles else None)
    else:
        render_motions(arrays, out, titles=list(titles) or None, fps=fps)
    click.echo(str(out))
