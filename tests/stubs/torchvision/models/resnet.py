"""Stand-in for the two classes zennit's canonizers refer to (tests only; never instantiated here)."""

import torch


class BasicBlock(torch.nn.Module):
    expansion = 1


class Bottleneck(torch.nn.Module):
    expansion = 4
