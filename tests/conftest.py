"""Test-wide settings: never touch the network, keep torch on the cores we have."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

# Tiny test models run fastest on one thread (OpenMP spin-waits dominate on a busy 2-core box).
torch.set_num_threads(1)
