"""One selfie to headshots: photo in -> first image out, and the time per image after it.

Default (CPU, tiny preset): the whole ``workbench quick`` flow (:func:`workbench.quick.run_quick`: intake of a
real selfie, tuning-free generation, evaluation), ``--repeats`` times in one process. The first repeat is cold
(tiny model built, dlib models and diffusers loaded); the later ones are what a running app sees::

    python benchmarks/bench_quick.py                    # tiny, 64 px, 4 steps, 4 headshots, 3 repeats
    python benchmarks/bench_quick.py --model tiny-sdxl --method ip-adapter-faceid

``--full-sdxl`` (GPU): full-size SDXL base architecture with random weights (built as in bench_generate), an
IP-Adapter of full size (random, every cross-attention of the UNet gets its image key/value projections),
1024 px, 30 steps, bf16 + SDPA. It measures the *served* latency: the model and the adapter are loaded once
(reported separately), then for each selfie the clock runs from the photo to the first 1024^2 headshot: intake
of the photo (decode, checks, alignment, face embedding) + the reference embedding + the sampling. Goal on an
H100: <= 3 s (the field promises 30 s). ``--cpu-dry-run`` runs that same code path with the tiny SDXL shape
on the CPU, so it can be checked on a machine without a GPU::

    python benchmarks/bench_quick.py --full-sdxl             # GPU
    python benchmarks/bench_quick.py --full-sdxl --cpu-dry-run

Prints JSON (and writes it with ``--out``).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def selfie(folder: Path) -> Path:
    """A real portrait that ships in scikit-image, saved as a phone would (JPEG)."""
    from PIL import Image
    from skimage import data

    path = folder / "selfie.jpg"
    Image.fromarray(data.astronaut()).save(path, quality=92)
    return path


def _device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def _workspace_and_selfie(args: argparse.Namespace, prefix: str) -> tuple[Any, Path]:
    """A throwaway workspace, model cache and tracking store (or ``--cache``), and the selfie to start from."""
    import os

    from workbench.workspace import Workspace

    root = Path(args.cache or tempfile.mkdtemp(prefix=prefix))
    os.environ.setdefault("WORKBENCH_CACHE", str(root / "cache"))
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    return Workspace.resolve(root / "workspace"), selfie(root)


def bench_flow(args: argparse.Namespace) -> dict[str, Any]:
    """The whole quick flow, end to end, ``repeats`` times (the first one cold)."""
    from workbench.quick import QuickConfig, run_quick

    workspace, photo = _workspace_and_selfie(args, "bench-quick-")
    config = QuickConfig(model=args.model, identity=args.method, count=args.images, steps=args.steps,
                         device=args.device, evaluate=not args.no_eval)  # fmt: skip
    runs = []
    for _ in range(args.repeats):
        result = run_quick(photo, config, workspace=workspace)
        runs.append({"first_image_s": result.first_image_s, "per_image_s": result.per_image_s,
                     **{f"{k}_s": v for k, v in result.timings_s.items()},
                     "load_s": result.metrics.get("load_s")})  # fmt: skip
    warm = runs[1:] or runs
    return {
        "mode": "quick flow (intake -> generate -> eval), in process", "model": args.model, "method": args.method,
        "device": _device_name(), "images": args.images, "steps": config.steps or 4, "repeats": args.repeats,
        "cold": runs[0],
        "warm_median": {k: statistics.median(r[k] for r in warm if r[k] is not None)
                        for k in runs[0] if any(r[k] is not None for r in warm)},
        "runs": runs,
    }  # fmt: skip


def _served_engine(args: argparse.Namespace, workspace: Any) -> Any:
    from workbench.generate import GenerateConfig
    from workbench.generate.engine import build_engine

    if args.cpu_dry_run:
        return build_engine(GenerateConfig(model="tiny-sdxl", device="cpu"), workspace)
    from bench_generate import full_sdxl_engine  # the one full-size SDXL build both benchmarks share

    return full_sdxl_engine(args)


def bench_served(args: argparse.Namespace) -> dict[str, Any]:
    """Served latency: the model and adapter loaded once, then photo -> first headshot for each selfie."""
    from workbench.generate.identity import Identity, reference_embeds, select_references
    from workbench.intake import IntakeConfig, run_intake
    from workbench.models.tiny import build_tiny_ip_adapter

    workspace, photo = _workspace_and_selfie(args, "bench-quick-sdxl-")
    started = time.perf_counter()
    engine = _served_engine(args, workspace)
    model_s = time.perf_counter() - started
    method = "ip-adapter-faceid"  # the face embedding comes from intake itself: no image encoder to load
    started = time.perf_counter()
    engine.pipe.load_ip_adapter(build_tiny_ip_adapter(method, engine.pipe.unet), subfolder=None,
                                weight_name=None, image_encoder_folder=None)  # fmt: skip
    engine.pipe.set_ip_adapter_scale(0.7)
    adapter_s = time.perf_counter() - started
    steps, size = (args.steps or 4, engine.size) if args.cpu_dry_run else (args.steps or 30, 1024)
    intake_config = IntakeConfig(resolution=512 if not args.cpu_dry_run else 64, min_photos=1)

    def sync() -> None:
        if torch.cuda.is_available() and engine.device.type == "cuda":
            torch.cuda.synchronize()

    def draw(seed: int) -> None:
        engine.run("professional headshot photo of a person, studio lighting", "blurry", [seed], steps=steps,
                   guidance_scale=5.0, scheduler=None)  # fmt: skip
        sync()

    zeros = torch.zeros(
        1, 128, device=engine.device, dtype=engine.dtype
    )  # dlib's 128-d, the tiny adapter's input
    engine.identity = Identity(method, "random full-size", "", None, 0.7, [], zeros, zeros)
    draw(0)  # warm-up: kernels, allocator (a served model has drawn before)
    runs = []
    for repeat in range(args.repeats):
        t0 = time.perf_counter()
        run_intake(f"bench{repeat}", intake_config, workspace=workspace, photos=[photo])
        t_intake = time.perf_counter()
        refs = select_references(workspace, f"bench{repeat}", [])
        embeds, negative = reference_embeds(engine.pipe, method, workspace, f"bench{repeat}", refs)
        engine.identity = Identity(method, "random full-size", "", None, 0.7, refs,
                                   embeds.to(engine.device, engine.dtype), negative.to(engine.device, engine.dtype))  # fmt: skip
        t_embed = time.perf_counter()
        draw(1)
        t_first = time.perf_counter()
        for seed in range(2, 2 + args.images - 1):
            draw(seed)
        t_end = time.perf_counter()
        runs.append({"first_image_s": t_first - t0, "intake_s": t_intake - t0, "embed_s": t_embed - t_intake,
                     "sample_first_s": t_first - t_embed,
                     "per_image_s": (t_end - t_first) / max(args.images - 1, 1)})  # fmt: skip
    report = {
        "mode": "served: model + adapter loaded once; clock from photo to first headshot",
        "model": "tiny-sdxl (cpu dry run)" if args.cpu_dry_run else "sdxl (random weights, full size)",
        "method": method, "device": _device_name(), "resolution": size, "steps": steps, "cfg": 5.0,
        "dtype": str(engine.dtype), "speed": engine.speed, "model_build_s": model_s, "adapter_load_s": adapter_s,
        "images_per_selfie": args.images, "repeats": args.repeats, "runs": runs,
        "median": {k: statistics.median(r[k] for r in runs) for k in runs[0]},
    }  # fmt: skip
    if not args.cpu_dry_run:
        report["goal_first_image_s"] = 3.0
    return report


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="tiny or tiny-sdxl (the flow benchmark)")
    parser.add_argument(
        "--method", default="ip-adapter-face", choices=["ip-adapter-face", "ip-adapter-faceid"]
    )
    parser.add_argument("--images", type=int, default=4, help="headshots per selfie")
    parser.add_argument("--steps", type=int, default=None, help="default 4 (tiny), 30 (full SDXL)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-eval", action="store_true", help="skip the evaluation stage of the flow")
    parser.add_argument("--full-sdxl", action="store_true", help="full-size SDXL + IP-Adapter, 1024 px (GPU)")
    parser.add_argument("--cpu-dry-run", action="store_true", help="with --full-sdxl: tiny SDXL shape on CPU")
    parser.add_argument("--compile", action="store_true", help="torch.compile the UNet (full SDXL)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--cache", default=None, help="folder for models, workspace and tracking store")
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.full_sdxl and not args.cpu_dry_run and not torch.cuda.is_available():
        raise SystemExit(
            "--full-sdxl needs a CUDA GPU; --cpu-dry-run checks the same code path on tiny shapes."
        )
    report = bench_served(args) if args.full_sdxl else bench_flow(args)
    text = json.dumps(report, indent=2, default=str)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return report


if __name__ == "__main__":
    main()
