"""Stick-figure rendering (docs/design.md §8) on the real HumanML3D clip 012314.

The videos are read back with imageio and checked for frame count, size, frame rate and content;
the PNG strip is checked for an upright figure standing on the floor by looking at its pixels.
Only the first 40 frames are rendered to keep the file fast (~1 s per 40-frame video).
"""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from remomask.data.skeleton import HUMANML3D, get_skeleton
from remomask.render import (
    AZIM,
    ELEV,
    SIDE_COLOURS,
    chain_sides,
    render_motions,
    render_strip,
    write_video,
)
from remomask.render import stick

FRAMES = 40


@pytest.fixture(scope="module")
def joints(fixtures_dir) -> np.ndarray:
    """(170, 22, 3) metres, Y up: HumanML3D clip 012314 as released."""
    return np.load(fixtures_dir / "humanml3d" / "new_joints__012314.npy")


def _mask(img: np.ndarray, hex_colour: str, tol: int) -> np.ndarray:
    """(H, W) bool: pixels within ``tol`` (per channel) of ``hex_colour``."""
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
    return (np.abs(img[..., :3].astype(int) - rgb) <= tol).all(axis=-1)


def _pose_pixels(img: np.ndarray, tol: int = 25) -> dict[str, np.ndarray]:
    """Masks of the left, right and centre chain colours, ignoring the bottom label strip."""
    body = img[: int(img.shape[0] * 0.94)]
    return {side: _mask(body, colour, tol) for side, colour in SIDE_COLOURS.items()}


def _upright_on_floor(img: np.ndarray) -> bool:
    """True when the figure is taller than wide, the spine colour (head) is at the top, a limb
    colour (feet) at the bottom well below the pelvis, and floor pixels lie right under the feet."""
    m = _pose_pixels(img)
    limbs = m["left"] | m["right"]
    body = limbs | m["centre"]
    rows, cols = np.nonzero(body)
    height, width = np.ptp(rows) + 1, np.ptp(cols) + 1
    centre_rows = np.nonzero(m["centre"])[0]
    limb_rows, limb_cols = np.nonzero(limbs)
    foot_row = limb_rows.max()
    foot_col = int(np.median(limb_cols[limb_rows == foot_row]))
    below = img[foot_row + 1: foot_row + 9, max(foot_col - 4, 0): foot_col + 5]
    on_floor = (_mask(below, stick._FLOOR_COLOUR, 12) | _mask(below, stick._GRID_COLOUR, 12)).any()
    return bool(height > 1.5 * width
                and centre_rows.min() <= rows.min() + 2
                and foot_row >= centre_rows.max() + 0.3 * height
                and on_floor)


@pytest.mark.parametrize("name", ["humanml3d", "kit"])
def test_chain_sides_follow_joint_names(name):
    # chain_sides reads the joint names; the reference's own indices say which side is which:
    # the foot-contact joints (fid_l, fid_r) and face_joint_indx = [r_hip, l_hip, r_sh, l_sh].
    skel = get_skeleton(name)
    right = {skel.feet_right[0], skel.face_joints[2]}
    left = {skel.feet_left[0], skel.face_joints[3]}
    expected = ["right" if right & set(c) else "left" if left & set(c) else "centre"
                for c in skel.kinematic_chain]
    assert sorted(expected) == ["centre", "left", "left", "right", "right"]
    assert chain_sides(name) == expected


def test_gif_and_mp4_read_back(joints, tmp_path):
    caption = "HumanML3D clip 012314, its first 40 frames, under a title long enough to be " \
              "wrapped onto more than one line"
    out = {}
    for suffix in (".gif", ".mp4"):
        path = render_motions([joints[:FRAMES]], tmp_path / f"clip{suffix}", titles=[caption])
        out[suffix] = iio.imread(path)
    gif, mp4 = out[".gif"], out[".mp4"]
    assert gif.shape == mp4.shape
    n, h, w, c = gif.shape
    assert (n, c) == (FRAMES, 3)
    assert h % 16 == 0 and w % 16 == 0 and h > w        # caption band stacked on a square panel
    assert Image.open(tmp_path / "clip.gif").info["duration"] == 50       # 20 fps
    assert iio.immeta(tmp_path / "clip.mp4")["fps"] == pytest.approx(20.0)
    for video, tol in ((gif, 25), (mp4, 45)):
        frame = video[FRAMES // 2]
        assert frame.std() > 20                            # not blank
        m = _pose_pixels(frame, tol)
        assert all(m[side].sum() > 30 for side in ("left", "right", "centre"))
        assert np.abs(np.diff(video.astype(np.int16), axis=0)).max(axis=(1, 2, 3)).min() > 0
    # Atomic writes leave nothing but the two videos behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.gif", "clip.mp4"]


def test_side_by_side_pads_shorter_motion(joints, tmp_path):
    short = joints[60:72]                                  # 12 frames beside 30
    path = render_motions([joints[:30], short], tmp_path / "pair.gif", titles=["long", "short"])
    video = iio.imread(path).astype(np.int16)
    assert video.shape[0] == 30
    half = video.shape[2] // 2
    body = slice(0, int(video.shape[1] * 0.94))            # above the progress bar
    right, left = video[:, body, half:], video[:, body, :half]
    # The short motion moves during its 12 frames, then holds its last pose exactly ...
    assert np.abs(np.diff(right[:12], axis=0)).max() > 0
    assert np.abs(right[11:] - right[11]).max() == 0
    # ... while the long one keeps moving.
    assert np.abs(np.diff(left[11:], axis=0)).max(axis=(1, 2, 3)).min() > 0


def test_frame_stride_keeps_real_time(joints, tmp_path):
    path = render_motions(joints[:FRAMES], tmp_path / "stride.gif", frame_stride=4)
    assert iio.imread(path).shape[0] == FRAMES // 4
    assert Image.open(path).info["duration"] == 200        # 20 fps / 4


def test_strip_is_upright_with_feet_on_floor(joints, tmp_path):
    path = render_strip(joints, tmp_path / "one.png", frames=[0])
    img = iio.imread(path)
    assert img.shape[0] % 16 == 0 and img.shape[1] % 16 == 0
    assert _upright_on_floor(img)
    # The check can fail: the same pose upside down (Y negated) is rejected.
    flipped = joints.copy()
    flipped[..., 1] *= -1
    img_flipped = iio.imread(render_strip(flipped, tmp_path / "flipped.png", frames=[0]))
    assert not _upright_on_floor(img_flipped)


def test_strip_of_evenly_spaced_frames(joints, tmp_path):
    one = iio.imread(render_strip(joints, tmp_path / "one.png", frames=[0]))
    strip = iio.imread(render_strip(joints, tmp_path / "strip.png", num_frames=4,
                                    title="HumanML3D 012314"))
    assert strip.shape[1] == 4 * one.shape[1]
    assert strip.shape[0] > one.shape[0]                   # title band on top
    panels = np.split(strip[-one.shape[0]:], 4, axis=1)
    np.testing.assert_array_equal(panels[0], one)          # panel 0 is frame 0
    assert all(np.abs(panels[i].astype(int) - panels[i + 1]).max() > 0 for i in range(3))


def test_camera_sees_plus_z_to_the_right(joints):
    figure = stick._StickFigure([joints.astype(np.float64)], HUMANML3D, [None], None, ELEV, AZIM,
                                80.0)
    figure.draw([0])
    panel = figure.panels[0]
    px = panel._project(panel.joints[0])                   # display pixels, y up
    # Frame 0 faces +Z (HumanML3D processing): toes (10, 11) lie in front of the ankles (7, 8).
    assert joints[0, [10, 11], 2].min() > joints[0, [7, 8], 2].max() - 0.05
    assert px[10, 0] > px[7, 0] and px[11, 0] > px[8, 0]  # ... and so to their right on screen
    assert px[15, 1] > px[[10, 11], 1].max() + 100         # head well above the feet
    # The camera is on the person's right: the right leg (chain 0) is drawn over the left (1).
    assert panel.lines[0].get_zorder() > panel.lines[1].get_zorder()


def test_features_render_like_joints(joints, fixtures_dir, tmp_path):
    feats = np.load(fixtures_dir / "humanml3d" / "new_joint_vecs__012314.npy")
    a = iio.imread(render_strip(feats[:FRAMES], tmp_path / "f.png", num_frames=2))
    b = iio.imread(render_strip(joints[:FRAMES], tmp_path / "j.png", num_frames=2))
    assert np.abs(a.astype(int) - b).max() <= 8


@pytest.mark.parametrize("motions, kwargs, message", [
    (lambda j: [j[:10]], {"out": "clip.avi"}, "unknown video suffix"),
    (lambda j: [j[:0]], {}, "empty"),
    (lambda j: [j[:10, :21]], {}, "shape"),
    (lambda j: [np.zeros((10, 100))], {}, "shape"),
    (lambda j: [j[:10], np.where(np.arange(10)[:, None, None] == 7, np.nan, j[:10])], {},
     "motion 1 has NaN or infinite joint positions in 1 frame(s), first at frame 7"),
    (lambda j: [j[:10]], {"titles": ["a", "b"]}, "titles"),
    (lambda j: [j[:10]], {"frame_stride": 0}, "frame_stride"),
    (lambda j: [], {}, "no motions"),
])
def test_render_motions_errors(joints, tmp_path, motions, kwargs, message):
    out = tmp_path / kwargs.pop("out", "clip.gif")
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        render_motions(motions(joints), out, **kwargs)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kwargs, message", [
    ({"out": "strip.jpg"}, "PNG"),
    ({"num_frames": 0}, "num_frames"),
    ({"frames": [0, 170]}, "within"),
])
def test_render_strip_errors(joints, tmp_path, kwargs, message):
    out = tmp_path / kwargs.pop("out", "strip.png")
    with pytest.raises(ValueError, match=message):
        render_strip(joints, out, **kwargs)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_failed_write_leaves_no_file(tmp_path, suffix):
    def frames():
        for _ in range(3):
            yield np.full((64, 64, 3), 128, dtype=np.uint8)
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError, match="renderer crashed"):
        write_video(frames(), tmp_path / f"broken{suffix}", fps=20)
    assert list(tmp_path.iterdir()) == []
