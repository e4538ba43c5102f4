"""The CNN options of issue 16: augmentation, deeper blocks and heads, label smoothing,
onecycle and warm-up, AdamW, bf16 autocast, and the data kept on the device."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hpsearch.cli import main
from hpsearch.models import MODELS
from tests.conftest import TINY
from tests.conftest import require_torch

SMALL_CNN = {"channels": "8-16", "hidden": "32", "epochs": 2, "batch_size": 32, "dropout": 0.0}


def _cnn(digits, seed=0, epochs=1, **extra):
    """A small CNN trained `epochs` epochs on digits, and its weights."""
    require_torch()
    model = MODELS["torch.cnn"].build({**SMALL_CNN, **extra}, seed=seed)
    X, y = digits.split("train", True)
    for _ in range(epochs):
        model.partial_fit(X, y, classes=digits.classes)
    return model, model.get_weights()


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(("crop", "flip"), [(2, False), (0, True), (3, True)])
def test_augmentation_equals_a_per_image_loop_from_the_same_random_numbers(crop, flip):
    torch = require_torch()
    from hpsearch.models.torch_training import augment

    batch = torch.arange(5 * 2 * 6 * 7, dtype=torch.float32).reshape(5, 2, 6, 7)
    out = augment(batch, torch.Generator().manual_seed(3), crop, flip)
    # The oracle: the same draws, in the same order, applied one image at a time.
    generator = torch.Generator().manual_seed(3)
    if crop:
        dy = torch.randint(0, 2 * crop + 1, (5,), generator=generator)
        dx = torch.randint(0, 2 * crop + 1, (5,), generator=generator)
    flips = torch.rand(5, generator=generator) < 0.5 if flip else torch.zeros(5, dtype=bool)
    for i in range(5):
        image = batch[i]
        if crop:
            padded = torch.nn.functional.pad(image, (crop, crop, crop, crop))
            image = padded[:, dy[i] : dy[i] + 6, dx[i] : dx[i] + 7]
        if flips[i]:
            image = image.flip(2)
        assert torch.equal(out[i], image), i
    assert out.shape == batch.shape
    assert not torch.equal(out, batch)  # something moved


def test_augmentation_is_seeded_and_changes_training(digits):
    _, plain = _cnn(digits)
    _, a = _cnn(digits, crop_padding=2, flip=True)
    _, b = _cnn(digits, crop_padding=2, flip=True)
    _, other_seed = _cnn(digits, seed=1, crop_padding=2, flip=True)
    assert _same(a, b)
    assert not _same(a, plain) and not _same(a, other_seed)


def test_augmentation_touches_training_batches_only(digits):
    model, weights = _cnn(digits, crop_padding=3, flip=True)
    twin = MODELS["torch.cnn"].build(SMALL_CNN, seed=5)
    X_val, y_val = digits.split("val", True)
    twin.partial_fit(*digits.split("train", True), classes=digits.classes)
    twin.set_weights(weights)
    assert np.array_equal(model.decision_function(X_val), twin.decision_function(X_val))
    assert model.evaluate(X_val, y_val) == twin.evaluate(X_val, y_val)


def test_the_device_resident_path_gives_the_numbers_of_the_per_batch_copy(digits):
    """On a GPU the data stays on the device and the batch order and augmentation are drawn
    there; forced on the CPU, that path must compute exactly what the per-batch copy does."""
    torch = require_torch()
    from hpsearch.models.torch_training import _ON_DEVICE

    _, copied = _cnn(digits, epochs=2, crop_padding=1, flip=True)
    model = MODELS["torch.cnn"].build({**SMALL_CNN, "crop_padding": 1, "flip": True}, seed=0)
    X, y = digits.split("train", True)
    model._initialize(X, digits.classes)
    model._resident = True
    for _ in range(2):
        model.partial_fit(X, y, classes=digits.classes)
    assert _same(model.get_weights(), copied)
    cached = [tensor for array, tensor in _ON_DEVICE.entries.values() if array is X]
    assert len(cached) == 1 and cached[0].device == torch.device("cpu")


def test_channels_last_is_only_a_faster_layout_of_the_same_network(digits):
    """torch.cnn trains in channels-last memory (faster convolutions on the CPU): the feature
    maps and weights are laid out that way, and the network computes what it computes in the
    default layout, up to float rounding; saved weights come back in the default layout."""
    torch = require_torch()
    from hpsearch.models.torch_models import TorchCNN

    model, weights = _cnn(digits, epochs=2)
    conv = [m for m in model.net_.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()  # really the other layout (8 input channels)
    assert all(w.flags.c_contiguous for w in weights.values())

    class DefaultLayout(TorchCNN):
        _channels_last = False

    plain = DefaultLayout(**{**SMALL_CNN, "seed": 0})
    X, y = digits.split("train", True)
    for _ in range(2):
        plain.partial_fit(X, y, classes=digits.classes)
    conv = [m for m in plain.net_.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    assert conv.weight.is_contiguous()
    X_val, _ = digits.split("val", True)
    np.testing.assert_allclose(
        model.decision_function(X_val), plain.decision_function(X_val), rtol=1e-3, atol=1e-3
    )
    np.testing.assert_allclose(model.loss_curve_, plain.loss_curve_, rtol=1e-4)


@pytest.mark.parametrize(
    ("head", "shape", "width"),
    [
        ("pool2", (1, 28, 28), 16 * 2 * 2),
        ("flatten", (1, 28, 28), 16 * 7 * 7),
        ("gap", (1, 28, 28), 16),
    ],
)
def test_blocks_and_heads_build_the_layers_they_say(head, shape, width):
    torch = require_torch()
    model = MODELS["torch.cnn"].build({**SMALL_CNN, "convs_per_block": 3, "head": head}, seed=0)
    X = np.zeros((4, *shape), dtype=np.float32)
    model.partial_fit(X, np.array([0, 1, 0, 1]), classes=np.array([0, 1]))
    convs = [m for m in model.net_.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 8, 8, 16, 16, 16]
    pools = [m for m in model.net_.modules() if isinstance(m, torch.nn.MaxPool2d)]
    assert len(pools) == 2
    first_linear = next(m for m in model.net_.modules() if isinstance(m, torch.nn.Linear))
    assert first_linear.in_features == width
    assert model.decision_function(X).shape == (4, 2)


def test_label_smoothing_is_in_the_training_loss_only(digits):
    model, _ = _cnn(digits, label_smoothing=0.2)
    plain, _ = _cnn(digits)
    # The same first batch order and weights: the loss differs from the first epoch on.
    assert model.loss_curve_[0] != plain.loss_curve_[0]
    torch = require_torch()
    X_val, y_val = digits.split("val", True)
    scores = torch.from_numpy(model.decision_function(X_val))
    target = torch.from_numpy(np.searchsorted(model.classes_, y_val))
    unsmoothed = float(torch.nn.functional.cross_entropy(scores, target))
    assert math.isclose(model.evaluate(X_val, y_val)[0], unsmoothed, rel_tol=1e-5)


@pytest.mark.slow
def test_adamw_decays_the_weights_apart_from_the_gradient(digits):
    def norm(weight_decay):
        model, _ = _cnn(
            digits, epochs=2, optimizer="adamw", learning_rate=1e-3, weight_decay=weight_decay
        )
        return model.weight_norm()

    assert norm(50.0) < 0.5 * norm(0.0)


@pytest.mark.slow
def test_bf16_autocast_trains_on_the_cpu_too(digits):
    model, _ = _cnn(digits, epochs=3, precision="bf16", optimizer="adam", learning_rate=3e-3)
    fp32, _ = _cnn(digits, epochs=3, optimizer="adam", learning_rate=3e-3)
    accuracy = model.evaluate(*digits.split("val", True))[1]
    assert accuracy > 0.8 and model.loss_curve_ != fp32.loss_curve_


@pytest.mark.parametrize(
    ("kind", "fixed", "key", "words"),
    [
        ("torch.cnn", "convs_per_block = 0", "convs_per_block", "got 0"),
        ("torch.cnn", 'head = "max"', "head", "allowed: one of 'pool2', 'flatten', 'gap'"),
        ("torch.cnn", "label_smoothing = 1.0", "label_smoothing", "got 1.0"),
        ("torch.cnn", 'optimizer = "adamax"', "optimizer", "'adamw'"),
        ("torch.cnn", 'precision = "fp16"', "precision", "allowed: one of 'fp32', 'bf16'"),
        ("torch.mlp", "crop_padding = 2", "crop_padding", "unknown"),
        ("numpy.softmax", "warmup_epochs = 2", "warmup_epochs", "unknown"),
    ],
)
def test_bad_cnn_options_are_refused_with_their_key(write_study, kind, fixed, key, words, capsys):
    if kind.startswith("torch."):
        require_torch()
    text = TINY.replace('kind = "numpy.softmax"', f'kind = "{kind}"').replace(
        "fixed = { epochs = 3 }", f"fixed = {{ epochs = 3, {fixed} }}"
    )
    path = write_study(text)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"[model].fixed.{key}" in err and words in err, err


def test_test_flip_scores_the_mean_log_probabilities_of_both_mirror_images(digits):
    torch = require_torch()
    model, _ = _cnn(digits, flip=True)
    X, y = digits.split("val", True)
    plain = torch.from_numpy(model.decision_function(X))
    mirrored = torch.from_numpy(model.decision_function(np.ascontiguousarray(X[..., ::-1])))
    model.test_flip = True
    both = model.decision_function(X)
    expected = (plain.log_softmax(1) + mirrored.log_softmax(1)) / 2
    np.testing.assert_allclose(both, expected.numpy(), rtol=1e-5, atol=1e-6)
    loss, accuracy = model.evaluate(X, y)
    assert accuracy == np.mean(model.classes_[both.argmax(1)] == y)
    target = torch.from_numpy(np.searchsorted(model.classes_, y))
    # The scores are logits of the normalized geometric mean of the two views' probabilities.
    assert loss == pytest.approx(float(torch.nn.functional.cross_entropy(expected, target)))
