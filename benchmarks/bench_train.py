"""Training throughput: our trainer's step vs a bare diffusers + peft loop, and the full SDXL UNet on a GPU.

    python benchmarks/bench_train.py                    # tiny preset, CPU: steps/s, peak memory, ratio
    python benchmarks/bench_train.py --model tiny-sdxl
    python benchmarks/bench_train.py --full-sdxl        # GPU: SDXL UNet architecture, random weights, 1024 px

The ratio is measured in one process with the two loops interleaved in blocks (ours, bare, ours, bare, ...),
so a machine shared with other jobs slows both alike; the median block time per step is compared.
The bare loop is what diffusers' train_dreambooth_lora example does per step with cached latents and text
embeddings: sample noise + timesteps, add noise, UNet forward, MSE, backward, clip, AdamW, LR schedule.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.models import resolve_model  # noqa: E402
from workbench.train import TrainConfig, trainer  # noqa: E402
from workbench.train import components as C  # noqa: E402
from workbench.train import data as D  # noqa: E402

SDXL_UNET = (
    Path(__file__).resolve().parents[1] / "workbench" / "models" / "configs" / "sdxl-full" / "unet.json"
)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB (process peak RSS)


def our_session(model: str, cache: Path, config: TrainConfig) -> trainer.Session:
    from skimage import data

    source = resolve_model(model, cache)
    res = config.resolution or source.resolution
    face = np.asarray(
        __import__("PIL.Image", fromlist=["Image"]).fromarray(data.astronaut()).resize((res, res))
    )
    examples = [D.Example(face, "a photo of ohwx woman", None, None) for _ in range(4)]
    return trainer.setup(
        config, source, examples, ["a photo of ohwx woman"] * 4, trainer.make_accelerator(config)
    )


def bare_loop(model: str, cache: Path, config: TrainConfig, session: trainer.Session):
    """The reference: a plain diffusers + peft step on the same model, data and settings."""
    from diffusers import DDPMScheduler
    from diffusers.optimization import get_scheduler
    from peft import LoraConfig

    from workbench.models import load_component

    source = resolve_model(model, cache)
    unet = load_component(source, "unet").requires_grad_(False)
    unet.add_adapter(LoraConfig(r=config.rank, lora_alpha=config.rank, init_lora_weights="gaussian",
                                target_modules=list(config.target_modules)))  # fmt: skip
    unet.train()
    params = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    lr_scheduler = get_scheduler("constant", optimizer=optimizer)
    scheduler = DDPMScheduler.from_config(load_component(source, "scheduler").config)
    mean, std = session.instance["mean"], session.instance["std"]
    hidden, pooled = session.instance["hidden"], session.instance["pooled"]
    sdxl = source.family == "sdxl"
    res = session.resolution

    def step(i: int) -> float:
        idx = [i % mean.shape[0]]
        latents = (mean[idx] + std[idx] * torch.randn_like(mean[idx])) * 0.18215
        noise = torch.randn_like(latents)
        t = torch.randint(0, 1000, (1,))
        kwargs = {}
        if sdxl:
            ids = torch.tensor([[res, res, 0, 0, res, res]], dtype=torch.float32)
            kwargs["added_cond_kwargs"] = {"text_embeds": pooled[idx], "time_ids": ids}
        pred = unet(scheduler.add_noise(latents, noise, t), t, hidden[idx], **kwargs).sample
        loss = F.mse_loss(pred.float(), noise.float())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    return step


def timed(fn, steps: int, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def bench_tiny(model: str, blocks: int, steps: int) -> dict:
    from workbench.workspace import Workspace

    cache = Workspace.resolve().cache_dir  # the workspace's model cache (git-ignored)
    # Same work in both loops: no min-SNR, no face mask, no prior, AdamW, clip at 1.0, constant LR.
    config = TrainConfig(model=model, rank=4, snr_gamma=None, learning_rate=1e-4, checkpointing_steps=0)
    session = our_session(model, cache, config)
    bare = bare_loop(model, cache, config, session)
    counter = {"ours": 0, "bare": 0}

    def ours():
        trainer.optimizer_step(session)
        session.step += 1

    def reference():
        bare(counter["bare"])
        counter["bare"] += 1

    ours(), reference()  # warm-up
    times = {"ours": [], "bare": []}
    for _ in range(blocks):
        times["ours"].append(timed(ours, steps, session.device))
        times["bare"].append(timed(reference, steps, session.device))
    ours_s, bare_s = statistics.median(times["ours"]), statistics.median(times["bare"])
    return {
        "model": model, "device": str(session.device), "threads": torch.get_num_threads(),
        "ours_s_per_step": ours_s, "bare_s_per_step": bare_s, "ours_steps_per_s": 1 / ours_s,
        "ratio_ours_over_bare": ours_s / bare_s, "blocks": blocks, "steps_per_block": steps,
        "peak_memory_mb": peak_memory_mb(session.device),
    }  # fmt: skip


def bench_full_sdxl(
    steps: int,
    resolution: int,
    checkpointing: bool,
    rank: int,
    unet_json: Path = SDXL_UNET,
    cpu_dry_run: bool = False,
) -> dict:
    """The SDXL UNet architecture (2.57 B parameters) with random weights, trained by our step in bf16.

    ``cpu_dry_run`` runs the same code in fp32 on the CPU (with a small ``unet_json``) to check the path.
    """
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    if not torch.cuda.is_available() and not cpu_dry_run:
        raise SystemExit("--full-sdxl needs a CUDA GPU (bf16); run it on a GPU machine.")
    config = TrainConfig(model="sdxl", rank=rank, resolution=resolution, mixed_precision="bf16",
                         gradient_checkpointing=checkpointing, checkpointing_steps=0)  # fmt: skip
    accelerator = trainer.make_accelerator(config)
    device = accelerator.device
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    unet_config = {k: v for k, v in json.loads(Path(unet_json).read_text()).items() if not k.startswith("_")}
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**unet_config).to(device, dtype).requires_grad_(False)
    # Only the VAE's config is used by the step (latents are cached): a 1-block stand-in avoids 80 M weights.
    vae = AutoencoderKL(block_out_channels=[32], norm_num_groups=8).to(device)
    vae.register_to_config(scaling_factor=0.13025)
    scheduler = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    comps = C.Components("sdxl", unet, vae, scheduler, scheduler, [], [])
    C.add_unet_lora(unet, config)
    if checkpointing:
        unet.enable_gradient_checkpointing()
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import cast_training_params

    cast_training_params(unet, dtype=torch.float32)
    fused = {"fused": True} if device.type == "cuda" else {}
    optimizer = torch.optim.AdamW([p for p in unet.parameters() if p.requires_grad], lr=1e-4, **fused)
    unet, optimizer = accelerator.prepare(unet, optimizer)
    lat = resolution // 8
    text_dim = unet_config["cross_attention_dim"]  # 2048 = 768 (CLIP-L) + 1280 (OpenCLIP-G)
    pooled_dim = (
        unet_config["projection_class_embeddings_input_dim"] - 6 * unet_config["addition_time_embed_dim"]
    )
    instance = {
        "mean": torch.randn(4, 4, lat, lat), "std": torch.full((4, 4, lat, lat), 0.01), "count": 4, "weights": None,
        "hidden": torch.randn(4, 77, text_dim, device=device, dtype=dtype),
        "pooled": torch.randn(4, pooled_dim, device=device, dtype=dtype),
    }  # fmt: skip
    session = trainer.Session(
        config=config, accelerator=accelerator, components=comps, unet=unet, text_encoders=[],
        trained_modules=[unet], optimizer=optimizer, lr_scheduler=get_scheduler("constant", optimizer=optimizer),
        weight_dtype=dtype, resolution=resolution, instance=instance, classes=None,
    )  # fmt: skip

    def one():
        trainer.optimizer_step(session)
        session.step += 1

    for _ in range(3):
        one()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds = timed(one, steps, device)
    return {
        "model": f"{Path(unet_json).stem} (random weights)", "parameters": sum(p.numel() for p in unet.parameters()),
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "resolution": resolution,
        "precision": str(dtype).removeprefix("torch."), "gradient_checkpointing": checkpointing, "rank": rank, "steps": steps,
        "steps_per_s": 1 / seconds, "projected_500_steps_s": 500 * seconds,
        "peak_memory_mb": peak_memory_mb(device),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", default="tiny", help="tiny preset for the CPU comparison (tiny, tiny-sdxl)"
    )
    parser.add_argument("--blocks", type=int, default=30, help="interleaved timing blocks per loop")
    parser.add_argument("--steps", type=int, default=5, help="steps per block (full SDXL: timed steps)")
    parser.add_argument("--full-sdxl", action="store_true", help="GPU: full SDXL UNet, random weights, bf16")
    parser.add_argument("--resolution", type=int, default=1024)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--unet-config", type=Path, default=SDXL_UNET, help="UNet JSON for --full-sdxl")
    parser.add_argument(
        "--cpu-dry-run", action="store_true", help="run --full-sdxl's code on the CPU in fp32"
    )
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.full_sdxl:
        result = bench_full_sdxl(
            args.steps,
            args.resolution,
            args.gradient_checkpointing,
            args.rank,
            args.unet_config,
            args.cpu_dry_run,
        )
    else:
        result = bench_tiny(args.model, args.blocks, args.steps)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
