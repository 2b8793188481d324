"""Area resizing of grey frames (OpenCV's ``INTER_AREA``) in numpy: Atari observations (84x84) and Go-Explore
cells (11x8) both use it.

Written by hand because the library that does it is OpenCV, a large dependency for a few lines; gymnasium's
``AtariPreprocessing`` needs OpenCV too. The resize is separable and banded (weighted row gathers, then column
gathers, three each for the 210x160 screen): about 0.1 ms a frame, where a dense matrix product was slower here
and, with OpenBLAS threads on a busy machine, erratic. It matches the C++ preprocessing of ale-py's vector env to
within one grey level.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["area_band", "area_resize"]


@functools.lru_cache(maxsize=64)
def area_band(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Area-resize weights of one axis as a band: ``(index, weight)``, both ``(k, n_out)``, such that output pixel
    ``i`` is ``sum_j weight[j, i] * input[index[j, i]]``, the average of the input interval it covers (``k`` is the
    most input pixels one output pixel overlaps; unused slots have weight 0)."""
    scale = n_in / n_out
    lo = np.arange(n_out) * scale
    first = np.floor(lo).astype(np.int64)
    k = int((np.ceil(lo + scale - 1e-9) - first).max())
    index = first[None, :] + np.arange(k)[:, None]
    overlap = np.minimum(index + 1, lo + scale) - np.maximum(index, lo)
    weight = np.where(index < n_in, np.clip(overlap, 0.0, None), 0.0) / scale
    return np.minimum(index, n_in - 1), weight.astype(np.float32)


def area_resize(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(..., H, W)`` frames -> ``(..., height, width)`` float32 pixel-area averages (not rounded)."""
    frames = np.asarray(frames, dtype=np.float32)
    rows, row_w = area_band(frames.shape[-2], height)
    cols, col_w = area_band(frames.shape[-1], width)
    out = (row_w[:, :, None] * frames[..., rows, :]).sum(-3)  # (..., height, W)
    return (col_w * out[..., cols]).sum(-2)  # (..., height, width)
