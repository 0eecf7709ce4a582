"""Joint tables from each mocap skeleton to the 22 HumanML3D (SMPL-order) joints (docs/design.md §2.1).

Each target joint is a weighted sum of source joint positions (weights sum to 1): most are one
source joint, a few are synthesised by interpolation where the source has no counterpart. The
tables are data, one per source skeleton:

``bandai``  Bandai-Namco-Research-Motiondataset-1/2 BVH (``joint_Root`` + 21 joints), cm, Y-up.
``cmu_bvh`` CMU BVH conversions (31 joints; two naming variants, e.g. ``LeftUpLeg`` in 01_01.bvh
            and ``LeftHip`` in 131_*.bvh), in ASF units (1/0.45 inch), Y-up.
``cmu_asf`` CMU-style ASF/AMC skeletons (CMU and HDM05: ``root``, ``lhipjoint``, ``lfemur``, ...),
            positions of bone *starts* (see ``asf_amc.py``); units from the ASF, Y-up.

All three are right-handed and Y-up, as HumanML3D is (checked in the tests: the subject's left
hip lies on ``up x forward``), so no axis change is needed.

Reference proportions for the synthesised joints come from the HumanML3D reference skeleton
(``skeleton_example_000021.npy``, rows 0..21): above the pelvis, spine1 is at +0.12 m, spine2 at
+0.26 m, spine3 at +0.32 m, neck at +0.54 m, head 0.10 m beyond the neck; each collar is about 40%
of the way (0.08 of 0.20 m, laterally) from the spine to its shoulder.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..skeleton import HUMANML3D
from .bvh import MocapFormatError

__all__ = ["JointMap", "MAPPINGS", "get_mapping", "detect_source", "mapping_matrix", "to_humanml3d"]

INCH = 0.0254
Weighted = tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class JointMap:
    """How one source skeleton maps to the 22 HumanML3D joints.

    Attributes:
        source: the source key (``"bandai"``, ``"cmu_bvh"``, ``"cmu_asf"``).
        targets: one entry per HumanML3D joint, in ``HUMANML3D.joint_names`` order: a tuple of
            ``(source_joint, weight)`` pairs (weights sum to 1).
        metres_per_unit: length unit of the source in metres, or ``None`` when the file says
            (ASF ``:units length``).
        aliases: alternative namings of the same skeleton: each maps a file's joint names to the
            canonical names used in ``targets`` (applied all at once, so swaps are allowed).
        notes: per target joint, why it was chosen (documentation only).
    """

    source: str
    targets: tuple[Weighted, ...]
    metres_per_unit: float | None
    aliases: tuple[dict[str, str], ...] = ()
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def required(self) -> frozenset[str]:
        """Canonical source joint names the table uses."""
        return frozenset(name for entry in self.targets for name, _ in entry)

    def canonical_names(self, names: tuple[str, ...] | list[str]) -> tuple[str, ...] | None:
        """``names`` renamed to canonical names by the first naming that covers the table, else None."""
        for alias in ({},) + self.aliases:
            renamed = tuple(alias.get(n, n) for n in names)
            if self.required <= set(renamed):
                return renamed
        return None


def _table(entries: dict[str, Weighted | str]) -> tuple[Weighted, ...]:
    missing = set(HUMANML3D.joint_names) - set(entries)
    assert not missing, missing
    out = []
    for joint in HUMANML3D.joint_names:
        entry = entries[joint]
        weighted = ((entry, 1.0),) if isinstance(entry, str) else entry
        assert abs(sum(w for _, w in weighted) - 1.0) < 1e-9, joint
        out.append(weighted)
    return tuple(out)


def _lerp(a: str, b: str, t: float) -> Weighted:
    """The point a fraction ``t`` of the way from joint ``a`` to joint ``b``."""
    return ((a, 1.0 - t), (b, t))


_COLLAR = 0.4  # collar position from spine (0) to shoulder (1), from the reference skeleton

BANDAI = JointMap(
    source="bandai",
    metres_per_unit=0.01,  # centimetres
    targets=_table({
        "pelvis": "Hips",
        "left_hip": "UpperLeg_L", "right_hip": "UpperLeg_R",
        "spine1": "Spine",
        "left_knee": "LowerLeg_L", "right_knee": "LowerLeg_R",
        "spine2": _lerp("Spine", "Chest", 0.5),
        "left_ankle": "Foot_L", "right_ankle": "Foot_R",
        "spine3": "Chest",
        "left_foot": "Toes_L", "right_foot": "Toes_R",
        "neck": "Neck",
        "left_collar": "Shoulder_L", "right_collar": "Shoulder_R",
        "head": "Head",
        "left_shoulder": "UpperArm_L", "right_shoulder": "UpperArm_R",
        "left_elbow": "LowerArm_L", "right_elbow": "LowerArm_R",
        "left_wrist": "Hand_L", "right_wrist": "Hand_R",
    }),
    notes={
        "pelvis": "Hips carries the root trajectory (joint_Root stays at the origin).",
        "spine1": "Spine, 0.16 m above Hips (reference: 0.12 m).",
        "spine2": "Bandai has one joint fewer in the spine: midpoint of Spine and Chest (+0.20 m).",
        "spine3": "Chest, +0.25 m (reference +0.32 m).",
        "left_foot": "Toes_* sit at the ball of the foot, like SMPL's foot joint.",
        "left_collar": "Shoulder_* is the clavicle joint; UpperArm_* the shoulder (gleno-humeral).",
        "head": "Head is 6.5 cm above Neck (its End Site has zero offset, so no head top).",
    },
)

CMU_ASF = JointMap(
    source="cmu_asf",
    metres_per_unit=None,
    targets=_table({
        "pelvis": "root",
        "left_hip": "lfemur", "right_hip": "rfemur",
        "spine1": "upperback",
        "left_knee": "ltibia", "right_knee": "rtibia",
        "spine2": "thorax",
        "left_ankle": "lfoot", "right_ankle": "rfoot",
        "spine3": "lowerneck",
        "left_foot": "ltoes", "right_foot": "rtoes",
        "neck": "upperneck",
        "left_collar": _lerp("lclavicle", "lhumerus", _COLLAR),
        "right_collar": _lerp("rclavicle", "rhumerus", _COLLAR),
        "head": "head",
        "left_shoulder": "lhumerus", "right_shoulder": "rhumerus",
        "left_elbow": "lradius", "right_elbow": "rradius",
        "left_wrist": "lwrist", "right_wrist": "rwrist",
    }),
    notes={
        "all": "Names are ASF bones; a bone's position is its start (= its parent's end).",
        "pelvis": "root, between the hip joints (lhipjoint/rhipjoint run from it to the hips).",
        "spine1": "upperback start = lowerback end, about +0.12 m.",
        "spine2": "thorax start = upperback end, about +0.23 m.",
        "spine3": "lowerneck start = thorax end, about +0.35 m; the clavicles start here too.",
        "neck": "upperneck start = lowerneck end.",
        "head": "head start = upperneck end, 0.10 m above the neck as in the reference.",
        "left_collar": "clavicles start at the spine: 40% of the way to the shoulder.",
        "left_foot": "ltoes start = ball of the foot.",
        "left_wrist": "lwrist start = lradius end (the BVH conversions call it LeftHand / "
                      "LeftWrist); CMU forearms are short (0.17-0.20 m against 0.27 m in the "
                      "reference), which the HumanML3D retargeting to the reference skeleton absorbs.",
    },
)

# The CMU BVH conversions (01_01.bvh, 131_*.bvh) drop the ASF thorax bone: Neck and the
# clavicles sit at the thorax *start* (offset 0 from Spine1), 2.06 units (0.12 m) lower than in
# the ASF. Using Spine1 for both spine2 and spine3 would give a zero-length bone, which the
# HumanML3D IK cannot orient; so spine2 is the middle of the upper back instead.
CMU_BVH = JointMap(
    source="cmu_bvh",
    metres_per_unit=INCH / 0.45,  # same unit as the ASF the conversion came from
    targets=_table({
        "pelvis": "Hips",
        "left_hip": "LeftUpLeg", "right_hip": "RightUpLeg",
        "spine1": "Spine",
        "left_knee": "LeftLeg", "right_knee": "RightLeg",
        "spine2": _lerp("Spine", "Spine1", 0.5),
        "left_ankle": "LeftFoot", "right_ankle": "RightFoot",
        "spine3": "Spine1",
        "left_foot": "LeftToeBase", "right_foot": "RightToeBase",
        "neck": "Neck1",
        "left_collar": _lerp("LeftShoulder", "LeftArm", _COLLAR),
        "right_collar": _lerp("RightShoulder", "RightArm", _COLLAR),
        "head": "Head",
        "left_shoulder": "LeftArm", "right_shoulder": "RightArm",
        "left_elbow": "LeftForeArm", "right_elbow": "RightForeArm",
        "left_wrist": "LeftHand", "right_wrist": "RightHand",
    }),
    aliases=(
        {  # 131_*.bvh naming
            "LeftHip": "LeftUpLeg", "LeftKnee": "LeftLeg", "LeftAnkle": "LeftFoot",
            "LeftToe": "LeftToeBase", "RightHip": "RightUpLeg", "RightKnee": "RightLeg",
            "RightAnkle": "RightFoot", "RightToe": "RightToeBase", "lowerback": "LowerBack",
            "Chest": "Spine", "Chest2": "Spine1", "lowerneck": "Neck", "Neck": "Neck1",
            "LeftCollar": "LeftShoulder", "LeftShoulder": "LeftArm", "LeftElbow": "LeftForeArm",
            "LeftWrist": "LeftHand", "RightCollar": "RightShoulder", "RightShoulder": "RightArm",
            "RightElbow": "RightForeArm", "RightWrist": "RightHand",
        },
    ),
    notes={
        "all": "Names of 01_01.bvh; BVH joints are the ASF bone starts (LeftUpLeg = lfemur, "
               "Spine = upperback, Spine1 = thorax, Neck = lowerneck, Neck1 = upperneck, "
               "LeftShoulder = lclavicle, LeftArm = lhumerus).",
        "spine2": "midpoint of Spine and Spine1 (the thorax is missing, see above).",
        "spine3": "Spine1: where the neck and clavicles attach in these files.",
    },
)

HUMANML3D_BVH = JointMap(
    source="humanml3d",
    targets=_table({name: name for name in HUMANML3D.joint_names}),
    # remomask's own BVH export (remomask.export.bvh) writes centimetres by default and metres with
    # --scale 1; the importer infers the unit from the rest skeleton (see importer._rest_leg_unit).
    metres_per_unit=None,
    notes={"*": "identity: the 22-joint HumanML3D skeleton written by `remomask export bvh`."},
)

MAPPINGS: dict[str, JointMap] = {m.source: m for m in (BANDAI, CMU_BVH, CMU_ASF, HUMANML3D_BVH)}
"""Every supported source skeleton, by key."""


def get_mapping(source: str, file_name: str = "<motion>") -> JointMap:
    """The joint table for ``source``.

    Raises:
        MocapFormatError: unknown source (the message names the file and lists the known ones).
    """
    try:
        return MAPPINGS[source]
    except KeyError:
        raise MocapFormatError(f"{file_name}: no joint mapping for source {source!r}; known sources: "
                               f"{sorted(MAPPINGS)} (add a JointMap in remomask/data/mocap/"
                               "mapping.py for a new skeleton)") from None


def detect_source(joint_names: tuple[str, ...] | list[str],
                  candidates: tuple[str, ...] = ("bandai", "cmu_bvh", "humanml3d")) -> str | None:
    """The first source in ``candidates`` whose table the joint names cover, else ``None``."""
    for source in candidates:
        if MAPPINGS[source].canonical_names(joint_names) is not None:
            return source
    return None


def mapping_matrix(mapping: JointMap, joint_names: tuple[str, ...] | list[str],
                   file_name: str = "<motion>") -> np.ndarray:
    """(22, J) weights with ``joints22 = W @ positions``.

    Raises:
        MocapFormatError: the skeleton lacks joints the table needs (names them and the fix).
    """
    names = mapping.canonical_names(joint_names)
    if names is None:
        missing = sorted(mapping.required - set(joint_names))
        raise MocapFormatError(
            f"{file_name}: skeleton does not match the {mapping.source!r} joint table: missing "
            f"{missing}; pass the right source= or add a JointMap in remomask/data/mocap/mapping.py")
    index = {n: k for k, n in enumerate(names)}
    weights = np.zeros((len(mapping.targets), len(names)))
    for t, entry in enumerate(mapping.targets):
        for joint, w in entry:
            weights[t, index[joint]] += w
    return weights


def to_humanml3d(positions: np.ndarray, joint_names: tuple[str, ...] | list[str], source: str,
                 file_name: str = "<motion>") -> np.ndarray:
    """Map source world positions (T, J, 3) to the 22 HumanML3D joints (T, 22, 3), same units.

    Raises:
        MocapFormatError: unknown source or missing joints.
    """
    weights = mapping_matrix(get_mapping(source, file_name), joint_names, file_name)
    return np.einsum("kj,tjd->tkd", weights, positions)
