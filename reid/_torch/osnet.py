"""OSNet (Zhou et al., "Omni-Scale Feature Learning for Person Re-Identification", ICCV 2019).

Written for petmatch from the paper's description; module and parameter names follow
torchreid's layout so that its model-zoo state_dicts (``conv1.conv.weight`` …
``fc.1.running_var``, ``classifier.*``) load with ``strict=True``. Widths x0.25 … x1.0.

In eval mode ``forward`` returns the 512-d feature (after the fc block); in train mode it
returns ``(logits, feature)`` when the model has a classifier, else the feature.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "OSNET_WIDTHS",
    "OSNet",
    "arch_from_state_dict",
    "build_osnet",
    "load_osnet",
    "load_person_weights",
]

# width name -> channels of conv1 and the three stages
OSNET_WIDTHS: dict[str, tuple[int, int, int, int]] = {
    "osnet_x1_0": (64, 256, 384, 512),
    "osnet_x0_75": (48, 192, 288, 384),
    "osnet_x0_5": (32, 128, 192, 256),
    "osnet_x0_25": (16, 64, 96, 128),
}


class ConvLayer(nn.Module):
    """Convolution + batch norm + ReLU (the stem)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class Conv1x1(nn.Module):
    """Pointwise convolution + batch norm, with ReLU unless ``linear``."""

    def __init__(self, cin: int, cout: int, linear: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.linear = linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return x if self.linear else F.relu(x)


class LiteConv3x3(nn.Module):
    """Lite 3x3: pointwise then depthwise 3x3, one batch norm, ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, groups=cout, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv2(self.conv1(x))))


class ChannelGate(nn.Module):
    """Unified aggregation gate: a tiny MLP on pooled channels gives per-channel weights."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = F.adaptive_avg_pool2d(x, 1)
        w = torch.sigmoid(self.fc2(F.relu(self.fc1(w))))
        return x * w


class OSBlock(nn.Module):
    """Omni-scale residual bottleneck: four streams of 1..4 lite 3x3 layers, one shared gate."""

    def __init__(self, cin: int, cout: int, bottleneck_reduction: int = 4) -> None:
        super().__init__()
        mid = cout // bottleneck_reduction
        self.conv1 = Conv1x1(cin, mid)
        self.conv2a = LiteConv3x3(mid, mid)
        self.conv2b = nn.Sequential(*(LiteConv3x3(mid, mid) for _ in range(2)))
        self.conv2c = nn.Sequential(*(LiteConv3x3(mid, mid) for _ in range(3)))
        self.conv2d = nn.Sequential(*(LiteConv3x3(mid, mid) for _ in range(4)))
        self.gate = ChannelGate(mid)
        self.conv3 = Conv1x1(mid, cout, linear=True)
        self.downsample = Conv1x1(cin, cout, linear=True) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        x1 = self.conv1(x)
        x2 = (
            self.gate(self.conv2a(x1))
            + self.gate(self.conv2b(x1))
            + self.gate(self.conv2c(x1))
            + self.gate(self.conv2d(x1))
        )
        return F.relu(self.conv3(x2) + identity)


def _stage(cin: int, cout: int, blocks: int, reduce: bool) -> nn.Sequential:
    layers: list[nn.Module] = [OSBlock(cin, cout)]
    layers += [OSBlock(cout, cout) for _ in range(1, blocks)]
    if reduce:
        layers.append(nn.Sequential(Conv1x1(cout, cout), nn.AvgPool2d(2, stride=2)))
    return nn.Sequential(*layers)


class OSNet(nn.Module):
    """OSNet backbone + 512-d embedding head (+ optional identity classifier for training)."""

    def __init__(
        self,
        channels: tuple[int, int, int, int],
        num_classes: int = 0,
        feature_dim: int = 512,
        blocks: tuple[int, int, int] = (2, 2, 2),
    ) -> None:
        super().__init__()
        c0, c1, c2, c3 = channels
        self.feature_dim = feature_dim
        self.conv1 = ConvLayer(3, c0, 7, stride=2, padding=3)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = _stage(c0, c1, blocks[0], reduce=True)
        self.conv3 = _stage(c1, c2, blocks[1], reduce=True)
        self.conv4 = _stage(c2, c3, blocks[2], reduce=False)
        self.conv5 = Conv1x1(c3, c3)
        self.fc = nn.Sequential(
            nn.Linear(c3, feature_dim), nn.BatchNorm1d(feature_dim), nn.ReLU(inplace=True)
        )
        self.classifier = nn.Linear(feature_dim, num_classes) if num_classes > 0 else None
        self._init_params()

    def _init_params(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def featuremaps(self, x: torch.Tensor) -> torch.Tensor:
        """The last convolutional feature map (N, C, H/16, W/16), used for activation maps."""
        x = self.maxpool(self.conv1(x))
        return self.conv5(self.conv4(self.conv3(self.conv2(x))))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The 512-d feature (not normalized)."""
        v = F.adaptive_avg_pool2d(self.featuremaps(x), 1).flatten(1)
        return self.fc(v)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        v = self.embed(x)
        if not self.training or self.classifier is None:
            return v
        return self.classifier(v), v


def build_osnet(name: str = "osnet_x0_25", num_classes: int = 0) -> OSNet:
    """An OSNet of the named width with random weights."""
    try:
        channels = OSNET_WIDTHS[name]
    except KeyError:
        raise KeyError(f"unknown OSNet {name!r}; valid: {', '.join(OSNET_WIDTHS)}") from None
    return OSNet(channels, num_classes=num_classes)


def load_person_weights(model: OSNet, path: Path) -> None:
    """Load a torchreid model-zoo state_dict strictly, dropping its person classifier."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"OSNet weights not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    own = model.state_dict()
    if model.classifier is not None:
        state.update({k: v for k, v in own.items() if k.startswith("classifier.")})
    model.load_state_dict(state, strict=True)


def arch_from_state_dict(state: dict[str, torch.Tensor]) -> str:
    """The OSNet width a state_dict was saved from (by its stem width)."""
    stem = int(state["conv1.conv.weight"].shape[0])
    for name, channels in OSNET_WIDTHS.items():
        if channels[0] == stem:
            return name
    raise ValueError(f"no OSNet width has a {stem}-channel stem")


def load_osnet(path: Path) -> tuple[OSNet, dict[str, object]]:
    """An eval-mode OSNet (no classifier) from a torchreid state_dict or a petmatch checkpoint.

    Returns the model and the checkpoint's metadata (``arch``, and for petmatch checkpoints
    ``input_size``, ``letterbox``, ``model_id``…; empty extras for torchreid files).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"OSNet weights not found: {path}")
    raw = torch.load(path, map_location="cpu", weights_only=True)
    meta: dict[str, object] = {}
    if isinstance(raw, dict) and "model" in raw and isinstance(raw["model"], dict):
        meta = {k: v for k, v in raw.items() if k not in ("model", "optimizer", "rng")}
        state = raw["model"]
    elif isinstance(raw, dict) and "state_dict" in raw:
        state = raw["state_dict"]
    else:
        state = raw
    state = {k.removeprefix("module."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    arch = str(meta.get("arch") or arch_from_state_dict(state))
    model = build_osnet(arch)
    model.load_state_dict(state, strict=True)
    model.eval()
    meta["arch"] = arch
    return model, meta
