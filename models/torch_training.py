"""What the Torch kinds share: importing torch lazily, their arguments, the training loop.

torch is imported inside methods only, so the constraints (and study-file validation) never
load it and `hpsearch --help` stays fast. Regularization is an explicit penalty on weight
tensors of two or more dimensions (linear and convolution weights, never biases or BatchNorm
scales): l1 = lambda * sum |W|, l2 = lambda * sum W**2, exactly as in models.regularizers, not
torch's weight_decay (which would mean lambda / 2 * sum W**2).
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable
from typing import Any
from typing import Self

import numpy as np

from hpsearch.models.base import COMMON_CONSTRAINTS
from hpsearch.models.constraints import Interval
from hpsearch.models.constraints import Options
from hpsearch.models.optimizers import OPTIMIZERS
from hpsearch.models.protocol import ClassifierMixin
from hpsearch.models.schedules import model_lr_at
from hpsearch.models.schedules import steps_every_batch
from hpsearch.models.threads import fastest_threads
from hpsearch.models.threads import time_steps
from hpsearch.models.training import MAX_ABS_WEIGHT
from hpsearch.models.training import TrainingDiverged
from hpsearch.models.training import check_finite

# Rows scored at once. Small chunks keep a CNN's activations in cache: scoring 6,000 images with
# the Fashion CNN (16-32-64, two convolutions a block) on one thread took 3.7-3.9 s in chunks
# of 2,048 or 4,096, 2.5 s in 512, 1.4 s in 256 (and an MLP the same in 256 as in 2,048).
_EVAL_CHUNK = 256


class TorchMissing(ImportError):
    """torch is not installed; the message says how to install it."""


def torch_installed() -> bool:
    try:
        return importlib.util.find_spec("torch") is not None
    except (ValueError, ImportError):  # importing it is blocked (sys.modules, an import hook)
        return False


def load_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise TorchMissing(
            "PyTorch is not installed; pip install torch==2.13.0 (the CPU build on a machine "
            "without a GPU), or pip install 'hpsearch[torch]'"
        ) from None
    return torch


TORCH_CONSTRAINTS = {k: v for k, v in COMMON_CONSTRAINTS.items() if k != "loss"}
TORCH_CONSTRAINTS |= {
    "device": Options(("auto", "cpu", "cuda")),
    # adamw: Adam with decoupled weight decay (Loshchilov & Hutter): each step shrinks the
    # weights by lr * weight_decay, apart from the gradient; not the same thing as the
    # explicit L1/L2 penalty of `reg`, which is part of the loss and its gradient.
    "optimizer": Options((*OPTIMIZERS, "adamw")),
    "weight_decay": Interval(0.0, None),
    "label_smoothing": Interval(0.0, 1.0, high_open=True),
    "warmup_epochs": Interval(0.0, None),
    "precision": Options(("fp32", "bf16")),
}
# Augmentation of training batches, for the kinds whose inputs are images (N, C, H, W).
IMAGE_CONSTRAINTS = {
    "crop_padding": Interval(0, None, integer=True),
    "flip": Options((True, False)),
    "test_flip": Options((True, False)),
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
    "schedule_every": "batch",
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
    "test_flip": False,
}


def augment(xb: Any, generator: Any, crop_padding: int, flip: bool) -> Any:
    """A batch of images (N, C, H, W), each randomly cropped back to H x W after zero padding
    by `crop_padding` pixels on every side, then flipped left-right with probability 1/2.
    Vectorised: one gather for the whole batch; the offsets and flips come from `generator`
    (on the batch's device), so the same seed gives the same batches."""
    torch = load_torch()
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

    _parameter_constraints: dict[str, Any] = TORCH_CONSTRAINTS
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
        torch = load_torch()
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
        self.threads_ = self._choose_threads(X)
        torch.set_num_threads(self.threads_)

    def _choose_threads(self, X: np.ndarray) -> int:
        """The CPU threads to train on (models/threads.py): asked for, or the faster of 1 and
        every core for this network, timed on a copy (the model's weights, optimizer and
        random state are untouched)."""
        torch = load_torch()
        n_weights = sum(p.numel() for p in self.net_.parameters())
        key = (type(self).__name__, tuple(X.shape[1:]), self.batch_size, n_weights)
        if self._device.type != "cpu":  # the accelerator trains; the CPU only feeds it
            return fastest_threads(key, lambda n: float(n))
        planned = self.epochs * -(-len(X) // self.batch_size)
        state = torch.get_rng_state()
        try:
            return fastest_threads(key, self._steps_timer(X), planned)
        except (Exception, SystemExit, GeneratorExit):
            # A network that fails here fails in training too, where the user's code is
            # guarded (models/usercode.py) and its error is the trial's.
            return fastest_threads(key, lambda n: -float(n))
        finally:
            torch.set_rng_state(state)

    def _steps_timer(self, X: np.ndarray) -> Callable[[int], float]:
        """`seconds(n)`: a few training steps of a copy of the network on n threads."""
        import copy

        torch = load_torch()
        net = copy.deepcopy(self.net_)
        optimizer = torch.optim.SGD(net.parameters(), lr=0.0)
        xb = self._batch(self._from_numpy(np.ascontiguousarray(X[: self.batch_size])))
        yb = torch.zeros(len(xb), dtype=torch.long)

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(net(xb).float(), yb).backward()
            optimizer.step()

        def seconds(n: int) -> float:
            torch.set_num_threads(n)
            return time_steps(step)

        return seconds

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
        torch = load_torch()
        return torch.channels_last if self._channels_last else torch.preserve_format

    def _forward(self, xb: Any) -> Any:
        """The network's class scores for a batch."""
        return self.net_(xb)

    def _batch(self, xb: Any) -> Any:
        """A batch of inputs on the device, in the network's memory layout."""
        xb = xb.to(self._device)  # a no-op when resident
        return (
            xb.contiguous(memory_format=load_torch().channels_last) if self._channels_last else xb
        )

    def _labels(self, y: np.ndarray) -> Any:
        return load_torch().from_numpy(np.searchsorted(self.classes_, y))

    @staticmethod
    def _from_numpy(X: np.ndarray) -> Any:
        with warnings.catch_warnings():  # read-only memory maps: torch only reads them
            warnings.simplefilter("ignore", UserWarning)
            return load_torch().from_numpy(np.asarray(X))

    def _autocast(self) -> Any:
        """bf16 autocast when `precision = "bf16"`; a no-op context otherwise."""
        torch = load_torch()
        enabled = self.precision == "bf16"
        return torch.autocast(device_type=self._device.type, dtype=torch.bfloat16, enabled=enabled)

    def _augmenting(self) -> bool:
        return self.wants_images and bool(
            getattr(self, "crop_padding", 0) or getattr(self, "flip", False)
        )

    # -- the model protocol ----------------------------------------------------------------

    def penalty(self) -> Any:
        """reg_strength * (sum |W| or sum W**2) over weight tensors with two or more dims."""
        torch = load_torch()
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
        torch = load_torch()
        Xt, yt = self._as_tensors(X, y)
        epoch = len(self.loss_curve_)
        self._set_lr(model_lr_at(self, epoch))
        n, where = len(Xt), {"generator": self._generator, "device": self._generator.device}
        if self.sampling == "bootstrap":
            order = torch.randint(0, n, (-(-n // self.batch_size) * self.batch_size,), **where)
        else:
            order = torch.randperm(n, **where)
        augmenting = self._augmenting()
        self.net_.train()
        total = torch.zeros((), dtype=torch.float64, device=self._device)  # no sync per batch
        per_batch, batches = steps_every_batch(self), -(-len(order) // self.batch_size)
        for batch, start in enumerate(range(0, len(order), self.batch_size)):
            if per_batch:
                self._set_lr(model_lr_at(self, epoch, batch, batches))
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

    def _set_lr(self, rate: float) -> None:
        for group in self._optimizer.param_groups:
            group["lr"] = rate

    def _check_weights(self, epoch: int) -> None:
        for name, value in self.net_.named_parameters():
            biggest = float(value.detach().abs().max())
            if not biggest <= MAX_ABS_WEIGHT:
                raise TrainingDiverged(
                    f"weights exploded in epoch {epoch}: max |{name}| = {biggest:.3g}"
                )

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Class scores of shape (N, C), in evaluation mode."""
        torch = load_torch()
        Xt = self._inputs(X)
        self.net_.eval()
        with torch.no_grad():
            chunks = [
                self._scores(Xt[s : s + _EVAL_CHUNK]).cpu() for s in range(0, len(Xt), _EVAL_CHUNK)
            ]
        return torch.cat(chunks).numpy()

    def _scores(self, xb: Any) -> Any:
        """Evaluation-mode class scores of a batch, float32. With `test_flip` (image kinds):
        the mean of the log-probabilities of the images and of their mirror images, the
        view that `flip` trains on (test-time augmentation; twice the evaluation cost)."""
        torch = load_torch()
        with self._autocast():
            scores = self._forward(self._batch(xb)).float()
            if not getattr(self, "test_flip", False):
                return scores
            mirrored = self._forward(self._batch(xb.flip(3))).float()
        log_softmax = torch.nn.functional.log_softmax
        return (log_softmax(scores, dim=1) + log_softmax(mirrored, dim=1)) / 2

    def evaluate(self, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Cross-entropy (no penalty) and accuracy over all of X."""
        torch = load_torch()
        Xt, yt = self._as_tensors(X, y)
        self.net_.eval()
        loss_sum, correct = 0.0, 0
        with torch.no_grad():
            for s in range(0, len(Xt), _EVAL_CHUNK):
                scores = self._scores(Xt[s : s + _EVAL_CHUNK])
                target = yt[s : s + _EVAL_CHUNK].to(self._device)
                loss = torch.nn.functional.cross_entropy(scores, target, reduction="sum")
                loss_sum += float(loss)
                correct += int((scores.argmax(dim=1) == target).sum())
        return loss_sum / len(Xt), correct / len(Xt)

    def weight_norm(self) -> float:
        """sqrt(sum W**2) over weight tensors of two or more dimensions (what L2 penalizes)."""
        with load_torch().no_grad():
            return float(
                sum(float((p * p).sum()) for p in self.net_.parameters() if p.dim() >= 2) ** 0.5
            )

    def get_weights(self) -> dict[str, np.ndarray]:
        """A copy of every parameter and buffer (BatchNorm statistics too), as NumPy arrays."""
        return {k: v.detach().cpu().numpy().copy() for k, v in self.net_.state_dict().items()}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        torch = load_torch()
        self.net_.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in weights.items()})
