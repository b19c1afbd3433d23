"""Deliberately broken saliency methods, to prove the criteria can fail."""
import torch
import torch.nn.functional as F


def edges(model, x, keys, target, cfg, memo):
    """The image's Sobel edge magnitude: depends on the image, never on the model."""
    kx = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]).view(1, 1, 3, 3)
    gx = F.conv2d(x, kx.expand(x.shape[1], 1, 3, 3).contiguous(), padding=1, groups=x.shape[1])
    gy = F.conv2d(x, kx.transpose(2, 3).expand(x.shape[1], 1, 3, 3).contiguous(), padding=1, groups=x.shape[1])
    return torch.sqrt(gx**2 + gy**2)


def grey_democnn(num_classes: int = 2):
    """A model factory (``tests.fake_methods:grey_democnn:PATH``) whose network takes one grey channel."""
    from saliency_audit.demo.archs import DemoCNN

    net = DemoCNN()
    net.input_size, net.in_channels = (128, 128), 1
    return net
