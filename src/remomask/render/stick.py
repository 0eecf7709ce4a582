"""Matplotlib stick-figure rendering of motions, side by side, to ``.mp4``/``.gif`` or a PNG strip.

Conventions follow the reference ``plot_3d_motion`` (docs/design.md §8): a 3D stick figure drawn from
the skeleton's kinematic chains; the body kept in the middle of the view while an XZ ground plane
and the root trajectory drawn on it slide underneath (the floor "follows the trajectory"); a floor
square of side ``radius`` (about 3.3 m for a HumanML3D body: the reference's radius 4 was applied
to joints scaled by 1.3); 20 fps. What differs: the view is fixed per motion and fitted to
everything the motion ever reaches (the figure never jumps and never leaves the frame), chains are
coloured by body side, the caption is wrapped, the chains are painted far to near, and one figure
is built once and only its line data change from frame to frame.

Coordinates are HumanML3D's: metres, Y up, a clip's first frame facing +Z, and the person's left on
+X (docs/design.md §2.1). The camera (``ELEV``, ``AZIM``, with matplotlib's ``vertical_axis="y"``) looks from
the person's right-front, slightly from above, so a motion that faces +Z faces the viewer's right.
"""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from remomask.data.skeleton import Skeleton, get_skeleton
from remomask.data.storage import atomic_path
from remomask.render.video import check_video_path, write_video

__all__ = [
    "ELEV",
    "AZIM",
    "SIDE_COLOURS",
    "chain_sides",
    "as_joints",
    "render_motions",
    "render_strip",
    "seconds_per_100_frames",
]

ELEV = 20.0
"""Camera elevation in degrees above the floor plane."""

AZIM = -60.0
"""Camera azimuth in degrees (matplotlib, ``vertical_axis="y"``). At -90 the camera would sit on
-X looking at +X, with +Z pointing to the screen's right; -60 turns it 30 degrees towards +Z so a
person facing +Z is seen from the right-front, facing the viewer's right."""

SIDE_COLOURS = {"left": "#0072B2", "right": "#D55E00", "centre": "#333333"}
"""Chain colours by body side (Okabe-Ito blue and vermillion, dark grey for the spine)."""

_FLOOR_COLOUR = "#e3e3e3"
_GRID_COLOUR = "#bdbdbd"
_TRAJ_COLOUR = "#009E73"
_RADIUS_PER_HEIGHT = 2.0     # radius / (leg + spine): ~3.3 m; docs/design.md §8: radius 4 on data x 1.3
_PANEL_INCHES = (4.8, 4.8)   # width, height of one panel; rounded to multiples of 16 px
_TITLE_FONTSIZE = 10.0
_TITLE_MAX_LINES = 3


def _joint_sides(skeleton: Skeleton) -> list[str]:
    """Side of each joint: joints in ``mirror_pairs`` are left or right by the first letter of
    their name (``left_hip``/``lhip`` vs ``right_hip``/``rhip``); all others are centre."""
    sides = ["centre"] * skeleton.num_joints
    for pair in skeleton.mirror_pairs:
        for j in pair:
            name = skeleton.joint_names[j].lower()
            if name.startswith("l"):
                sides[j] = "left"
            elif name.startswith("r"):
                sides[j] = "right"
            else:
                raise ValueError(f"cannot tell the side of mirrored joint {j} ({name!r}) of "
                                 f"skeleton {skeleton.name!r} from its name")
    return sides


def chain_sides(skeleton: str | Skeleton = "humanml3d") -> list[str]:
    """Side (``"left"``, ``"right"`` or ``"centre"``) of each kinematic chain of ``skeleton``.

    A chain takes the majority side of its joints after the first one (the first is the parent it
    hangs from, e.g. spine3 for an arm). Joint sides come from the joint names (docs/design.md §2.1).

    Raises:
        ValueError: unknown skeleton, or a mirrored joint whose name starts with neither l nor r.
    """
    skeleton = get_skeleton(skeleton)
    sides = _joint_sides(skeleton)
    out = []
    for chain in skeleton.kinematic_chain:
        own = [sides[j] for j in chain[1:]]
        out.append(max(("left", "right", "centre"), key=own.count))
    return out


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):          # torch.Tensor, without importing torch
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def as_joints(motion, skeleton: str | Skeleton = "humanml3d", *, index: int = 0) -> np.ndarray:
    """Return ``motion`` as joint positions (T, J, 3) float64, converting features if needed.

    Args:
        motion: (T, J, 3) joint positions (metres, Y up), or (T, D) HumanML3D-style features with
            D = ``skeleton.feature_dim`` (263 HumanML3D, 251 KIT), de-normalised; these go through
            ``remomask.data.features.joints_from_features``. NumPy array or torch tensor.
        skeleton: skeleton name or object; J must be its joint count.
        index: position of the motion in the caller's list, used in error messages.

    Raises:
        ValueError: wrong shape, no frames, or non-finite values (the message names the motion and
            the first bad frame).
    """
    skeleton = get_skeleton(skeleton)
    arr = _to_numpy(motion)
    j, d = skeleton.num_joints, skeleton.feature_dim
    expected = f"(T, {j}, 3) joints or (T, {d}) features for skeleton {skeleton.name!r}"
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"motion {index} has dtype {arr.dtype}; expected numbers, {expected}")
    if arr.ndim == 3 and arr.shape[1:] == (j, 3):
        joints = arr
    elif arr.ndim == 2 and arr.shape[1] == d:
        if arr.shape[0] == 0:
            raise ValueError(f"motion {index} is empty (0 frames); give at least one frame")
        _check_finite(arr, index, "features")
        from remomask.data.features import joints_from_features  # lazy: optional at import time
        joints = _to_numpy(joints_from_features(arr, skeleton))
    else:
        raise ValueError(f"motion {index} has shape {tuple(arr.shape)}; expected {expected} "
                         f"(pass skeleton='kit' for KIT-ML motions)")
    if joints.shape[0] == 0:
        raise ValueError(f"motion {index} is empty (0 frames); give at least one frame")
    _check_finite(joints, index, "joint positions")
    return joints.astype(np.float64)


def _check_finite(arr: np.ndarray, index: int, what: str) -> None:
    bad = ~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1)
    if bad.any():
        frames = np.flatnonzero(bad)
        raise ValueError(f"motion {index} has NaN or infinite {what} in {frames.size} frame(s), "
                         f"first at frame {frames[0]}; clean or drop those frames before rendering")


def _body_height(joints: np.ndarray, skeleton: Skeleton) -> float:
    """Leg length plus root-to-head length, from mean bone lengths (data units)."""
    parents = skeleton.parents
    bones = np.linalg.norm(joints[:, 1:] - joints[:, parents[1:]], axis=-1).mean(axis=0)
    length = np.concatenate([[0.0], bones])          # (J,) length of the bone ending at joint j
    sides = chain_sides(skeleton)
    root = int(np.flatnonzero(parents < 0)[0])
    legs, spine = [], []
    for chain, side in zip(skeleton.kinematic_chain, sides):
        if chain[0] == root:
            (spine if side == "centre" else legs).append(length[list(chain[1:])].sum())
    height = (np.mean(legs) if legs else 0.0) + (max(spine) if spine else 0.0)
    if not height > 0:
        height = float(np.ptp(joints[..., 1])) or 1.0
    return float(height)


class _Panel:
    """One 3D axes showing one motion; built once, then ``update(t)`` moves its artists."""

    def __init__(self, fig, rect, joints: np.ndarray, skeleton: Skeleton, radius: float | None,
                 elev: float, azim: float):
        from mpl_toolkits.mplot3d.art3d import Line3DCollection, Poly3DCollection

        joints = joints.copy()
        joints[..., 1] -= joints[..., 1].min()                  # lowest point on the floor
        self.traj = joints[:, 0, [0, 2]].copy()                 # (T, 2) root XZ
        joints[..., 0] -= self.traj[:, None, 0]                 # keep the root in the middle;
        joints[..., 2] -= self.traj[:, None, 1]                 # the floor moves instead
        self.joints = joints
        self.num_frames = joints.shape[0]
        if radius is None:
            radius = _RADIUS_PER_HEIGHT * _body_height(joints, skeleton)
        self.radius = float(radius)
        h = self.half = self.radius / 2
        top = 1.05 * max(float(joints[..., 1].max()), 0.5 * h)
        self.grid_step = self.radius / 8

        ax = self.ax = fig.add_axes(rect, projection="3d")
        ax.computed_zorder = False                              # we order the artists ourselves
        ax.set_axis_off()
        ax.view_init(elev=elev, azim=azim, vertical_axis="y")
        ax.set_xlim(-h, h)
        ax.set_ylim(0, top)
        ax.set_zlim(-h, h)
        self.box = (2 * h, 2 * h, top)                          # equal scale (X, Z, Y-up order)
        ax.set_box_aspect(self.box)
        # What must stay in view: the floor square and every joint of every frame.
        corners = np.array([(x, 0.0, z) for x in (-h, h) for z in (-h, h)])
        self.extent = np.concatenate([corners, joints.reshape(-1, 3)])
        self._fit(rect)

        floor = Poly3DCollection([[(-h, 0, -h), (h, 0, -h), (h, 0, h), (-h, 0, h)]],
                                 facecolors=_FLOOR_COLOUR, edgecolors="none", zorder=0)
        ax.add_collection3d(floor, autolim=False)
        self.grid = Line3DCollection([], colors=_GRID_COLOUR, linewidths=0.8, zorder=1)
        ax.add_collection3d(self.grid, autolim=False)
        (self.future,) = ax.plot([], [], [], color=_TRAJ_COLOUR, lw=1.0, alpha=0.35, zorder=2)
        (self.past,) = ax.plot([], [], [], color=_TRAJ_COLOUR, lw=2.0, zorder=2)
        self.chains = [np.asarray(c) for c in skeleton.kinematic_chain]
        self.lines = []
        for k, (chain, side) in enumerate(zip(self.chains, chain_sides(skeleton))):
            width = 4.0 if side == "centre" else 3.0
            (line,) = ax.plot([], [], [], color=SIDE_COLOURS[side], lw=width,
                              solid_capstyle="round", zorder=3 + k)
            self.lines.append(line)
        for artist in [floor, self.grid, self.future, self.past, *self.lines]:
            artist.set_clip_on(False)        # _fit moved the axes; the panel rect bounds the view
        self._proj = ax.get_proj()           # fixed camera: depth order of chains per frame

    def _project(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) data points -> (N, 3) display pixels x, y and depth (valid after a draw)."""
        from mpl_toolkits.mplot3d import proj3d

        x, y, depth = proj3d.proj_transform(points[:, 0], points[:, 1], points[:, 2], self.ax.M)
        xy = self.ax.transData.transform(np.column_stack([x, y]))
        return np.column_stack([xy, depth])

    def _fit(self, rect) -> None:
        """Zoom and move the axes so that ``self.extent`` fills ``rect`` (figure fraction).

        mplot3d centres the whole (mostly empty) axes box; fitting the projected floor and body
        extent instead roughly doubles the size of the figure on screen. Zoom scales about the
        axes centre and moving the axes is a pure translation, so two rounds converge.
        """
        fig = self.ax.figure
        fw, fh = fig.bbox.width, fig.bbox.height
        x0, y0, w, h = rect
        target_c = np.array([(x0 + w / 2) * fw, (y0 + h / 2) * fh])
        zoom = 1.0
        for _ in range(2):
            fig.canvas.draw()
            pts = self._project(self.extent)[:, :2]
            lo, hi = pts.min(axis=0), pts.max(axis=0)
            scale = min(0.96 * w * fw / (hi[0] - lo[0]), 0.96 * h * fh / (hi[1] - lo[1]))
            box = self.ax.bbox
            centre = np.array([(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2])
            offset = (lo + hi) / 2 - centre
            shift = target_c - scale * offset - centre
            zoom *= scale
            self.ax.set_box_aspect(self.box, zoom=zoom)
            pos = self.ax.get_position(original=True)
            self.ax.set_position([pos.x0 + shift[0] / fw, pos.y0 + shift[1] / fh,
                                  pos.width, pos.height])

    def _on_floor(self, xz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N, 2) centred XZ points -> x, y, z arrays, NaN outside the floor square (a gap)."""
        xz = xz.copy()
        xz[(np.abs(xz) > self.half).any(axis=1)] = np.nan
        return xz[:, 0], np.zeros(len(xz)), xz[:, 1]

    def update(self, t: int) -> None:
        """Show frame ``t`` (clamped to the last frame: shorter motions hold their last pose)."""
        from mpl_toolkits.mplot3d import proj3d

        t = min(int(t), self.num_frames - 1)
        pose = self.joints[t]
        for line, chain in zip(self.lines, self.chains):
            line.set_data_3d(pose[chain, 0], pose[chain, 1], pose[chain, 2])
        # Painter's order: the chain farthest from the camera first (larger depth is farther).
        centres = np.stack([pose[chain].mean(axis=0) for chain in self.chains])
        depth = proj3d.proj_transform(centres[:, 0], centres[:, 1], centres[:, 2], self._proj)[2]
        for rank, k in enumerate(np.argsort(-np.asarray(depth))):
            self.lines[k].set_zorder(3 + rank)
        root = self.traj[t]
        rel = self.traj - root
        self.past.set_data_3d(*self._on_floor(rel[: t + 1]))
        self.future.set_data_3d(*self._on_floor(rel[t:]))
        # Grid lines sit at world-fixed multiples of grid_step, so they slide as the root moves.
        h, step = self.half, self.grid_step
        segs = []
        for axis in (0, 1):
            first = np.ceil((root[axis] - h) / step) * step
            for w in np.arange(first, root[axis] + h + 1e-9, step):
                c = w - root[axis]
                if axis == 0:
                    segs.append([(c, 0, -h), (c, 0, h)])
                else:
                    segs.append([(-h, 0, c), (h, 0, c)])
        self.grid.set_segments(segs)


def _wrap(text: str, width_px: int, dpi: float, fontsize: float, max_lines: int) -> str:
    chars = max(10, int(width_px / dpi * 72 / (0.55 * fontsize)))
    lines = textwrap.wrap(" ".join(str(text).split()), width=chars)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: chars - 1].rstrip() + "\u2026"
    return "\n".join(lines)


def _agg_image(fig, size: tuple[int, int]) -> np.ndarray:
    """Draw ``fig`` on its Agg canvas and return it as (H, W, 3) uint8, exactly ``size``."""
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    h, w = size                                          # guard against off-by-one rounding
    out = np.full((h, w, 3), 255, dtype=np.uint8)
    out[: min(h, img.shape[0]), : min(w, img.shape[1])] = img[:h, :w]
    return out


def _text_band(texts: Sequence[str | None], column_px: int, dpi: float,
               fontsize: float = _TITLE_FONTSIZE) -> np.ndarray | None:
    """Render captions once, each wrapped and centred over its column: (H, n*column_px, 3)
    uint8 with H a multiple of 16 (for the video encoder), or None when all texts are empty."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    wrapped = [_wrap(t, column_px, dpi, fontsize, _TITLE_MAX_LINES) if t else "" for t in texts]
    lines = max((w.count("\n") + 1 for w in wrapped if w), default=0)
    if lines == 0:
        return None
    height = 16 * int(np.ceil((lines * fontsize * 1.35 / 72 * dpi + 0.15 * dpi) / 16))
    width = column_px * len(texts)
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor="white")
    FigureCanvasAgg(fig)
    for i, text in enumerate(wrapped):
        fig.text((i + 0.5) / len(texts), 0.5, text, ha="center", va="center",
                 fontsize=fontsize, linespacing=1.2)
    return _agg_image(fig, (height, width))


class _StickFigure:
    """A row of ``_Panel`` s on one Agg canvas, built once.

    ``draw(ts)`` updates each panel to its frame and returns the RGB image (H, W, 3) uint8 with
    H, W multiples of 16. Static captions are rendered once into a band stacked on top (text is
    the slowest thing matplotlib draws), and progress is a thin bar along the bottom edge.
    """

    def __init__(self, motions: list[np.ndarray], skeleton: Skeleton, titles: Sequence[str | None],
                 radius: float | None, elev: float, azim: float, dpi: float,
                 labels: bool = False):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D

        n = len(motions)
        pw, ph = (max(64, 16 * round(v * dpi / 16)) for v in _PANEL_INCHES)
        self.size = (ph, n * pw)
        self.fig = Figure(figsize=(n * pw / dpi, ph / dpi), dpi=dpi, facecolor="white")
        FigureCanvasAgg(self.fig)
        bottom = 0.06                                   # room for the label or progress bar
        self.panels = [_Panel(self.fig, (i / n, bottom, 1 / n, 0.98 - bottom), joints, skeleton,
                              radius, elev, azim) for i, joints in enumerate(motions)]
        self.band = _text_band(titles, pw, dpi)
        self.labels = [self.fig.text((i + 0.02) / n, 0.01, "", ha="left", va="bottom", fontsize=8,
                                     color="#555555") for i in range(n)] if labels else []
        self.bar = Line2D([0, 0], [0.006, 0.006], transform=self.fig.transFigure, lw=3,
                          color="#9a9a9a", solid_capstyle="butt")
        self.fig.add_artist(self.bar)
        self.bar.set_visible(not labels)

    def draw(self, ts: Sequence[int], progress: float = 0.0,
             labels: Sequence[str] = ()) -> np.ndarray:
        """Show frame ``ts[i]`` in panel i; ``progress`` in [0, 1] sets the bar; ``labels`` are
        per-panel texts (only when built with ``labels=True``)."""
        for panel, t in zip(self.panels, ts):
            panel.update(t)
        self.bar.set_xdata([0.0, float(np.clip(progress, 0.0, 1.0))])
        for text, label in zip(self.labels, labels):
            text.set_text(label)
        image = _agg_image(self.fig, self.size)
        return image if self.band is None else np.concatenate([self.band, image], axis=0)


def _check_options(titles, n: int, fps, radius, frame_stride: int, dpi: float) -> list:
    if titles is None:
        titles = [None] * n
    elif isinstance(titles, str):
        titles = [titles]
    titles = list(titles)
    if len(titles) != n:
        raise ValueError(f"got {len(titles)} titles for {n} motions; give one title per motion "
                         f"(None for no title)")
    if fps is not None and not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    if radius is not None and not (np.isfinite(radius) and radius > 0):
        raise ValueError(f"radius must be a positive number (data units) or None, got {radius!r}")
    if isinstance(frame_stride, bool) or not isinstance(frame_stride, (int, np.integer)) \
            or frame_stride < 1:
        raise ValueError(f"frame_stride must be an integer >= 1, got {frame_stride!r}")
    if not (np.isfinite(dpi) and dpi > 0):
        raise ValueError(f"dpi must be a positive number, got {dpi!r}")
    return titles


def _as_motion_list(motions) -> list:
    if isinstance(motions, np.ndarray) or hasattr(motions, "detach"):
        arr = _to_numpy(motions)
        if arr.ndim not in (2, 3, 4):
            raise ValueError(f"motions has shape {arr.shape}; pass one (T, J, 3) or (T, D) motion, "
                             f"a batch (N, T, J, 3), or a list of motions")
        return [arr] if arr.ndim in (2, 3) else list(arr)
    motions = list(motions)
    if not motions:
        raise ValueError("no motions to render; pass a list of (T, J, 3) joints or (T, D) features")
    return motions


def render_motions(motions, out_path: str | os.PathLike, *, titles=None, fps: float | None = None,
                   skeleton: str | Skeleton = "humanml3d", radius: float | None = None,
                   frame_stride: int = 1, dpi: float = 80.0, elev: float = ELEV,
                   azim: float = AZIM) -> Path:
    """Render one or several motions side by side as a stick-figure video (docs/design.md §8).

    Args:
        motions: one motion or a list of motions; each is (T_i, J, 3) joint positions (metres,
            Y up) or (T_i, D) de-normalised features (D = 263 HumanML3D, 251 KIT), NumPy or torch.
            Different lengths are allowed: the video lasts max(T_i) frames and a shorter motion
            holds its last pose.
        out_path: ``.mp4`` (H.264) or ``.gif``; written atomically (temp file, then os.replace).
        titles: one caption per motion (str or None), or a single str for a single motion; long
            captions are wrapped to three lines.
        fps: frame rate of the motions; None means the skeleton's (20 HumanML3D, 12.5 KIT).
        skeleton: ``"humanml3d"`` (22 joints) or ``"kit"`` (21 joints), or a ``Skeleton``.
        radius: side of the floor square drawn under the body, in data units; None derives it
            from the body size: 2 x (leg + spine length), about 3.3 m for a HumanML3D body (docs/design.md §8
            uses radius 4 on joints scaled by 1.3) and the same proportion for KIT's millimetres.
        frame_stride: draw every k-th frame; the video plays at ``fps / frame_stride`` so it stays
            real time.
        dpi: resolution; one panel is 4.8 x 4.8 inches rounded to multiples of 16 pixels
            (384 x 384 px at the default 80 dpi), plus a caption band (multiple of 16 px) on top
            when any title is given.
        elev, azim: camera angles in degrees (see ``ELEV`` and ``AZIM``).

    Returns:
        The written path. Cost: about 1.8 s per 100 frames and panel to draw at 80 dpi, 2-3 s
        with encoding (mp4 or gif), measured on a shared 2-core CPU.

    Raises:
        ValueError: unknown suffix, no motions, a motion with a wrong shape, no frames or NaN/inf
            values, a titles list of the wrong length, or a non-positive fps/radius/dpi/stride.
    """
    path = check_video_path(out_path)
    skel = get_skeleton(skeleton)
    motions = _as_motion_list(motions)
    titles = _check_options(titles, len(motions), fps, radius, frame_stride, dpi)
    joints = [as_joints(m, skel, index=i) for i, m in enumerate(motions)]
    fps = float(fps) if fps is not None else skel.fps
    total = max(j.shape[0] for j in joints)
    figure = _StickFigure(joints, skel, titles, radius, elev, azim, dpi)

    def frames():
        for t in range(0, total, int(frame_stride)):
            yield figure.draw([t] * len(joints), progress=t / max(total - 1, 1))

    write_video(frames(), path, fps / frame_stride)
    return path


def render_strip(motion, out_png: str | os.PathLike, *, num_frames: int = 6,
                 title: str | None = None, fps: float | None = None,
                 skeleton: str | Skeleton = "humanml3d", radius: float | None = None,
                 frames: Sequence[int] | None = None, dpi: float = 80.0, elev: float = ELEV,
                 azim: float = AZIM) -> Path:
    """Write a PNG strip of ``num_frames`` evenly spaced frames of one motion, left to right.

    Used in docs/ so a motion can be looked at without a video player. Each panel shows the pose at
    its frame with the floor and the root trajectory up to that frame, and its time in seconds.

    Args:
        motion: (T, J, 3) joints (metres, Y up) or (T, D) features, as in ``render_motions``.
        out_png: destination ``.png``, written atomically.
        num_frames: number of panels; frames ``round(linspace(0, T-1, num_frames))``.
        title: caption drawn above the strip (wrapped).
        fps: frame rate, for the time labels; None means the skeleton's.
        frames: explicit frame indices (0-based, < T) instead of ``num_frames`` even ones.
        skeleton, radius, dpi, elev, azim: as in ``render_motions``.

    Returns:
        The written path. The image is (384, num_frames * 384) pixels at 80 dpi, plus a title
        band on top when there is a title.

    Raises:
        ValueError: suffix other than ``.png``, bad motion (see ``as_joints``), ``num_frames < 1``,
            or a frame index outside [0, T).
    """
    from PIL import Image

    path = Path(out_png)
    if path.suffix.lower() != ".png":
        raise ValueError(f"render_strip writes PNG images; name the file *.png, got {str(path)!r}")
    skel = get_skeleton(skeleton)
    joints = as_joints(motion, skel)
    _check_options(None, 1, fps, radius, 1, dpi)
    fps = float(fps) if fps is not None else skel.fps
    t_max = joints.shape[0]
    if frames is None:
        if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) \
                or num_frames < 1:
            raise ValueError(f"num_frames must be an integer >= 1, got {num_frames!r}")
        frames = np.round(np.linspace(0, t_max - 1, int(num_frames))).astype(int).tolist()
    frames = [int(f) for f in frames]
    if not frames or min(frames) < 0 or max(frames) >= t_max:
        raise ValueError(f"frame indices {frames} must be non-empty and within [0, {t_max})")
    figure = _StickFigure([joints] * len(frames), skel, [None] * len(frames), radius, elev,
                          azim, dpi, labels=True)
    image = figure.draw(frames, labels=[f"t = {f / fps:.2f} s (frame {f})" for f in frames])
    if title:
        band = _text_band([title], image.shape[1], dpi, fontsize=_TITLE_FONTSIZE + 2)
        image = np.concatenate([band, image], axis=0)
    with atomic_path(path, suffix=".part.png") as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
    return path


def seconds_per_100_frames(motion, *, num_frames: int = 40, skeleton: str | Skeleton = "humanml3d",
                           dpi: float = 80.0) -> float:
    """Wall-clock seconds to draw 100 frames of one panel (drawing only, no encoding), measured
    on the first ``num_frames`` frames of ``motion``; for reports and benchmarks."""
    skel = get_skeleton(skeleton)
    joints = as_joints(motion, skel)[:num_frames]
    figure = _StickFigure([joints], skel, ["timing"], None, ELEV, AZIM, dpi)
    figure.draw([0])                                            # warm-up (fonts, caches)
    start = time.perf_counter()
    for t in range(joints.shape[0]):
        figure.draw([t])
    return (time.perf_counter() - start) / joints.shape[0] * 100
