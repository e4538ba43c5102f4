"""The Torch kinds: torch.logistic, torch.mlp, torch.cnn and torch.network (your network
function), trained by TorchClassifier (models/torch_training.py) like the NumPy models.
"""

from __future__ import annotations

from typing import Any

from hpsearch.models.base import store_arguments
from hpsearch.models.constraints import Interval
from hpsearch.models.constraints import Options
from hpsearch.models.mlp import Widths
from hpsearch.models.mlp import parse_hidden
from hpsearch.models.torch_training import IMAGE_CONSTRAINTS
from hpsearch.models.torch_training import TORCH_CONSTRAINTS
from hpsearch.models.torch_training import TRAINING_DEFAULTS
from hpsearch.models.torch_training import TorchClassifier
from hpsearch.models.torch_training import load_torch


class TorchLogistic(TorchClassifier):
    """Multinomial logistic (softmax) regression: one linear layer."""

    def __init__(
        self,
        learning_rate: float = 1e-2,
        batch_size: int = 64,
        epochs: int = 20,
        reg: str = "none",
        reg_strength: float = 0.0,
        optimizer: str = "sgd",
        momentum: float = 0.9,
        schedule: str = "constant",
        schedule_every: str = "batch",
        lr_decay: float = 0.0,
        lr_step: int = 10,
        lr_gamma: float = 0.1,
        sampling: str = "shuffle",
        patience: int = 0,
        init: str = "xavier",
        init_mean: float = 0.0,
        init_std: float = 1e-2,
        device: str = "auto",
        seed: int = 0,
        weight_decay: float = 0.01,
        label_smoothing: float = 0.0,
        warmup_epochs: float = 0,
        precision: str = "fp32",
    ) -> None:
        store_arguments(self, locals())

    def _network(self, n_inputs: int, n_classes: int, input_shape: tuple[int, ...]) -> Any:
        return load_torch().nn.Linear(n_inputs, n_classes)


class TorchMLP(TorchClassifier):
    """A feed-forward net; the defaults are the landscape assignment's table (assignment 003)."""

    _parameter_constraints = {
        **TORCH_CONSTRAINTS,
        "hidden": Widths(),
        "activation": Options(("relu", "sigmoid", "tanh")),
        "dropout": Interval(0.0, 1.0, high_open=True),
    }

    def __init__(
        self,
        hidden: Any = (200, 200),
        activation: str = "relu",
        dropout: float = 0.3,
        learning_rate: float = 0.002,
        batch_size: int = 64,
        epochs: int = 200,
        reg: str = "none",
        reg_strength: float = 0.0,
        optimizer: str = "sgd",
        momentum: float = 0.9,
        schedule: str = "constant",
        schedule_every: str = "batch",
        lr_decay: float = 0.0,
        lr_step: int = 10,
        lr_gamma: float = 0.1,
        sampling: str = "shuffle",
        patience: int = 0,
        init: str = "he",
        init_mean: float = 0.0,
        init_std: float = 1e-2,
        device: str = "auto",
        seed: int = 0,
        weight_decay: float = 0.01,
        label_smoothing: float = 0.0,
        warmup_epochs: float = 0,
        precision: str = "fp32",
    ) -> None:
        store_arguments(self, locals())

    def _network(self, n_inputs: int, n_classes: int, input_shape: tuple[int, ...]) -> Any:
        nn = load_torch().nn
        act = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}[self.activation]
        layers: list[Any] = []
        width = n_inputs
        for h in parse_hidden(self.hidden):
            layers += [nn.Linear(width, h), act(), nn.Dropout(self.dropout)]
            width = h
        return nn.Sequential(*layers, nn.Linear(width, n_classes))


class TorchCNN(TorchClassifier):
    """A small VGG/AlexNet-style net: conv blocks (`convs_per_block` times conv 3x3 ->
    [BatchNorm] -> ReLU, then max-pool 2), a head that turns the last feature map into a
    vector, then fully connected layers with dropout.

    Args:
        channels: Output channels of each conv block (a list or "32-64-128").
        hidden: Widths of the fully connected layers before the output.
        batch_norm: BatchNorm after every convolution (the assignment's switch).
        dropout: Dropout before every fully connected layer (0 switches it off).
        convs_per_block: 3x3 convolutions before each pooling (VGG-style: 2 sees 5x5).
        head: "pool2" average-pools the last map to 2x2 (any input size works; a 7x7 map
            loses detail), "flatten" keeps the whole last map, "gap" averages each channel
            to one number (global average pooling, fewest weights).
        crop_padding, flip: training-batch augmentation (see `augment`); 0 and False: off.
        test_flip: scores are the mean log-probabilities of the image and its mirror image
            (test-time augmentation, for networks trained with `flip`).
    """

    wants_images = True
    _channels_last = True
    _parameter_constraints = {
        **TORCH_CONSTRAINTS,
        "channels": Widths(),
        "hidden": Widths(),
        "batch_norm": Options((True, False)),
        "dropout": Interval(0.0, 1.0, high_open=True),
        "convs_per_block": Interval(1, None, integer=True),
        "head": Options(("pool2", "flatten", "gap")),
        **IMAGE_CONSTRAINTS,
    }

    def __init__(
        self,
        channels: Any = (32, 64, 128),
        hidden: Any = (256,),
        batch_norm: bool = True,
        dropout: float = 0.5,
        convs_per_block: int = 1,
        head: str = "pool2",
        crop_padding: int = 0,
        flip: bool = False,
        test_flip: bool = False,
        learning_rate: float = 1e-2,
        batch_size: int = 64,
        epochs: int = 20,
        reg: str = "none",
        reg_strength: float = 0.0,
        optimizer: str = "sgd",
        momentum: float = 0.9,
        schedule: str = "constant",
        schedule_every: str = "batch",
        lr_decay: float = 0.0,
        lr_step: int = 10,
        lr_gamma: float = 0.1,
        sampling: str = "shuffle",
        patience: int = 0,
        init: str = "he",
        init_mean: float = 0.0,
        init_std: float = 1e-2,
        device: str = "auto",
        seed: int = 0,
        weight_decay: float = 0.01,
        label_smoothing: float = 0.0,
        warmup_epochs: float = 0,
        precision: str = "fp32",
    ) -> None:
        store_arguments(self, locals())

    def _network(self, n_inputs: int, n_classes: int, input_shape: tuple[int, ...]) -> Any:
        nn = load_torch().nn
        if len(input_shape) != 3:
            raise ValueError(f"torch.cnn needs images of shape (C, H, W), got {input_shape}")
        layers: list[Any] = []
        in_channels, (h, w) = input_shape[0], input_shape[1:]
        for out_channels in parse_hidden(self.channels):
            for _ in range(self.convs_per_block):
                layers.append(
                    nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=not self.batch_norm)
                )
                if self.batch_norm:
                    layers.append(nn.BatchNorm2d(out_channels))
                layers.append(nn.ReLU())
                in_channels = out_channels
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
            h, w = -(-h // 2), -(-w // 2)
        side = {"pool2": 2, "gap": 1}.get(self.head)
        if side is not None:
            layers.append(nn.AdaptiveAvgPool2d(side))
            h = w = side
        layers.append(nn.Flatten())
        width = in_channels * h * w
        for h in parse_hidden(self.hidden):
            layers += [nn.Dropout(self.dropout), nn.Linear(width, h), nn.ReLU()]
            width = h
        return nn.Sequential(*layers, nn.Dropout(self.dropout), nn.Linear(width, n_classes))


class TorchNetwork(TorchClassifier):
    """`torch.network`: the user's network function, trained like the built-in Torch kinds
    (optimizers, schedules, L1/L2, sampling, early stopping, device, divergence checks).

    The function gets the input shape (C, H, W) and the number of classes and returns the
    module; inputs arrive as images (N, C, H, W): start with torch.nn.Flatten() for an MLP.
    """

    wants_images = True
    _parameter_constraints = {**TORCH_CONSTRAINTS, **IMAGE_CONSTRAINTS}

    def __init__(
        self,
        network_fn: Any = None,
        network_args: Any = None,
        network_file: Any = None,
        **training: Any,
    ) -> None:
        store_arguments(self, {**TRAINING_DEFAULTS, **training})
        self.network_fn = network_fn
        self.network_args = dict(network_args or {})
        self.network_file = network_file  # where the user's lines are (models/usercode.py)

    def _user(self, what: str) -> Any:
        from hpsearch.models.usercode import calling

        name = getattr(self.network_fn, "__name__", "network")
        return calling(f"{name}{what}", self.network_file)

    def _network(self, n_inputs: int, n_classes: int, input_shape: tuple[int, ...]) -> Any:
        from hpsearch.models.usercode import UserCodeError

        with self._user("(...)"):
            module = self.network_fn(
                tuple(int(d) for d in input_shape), n_classes, **self.network_args
            )
        name = getattr(self.network_fn, "__name__", "the network function")
        if not isinstance(module, load_torch().nn.Module):
            raise UserCodeError(
                f"{name} returned {type(module).__name__}; expected a torch.nn.Module"
            )
        if not any(True for _ in module.parameters()):
            raise UserCodeError(
                f"{name} returned a {type(module).__name__} with no parameters; expected a "
                "network with weights to train"
            )
        return module

    def _forward(self, xb: Any) -> Any:
        """The user's network on a batch: its errors are the trial's, and its output must be
        one row of class scores per input."""
        from hpsearch.models.usercode import UserCodeError

        with self._user(" forward"):
            scores = self.net_(xb)
        expected = (len(xb), len(self.classes_))
        if not isinstance(scores, load_torch().Tensor) or tuple(scores.shape) != expected:
            got = tuple(scores.shape) if hasattr(scores, "shape") else type(scores).__name__
            raise UserCodeError(
                f"the network returned outputs of shape {got}; expected {expected}: one score "
                f"for each of the {expected[1]} classes, per input"
            )
        return scores
