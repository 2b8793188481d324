"""Go-Explore's cell representation as a count bonus: `r = beta / sqrt(N(cell(s')))`.
Spec: shared/specs/go_explore.md §3.1 (the cell), §8.1 (the bonus).

A cell is a coarse picture of the state: the grey screen area-downscaled to `width x height` and quantised to
`levels` intensity levels, `floor(p / 255 * levels)` (so 0..levels, `levels` only for pure white, as the
official code does). Go-Explore's explorer (`explore_bench.agents.go_explore`) uses the same `downscale_cell`
on ALE's raw 210x160 grey screen; the bonus applies it to the newest frame of an image observation (an 84x84
frame stack for Atari agents), so the two never mix frames of different sizes. Observations that are not
images (MiniGrid's symbolic view) use the exact state key the env reports in `infos["cell"]`, as `count` does.

Counting (lifelong, update-then-query per transition in time order) is the `count` bonus's.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from explore_bench.bonuses.base import Transitions
from explore_bench.bonuses.count import Count
from explore_bench.bonuses.counting import hash_rows, to_numpy
from explore_bench.bonuses.registry import register_bonus
from explore_bench.imaging import area_resize


def downscale_cell(gray: np.ndarray, width: int = 11, height: int = 8, levels: int = 8) -> np.ndarray:
    """`(H, W)` (or `(B, H, W)`) uint8 grey frames -> `(height, width)` (`(B, height, width)`) uint8 cells in
    `[0, levels]`: area-downscale, round to integer intensities (as a uint8 resize does), then
    `floor(p / 255 * levels)`."""
    frames = np.asarray(gray)
    if frames.ndim not in (2, 3):
        raise ValueError(f"downscale_cell expects (H, W) or (B, H, W) grey frames, got shape {frames.shape}")
    return np.floor(np.rint(area_resize(frames, height, width)) / 255.0 * levels).astype(np.uint8)


@register_bonus("go_explore_cells")
class GoExploreCells(Count):
    """Visit counts over Go-Explore cells (lifelong by default).

    Image observations (`Box` of rank 2 or 3, uint8): the newest frame is downscaled to a `width x height` cell
    with `levels` intensity levels (`downscale_cell`); for rank 3 the frame axis is the first (`(stack, H, W)`,
    SB3's transposed image layout) when it is the smallest, else the last (`(H, W, stack)`). An RGB image (3
    channels last) is converted to grey by its luminance. Other observations count the env's exact state key
    (`infos["cell"]`) or, without one, the exact bytes of `next_obs`, as `count`.

    Args:
        beta: bonus scale (0.01, spec §8.1, for extrinsic rewards clipped to +-1).
        width, height, levels: the cell (11 x 8, 8 levels: GE-2019's domain-agnostic cells).
        scope: "lifelong" (default) or "episodic" (`beta` for each cell not yet seen this episode, decaying).
    """

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        device: str | torch.device = "cpu",
        seed: int | None = None,
        beta: float = 0.01,
        width: int = 11,
        height: int = 8,
        levels: int = 8,
        scope: str = "lifelong",
        key_info: str | None = "cell",
    ) -> None:
        super().__init__(observation_space, action_space, device, seed, beta=beta, scope=scope, key_info=key_info)
        self.width, self.height, self.levels = int(width), int(height), int(levels)
        shape = getattr(observation_space, "shape", None) or ()
        self.is_image = isinstance(observation_space, gym.spaces.Box) and len(shape) in (2, 3) and observation_space.dtype == np.uint8 and min(shape[-2:]) >= 8

    def newest_frames(self, obs: np.ndarray) -> np.ndarray:
        """`(B, *obs_shape)` image observations -> `(B, H, W)` grey frames (the newest of a stack)."""
        if obs.ndim == 3:
            return obs
        if obs.shape[-1] == 3 and obs.shape[1] > 3:  # RGB, channels last
            return (obs.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.uint8)
        if obs.shape[1] <= obs.shape[-1]:  # (stack, H, W)
            return obs[:, -1]
        return obs[..., -1]

    def keys(self, batch: Transitions) -> np.ndarray:
        if not self.is_image:
            return super().keys(batch)
        t, n = self.validate(batch)
        obs = to_numpy(batch.next_obs)
        cells = downscale_cell(self.newest_frames(obs.reshape(t * n, *obs.shape[2:])), self.width, self.height, self.levels)
        return hash_rows(cells).reshape(t, n)
