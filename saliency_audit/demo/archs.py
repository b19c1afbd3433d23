"""Two small CNNs for the demo world, built so that saliency methods behave.

The layout rules exist for the saliency methods, not for accuracy:

* every ReLU is its own ``nn.ReLU(inplace=False)`` used exactly once, because
  guided backprop and DeepLift-style methods hook ReLU *modules*; a shared or
  functional ReLU would be skipped or hooked twice, and an in-place one breaks
  backward hooks;
* the last spatial block ends in a ReLU and keeps a 16x16 map (total stride 8),
  so GradCAM, which picks "the last module with a 4-D spatial output", lands on
  a post-ReLU map fine enough to localise 5-12 px lesions;
* the nets stay small (tens of MFLOP) because the audit runs hundreds of
  forward+backward passes per image on a 2-core CPU.
"""
from __future__ import annotations

from torch import Tensor, nn

#: The models expect ``(x - INPUT_MEAN) / INPUT_STD`` of a [0, 1] image.
INPUT_MEAN = 0.5
INPUT_STD = 0.25


def _conv_bn_relu(c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=(kernel - 1) // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=False),
    )


def _stem(c_out: int) -> nn.Sequential:
    # A 4x4 stride-2 conv: every input pixel feeds exactly 2x2 outputs, so the
    # stem adds no coverage checkerboard to input gradients, and no activation
    # is ever stored at full 128x128 resolution -- full-resolution feature
    # maps cost more CPU time (memory traffic) than all the other layers.
    return _conv_bn_relu(1, c_out, kernel=4, stride=2)


def _head(c_in: int, num_classes: int = 2) -> nn.Sequential:
    # The pooled map is (N, C, 1, 1): 4-D but not spatial, so a GradCAM layer
    # rule that needs H, W > 1 skips it and stops at the features.
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes))


class DemoCNN(nn.Module):
    """Plain conv-BN-ReLU stack with max-pooling (the primary architecture).

    128 -> 64 (stem) -> 32 -> 16, two convs at 32 and at 16: receptive field
    62 px, so a 24 px lesion is seen together with the lung around it. Two
    convs per stage, not one: with one, the net needs twice the epochs to
    tell lesions from ribs and heart borders. ``num_classes``: 2 (the single-label
    demo's two softmax classes) or one logit per finding (the multi-label demo).
    """

    def __init__(self, channels: tuple[int, int, int, int] = (8, 16, 32, 64), num_classes: int = 2):
        super().__init__()
        c1, c2, c3, c4 = channels
        self.features = nn.Sequential(
            _stem(c1),
            _conv_bn_relu(c1, c2),
            nn.MaxPool2d(2),
            _conv_bn_relu(c2, c3),
            _conv_bn_relu(c3, c3),
            nn.MaxPool2d(2),
            _conv_bn_relu(c3, c4),
            _conv_bn_relu(c4, c4),
        )
        self.head = _head(c4, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class ResidualBlock(nn.Module):
    """Basic two-conv residual block; the post-add ReLU is a module of its own."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu1 = nn.ReLU(inplace=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                nn.BatchNorm2d(c_out),
            )
        else:
            self.shortcut = nn.Identity()
        self.relu_out = nn.ReLU(inplace=False)

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu_out(y + self.shortcut(x))


class DemoResNet(nn.Module):
    """Residual architecture, so that audits can compare saliency across designs.

    128 -> 64 (stem) -> 32 -> 16 with strided residual blocks and no pooling
    layers; receptive field 72 px.
    """

    def __init__(self, channels: tuple[int, int, int, int] = (8, 16, 32, 64), num_classes: int = 2):
        super().__init__()
        c1, c2, c3, c4 = channels
        self.features = nn.Sequential(
            _stem(c1),
            ResidualBlock(c1, c2, stride=2),
            ResidualBlock(c2, c3, stride=2),
            ResidualBlock(c3, c4, stride=1),
        )
        self.head = _head(c4, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


ARCHS: dict[str, type[nn.Module]] = {"democnn": DemoCNN, "demoresnet": DemoResNet}
