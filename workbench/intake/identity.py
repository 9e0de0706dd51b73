"""One person per subject: every accepted face is compared with the others, and the odd ones out are rejected.

Two faces are the same person when their embeddings are closer than the face backend's published verification
threshold (dlib's 128-d ResNet: L2 distance below 0.6, 99.38% on LFW; insightface's ArcFace: cosine
similarity above its threshold). The photos are grouped by that relation (linked when any two match), the
largest group is the subject, and every photo outside it is rejected with the distances that decided it. When
no group clearly outnumbers the next (the largest is less than twice the second), the folder most likely holds
two people's photos, and intake stops and asks for them to be split: guessing which one is the subject would
train a LoRA of the wrong person.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.errors import WorkbenchError
from workbench.faces import compare, same_person
from workbench.intake.checks import CheckResult

CHECK = "same_person"
# The largest group must hold at least this many times the photos of the next; otherwise ask to split.
MAJORITY = 2.0


@dataclass(frozen=True)
class IdentityVerdict:
    """The subject's group (indices into the compared photos) and, per photo, its distances to the others."""

    keep: list[int]
    details: list[dict]  # per photo: metric, threshold, group_size, closest_in_group, distances {name: value}

    def check(self, index: int, *, blocking: bool = True) -> CheckResult:
        """The per-photo check result, in the same shape as the other intake checks."""
        detail = self.details[index]
        n, closest = detail["group_size"], detail["closest_in_group"]
        kept = index in self.keep
        relation = "below" if detail["metric"] == "l2" else "above"
        advice = None if kept else (
            f"This photo looks like a different person than the other {n} photos (face "
            f"{'distance' if detail['metric'] == 'l2' else 'similarity'} {closest:.2f} to the closest of them; the "
            f"same person is {relation} {detail['threshold']:g}): remove it, or file it under its own subject."
        )  # fmt: skip
        return CheckResult(CHECK, closest, detail["threshold"], kept, advice, blocking)


def one_person(
    embeddings: list[np.ndarray], names: list[str], backend, *, strict: bool = True
) -> IdentityVerdict:
    """Group the faces by the backend's same-person threshold and keep the largest group.

    ``strict``: raise :class:`WorkbenchError` with the split advice when two groups are of similar size
    (otherwise the first largest group is kept and the others are only flagged).
    """
    n = len(embeddings)
    matrix = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            matrix[i, j] = matrix[j, i] = compare(embeddings[i], embeddings[j], backend.metric)
    groups = _groups(matrix, backend)
    keep = groups[0] if groups else []
    if strict and len(groups) > 1 and len(groups[0]) < MAJORITY * len(groups[1]):
        listed = "; ".join(
            f"{len(g)} photo{'s' if len(g) != 1 else ''} ({', '.join(names[i] for i in g)})"
            for g in groups[:3]
        )
        raise WorkbenchError(
            f"These photos show more than one person and no group clearly outnumbers the others: {listed}. "
            "Put each person's photos in a folder of their own and run intake once per person (one subject "
            "each)."
        )
    details = []
    for i in range(n):
        others = [j for j in keep if j != i]
        distances = {names[j]: round(float(matrix[i, j]), 4) for j in range(n) if j != i}
        closest = [float(matrix[i, j]) for j in others]
        best = (min(closest) if backend.metric == "l2" else max(closest)) if closest else float("nan")
        details.append({
            "metric": backend.metric, "threshold": float(backend.threshold), "group_size": len(others),
            "closest_in_group": round(best, 4), "distances": distances,
        })  # fmt: skip
    return IdentityVerdict(sorted(keep), details)


def _groups(matrix: np.ndarray, backend) -> list[list[int]]:
    """Connected groups of the same-person graph, largest first (ties: the group with the first photo)."""
    n = len(matrix)
    seen: set[int] = set()
    groups = []
    for start in range(n):
        if start in seen:
            continue
        group, stack = [], [start]
        seen.add(start)
        while stack:
            i = stack.pop()
            group.append(i)
            for j in range(n):
                if j not in seen and same_person(matrix[i, j], backend):
                    seen.add(j)
                    stack.append(j)
        groups.append(sorted(group))
    return sorted(groups, key=lambda g: (-len(g), g[0]))
