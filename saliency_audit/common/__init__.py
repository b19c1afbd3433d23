"""The foundation every layer may import: errors, paths, hashing, progress, model specs, GPU sizing,
thumbnails and the registry of criteria.  Nothing here imports another part of the package
(``lint-imports``; the layers are listed in ``pyproject.toml`` under ``[tool.importlinter]``)."""
