"""explore_bench: a benchmark suite for exploration bonuses in deep reinforcement learning."""

__version__ = "0.1.0"
