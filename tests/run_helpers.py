"""Shared helpers of the runner and reliability tests: a run killed at a chosen moment."""

import pytest

from explore_bench.runner import run as run_mod
from explore_bench.runner import run_single


class SimulatedKill(BaseException):
    """Stands for SIGKILL: not an Exception, so run_single writes no summary."""


def train_until_killed(monkeypatch, config, run_dir, kill_at: int, **kwargs) -> None:
    """Train `config` into `run_dir` until the first progress row at or past `kill_at` frames, then die there."""
    original = run_mod.ProgressCallback.write_row

    def write_row_then_die(self):
        original(self)
        if self.model.num_timesteps >= kill_at:
            raise SimulatedKill

    monkeypatch.setattr(run_mod.ProgressCallback, "write_row", write_row_then_die)
    with pytest.raises(SimulatedKill):
        run_single(config, run_dir, tensorboard=False, **kwargs)
    monkeypatch.setattr(run_mod.ProgressCallback, "write_row", original)
