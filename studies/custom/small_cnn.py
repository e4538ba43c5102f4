"""A network function for `kind = "torch.network"`: hpsearch's Torch trainer does the rest
(optimizer, schedule, L1/L2, batches, early stopping, device, divergence checks).

The function takes the input shape (C, H, W) and the number of classes first; its other
arguments (here `width` and `dropout`) are fixed or searched in the study file like any other.
"""

from __future__ import annotations

import torch.nn as nn


def small_cnn(input_shape, n_classes, width=16, dropout=0.0):
    channels = input_shape[0]
    return nn.Sequential(
        nn.Conv2d(channels, width, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),  # global average pooling: any image size works
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(2 * width, n_classes),
    )
