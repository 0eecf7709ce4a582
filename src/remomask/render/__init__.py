"""Rendering of motions: matplotlib stick-figure videos (``.mp4``/``.gif``) and PNG strips.

docs/design.md §8 (the ``plot_3d_motion`` outputs of the demo). See ``stick`` for the conventions
(camera, colours, floor) and ``video`` for the atomic ``.mp4``/``.gif`` writer.
"""

from remomask.render.stick import (
    AZIM,
    ELEV,
    SIDE_COLOURS,
    as_joints,
    chain_sides,
    render_motions,
    render_strip,
    seconds_per_100_frames,
)
from remomask.render.video import VIDEO_SUFFIXES, write_video

__all__ = [
    "AZIM",
    "ELEV",
    "SIDE_COLOURS",
    "VIDEO_SUFFIXES",
    "as_joints",
    "chain_sides",
    "render_motions",
    "render_strip",
    "seconds_per_100_frames",
    "write_video",
]
