"""Training data (pseudo-labels, synthetic nodules), augmentation, training and evaluation."""
