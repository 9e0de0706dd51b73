"""The reference gallery of poses: 68-point face-landmark templates shipped as JSON, drawn as conditioning images.

Each pose file (``workbench/generate/poses/<name>.json``) holds iBUG-68 landmarks in normalised canvas
coordinates (0..1, head-and-shoulders framing) plus the yaw/pitch/roll it was made with. The templates were made
by :func:`make_pose` from a symmetrised frontal face (Grace Hopper's dlib landmarks, matplotlib sample data)
lifted onto a rough 3D head (an ellipsoid plus nose and lip relief), rotated and projected; rerun
``python -m workbench.generate.gallery`` to rebuild them. Directions are as seen in the image:
``three-quarter-left`` turns the nose toward the image's left edge.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from workbench.errors import WorkbenchError

# iBUG-68 groups, drawn as polylines like the landmark / MediaPipe-face ControlNets' annotators: a colour per
# part on black, so the net can tell the left eye from the right one.
PARTS: dict[str, tuple[range, bool, tuple[int, int, int]]] = {
    "jaw": (range(0, 17), False, (255, 255, 255)),
    "brow_right": (range(17, 22), False, (255, 48, 48)),  # the subject's right = image left
    "brow_left": (range(22, 27), False, (48, 255, 48)),
    "nose_bridge": (range(27, 31), False, (255, 255, 255)),
    "nose_base": (range(31, 36), False, (255, 255, 255)),
    "eye_right": (range(36, 42), True, (255, 48, 48)),
    "eye_left": (range(42, 48), True, (48, 255, 48)),
    "lips_outer": (range(48, 60), True, (255, 160, 200)),
    "lips_inner": (range(60, 68), True, (255, 160, 200)),
}
#: Index of each point's mirror image (iBUG-68), to symmetrise a frontal face.
MIRROR = (
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] + [64, 63, 62, 61, 60, 67, 66, 65]
)  # fmt: skip
#: The gallery: name -> (yaw, pitch, roll) in degrees, and a one-line description.
POSES: dict[str, tuple[tuple[float, float, float], str]] = {
    "front": ((0.0, 0.0, 0.0), "Facing the camera, level head."),
    "three-quarter-left": ((-35.0, 0.0, 0.0), "Face turned about 35 degrees toward the image's left."),
    "three-quarter-right": ((35.0, 0.0, 0.0), "Face turned about 35 degrees toward the image's right."),
    "tilt-left": ((0.0, 0.0, -12.0), "Head tilted about 12 degrees toward the image's left shoulder."),
    "tilt-right": ((0.0, 0.0, 12.0), "Head tilted about 12 degrees toward the image's right shoulder."),
    "chin-down": ((0.0, 12.0, 0.0), "Chin slightly lowered, a confident look."),
}


def poses_dir() -> Path:
    return Path(str(resources.files("workbench.generate") / "poses"))


def list_poses() -> list[str]:
    return sorted(p.stem for p in poses_dir().glob("*.json"))


def load_pose(name: str) -> np.ndarray:
    """(68, 2) landmarks in normalised canvas coordinates."""
    path = poses_dir() / f"{name}.json"
    if not path.is_file():
        raise WorkbenchError(f"No pose '{name}' in the gallery; available: {', '.join(list_poses())}.")
    return np.asarray(json.loads(path.read_text())["points"], dtype=np.float32)


def draw_landmarks(
    points: np.ndarray, size: int | tuple[int, int], thickness: int | None = None
) -> Image.Image:
    """68 points in pixel coordinates drawn as coloured polylines and dots on black."""
    width, height = (size, size) if isinstance(size, int) else size
    canvas = Image.new("RGB", (width, height), (0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    line = thickness or max(1, round(min(width, height) / 256))
    for indices, closed, colour in PARTS.values():
        pts = [tuple(map(float, points[i])) for i in indices]
        draw.line(pts + pts[:1] if closed else pts, fill=colour, width=line)
        for x, y in pts:
            draw.ellipse((x - line, y - line, x + line, y + line), fill=colour)
    return canvas


def render_pose(name: str, size: int) -> Image.Image:
    return draw_landmarks(load_pose(name) * size, size)


# -- building the gallery ---------------------------------------------------------------------------------------
def frontal_template(landmarks: np.ndarray) -> np.ndarray:
    """Centre, scale to unit jaw width and mirror-average a near-frontal face's 68 landmarks."""
    pts = np.asarray(landmarks, dtype=np.float64)
    pts = pts - pts[[0, 16, 8]].mean(0) * [1, 0] - [0, pts[27:31].mean(0)[1]]
    pts /= pts[16, 0] - pts[0, 0]
    mirrored = pts[MIRROR] * [-1, 1]
    return (pts + mirrored) / 2


def _relief(pts: np.ndarray) -> np.ndarray:
    """A rough depth per point: an ellipsoidal head plus the nose and lips standing out."""
    z = np.sqrt(np.clip(1 - (pts[:, 0] / 0.55) ** 2, 0, 1)) * 0.45
    z[27:31] += np.linspace(0.05, 0.22, 4)
    z[31:36] += 0.12
    z[48:68] += 0.06
    z[36:48] -= 0.03
    return z


def make_pose(frontal: np.ndarray, yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotate the template and place it in a head-and-shoulders canvas (face ~40% wide, eyes on the upper third)."""
    y_, p_, r_ = np.radians([yaw, pitch, roll])
    xyz = np.column_stack([frontal, _relief(frontal)])
    ry = np.array([[np.cos(y_), 0, np.sin(y_)], [0, 1, 0], [-np.sin(y_), 0, np.cos(y_)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p_), -np.sin(p_)], [0, np.sin(p_), np.cos(p_)]])
    rz = np.array([[np.cos(r_), -np.sin(r_), 0], [np.sin(r_), np.cos(r_), 0], [0, 0, 1]])
    # A positive yaw must move the nose toward +x (image right), which is what ry does to a +z nose.
    rotated = xyz @ (rz @ rx @ ry).T
    return (rotated[:, :2] * 0.4 + [0.5, 0.36]).astype(np.float32)


def build_gallery(folder: Path | None = None) -> list[Path]:
    """Rebuild the pose JSON files from Grace Hopper's face (needs dlib and matplotlib)."""
    import matplotlib

    from workbench.faces import get_backend

    image = np.asarray(
        Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg").convert("RGB")
    )
    faces = get_backend("dlib").detect(image)
    if not faces or faces[0].landmarks is None:
        raise WorkbenchError("dlib found no face in grace_hopper.jpg; cannot build the pose gallery.")
    frontal = frontal_template(faces[0].landmarks)
    folder = folder or poses_dir()
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, ((yaw, pitch, roll), description) in POSES.items():
        points = make_pose(frontal, yaw, pitch, roll)
        record = {
            "name": name, "description": description, "yaw": yaw, "pitch": pitch, "roll": roll,
            "format": "ibug68, normalised canvas coordinates (x right, y down)",
            "points": np.round(points, 4).tolist(),
        }  # fmt: skip
        path = folder / f"{name}.json"
        path.write_text(json.dumps(record, indent=1))
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in build_gallery():
        print(written_path)
