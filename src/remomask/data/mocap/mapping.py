"""Joint tables from each mocap skeleton to the 22 HumanML3D (SMPL-order) joints (docs/design.md §2.1).

Each target joint is a weighted sum of source joint positions (weights sum to 1): most are one
source joint, a few are synthesised by interpolation where the source has no counterpart. The
tables are data, one per source skeleton:

``bandai``  Bandai-Namco-Research-Motiondataset-1/2 BVH (``joint_Root`` + 21 joints), cm, Y-up.
``cmu_bvh`` CMU BVH conversions (31 joints; two naming variants, e.g. ``LeftUpLeg`` in 01_01.bvh
            and ``LeftHip`` in 131_*.bvh), in ASF units (1/0.45 inch), Y-up.
``cmu_asf`` CMU-style ASF/AMC skeletons (CMU and HDM05: ``root``, ``lhipjoint``, ``lfemur``, ...),
            positions of bone *starts* (see ``asf_amc.py``); units from the ASF, Y-up.
``daz``     cgspeed "Daz-friendly" CMU BVH (``hip``, ``abdomen``, ``chest``, ``lThigh``, ...; 57 joints
            with End Sites), retargeted to one fixed Daz figure, Y-up, frame 0 a T-pose.
``cc``      Reallusion Character Creator rig (``CC_Base_Hip``, ``CC_Base_L_Thigh``, ...; optional
            root ``RL_BoneRoot``; 141-142 joints with End Sites), centimetres, Y-up world.
``rigify``  Blender Rigify-style rig of the ReActIdle BVH (``pelvis``, ``spine``, ``spine.001``,
            ``thigh.L``, ...; 26 joints with End Sites), metres, Y-up, 6 channels on most joints.

All are right-handed and Y-up in world space, as HumanML3D is (checked in the tests: the subject's
left hip lies on ``up x forward``), so no axis change is needed. (The CC rig's *bones* are Z-up: its
hip OFFSET is ``0 0 105`` below ``RL_BoneRoot``, whose frames turn it by -90 degrees about X; files
without ``RL_BoneRoot`` give the hip OFFSET ``0 105 0`` directly. The world is Y-up either way.)

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

__all__ = ["JointMap", "MAPPINGS", "BVH_CANDIDATES", "get_mapping", "detect_source", "mapping_matrix",
           "to_humanml3d"]

INCH = 0.0254
Weighted = tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class JointMap:
    """How one source skeleton maps to the 22 HumanML3D joints.

    Attributes:
        source: the source key (``"bandai"``, ``"cmu_bvh"``, ``"cmu_asf"``, ``"daz"``, ``"cc"``,
            ``"rigify"``, ``"humanml3d"``).
        targets: one entry per HumanML3D joint, in ``HUMANML3D.joint_names`` order: a tuple of
            ``(source_joint, weight)`` pairs (weights sum to 1).
        metres_per_unit: length unit of the source in metres, or ``None`` when the file says
            (ASF ``:units length``).
        aliases: alternative namings of the same skeleton: each maps a file's joint names to the
            canonical names used in ``targets`` (applied all at once, so swaps are allowed).
        notes: per target joint, why it was chosen (documentation only).
        root_offset_added: the root's position channels are a displacement from its rest OFFSET
            (world position = OFFSET + channels), as the iClone (``cc``) and ReActIdle
            (``rigify``) exporters write them; ``False`` (BVH's usual reading, and Bandai-Namco /
            CMU, whose root OFFSET is 0): the channels replace the OFFSET. Non-root joints'
            position channels always replace their OFFSET (see ``bvh.py``).
        leading_rest_frames: frames at the start of *every* file of this rig that are a rest
            pose added by the conversion (not capture) and are always dropped (``daz``: 1).
        rest_frame_check: ``"t_pose"`` when some files of the rig (not all) begin with one T-pose
            frame: frame 0 is dropped when :func:`is_t_pose` holds for it (``cc``); ``None``
            otherwise. ``import_mocap(rest_frames=...)`` overrides both.
    """

    source: str
    targets: tuple[Weighted, ...]
    metres_per_unit: float | None
    aliases: tuple[dict[str, str], ...] = ()
    notes: dict[str, str] = field(default_factory=dict)
    root_offset_added: bool = False
    leading_rest_frames: int = 0
    rest_frame_check: str | None = None

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
        {  # ASF bone names with a "hip" root (cgspeed-style conversion of CMU subject 16 in
           # the przestr copy: 16_01.bvh, 16_02.bvh; thorax has zero length as in 01_01.bvh)
            "hip": "Hips", "lfemur": "LeftUpLeg", "ltibia": "LeftLeg", "lfoot": "LeftFoot",
            "ltoes": "LeftToeBase", "rfemur": "RightUpLeg", "rtibia": "RightLeg",
            "rfoot": "RightFoot", "rtoes": "RightToeBase", "upperback": "Spine",
            "thorax": "Spine1", "lowerneck": "Neck", "upperneck": "Neck1", "head": "Head",
            "lclavicle": "LeftShoulder", "lhumerus": "LeftArm", "lradius": "LeftForeArm",
            "lwrist": "LeftHand", "rclavicle": "RightShoulder", "rhumerus": "RightArm",
            "rradius": "RightForeArm", "rwrist": "RightHand",
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

# Daz: cgspeed's "Daz-friendly" conversion retargets every CMU subject to one fixed Daz figure
# (leg thigh->ankle 82.2 units in subjects 02, 03, 05-14, salsa, martial, Indian dance alike), and
# scales the root motion with it. Unit, measured on the trials that exist both as original ASF/AMC
# and as Daz BVH (02_01-02_04, 03_01, 03_02): the AMC leg (lfemur->ltibia->lfoot, metres) over the
# Daz leg (lThigh->lShin->lFoot, units) is 0.01021 m/unit (subject 02) and 0.01016 (03); the root's
# horizontal path length gives 0.0102-0.0103 (clips that travel 2-4 m). So one Daz unit is
# 0.0102 m of the CMU subject (the figure itself is presumably in Daz's centimetres, 2% smaller
# than these subjects). Frame 0 of every file is the figure's T-pose (all rotations 0), added before
# the capture: the files hold the CMU trial's frame count + 1.
DAZ = JointMap(
    source="daz",
    metres_per_unit=0.0102,  # measured, see the notes
    leading_rest_frames=1,
    targets=_table({
        "pelvis": (("lThigh", 0.25), ("rThigh", 0.25), ("abdomen", 0.5)),
        "left_hip": "lThigh", "right_hip": "rThigh",
        "spine1": "abdomen",
        "left_knee": "lShin", "right_knee": "rShin",
        "spine2": "chest",
        "left_ankle": "lFoot", "right_ankle": "rFoot",
        "spine3": _lerp("chest", "neck", 0.45),
        "left_foot": "lFoot_End", "right_foot": "rFoot_End",
        "neck": "neck",
        "left_collar": "lCollar", "right_collar": "rCollar",
        "head": "head",
        "left_shoulder": "lShldr", "right_shoulder": "rShldr",
        "left_elbow": "lForeArm", "right_elbow": "rForeArm",
        "left_wrist": "lHand", "right_wrist": "rHand",
    }),
    notes={
        "all": "Joints sit at bone starts; feet end in End Sites (lFoot_End = toes); the fingers, "
               "eyes and buttocks are not used.",
        "pelvis": "the 'hip' root lies 2.6 units *below* the thigh joints (the ASF root is 10 cm "
                  "above the femur heads, SMPL's pelvis 9 cm): so pelvis = half the thigh midpoint "
                  "plus half the abdomen (which is 18 units above the thighs): +9 cm, as in the AMC.",
        "spine1": "abdomen, +18 cm above the hips (AMC upperback +21 cm).",
        "spine2": "chest, +30 cm (AMC thorax +33 cm).",
        "spine3": "45% of the way from chest to neck, +40 cm (reference +41 cm; the collars "
                  "attach higher, near the neck).",
        "neck": "neck, +53 cm (AMC +54 cm).",
        "head": "head (bone start, above the neck; the head top is not used).",
        "left_collar": "lCollar, which starts off the midline (2.7 units), unlike the CMU clavicle.",
        "left_shoulder": "lShldr: the Daz figure's shoulders are 0.23 m apart against 0.40 m for "
                         "the CMU humerus starts, so shoulders sit about 8 cm more medial than in "
                         "the AMC import of the same trial (the largest cross-copy difference).",
        "left_foot": "lFoot_End, the toe end of the foot: 12.7 units ahead of the ankle (the rig "
                     "has no ball-of-foot joint).",
    },
)

# CC: the iClone copy retargets the CMU subjects 01-03, 05-07 to one Character Creator figure
# (leg thigh->foot 97.5 cm) and scales the root motion with it. The rig's bones are Z-up inside the
# figure, but its world is Y-up (RL_BoneRoot turns by -90 degrees about X where present; otherwise
# the hip OFFSET is 0 105 0), and the root's position channels are offsets from its rest OFFSET.
# Unit, measured on the 15 trials that also exist as ASF/AMC (01_01, 01_08, 01_14, 02_01-02_10,
# 03_01, 03_02): AMC leg over CC leg is 0.00848 m/unit (subject 01), 0.00862 (02), 0.00857 (03);
# the root's path in the clips that travel (01_01, 02_01-02_03, 03_01, 03_02) gives 0.0085-0.0087.
# So one CC unit (a figure centimetre) is 0.0086 m of the CMU subject.
# Only the 10 files 007_03-007_12 begin with a T-pose frame (arms level); the other 51 start with
# captured motion (and have exactly the AMC's frame count at 60 fps), so the T-pose is detected per
# file (rest_frame_check, is_t_pose in importer.py), not dropped blindly.
CC = JointMap(
    source="cc",
    metres_per_unit=0.0086,  # measured, see the notes
    root_offset_added=True,
    rest_frame_check="t_pose",
    targets=_table({
        "pelvis": "CC_Base_Waist",
        "left_hip": "CC_Base_L_Thigh", "right_hip": "CC_Base_R_Thigh",
        "spine1": _lerp("CC_Base_Spine01", "CC_Base_Spine02", 0.6),
        "left_knee": "CC_Base_L_Calf", "right_knee": "CC_Base_R_Calf",
        "spine2": _lerp("CC_Base_Spine02", "CC_Base_NeckTwist01", 0.35),
        "left_ankle": "CC_Base_L_Foot", "right_ankle": "CC_Base_R_Foot",
        "spine3": _lerp("CC_Base_Spine02", "CC_Base_NeckTwist01", 0.75),
        "left_foot": "CC_Base_L_ToeBase", "right_foot": "CC_Base_R_ToeBase",
        "neck": "CC_Base_NeckTwist01",
        "left_collar": "CC_Base_L_Clavicle", "right_collar": "CC_Base_R_Clavicle",
        "head": "CC_Base_Head",
        "left_shoulder": "CC_Base_L_Upperarm", "right_shoulder": "CC_Base_R_Upperarm",
        "left_elbow": "CC_Base_L_Forearm", "right_elbow": "CC_Base_R_Forearm",
        "left_wrist": "CC_Base_L_Hand", "right_wrist": "CC_Base_R_Hand",
    }),
    notes={
        "all": "Twist, share, breast, toe, finger and face bones are not used.",
        "pelvis": "CC_Base_Waist, 8 cm above CC_Base_Hip / CC_Base_Pelvis (which lie level with "
                  "the thigh joints): +10 cm above the hips, as the ASF root (+10 cm) and SMPL (+9).",
        "spine1": "60% of the way from Spine01 to Spine02: +20 cm above the hips (AMC +21 cm).",
        "spine2": "35% from Spine02 to NeckTwist01: +33 cm (AMC +33 cm).",
        "spine3": "75% from Spine02 to NeckTwist01: +42 cm (AMC +45 cm).",
        "neck": "CC_Base_NeckTwist01, the neck base, +48 cm (AMC +54 cm: the figure's neck is short).",
        "head": "CC_Base_Head, 8 cm above the neck (reference 7 cm).",
        "left_collar": "CC_Base_L_Clavicle, which starts 5.6 cm off the midline (about 30% of the "
                       "way to the shoulder, where SMPL's collar is at 40%).",
        "left_foot": "CC_Base_L_ToeBase, the ball of the foot.",
    },
)

# Rigify: the ReActIdle clips, exported from Blender with a Rigify-style deform rig scaled per
# person (rest pelvis height 0.66-0.72 m). Metres (as Blender writes them), Y-up, 24 fps. Most
# joints carry 6 channels: a non-root joint's position channels equal its OFFSET except the thighs,
# which move by up to 2 cm (honoured: position channels replace the OFFSET); the root's are offsets
# from its rest OFFSET (world height = OFFSET + channel, which puts the feet on y = 0). No ASF/AMC
# copy exists, so the unit is not cross-checked; these rigs are small (thigh 0.33 m, head joint
# 1.26-1.27 m above the ankles against 1.41-1.46 m for CMU subjects 01-03), which the HumanML3D
# retargeting to the reference skeleton absorbs.
RIGIFY = JointMap(
    source="rigify",
    metres_per_unit=1.0,
    root_offset_added=True,
    targets=_table({
        "pelvis": _lerp("spine", "spine.001", 0.35),
        "left_hip": "thigh.L", "right_hip": "thigh.R",
        "spine1": _lerp("spine", "spine.001", 0.85),
        "left_knee": "shin.L", "right_knee": "shin.R",
        "spine2": _lerp("spine.001", "neck", 0.5),
        "left_ankle": "foot.L", "right_ankle": "foot.R",
        "spine3": _lerp("spine.001", "neck", 0.75),
        "left_foot": "foot.L_End", "right_foot": "foot.R_End",
        "neck": _lerp("neck", "face", 0.5),
        "left_collar": _lerp("shoulder.L", "upper_arm.L", _COLLAR),
        "right_collar": _lerp("shoulder.R", "upper_arm.R", _COLLAR),
        "head": "face",
        "left_shoulder": "upper_arm.L", "right_shoulder": "upper_arm.R",
        "left_elbow": "forearm.L", "right_elbow": "forearm.R",
        "left_wrist": "forearm.L_End", "right_wrist": "forearm.R_End",
    }),
    notes={
        "all": "spine sits on the pelvis (OFFSET 0); spine.001 is +0.23 m, neck (at shoulder "
               "level) +0.46 m, face (the top of the neck) +0.64 m above the hips.",
        "pelvis": "35% of the way from spine (= pelvis, level with the thighs) to spine.001: "
                  "+8 cm above the hips, as SMPL (+9 cm).",
        "spine1": "85% from spine to spine.001, +20 cm (CMU +21 cm).",
        "spine2": "midway from spine.001 to neck, +35 cm (reference +35 cm).",
        "spine3": "75% from spine.001 to neck, +41 cm (reference +41 cm).",
        "neck": "midway up the neck bone (neck -> face), 9 cm above the shoulders (CMU 3-5 cm, "
                "reference 12 cm).",
        "head": "face, the head bone's start at the top of the neck (its End Site is 3 cm "
                "forward, so there is no head top).",
        "left_collar": "shoulder.L starts on the midline: 40% of the way to upper_arm.L.",
        "left_wrist": "forearm.L_End: the rig has no hand bones.",
        "left_foot": "foot.L_End, the end of the foot bone = the ball of the foot (no toe bone).",
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

MAPPINGS: dict[str, JointMap] = {m.source: m for m in (BANDAI, CMU_BVH, CMU_ASF, DAZ, CC, RIGIFY,
                                                        HUMANML3D_BVH)}
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


BVH_CANDIDATES: tuple[str, ...] = ("bandai", "cmu_bvh", "daz", "cc", "rigify", "humanml3d")
"""BVH sources tried by :func:`detect_source`, in order. Their required joint sets are disjoint
(e.g. ``hip``/``lThigh`` for ``daz``, ``CC_Base_L_Thigh`` for ``cc``, ``thigh.L`` for ``rigify``),
so at most one matches a file."""


def detect_source(joint_names: tuple[str, ...] | list[str],
                  candidates: tuple[str, ...] = BVH_CANDIDATES) -> str | None:
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
