"""Tests-only stand-in for torchvision: zennit imports torchvision.models.resnet.{BasicBlock, Bottleneck}.

Only put on sys.path by tests when the real torchvision is absent (no torchvision build exists here)."""
