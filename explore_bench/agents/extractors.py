"""Policy feature extractors for the catalogue's observation formats."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn
from torch.nn import functional as F

# MiniGrid's symbolic view: per cell (object index, colour index, state index).
MINIGRID_CODE_SIZES = (11, 6, 3)


class MiniGridOneHot(BaseFeaturesExtractor):
    """One-hot codes of MiniGrid's symbolic view, flattened.

    SB3 presents the `(7, 7, 3)` view channels-first, `(3, 7, 7)` (it transposes uint8 image spaces).

    The three channels are categories, not intensities: an MLP on the raw integers has to learn that
    object 5 (key) is unrelated to object 4 (door); one-hot codes make that free.

    It needs the raw integer codes: SB3 divides uint8 image observations by 255 unless the policy is
    built with `normalize_images=False` (`make_agent` does this), which would turn every code into 0.
    """

    needs_raw_images = True

    @staticmethod
    def supports(observation_space: gym.Space) -> bool:
        """True for MiniGrid's integer `(H, W, 3)` view or SB3's channels-first `(3, H, W)` form of it."""
        shape = getattr(observation_space, "shape", None) or ()
        channels = len(MINIGRID_CODE_SIZES)
        return len(shape) == 3 and channels in (shape[0], shape[-1]) and np.issubdtype(observation_space.dtype, np.integer)

    def __init__(self, observation_space: gym.spaces.Box) -> None:
        channels, height, width = observation_space.shape
        if channels != len(MINIGRID_CODE_SIZES):
            raise ValueError(f"MiniGridOneHot expects a channels-first (3, H, W) MiniGrid view, got shape {observation_space.shape}")
        super().__init__(observation_space, features_dim=height * width * sum(MINIGRID_CODE_SIZES))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        if observations.is_floating_point() and not torch.equal(observations, observations.round()):
            raise ValueError(
                "MiniGridOneHot expects MiniGrid's integer codes, got non-integer observations "
                "(build the policy with normalize_images=False so SB3 does not divide them by 255)"
            )
        codes = observations.long()
        parts = [F.one_hot(codes[:, i].clamp(0, n - 1), n) for i, n in enumerate(MINIGRID_CODE_SIZES)]
        return torch.cat(parts, dim=-1).flatten(1).float()


FEATURE_EXTRACTORS: dict[str, type[nn.Module]] = {"minigrid_onehot": MiniGridOneHot}
