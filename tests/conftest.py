import pytest
import torch

# One thread per process: with 2 threads on 2 cores SB3 PPO ran 13x slower on the reference machine.
torch.set_num_threads(1)


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False,
                     help="also run the tests marked slow (the specs' @slow acceptance tests: minutes each)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow (minutes of training): run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
