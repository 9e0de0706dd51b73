"""Detector plug-ins on tiny random weights saved in the *released* file layouts, loaded by the real loaders.

Each published detector is checked against an independent reference: UnivFD against transformers' own CLIP
forward plus a hand-applied linear head, Community Forensics against a timm-style ViT written here from timm's
algorithm (fused qkv, pre-norm blocks, class-token head) whose state dict is saved exactly as
``PyTorchModelHubMixin`` saves ``models.ViTClassifier``. Preprocessing is reproduced with transformers'
PIL image processor, not with the plug-in's own code.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from torch import nn

from workbench.errors import ModelNotAvailableError, WorkbenchError
from workbench.evaluate.detect import content_matched_crop, run_detectability
from workbench.evaluate.detectors import DETECTORS, load_detector
from workbench.evaluate.detectors.commfor import COMMFOR_HUB_ID, IMAGENET_MEAN, IMAGENET_STD
from workbench.evaluate.detectors.univfd import CLIP_HUB_ID, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

CONFIGS = Path(str(resources.files("workbench.models") / "configs"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def crops(astronaut, grace_hopper, dlib_faces) -> list[np.ndarray]:
    """Ten 256 px content-matched crops of the two bundled portraits (shifted margins make them differ)."""
    out = []
    for name, image in (("astronaut", astronaut), ("grace_hopper", grace_hopper)):
        box = dlib_faces[name][0].box
        out += [content_matched_crop(image, box, 256, margin=m) for m in (1.6, 1.8, 2.0, 2.2, 2.4)]
    return out


# -- UnivFD --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def univfd_files(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A tiny CLIP (saved with save_pretrained) and a UnivFD head as fc_weights.pth and as safetensors."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    root = tmp_path_factory.mktemp("univfd")
    spec = json.loads((CONFIGS / "tiny-univfd" / "clip_vision.json").read_text())
    spec = {k: v for k, v in spec.items() if not k.startswith("_") and k != "description"}
    torch.manual_seed(0)
    CLIPVisionModelWithProjection(CLIPVisionConfig(**spec)).save_pretrained(root / "clip")
    head = {"weight": torch.randn(1, spec["projection_dim"]), "bias": torch.randn(1)}
    torch.save(head, root / "fc_weights.pth")  # the published layout: a bare state dict of nn.Linear(768, 1)
    save_file(head, str(root / "fc_weights.safetensors"))
    return root / "clip", root / "fc_weights.pth", root / "fc_weights.safetensors"


def test_univfd_scores_clips_projected_embedding_through_the_published_head(univfd_files, crops):
    from transformers import CLIPVisionModelWithProjection
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    clip, pth, st = univfd_files
    detector = load_detector("univfd", weights=str(pth), clip_model=str(clip))
    logits = detector(crops)
    # Reference: UnivFD's CenterCrop(224) without resize + CLIP normalisation, then encode_image @ fc.
    processor = CLIPImageProcessorPil(
        do_resize=False,
        do_center_crop=True,
        crop_size={"height": 224, "width": 224},
        image_mean=list(OPENAI_CLIP_MEAN),
        image_std=list(OPENAI_CLIP_STD),
    )
    x = processor(images=crops, return_tensors="pt")["pixel_values"]
    model = CLIPVisionModelWithProjection.from_pretrained(clip).eval()
    head = torch.load(pth, weights_only=True)
    with torch.inference_mode():
        expected = (model(pixel_values=x).image_embeds @ head["weight"].T + head["bias"])[:, 0].numpy()
    assert logits.shape == (10,) and np.allclose(logits, expected, atol=1e-4)  # float32 round-off only
    assert np.allclose(
        load_detector("univfd", weights=str(st), clip_model=str(clip))(crops), logits, atol=1e-6
    )
    info = detector.info
    assert info.kind == "pretrained" and "github.com/WisconsinAIVision/UniversalFakeDetect" in info.source
    assert "MIT" in info.licence and info.sha256 == sha256(pth) and info.input_size == 224
    assert info.extra["backbone_sha256"] == sha256(clip / "model.safetensors")


def test_univfd_refuses_a_head_for_the_pooled_output(univfd_files, tmp_path):
    clip, _, _ = univfd_files
    torch.save(
        {"weight": torch.randn(1, 32), "bias": torch.randn(1)}, tmp_path / "fc_weights.pth"
    )  # hidden, not proj
    with pytest.raises(WorkbenchError, match="projected embedding"):
        load_detector("univfd", weights=str(tmp_path), clip_model=str(clip))


def test_univfd_needs_224_px_crops_and_clip_probe_gives_the_same_features(univfd_files, crops):
    clip, pth, _ = univfd_files
    with pytest.raises(WorkbenchError, match="at least 224 px"):
        load_detector("univfd", weights=str(pth), clip_model=str(clip))([c[:200, :200] for c in crops])
    probe = load_detector("clip", clip_model=str(clip))
    assert probe.kind == "probe" and probe(crops).shape == (10, 16)


def test_missing_univfd_weights_say_how_to_get_them(univfd_files, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    clip, pth, _ = univfd_files
    with pytest.raises(ModelNotAvailableError, match=f"hf download {CLIP_HUB_ID}") as err:
        load_detector("univfd", clip_model=str(clip))  # no head given
    assert "fc_weights.pth" in str(err.value)
    with pytest.raises(ModelNotAvailableError, match=f"`hf download {CLIP_HUB_ID}`"):
        load_detector("univfd", weights=str(pth))  # head given, backbone not cached


# -- Community Forensics -------------------------------------------------------------------------------------
class TimmAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.qkv, self.proj = heads, nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1) * (c // self.heads) ** -0.5).softmax(-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class TimmBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp: int) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim, eps=1e-6), TimmAttention(dim, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim, eps=1e-6), nn.Module()
        self.mlp.fc1, self.mlp.act, self.mlp.fc2 = nn.Linear(dim, mlp), nn.GELU(), nn.Linear(mlp, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        h = self.norm2(x)
        return x + self.mlp.fc2(self.mlp.act(self.mlp.fc1(h)))


class TimmViT(nn.Module):
    """timm's VisionTransformer as ViTClassifier uses it: class token, learned positions, pre-norm blocks,
    final norm, a 1-logit head on the class token -- with timm's parameter names."""

    def __init__(self, a: dict) -> None:
        super().__init__()
        dim, n = a["hidden_size"], (a["image_size"] // a["patch_size"]) ** 2
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, dim, a["patch_size"], a["patch_size"])
        self.cls_token, self.pos_embed = (
            nn.Parameter(torch.zeros(1, 1, dim)),
            nn.Parameter(torch.zeros(1, n + 1, dim)),
        )
        self.blocks = nn.ModuleList(TimmBlock(dim, a["num_heads"], a["mlp_dim"]) for _ in range(a["depth"]))
        self.norm, self.head = nn.LayerNorm(dim, eps=1e-6), nn.Linear(dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], 1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])


@pytest.fixture(scope="module")
def commfor_reference(tmp_path_factory) -> tuple[Path, nn.Module]:
    """A tiny random ViTClassifier saved as PyTorchModelHubMixin does: config.json + model.safetensors with
    ``vit.``-prefixed timm names."""
    arch = json.loads((CONFIGS / "tiny-commfor" / "architecture.json").read_text())
    torch.manual_seed(1)
    holder = nn.Module()
    holder.vit = TimmViT(arch)
    for name, p in holder.named_parameters():  # random everywhere, so a swapped tensor changes the logits
        nn.init.normal_(p, 1.0 if "norm" in name and name.endswith("weight") else 0.0, 0.2)
    folder = tmp_path_factory.mktemp("commfor") / "commfor-model-384"
    folder.mkdir()
    (folder / "config.json").write_text((CONFIGS / "tiny-commfor" / "config.json").read_text())
    save_file({k: v.contiguous() for k, v in holder.state_dict().items()}, str(folder / "model.safetensors"))
    return folder, holder.vit.eval()


def _reference_logits(model: nn.Module, crops: list[np.ndarray]) -> np.ndarray:
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    # The authors' test transform: Resize(440) (shorter side, bilinear), CenterCrop(384), ImageNet mean/std.
    processor = CLIPImageProcessorPil(
        size={"shortest_edge": 440},
        resample=Image.BILINEAR,
        do_center_crop=True,
        crop_size={"height": 384, "width": 384},
        image_mean=list(IMAGENET_MEAN),
        image_std=list(IMAGENET_STD),
    )
    with torch.inference_mode():
        return model(processor(images=crops, return_tensors="pt")["pixel_values"])[:, 0].numpy()


def test_commfor_loads_the_released_layout_and_matches_the_timm_reference(commfor_reference, crops):
    folder, reference = commfor_reference
    detector = load_detector("commfor", weights=str(folder))
    logits, expected = detector(crops), _reference_logits(reference, crops)
    print("commfor logits", np.round(logits[:4], 3), "reference", np.round(expected[:4], 3))
    # Same network, two implementations, float32: agreement to 1e-3 (logits spread over several units).
    assert np.ptp(expected) > 0.5 and np.allclose(logits, expected, atol=1e-3)
    info = detector.info
    assert info.kind == "pretrained" and "github.com/JeongsooP/Community-Forensics" in info.source
    assert info.licence.startswith("MIT") and info.sha256 == sha256(folder / "model.safetensors")
    assert info.input_size == 440 and info.extra["input_size"] == 384


def test_commfor_reads_the_training_checkpoint_layout_too(commfor_reference, crops, tmp_path):
    folder, reference = commfor_reference
    state = {
        f"_orig_mod.vit.{k}": v for k, v in reference.state_dict().items()
    }  # torch.compile'd, as released
    torch.save({"model": state, "epoch": 7}, tmp_path / "model_v11_ViT_384_base_ckpt.pt")
    (tmp_path / "config.json").write_text((folder / "config.json").read_text())
    detector = load_detector("commfor", weights=str(tmp_path / "model_v11_ViT_384_base_ckpt.pt"))
    assert np.allclose(detector(crops), _reference_logits(reference, crops), atol=1e-3)


def test_commfor_hub_id_is_read_from_the_local_cache_only(commfor_reference, crops, tmp_path, monkeypatch):
    import huggingface_hub.constants

    folder, _ = commfor_reference
    cache = tmp_path / "hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    with pytest.raises(ModelNotAvailableError, match=f"`hf download {COMMFOR_HUB_ID}`"):
        load_detector("commfor")
    with pytest.raises(ModelNotAvailableError, match=f"`hf download {COMMFOR_HUB_ID} --local-dir"):
        load_detector("commfor", weights=str(tmp_path / "not-downloaded"))
    # The cache layout `hf download` writes: refs/main names the snapshot holding the files.
    repo = cache / ("models--" + COMMFOR_HUB_ID.replace("/", "--"))
    snapshot = repo / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    for name in ("config.json", "model.safetensors"):
        (snapshot / name).write_bytes((folder / name).read_bytes())
    detector = load_detector("commfor")
    assert Path(detector.info.weights).parent == snapshot and detector.info.sha256 == sha256(
        folder / "model.safetensors"
    )


def test_commfor_refuses_a_config_that_does_not_match_the_weights(commfor_reference, tmp_path):
    folder, _ = commfor_reference
    (tmp_path / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    (tmp_path / "config.json").write_text(
        json.dumps({"model_size": "tiny", "input_size": 224, "patch_size": 16})
    )
    with pytest.raises(WorkbenchError, match="does not match the weights"):
        load_detector("commfor", weights=str(tmp_path))


# -- through the protocol ------------------------------------------------------------------------------------
def test_a_pretrained_plugin_runs_through_the_protocol_without_fitting(commfor_reference, crops):
    from workbench.evaluate.detect import DetectorInput

    folder, _ = commfor_reference
    detector = load_detector("commfor", weights=str(folder))
    real = [DetectorInput(f"r{i}", crops[i % 10]) for i in range(20)]
    fake = [DetectorInput(f"g{i}", np.ascontiguousarray(crops[i % 10][:, ::-1])) for i in range(20)]
    result = run_detectability(real, fake, detector=detector, n_boot=200)
    assert result["protocol"].startswith("published detector") and result["p_value"] is None
    assert (
        result["auc"].method in ("delong", "newcombe")
        and result["auc"].lo <= result["auc"].est <= result["auc"].hi
    )
    assert result["detector"]["sha256"] == sha256(folder / "model.safetensors")
    assert result["backend"] == "commfor" and set(DETECTORS) == {"spectral", "clip", "univfd", "commfor"}
