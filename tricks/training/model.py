"""The baseline: the TensorFlow CNN-tutorial network for CIFAR-10 (122,570 parameters).

Built as an ``nn.Sequential`` with named layers so that tricks can insert modules by name
(e.g. dropout after ``relu2``) without subclassing.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

CONV_RELUS = ("relu1", "relu2", "relu3")   # the ReLU after each conv layer
DENSE_RELUS = ("relu4",)                   # the ReLU after the first dense layer


def baseline_net(num_classes: int = 10) -> nn.Sequential:
    """conv32-pool-conv64-pool-conv64-dense64-dense10; 3x3 unpadded convs; log-softmax output."""
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, 32, 3)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),    # 32->30->15
        ("conv2", nn.Conv2d(32, 64, 3)), ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),   # 15->13->6
        ("conv3", nn.Conv2d(64, 64, 3)), ("relu3", nn.ReLU()),                               # 6->4
        ("flatten", nn.Flatten()),                                                           # 64*4*4 = 1024
        ("fc1", nn.Linear(1024, 64)), ("relu4", nn.ReLU()),
        ("fc2", nn.Linear(64, num_classes)),
        ("log_softmax", nn.LogSoftmax(dim=1)),
    ]))


def insert_after(model: nn.Sequential, anchor: str, name: str, module: nn.Module) -> nn.Sequential:
    """A new Sequential with ``module`` (called ``name``) right after the layer ``anchor``."""
    names = [n for n, _ in model.named_children()]
    if anchor not in names:
        raise ValueError(f"no layer named {anchor!r}; layers: {', '.join(names)}")
    if name in names:
        raise ValueError(f"the model already has a layer named {name!r}")
    layers = []
    for n, m in model.named_children():
        layers.append((n, m))
        if n == anchor:
            layers.append((name, module))
    return nn.Sequential(OrderedDict(layers))


def pool_before_activation(model: nn.Module) -> nn.Module:
    """The same network with every max-pool that directly follows a ReLU moved in front of it: a
    quarter of the ReLU's work (2x2 pooling), the same outputs and gradients bit for bit.

    ReLU is non-decreasing, so max(relu(a), relu(b)) = relu(max(a, b)). The gradients match too: the
    pool picks the same element, and where it could pick another (a window of ReLU zeros) the ReLU's
    derivative there is exactly 0 either way. Only ReLU: a saturating tanh or sigmoid maps different
    inputs to one float with a nonzero derivative, so on those ties the gradient would reach another
    pixel (measured: last-bit differences). A layer between the two (dropout after a conv's ReLU)
    keeps the pair as it is, so variants that act on the activations before pooling keep their
    meaning. Layer names, and so state dicts, are kept. Anything but an ``nn.Sequential`` is
    returned unchanged."""
    if not isinstance(model, nn.Sequential):
        return model
    layers = list(model.named_children())
    i = 0
    while i < len(layers) - 1:
        (_, act), (_, pool) = layers[i], layers[i + 1]
        if type(act) is nn.ReLU and type(pool) is nn.MaxPool2d:
            layers[i], layers[i + 1] = layers[i + 1], layers[i]
            i += 2
        else:
            i += 1
    return nn.Sequential(OrderedDict(layers))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
