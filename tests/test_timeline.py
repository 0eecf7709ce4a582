"""Timelines (docs/generation.md, "Timelines"): parsing, a 60 s timeline, root continuity across segment seams,
jerk metrics, and the command line's error cases. Real data: the bundled model (seeded)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from remomask.cli import main
from remomask.errors import UsageError
from remomask.pipeline.timeline import Segment, parse_timeline, read_timeline


@pytest.fixture(scope="module")
def pipe():
    from remomask.pipeline import ReMoMaskPipeline

    return ReMoMaskPipeline.from_pretrained()


def test_parse_timeline():
    segs = parse_timeline("walk forward:4 | turn left and wave:3:7 |stand still: 2.5")
    assert segs == [Segment("walk forward", 4.0), Segment("turn left and wave", 3.0, 7), Segment("stand still", 2.5)]
    for bad, needle in [("", "empty"), ("walk:4 | | wave:2", "empty"), ("walk | wave:2", "no duration"),
                        ("walk:4 | wave:0.1", "shorter than one token")]:
        with pytest.raises(UsageError, match=needle):
            parse_timeline(bad)


def test_read_timeline_json(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"segments": [{"text": "walk", "seconds": 3}, {"text": "jump", "seconds": 2,
                                                                               "seed": 4}]}))
    assert read_timeline(path) == [Segment("walk", 3.0), Segment("jump", 2.0, 4)]


def test_sixty_second_timeline(pipe):
    res = pipe.compose([("a person walks forward", 20), ("a person jogs in a circle", 20),
                        ("a person waves with both hands", 20)], seed=0)
    assert abs(len(res) - 1200) <= 3 and res.features.shape == (len(res), 263)
    assert np.isfinite(res.joints).all() and np.isfinite(res.features).all()
    assert [s["start"] for s in res.segments] == [0, 400, 800] and res.segments[-1]["end"] == len(res)
    # each segment retrieves unless the folder's similarity gate (docs/design.md §4.10) stops its prompt
    gate = pipe.sampling_defaults["retrieval_min_score"]
    passes = [bool(h) for h in pipe.conditions([s["text"] for s in res.segments], keep_hits=True,
                                               min_score=gate).hits]
    assert [bool(s["retrieved"]) for s in res.segments] == passes and any(passes)


def test_root_is_continuous_across_segments(pipe):
    res = pipe.compose([("a person walks forward", 4), ("a person turns left and waves", 3),
                        ("a person walks forward", 3), ("a person stands still", 2)], seed=1)
    root = res.joints[:, 0]
    step = np.linalg.norm(np.diff(root[:, [0, 2]], axis=0), axis=-1)          # step[i]: frame i -> i + 1
    near = np.zeros(len(step), dtype=bool)
    for b in res.boundaries:
        near[max(0, b - 3):b + 2] = True
    bound = step[~near].max()                                                 # the motion's own speed bound
    for b in res.boundaries:
        assert step[b - 1] <= bound, (b, step[b - 1], bound)
        # no snap back to the origin: the seam's root is where the previous segment left it
        assert np.linalg.norm(root[b, [0, 2]]) > 0.3
        assert np.linalg.norm(root[b, [0, 2]] - root[b - 1, [0, 2]]) < 0.1
    # heading carried: the facing angle does not jump at a seam
    from remomask.pipeline.editing import facing_angle

    th = np.unwrap(facing_angle(res.joints))
    for b in res.boundaries:
        assert abs(th[b] - th[b - 1]) < 0.3


def test_jerk_metrics():
    from remomask.evaluation.jerk import area_under_jerk, frame_jerk, peak_jerk

    t = np.arange(100) / 20.0
    smooth = np.zeros((100, 22, 3))
    smooth[..., 0] = t[:, None] ** 3 / 6                                      # constant jerk 1 m/s^3
    assert np.allclose(frame_jerk(smooth), 1.0)
    jumpy = smooth.copy()
    jumpy[50:, :, 0] += 0.1
    assert peak_jerk(jumpy, [50]) > 100 * peak_jerk(smooth, [50])
    assert area_under_jerk(smooth, [50], real=1.0) < 1e-6 < area_under_jerk(jumpy, [50], real=1.0)


@pytest.mark.parametrize("spec,needle", [("", "empty"), ("walk:4 | wave:0.1", "shorter than one token"),
                                         ("walk | wave:2", "no duration")])
def test_cli_timeline_errors(spec, needle):
    result = CliRunner().invoke(main, ["generate", "--timeline", spec, "--no-video"])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.output


def test_cli_timeline_writes_a_result(tmp_path):
    out = tmp_path / "t"
    result = CliRunner().invoke(main, ["generate", "--timeline", "walk forward:3 | jump:2.2", "--out", str(out),
                                       "--no-video", "--seed", "5"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "result.json").read_text())
    assert summary["frames"] == 104 and summary["boundaries"] == [60] and len(summary["segments"]) == 2
    assert np.load(out / "timeline_0.joints.npy").shape == (104, 22, 3)
