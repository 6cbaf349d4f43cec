"""The commands' work: search, retrain, export, and what they share (loaders, the trainer)."""
