"""Losses: label-smoothed softmax, batch-hard triplet, and relational distillation."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def batch_hard_triplet(features: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Hermans et al. 2017: for each anchor, its farthest positive and nearest negative."""
    dist = torch.cdist(features, features).clamp_min(1e-12)
    same = labels[:, None] == labels[None, :]
    hardest_pos = (dist * same).max(dim=1).values
    hardest_neg = dist.masked_fill(same, float("inf")).min(dim=1).values
    return F.relu(hardest_pos - hardest_neg + margin).mean()


def relational_distillation(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Match the student's in-batch cosine-similarity matrix to the teacher's (no projection
    head needed, so the student keeps its own 512-d space)."""
    s = F.normalize(student, dim=1)
    t = F.normalize(teacher, dim=1)
    return F.mse_loss(s @ s.T, t @ t.T)
