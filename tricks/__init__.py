"""backprop-tricks: an ablation benchmark of efficient-backprop tricks on a small CIFAR-10 CNN.

Kept free of heavy imports so that ``tricks figures`` runs without importing torch.
"""

__version__ = "0.1.0"
