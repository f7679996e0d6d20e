"""samtune: fine-tune SAM-family foundation models for medical image segmentation."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("samtune")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"


def create_model(name: str, checkpoint=None, **overrides):
    """Build a registered model by name (see `samtune models`); lazily imports torch."""
    from samtune.models.registry import create_model as _create

    return _create(name, checkpoint=checkpoint, **overrides)


def list_models(pattern: str = "*"):
    """Names of registered models matching a shell-style wildcard."""
    from samtune.models.registry import list_models as _list

    return _list(pattern)


__all__ = ["__version__", "create_model", "list_models"]
