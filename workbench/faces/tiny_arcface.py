"""A tiny random-weight ArcFace-architecture model, exported to ONNX, so the ArcFace backend runs offline in tests.

No ArcFace weights ship in any package (insightface downloads its packs from GitHub at first use, under a
research-only licence), so the tests drive the real backend -- file lookup, hashing, onnxruntime session,
insightface's alignment and input normalisation -- with a model of the same family and I/O: an IResNet
(Duta et al., ICPR 2020, "Improved Residual Networks"; the backbone of insightface's arcface_torch and of
buffalo_l's w600k_r50) shrunk to four one-block stages of 8-32 channels. Input N x 3 x 112 x 112, RGB scaled to
[-1, 1]; output N x 512. Its embeddings carry no identity: tests check shape, norm, determinism and plumbing,
never likeness.

The legacy TorchScript exporter (``dynamo=False``) is used: the torch.export-based exporter that torch 2.13
defaults to needs the ``onnxscript`` package, which this project does not install.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from workbench.errors import WorkbenchError

EMBEDDING_SIZE = 512
INPUT_SIZE = 112


def _model(widths: tuple[int, ...], seed: int):
    import torch
    from torch import nn

    def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
        return nn.Conv2d(cin, cout, 3, stride, 1, bias=False)

    class IBasicBlock(nn.Module):
        """IResNet's pre-activation-style block: BN-conv-BN-PReLU-conv(stride)-BN plus a projected shortcut."""

        def __init__(self, cin: int, cout: int, stride: int):
            super().__init__()
            self.body = nn.Sequential(
                nn.BatchNorm2d(cin), conv3x3(cin, cout), nn.BatchNorm2d(cout), nn.PReLU(cout),
                conv3x3(cout, cout, stride), nn.BatchNorm2d(cout),
            )  # fmt: skip
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            return self.body(x) + self.shortcut(x)

    class TinyIResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(conv3x3(3, widths[0]), nn.BatchNorm2d(widths[0]), nn.PReLU(widths[0]))
            stages, cin = [], widths[0]
            for cout in widths:  # each stage halves the side: 112 -> 56 -> 28 -> 14 -> 7
                stages.append(IBasicBlock(cin, cout, stride=2))
                cin = cout
            self.stages = nn.Sequential(*stages)
            side = INPUT_SIZE // 2 ** len(widths)
            # arcface_torch's head: BN2d, dropout, FC over the flattened 7x7 map, BN1d on the embedding.
            self.bn2 = nn.BatchNorm2d(cin)
            self.dropout = nn.Dropout(p=0.0)
            self.fc = nn.Linear(cin * side * side, EMBEDDING_SIZE)
            self.features = nn.BatchNorm1d(EMBEDDING_SIZE)

        def forward(self, x):
            x = self.bn2(self.stages(self.stem(x)))
            return self.features(self.fc(self.dropout(torch.flatten(x, 1))))

    with torch.random.fork_rng(devices=[]):  # seeded weights without touching the caller's random state
        torch.manual_seed(seed)
        model = TinyIResNet()
        for module in model.modules():  # trained-looking BN statistics, so BN is not the identity
            if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
                module.running_mean.normal_(0.0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def build_tiny_arcface(path: str | Path, *, seed: int = 0, widths: tuple[int, ...] = (8, 16, 24, 32)) -> Path:
    """Write a random-weight tiny IResNet ArcFace model to ``path`` (ONNX, opset 17) and return the path.

    The same ``seed`` and ``widths`` give the same weights, hence the same embeddings; about 1 s on a CPU.
    """
    import torch

    if len(widths) != 4 or min(widths) < 1:
        raise WorkbenchError(
            f"widths must be four positive channel counts (112 px / 2**4 = 7 px map), got {widths}"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = _model(tuple(widths), seed)
    dummy = torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE)
    with warnings.catch_warnings():
        # torch 2.13 warns that the TorchScript exporter is deprecated; it is the one that needs no onnxscript.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        torch.onnx.export(
            model, (dummy,), str(path), dynamo=False, opset_version=17,
            input_names=["input.1"], output_names=["embedding"],
            dynamic_axes={"input.1": {0: "batch"}, "embedding": {0: "batch"}},
        )  # fmt: skip
    return path
