"""samtune: fine-tune SAM-family foundation models for medical image segmentation."""



def _installed_version() -> str:
    # importlib.metadata costs ~0.1-0.4 s to import: looked up on first use only, so
    # that `samtune --help` and the listings answer at once.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("samtune")
    except PackageNotFoundError:  # running from a source tree without an install
        return "0.0.0+unknown"


def __getattr__(name: str):
    if name == "__version__":
        value = _installed_version()
        globals()["__version__"] = value
        return value
    raise AttributeError(f"module 'samtune' has no attribute {name!r}")


def create_model(name: str, checkpoint=None, **overrides):
    """Build a registered model by name (see `samtune models`); lazily imports torch."""
    from samtune.models.registry import create_model as _create

    return _create(name, checkpoint=checkpoint, **overrides)


def list_models(pattern: str = "*"):
    """Names of registered models matching a shell-style wildcard."""
    from samtune.models.registry import list_models as _list

    return _list(pattern)


__all__ = ["__version__", "create_model", "list_models"]
