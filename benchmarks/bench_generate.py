"""Generation speed: images/s and s/image, and the speed-up of batched pipeline calls over one call per image.

Default (CPU, tiny preset, the workbench's own engine)::

    python benchmarks/bench_generate.py                       # tiny, 64 px, 4 steps, 16 images
    python benchmarks/bench_generate.py --model tiny-sdxl --images 32 --batch-sizes 1 4 8 16

Full-size SDXL architecture with random weights on a GPU (no download; UNet/VAE/text encoders built from the
published SDXL configs), 1024 px, 30 steps, bf16 + SDPA + fused QKV + channels_last, optionally compiled::

    python benchmarks/bench_generate.py --full-sdxl --batch-sizes 1 2 4 8 --compile

It reports s/image and images/s per batch size, peak GPU memory, and the fraction of the GPU's dense bf16 peak
reached (one SDXL CFG step at 1024 px is ~12 TFLOP: two UNet passes of ~6 TFLOP). Medians over ``--repeats``
timed runs after one warm-up run; prints JSON (and writes it with ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SDXL_CFG_STEP_TFLOP = 12.0  # one classifier-free-guidance step at 1024 px (UNet at batch 2)
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "4090": 165.0}


def _timed(fn) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def bench_engine(
    engine: Any, images: int, batch_sizes: list[int], steps: int, repeats: int, cfg: float
) -> dict:
    """s/image for each batch size, drawing ``images`` images in calls of that size.

    Batch sizes are interleaved within each repeat (1, 4, 8, 1, 4, 8, ...), so a noisy neighbour on a shared
    machine slows all of them alike instead of skewing the ratio; each gets one untimed warm-up first.
    """

    def runner(batch: int):
        def run() -> None:
            for start in range(0, images, batch):
                seeds = list(range(start, min(start + batch, images)))
                engine.run("professional headshot photograph of sks person", "blurry", seeds,
                           steps=steps, guidance_scale=cfg, scheduler=None)  # fmt: skip

        return run

    times: dict[int, list[float]] = {b: [] for b in batch_sizes}
    peaks: dict[int, float] = {}
    for batch in batch_sizes:  # warm-up: allocator, kernels, (compile) for every shape
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        runner(batch)()
        if torch.cuda.is_available():
            peaks[batch] = torch.cuda.max_memory_allocated() / 2**30
    for _ in range(repeats):
        for batch in batch_sizes:
            times[batch].append(_timed(runner(batch)))
    rows = {}
    for batch, runs in times.items():
        median = statistics.median(runs)
        rows[batch] = {
            "s_per_image": median / images, "images_per_s": images / median, "runs_s": [round(t, 4) for t in runs],
            "best_run_s_per_image": min(runs) / images,  # least disturbed by neighbours on a shared machine
        }  # fmt: skip
        if batch in peaks:
            rows[batch]["peak_memory_gib"] = peaks[batch]
    return rows


def tiny_engine(args: argparse.Namespace) -> Any:
    from workbench.generate import GenerateConfig
    from workbench.generate.engine import build_engine
    from workbench.workspace import Workspace

    cache = Path(args.cache or tempfile.mkdtemp(prefix="bench-generate-"))
    os.environ.setdefault("WORKBENCH_CACHE", str(cache))
    config = GenerateConfig(
        model=args.model, resolution=args.resolution, device=args.device, compile=args.compile
    )
    return build_engine(config, Workspace.resolve(cache / "workspace"))


def _sdxl_unet_config() -> dict[str, Any]:
    path = (
        Path(__file__).resolve().parents[1] / "workbench" / "models" / "configs" / "sdxl-full" / "unet.json"
    )
    return {k: v for k, v in json.loads(path.read_text()).items() if not k.startswith("_")}


def full_sdxl_engine(args: argparse.Namespace) -> Any:
    """SDXL base 1.0's architecture with random weights, through the same engine and speed path."""
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from workbench.generate import GenerateConfig
    from workbench.generate.engine import Engine, apply_speed_path
    from workbench.models.sources import ModelSource
    from workbench.models.tokenizer import build_clip_tokenizer

    if not torch.cuda.is_available():
        raise SystemExit("--full-sdxl needs a CUDA GPU (it is ~2.6 B parameters at 1024 px).")
    dtype, device = torch.bfloat16, torch.device("cuda")
    torch.manual_seed(0)
    with torch.device("cuda"):  # build on the GPU: random init of 2.6 B parameters on a CPU takes minutes
        # The same architecture file the training benchmark reads (SDXL base 1.0's unet/config.json).
        unet = UNet2DConditionModel(**_sdxl_unet_config()).to(dtype)
        vae = AutoencoderKL(
            in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=1024,
            block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4, scaling_factor=0.13025, force_upcast=False,
        ).to(dtype)  # fmt: skip
        te1 = CLIPTextModel(
            CLIPTextConfig(
                hidden_size=768,
                intermediate_size=3072,
                num_attention_heads=12,
                num_hidden_layers=12,
                projection_dim=768,
                hidden_act="quick_gelu",
            )
        ).to(dtype)
        te2 = CLIPTextModelWithProjection(
            CLIPTextConfig(
                hidden_size=1280,
                intermediate_size=5120,
                num_attention_heads=20,
                num_hidden_layers=32,
                projection_dim=1280,
                hidden_act="gelu",
            )
        ).to(dtype)
    tok_dir = Path(tempfile.mkdtemp(prefix="clip-bpe-"))
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       timestep_spacing="leading", steps_offset=1)  # fmt: skip
    pipe = StableDiffusionXLPipeline(
        vae=vae, text_encoder=te1, text_encoder_2=te2, tokenizer=build_clip_tokenizer(tok_dir),
        tokenizer_2=build_clip_tokenizer(tok_dir, pad_token="!"), unet=unet, scheduler=scheduler,
    )  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    config = GenerateConfig(model="sdxl", device="cuda", compile=args.compile)
    speed = apply_speed_path(pipe, config, device, 1024, has_lora=False)
    source = ModelSource("sdxl-random", "local", "sdxl", "random weights", 1024)
    engine = Engine(pipe=pipe, source=source, size=1024, device=device, dtype=dtype, speed=speed)
    engine._base_scheduler = pipe.scheduler
    return engine


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="tiny or tiny-sdxl (CPU benchmark)")
    parser.add_argument(
        "--full-sdxl", action="store_true", help="full-size SDXL, random weights, 1024 px (GPU)"
    )
    parser.add_argument("--images", type=int, default=None, help="images per timed run (default 16; SDXL 16)")
    parser.add_argument(
        "--batch-sizes", type=int, nargs="+", default=None, help="default 1 4 8 (SDXL 1 2 4 8)"
    )
    parser.add_argument("--steps", type=int, default=None, help="default 4 (SDXL 30)")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--cfg", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the UNet (CUDA)")
    parser.add_argument("--cache", default=None, help="folder for the built tiny model")
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.full_sdxl:
        engine, steps, batch_sizes = (
            full_sdxl_engine(args),
            args.steps or 30,
            args.batch_sizes or [1, 2, 4, 8],
        )
        images = args.images or 16
    else:
        engine, steps, batch_sizes = tiny_engine(args), args.steps or 4, args.batch_sizes or [1, 4, 8]
        images = args.images or 16
    rows = bench_engine(engine, images, batch_sizes, steps, args.repeats, args.cfg)
    best = min(rows, key=lambda b: rows[b]["s_per_image"])
    report: dict[str, Any] = {
        "model": "sdxl (random weights, full size)" if args.full_sdxl else args.model,
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() and engine.device.type == "cuda"
        else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "resolution": engine.size, "steps": steps, "images_per_run": images, "repeats": args.repeats,
        "speed": engine.speed, "dtype": str(engine.dtype), "by_batch_size": rows, "best_batch_size": best,
        "s_per_image": rows[best]["s_per_image"], "images_per_s": rows[best]["images_per_s"],
    }  # fmt: skip
    if 1 in rows:
        report["batching_speedup_vs_one_call_per_image"] = rows[1]["s_per_image"] / rows[best]["s_per_image"]
        report["batching_speedup_best_runs"] = rows[1]["best_run_s_per_image"] / min(
            r["best_run_s_per_image"] for r in rows.values()
        )
    if args.full_sdxl:
        name = torch.cuda.get_device_name()
        peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
        achieved = SDXL_CFG_STEP_TFLOP * steps / rows[best]["s_per_image"]
        report.update(achieved_tflops=achieved, fraction_of_dense_bf16_peak=achieved / peak if peak else None,
                      goal_s_per_image=0.8)  # fmt: skip
    text = json.dumps(report, indent=2, default=str)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return report


if __name__ == "__main__":
    main()
