"""Mean per-joint position error (MPJPE) after pelvis alignment: the one implementation of the package.

Used by the tokenizer's whole-clip reconstruction metrics (:func:`remomask.tokenizer.evaluate.evaluate_model`,
frame-weighted over a split) and by the evaluation protocol's reconstruction run
(:func:`remomask.evaluation.protocol.evaluate_reconstruction`, mean over clips). Joint positions come from
HumanML3D features through :func:`remomask.data.features.joints_from_features`; the pelvis (joint 0) is
subtracted frame by frame, so the error measures the pose, not the root trajectory (which
``root_error_5s_m`` measures). Source: arXiv 2508.02605, experiments (motion tokenizer reconstruction, MPJPE in mm).
"""

from __future__ import annotations

import torch

__all__ = ["per_frame_error", "mpjpe_mm"]


def per_frame_error(gt_joints: torch.Tensor, rec_joints: torch.Tensor) -> torch.Tensor:
    """Per-frame pelvis-aligned joint error: ``mean_j |(rec_j - rec_0) - (gt_j - gt_0)|``.

    Args:
        gt_joints: (..., T, J, 3) ground-truth joint positions in metres (joint 0 = pelvis).
        rec_joints: (..., T, J, 3) reconstructed or generated joint positions in metres, same shape.

    Returns:
        (..., T) errors in metres (same dtype as the inputs), averaged over the J joints.

    Raises:
        ValueError: the two shapes differ or the last dimension is not 3.
    """
    if gt_joints.shape != rec_joints.shape or gt_joints.shape[-1] != 3:
        raise ValueError(f"expected two (..., T, J, 3) joint tensors of one shape, got {tuple(gt_joints.shape)} "
                         f"and {tuple(rec_joints.shape)}")
    gt_local = gt_joints - gt_joints[..., :1, :]
    rec_local = rec_joints - rec_joints[..., :1, :]
    return (rec_local - gt_local).norm(dim=-1).mean(-1)


def mpjpe_mm(gt_features: torch.Tensor, rec_features: torch.Tensor, lengths) -> float:
    """MPJPE of a batch in millimetres: the per-clip mean of :func:`per_frame_error` over each clip's real
    frames, then the mean over clips (every clip counts the same, whatever its length).

    Args:
        gt_features: (B, T, D) de-normalised HumanML3D features of the ground truth (D = 263).
        rec_features: (B, T', D) de-normalised features of the reconstructions (T' >= each length).
        lengths: (B,) frames of each clip (a tensor or a sequence of ints, each >= 1).

    Returns:
        The error in millimetres (float64 arithmetic).

    Raises:
        ValueError: a length of 0 or one longer than a clip (from the shape check of :func:`per_frame_error`).
    """
    from ..data.features import joints_from_features

    errs = []
    for i, n in enumerate(torch.as_tensor(lengths).tolist()):
        if n < 1:
            raise ValueError(f"clip {i} has length {n}; MPJPE needs at least one frame")
        gt = joints_from_features(gt_features[i, :n].double())
        rec = joints_from_features(rec_features[i, :n].double())
        errs.append(float(per_frame_error(torch.as_tensor(gt), torch.as_tensor(rec)).mean()))
    return sum(errs) / len(errs) * 1000.0
