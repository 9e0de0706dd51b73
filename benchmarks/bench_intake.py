"""Photos per second through the whole intake on CPU: read, store, detect, check, align, embed, write, track.

Builds a set of real-face JPEGs (scikit-image's astronaut and matplotlib's Grace Hopper, flipped, cropped,
re-lit), at the sample images' own size and at phone size (4032x3024, 12 MP), and runs ``run_intake`` on it
in a fresh workspace and tracking store each time; prints the median of several timed runs after a warm-up.

    python benchmarks/bench_intake.py [--photos 12] [--runs 3] [--sizes native,phone]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

PHONE = (4032, 3024)


def _faces() -> list[np.ndarray]:
    import matplotlib
    from skimage import data

    grace = np.asarray(
        Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg").convert("RGB")
    )
    return [data.astronaut(), grace]


def _variants(count: int) -> list[np.ndarray]:
    """Distinct photos (so near-duplicate rejection does not short-cut the work): flips, crops, exposure."""
    images = []
    for i in range(count):
        base = _faces()[i % 2]
        if (i // 2) % 2:
            base = base[:, ::-1]
        h, w = base.shape[:2]
        crop = 0.04 * (i // 4)
        y0, x0 = int(h * crop), int(w * crop)
        base = base[y0 : h - y0 // 2, x0 : w - x0 // 2]
        gain = 0.85 + 0.1 * (i % 3)
        images.append(np.clip(base.astype(np.float32) * gain, 0, 255).astype(np.uint8))
    return images


def _write(images: list[np.ndarray], folder: Path, size: tuple[int, int] | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        if size is not None:  # a phone-size photo of the same scene: the face fills a similar share of it
            h, w = image.shape[:2]
            scale = max(size[0] / w, size[1] / h)
            image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC)
            image = image[: size[1], : size[0]]
        Image.fromarray(np.ascontiguousarray(image)).save(folder / f"photo-{i:02d}.jpg", quality=90)


def bench(count: int, runs: int, size_name: str) -> dict:
    from workbench.intake import IntakeConfig, run_intake
    from workbench.workspace import Workspace

    size = PHONE if size_name == "phone" else None
    # Two people alternate in the set (throughput, not a real subject): the one-person check only warns.
    config = IntakeConfig(retention_days=0, warn_only=["tilt", "duplicate", "same_person"])
    times, accepted = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(tmp) / "photos"
        _write(_variants(count), photos, size)
        for run in range(runs + 1):  # run 0 warms up: model loading and the tracking store's schema
            root = Path(tmp) / f"ws-{run}"
            os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
            root.mkdir()
            from mlflow import MlflowClient

            MlflowClient().search_experiments()  # create the store outside the timed part
            start = time.perf_counter()
            result = run_intake("bench", config, workspace=Workspace(root), photos=[photos])
            elapsed = time.perf_counter() - start
            accepted = result.n_accepted
            if run:
                times.append(elapsed)
    median = statistics.median(times)
    return {
        "size": size_name if size is None else f"{size[0]}x{size[1]}",
        "photos": count,
        "accepted": accepted,
        "runs": runs,
        "median_s": round(median, 3),
        "photos_per_s": round(count / median, 2),
        "all_s": [round(t, 3) for t in times],
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=12)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="native,phone", help="comma-separated: native, phone")
    args = parser.parse_args(argv)
    for size_name in args.sizes.split(","):
        print(
            json.dumps({"benchmark": "intake", **bench(args.photos, args.runs, size_name.strip())}),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
