"""Motion export to interchange formats (project issue 7).

``bvh``: :func:`write_bvh` / :func:`export_bvh` write a 22-joint HumanML3D motion (joints in metres
or 263-d features, 20 fps) as a Biovision BVH file (issue 7, item 3); ``remomask export-bvh`` and
``remomask generate --bvh`` call them. Only numpy and scipy are imported (torch only when features
are converted to joints).
"""

from .bvh import BvhExport, BvhExportError, export_bvh, motion_to_joints, rest_directions, solve_bvh, write_bvh

__all__ = ["BvhExport", "BvhExportError", "export_bvh", "motion_to_joints", "rest_directions", "solve_bvh",
           "write_bvh"]
