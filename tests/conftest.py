import torch

# One thread per process: with 2 threads on 2 cores SB3 PPO ran 13x slower on the reference machine.
torch.set_num_threads(1)
