"""Installed package versions, read from package metadata (no imports of the packages)."""

from __future__ import annotations

import importlib.metadata


def installed_versions(*packages: str) -> dict[str, str]:
    """Versions of those ``packages`` that are installed; absent ones are left out."""
    out = {}
    for pkg in packages:
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out
