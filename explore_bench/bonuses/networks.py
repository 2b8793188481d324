"""Encoders chosen by observation space, shared by every bonus.

- Discrete / MultiDiscrete observations: one-hot, then an MLP.
- Flat vectors and small images (MiniGrid's 7x7x3 symbolic view): flattened into an MLP (the CPU-scale
  default of the RND spec); `kind="conv"` selects a small 3x3 conv net for small images instead.
- Large images (Atari 84x84 frames, any side >= 32): the 3-layer Nature/RND conv net.

Every encoder takes float observations of shape `(B, *obs_shape)`, exactly as the space stores them
(channels-last images are permuted inside), and returns `(B, out_dim)`.
"""

from __future__ import annotations

import math
from typing import Literal

import gymnasium as gym
import torch
from torch import nn
from torch.nn import functional as F

EncoderKind = Literal["auto", "mlp", "conv", "atari"]


def is_image_space(space: gym.Space) -> bool:
    return isinstance(space, gym.spaces.Box) and len(space.shape) in (2, 3)


def is_large_image_space(space: gym.Space) -> bool:
    return is_image_space(space) and min(image_hw(space)) >= 32


def image_hw(space: gym.Space) -> tuple[int, int]:
    shape = space.shape
    if len(shape) == 2 or _channels_last(shape):
        return shape[0], shape[1]
    return shape[1], shape[2]


def _channels_last(shape: tuple[int, ...]) -> bool:
    return len(shape) == 3 and shape[-1] <= 4 < shape[0]


class InputAdapter(nn.Module):
    """Turns raw float observations into what the encoder consumes: one-hot codes, CHW images, flat vectors."""

    def __init__(self, space: gym.Space, image: bool) -> None:
        super().__init__()
        self.space = space
        self.image = image
        if isinstance(space, gym.spaces.Discrete):
            self.sizes = [int(space.n)]
        elif isinstance(space, gym.spaces.MultiDiscrete):
            self.sizes = [int(n) for n in space.nvec.reshape(-1)]
        else:
            self.sizes = []

    @property
    def out_shape(self) -> tuple[int, ...]:
        if self.sizes:
            return (sum(self.sizes),)
        shape = tuple(self.space.shape)
        if not self.image:
            return (math.prod(shape),)
        if len(shape) == 2:
            return (1, *shape)
        return (shape[2], shape[0], shape[1]) if _channels_last(shape) else shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.sizes:
            codes = x.long().reshape(x.shape[0], -1)
            return torch.cat([F.one_hot(codes[:, i], n).float() for i, n in enumerate(self.sizes)], dim=-1)
        if not self.image:
            return x.reshape(x.shape[0], -1)
        if x.ndim == 3:
            return x.unsqueeze(1)
        return x.permute(0, 3, 1, 2) if _channels_last(tuple(self.space.shape)) else x


def orthogonal_init(module: nn.Module, gain: float = math.sqrt(2)) -> nn.Module:
    """Orthogonal weights and zero biases for every linear/conv layer (the RND initialisation)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            nn.init.orthogonal_(layer.weight, gain)
            nn.init.zeros_(layer.bias)
    return module


def mlp(sizes: list[int], activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Linear layers of the given sizes with `activation` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def resolve_kind(space: gym.Space, kind: EncoderKind = "auto") -> EncoderKind:
    if kind == "auto":
        return "atari" if is_large_image_space(space) else "mlp"
    if kind in ("conv", "atari") and not is_image_space(space):
        raise ValueError(f"encoder kind {kind!r} needs an image observation space, got {space!r}")
    return kind


def make_encoder(
    space: gym.Space,
    out_dim: int,
    hidden: int = 64,
    activation: type[nn.Module] = nn.ReLU,
    kind: EncoderKind = "auto",
) -> nn.Sequential:
    """An encoder `(B, *obs_shape) -> (B, out_dim)` suited to `space`, orthogonally initialised.

    The last layer is linear with no activation. `hidden` is the MLP width (ignored by the Atari net,
    whose conv sizes are fixed by the RND paper).
    """
    kind = resolve_kind(space, kind)
    adapter = InputAdapter(space, image=kind in ("conv", "atari"))
    in_shape = adapter.out_shape
    if kind == "mlp":
        body = mlp([in_shape[0], hidden, hidden, out_dim], activation)
        return orthogonal_init(nn.Sequential(adapter, *body))
    if kind == "atari":
        convs = [
            nn.Conv2d(in_shape[0], 32, 8, stride=4), activation(),
            nn.Conv2d(32, 64, 4, stride=2), activation(),
            nn.Conv2d(64, 64, 3, stride=1), activation(),
        ]  # fmt: skip
    else:
        convs = [nn.Conv2d(in_shape[0], 16, 3, padding=1), activation(), nn.Conv2d(16, 32, 3, padding=1), activation()]
    trunk = nn.Sequential(*convs, nn.Flatten())
    with torch.no_grad():
        n_flat = trunk(torch.zeros(1, *in_shape)).shape[1]
    return orthogonal_init(nn.Sequential(adapter, trunk, nn.Linear(n_flat, out_dim)))
