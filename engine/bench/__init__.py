"""The benchmark of the engine against PyTorch (`python -m engine.bench`). The app never
imports it."""
