"""Augmentation: the pools and their filters, LLM synthesis with its line filters, and the language ID they use."""
