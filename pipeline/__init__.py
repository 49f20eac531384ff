"""OPTICAL CLIR augmentation study: a DVC pipeline."""
