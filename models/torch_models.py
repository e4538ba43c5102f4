"""PyTorch classifiers with the same vocabulary and protocol as the NumPy models.

torch is imported inside methods only, so the constraints (and study-file validation) never
load it and `hpsearch --help` stays fast. Regularization is an explicit penalty on weight
tensors of two or more dimensions (linear and convolution weights, never biases or BatchNorm
scales): l1 = lambda * sum |W|, l2 = lambda * sum W**2, exactly as in models.regularizers, not
torch's weight_decay (which would mean lambda / 2 * sum W**2).
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from typing import Any
from typing import Self

import numpy as np

from hpsearch.models.constraints import Interval
from hpsearch.models.constraints import Options
from hpsearch.models.base import COMMON_CONSTRAINTS
from hpsearch.models.base import store_arguments
from hpsearch.models.mlp import Widths
from hpsearch.models.mlp import parse_hidden
from hpsearch.models.optimizers import OPTIMIZERS
from hpsearch.models.protocol import ClassifierMixin
from hpsearch.models.schedules import model_lr_at
from hpsearch.models.training import MAX_ABS_WEIGHT
from hpsearch.models.training import TrainingDiverged
from hpsearch.models.training import check_finite

_EVAL_CHUNK = 2048
THREADS_ENV = "HPSEARCH_THREADS"  # set per worker so that workers do not oversubscribe cores


class TorchMissing(ImportError):
    """torch is not installed; the message says how to install it."""


def torch_installed() -> bool:
    try:
        return importlib.util.find_spec("torch") is not None
    except (ValueError, ImportError):  # importing it is blocked (sys.modules, an import hook)
        return False


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise TorchMissing(
            "PyTorch is not installed; pip install torch==2.13.0 (the CPU build on a machine "
            "without a GPU), or pip install 'hpsearch[torch]'"
        ) from None
    return torch


def training_threads() -> int:
    """The CPU threads Torch trains with: $HPSEARCH_THREADS (what `run --workers` gives each
    worker), else every core this process may use. Torch's CPU convolutions and reductions
    split their sums by thread, so the same seed on another count gives other last digits."""
    return int(os.environ.get(THREADS_ENV) or len(os.sched_getaffinity(0)))


_TORCH_CONSTRAINTS = {k: v for k, v in COMMON_CONSTRAINTS.items() if k != "loss"}
_TORCH_CONSTRAINTS |= {
    "device": Options(("auto", "cpu", "cuda")),
    # adamw: Adam with decoupled weight decay (Loshchilov & Hutter): each step shrinks the
    # weights by lr * weight_decay, apart from the gradient; not the same thing as the
    # explicit L1/L2 penalty of `reg`, which is part of the loss and its gradient.
    "optimizer": Options((*OPTIMIZERS, "adamw")),
    "weight_decay": Interval(0.0, None),
    "label_smoothing": Interval(0.0, 1.0, high_open=True),
    "warmup_epochs": Interval(0, None, integer=True),
    "precision": Options(("fp32", "bf16")),
}
# Augmentation of training batches, for the kinds whose inputs are images (N, C, H, W).
_IMAGE_CONSTRAINTS = {
    "crop_padding": Interval(0, None, integer=True),
    "flip": Options((True, False)),
}
# The training arguments' defaults of a network given by the user (torch.network).
TRAINING_DEFAULTS = {
    "learning_rate": 1e-2,
    "batch_size": 64,
    "epochs": 20,
    "reg": "none",
    "reg_strength": 0.0,
    "optimizer": "sgd",
    "momentum": 0.9,
    "schedule": "constant",
    "lr_decay": 0.0,
    "lr_step": 10,
    "lr_gamma": 0.1,
    "sampling": "shuffle",
    "patience": 0,
    "init": "he",
    "init_mean": 0.0,
    "init_std": 1e-2,
    "device": "auto",
    "seed": 0,
    "weight_decay": 0.01,
    "label_smoothing": 0.0,
    "warmup_epochs": 0,
    "precision": "fp32",
    "crop_padding": 0,
    "flip": False,
}


def augment(xb: Any, generator: Any, crop_padding: int, flip: bool) -> Any:
    """A batch of images (N, C, H, W), each randomly cropped back to H x W after zero padding
    by `crop_padding` pixels on every side, then flipped left-right with probability 1/2.
    Vectorised: one gather for the whole batch; the offsets and flips come from `generator`
    (on the batch's device), so the same seed gives the same batches."""
    torch = _torch()
    n, _, h, w = xb.shape
    device = xb.device
    if crop_padding:
        p = crop_padding
        padded = torch.nn.functional.pad(xb, (p, p, p, p))
        dy = torch.randint(0, 2 * p + 1, (n,), generator=generator, device=device)
        dx = torch.randint(0, 2 * p + 1, (n,), generator=generator, device=device)
        rows = (dy[:, None] + torch.arange(h, device=device))[:, :, None]  # (N, H, 1)
        cols = (dx[:, None] + torch.arange(w, device=device))[:, None, :]  # (N, 1, W)
        batch = torch.arange(n, device=device)[:, None, None]
        xb = padded[batch, :, rows, cols].permute(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    if flip:
        flipped = torch.rand(n, generator=generator, device=device) < 0.5
        xb = torch.where(flipped[:, None, None, None], xb.flip(3), xb)
    return xb


class _DeviceCache:
    """Arrays copied to an accelerator once per worker, not once per batch: the split arrays
    are the same objects from trial to trial, so a tensor stays valid while its array object
    is kept (held here, so its id cannot be reused)."""

    def __init__(self, size: int = 6) -> None:
        self.size = size
        self.entries: dict[tuple[int, str], tuple[np.ndarray, Any]] = {}

    def get(self, array: np.ndarray, device: Any, convert: Any) -> Any:
        key = (id(array), str(device))
        hit = self.entries.pop(key, None)
        if hit is None or hit[0] is not array:
            hit = (array, convert(array).to(device))
        self.entries[key] = hit  # most recent last
        while len(self.entries) > self.size:
            self.entries.pop(next(iter(self.entries)))
        return hit[1]


_ON_DEVICE = _DeviceCache()


class TorchClassifier(ClassifierMixin):
    """Shared training for the Torch networks: softmax cross-entropy, mini-batches sliced from
    in-memory tensors, the NumPy models' optimizers, schedules, penalties and sampling.

    Subclasses define `_network(n_inputs, n_classes, input_shape)` and may set `wants_images`
    (inputs of shape (N, C, H, W) instead of (N, D)).
    """

    _parameter_constraints: dict[str, Any] = _TORCH_CONSTRAINTS
    _learned = ("net_",)
    # Convolutions on the CPU run 1.4-1.8x faster with channels-last tensors (oneDNN's native
    # layout; benchmarks/torch_epoch.py). Only for networks of our own: a user's network may
    # `.view()` a feature map, which channels-last memory does not allow.
    _channels_last = False

    def _network(self, n_inputs: int, n_classes: int, input_shape: tuple[int, ...]) -> Any:
        raise NotImplementedError

    # -- set-up ----------------------------------------------------------------------------

    def _initialize(self, X: np.ndarray, classes: Any) -> None:
        from hpsearch.models.constraints import validate_arguments

        validate_arguments(self._parameter_constraints, self.get_params())
        torch = _torch()
        torch.set_num_threads(training_threads())
        cuda = torch.cuda.is_available()
        if self.device == "cuda" and not cuda:
            raise ValueError("device: 'cuda' was asked for, but no CUDA device is available")
        self._device = torch.device("cuda" if self.device != "cpu" and cuda else "cpu")
        torch.manual_seed(self.seed)  # initialisation and dropout draw from it
        # On an accelerator the data stays there: the batch order and the augmentation are
        # drawn there too. On the CPU, the batch order comes from the same generator as ever.
        self._resident = self._device.type != "cpu"
        self._generator = torch.Generator(device=self._device).manual_seed(self.seed)
        augment_seed = int(np.random.SeedSequence([self.seed, 1]).generate_state(1)[0])
        self._augment_generator = torch.Generator(device=self._device).manual_seed(augment_seed)
        self.classes_ = np.asarray(classes)
        self.net_ = self._network(int(np.prod(X.shape[1:])), len(self.classes_), X.shape[1:])
        for module in self.net_.modules():
            weight = getattr(module, "weight", None)
            if weight is not None and weight.dim() >= 2:
                if self.init == "he":
                    torch.nn.init.kaiming_normal_(weight, nonlinearity="relu")
                elif self.init == "xavier":
                    torch.nn.init.xavier_normal_(weight)
                else:
                    torch.nn.init.normal_(weight, self.init_mean, self.init_std)
                if getattr(module, "bias", None) is not None:
                    torch.nn.init.zeros_(module.bias)
        self.net_.to(self._device, memory_format=self._memory_format())
        params = self.net_.parameters()
        lr = self.learning_rate
        if self.optimizer == "adam":
            self._optimizer = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-8)
        elif self.optimizer == "adamw":
            self._optimizer = torch.optim.AdamW(
                params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=self.weight_decay
            )
        else:
            momentum = 0.0 if self.optimizer == "sgd" else self.momentum
            self._optimizer = torch.optim.SGD(
                params, lr=lr, momentum=momentum, nesterov=self.optimizer == "nesterov"
            )
        self.loss_curve_: list[float] = []
        self._tensors: dict[str, tuple[np.ndarray, Any]] = {}

    def _tensor(self, slot: str, array: np.ndarray, convert: Any) -> Any:
        """`convert(array)`, kept while the same array object comes back (the epoch loop passes
        the same arrays every epoch). The array itself is kept too: comparing ids alone would
        match a new array that happens to reuse a freed one's id."""
        cached = self._tensors.get(slot)
        if cached is None or cached[0] is not array:
            cached = (array, convert(array))
            self._tensors[slot] = cached
        return cached[1]

    def _inputs(self, X: np.ndarray) -> Any:
        """A tensor sharing memory with X (no copy); on an accelerator, X copied there once."""
        if getattr(self, "_resident", False):
            return _ON_DEVICE.get(X, self._device, self._from_numpy)
        return self._tensor("X", X, self._from_numpy)

    def _as_tensors(self, X: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
        """Inputs and class indices, each cached by its own array; on an accelerator, copied
        there once."""
        if getattr(self, "_resident", False):
            return (
                _ON_DEVICE.get(X, self._device, lambda X: self._from_numpy(X)),
                _ON_DEVICE.get(y, self._device, self._labels),
            )
        return self._inputs(X), self._tensor("y", y, self._labels)

    def _memory_format(self) -> Any:
        torch = _torch()
        return torch.channels_last if self._channels_last else torch.preserve_format

    def _forward(self, xb: Any) -> Any:
        """The network's class scores for a batch."""
        return self.net_(xb)

    def _batch(self, xb: Any) -> Any:
        """A batch of inputs on the device, in the network's memory layout."""
        xb = xb.to(self._device)  # a no-op when resident
        return xb.contiguous(memory_format=_torch().channels_last) if self._channels_last else xb

    def _labels(self, y: np.ndarray) -> Any:
        return _torch().from_numpy(np.searchsorted(self.classes_, y))

    @staticmethod
    def _from_numpy(X: np.ndarray) -> Any:
        with warnings.catch_warnings():  # read-only memory maps: torch only reads them
            warnings.simplefilter("ignore", UserWarning)
            return _torch().from_numpy(np.asarray(X))

    def _autocast(self) -> Any:
        """bf16 autocast when `precision = "bf16"`; a no-op context otherwise."""
        torch = _torch()
        enabled = self.precision == "bf16"
        return torch.autocast(device_type=self._device.type, dtype=torch.bfloat16, enabled=enabled)

    def _augmenting(self) -> bool:
        return self.wants_images and bool(
            getattr(self, "crop_padding", 0) or getattr(self, "flip", False)
        )

    # -- the model protocol ----------------------------------------------------------------

    def penalty(self) -> Any:
        """reg_strength * (sum |W| or sum W**2) over weight tensors with two or more dims."""
        torch = _torch()
        if self.reg == "none" or self.reg_strength == 0:
            return torch.zeros((), device=self._device)
        weights = [p for p in self.net_.parameters() if p.dim() >= 2]
        if self.reg == "l1":
            return self.reg_strength * sum(w.abs().sum() for w in weights)
        return self.reg_strength * sum((w * w).sum() for w in weights)

    def partial_fit(self, X: np.ndarray, y: np.ndarray, classes: Any = None) -> Self:
        """Train for exactly one epoch on X of shape (N, D), or (N, C, H, W) for a CNN."""
        if not hasattr(self, "net_"):
            self._initialize(X, np.unique(y) if classes is None else classes)
        torch = _torch()
        Xt, yt = self._as_tensors(X, y)
        epoch = len(self.loss_curve_)
        for group in self._optimizer.param_groups:
            group["lr"] = model_lr_at(self, epoch)
        n, where = len(Xt), {"generator": self._generator, "device": self._generator.device}
        if self.sampling == "bootstrap":
            order = torch.randint(0, n, (-(-n // self.batch_size) * self.batch_size,), **where)
        else:
            order = torch.randperm(n, **where)
        augmenting = self._augmenting()
        self.net_.train()
        total = torch.zeros((), dtype=torch.float64, device=self._device)  # no sync per batch
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            xb, yb = Xt[idx].to(self._device), yt[idx].to(self._device)  # no-ops when resident
            if augmenting:
                xb = augment(xb, self._augment_generator, self.crop_padding, self.flip)
            xb = self._batch(xb)
            self._optimizer.zero_grad(set_to_none=True)
            with self._autocast():
                scores = self._forward(xb)
            loss = torch.nn.functional.cross_entropy(
                scores.float(), yb, label_smoothing=self.label_smoothing
            )
            loss = loss + self.penalty()
            loss.backward()
            self._optimizer.step()
            total += loss.detach().double() * len(idx)
        mean = float(total) / len(order)
        check_finite(mean, epoch)  # per epoch: a per-batch check would sync the device
        self._check_weights(epoch)
        self.loss_curve_.append(mean)
        return self

    def _check_weights(self, epoch: int) -> None:
        for name, value in self.net_.named_parameters():
            biggest = float(value.detach().abs().max())
            if not biggest <= MAX_ABS_WEIGHT:
                raise TrainingDiverged(
                    f"weights exploded in epoch {epoch}: max |{name}| = {biggest:.3g}"
                )

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Class scores of shape (N, C), in evaluation mode."""
        torch = _torch()
        Xt = self._inputs(X)
        self.net_.eval()
        with torch.no_grad(), self._autocast():
            chunks = [
                self._forward(self._batch(Xt[s : s + _EVAL_CHUNK])).float().cpu()
                for s in range(0, len(Xt), _EVAL_CHUNK)
            ]
        return torch.cat(chunks).numpy()

    def evaluate(self, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Cross-entropy (no penalty) and accuracy over all of X."""
        torch = _torch()
        Xt, yt = self._as_tensors(X, y)
        self.net_.eval()
        loss_sum, correct = 0.0, 0
        with torch.no_grad():
            for s in range(0, len(Xt), _EVAL_CHUNK):
                with self._autocast():
                    scores = self._forward(self._batch(Xt[s : s + _EVAL_CHUNK])).float()
                target = yt[s : s + _EVAL_CHUNK].to(self._device)
                loss = torch.nn.functional.cross_entropy(scores, target, reduction="sum")
                loss_sum += float(loss)
                correct += int((scores.argmax(dim=1) == target).sum())
        return loss_sum / len(Xt), correct / len(Xt)

    def weight_norm(self) -> float:
        """sqrt(sum W**2) over weight tensors of two or more dimensions (what L2 penalizes)."""
        with _torch().no_grad():
            return float(
                sum(float((p * p).sum()) for p in self.net_.parameters() if p.dim() >= 2) ** 0.5
            )

    def get_weights(self) -> dict[str, np.ndarray]:
        """A copy of every parameter and buffer (BatchNorm statistics too), as NumPy arrays."""
        return {k: v.detach().cpu().numpy().copy() for k, v in self.net_.state_dict().items()}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        torch = _torch()
        self.net_.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in weights.items()})


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
        warmup_epochs: int = 0,
        precision: str = "fp32",
    ) -> None:
        store_arguments(self, locals())

    def _network(self, n_inputs: int, n_classes: int, input_shape: tuple[int, ...]) -> Any:
        return _torch().nn.Linear(n_inputs, n_classes)


class TorchMLP(TorchClassifier):
    """A feed-forward net; the defaults are the landscape assignment's table (assignment 003)."""

    _parameter_constraints = {
        **_TORCH_CONSTRAINTS,
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
        warmup_epochs: int = 0,
        precision: str = "fp32",
    ) -> None:
        store_arguments(self, locals())

    def _network(self, n_inputs: int, n_classes: int, input_shape: tuple[int, ...]) -> Any:
        nn = _torch().nn
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
    """

    wants_images = True
    _channels_last = True
    _parameter_constraints = {
        **_TORCH_CONSTRAINTS,
        "channels": Widths(),
        "hidden": Widths(),
        "batch_norm": Options((True, False)),
        "dropout": Interval(0.0, 1.0, high_open=True),
        "convs_per_block": Interval(1, None, integer=True),
        "head": Options(("pool2", "flatten", "gap")),
        **_IMAGE_CONSTRAINTS,
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
        learning_rate: float = 1e-2,
        batch_size: int = 64,
        epochs: int = 20,
        reg: str = "none",
        reg_strength: float = 0.0,
        optimizer: str = "sgd",
        momentum: float = 0.9,
        schedule: str = "constant",
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
        warmup_epochs: int = 0,
        precision: str = "fp32",
    ) -> None:
        store_arguments(self, locals())

    def _network(self, n_inputs: int, n_classes: int, input_shape: tuple[int, ...]) -> Any:
        nn = _torch().nn
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
    _parameter_constraints = {**_TORCH_CONSTRAINTS, **_IMAGE_CONSTRAINTS}

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
        if not isinstance(module, _torch().nn.Module):
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
        if not isinstance(scores, _torch().Tensor) or tuple(scores.shape) != expected:
            got = tuple(scores.shape) if hasattr(scores, "shape") else type(scores).__name__
            raise UserCodeError(
                f"the network returned outputs of shape {got}; expected {expected}: one score "
                f"for each of the {expected[1]} classes, per input"
            )
        return scores
