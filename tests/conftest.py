"""Fixtures used across folders (shared helper modules live in `tests.helpers`)."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """One torch thread, restored afterwards.

    Tiny-model forwards are a few milliseconds of many small ops; with more threads than
    free cores each op waits on descheduled threads and runs 20-50x slower.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def automatic_run(tmp_path_factory):
    """A tiny automatic-mode training run, trained once per session."""
    from tests.helpers.trained_runs import trained_run

    return trained_run("automatic", tmp_path_factory)


@pytest.fixture(scope="session")
def prompted_run(tmp_path_factory):
    """A tiny prompted-mode training run, trained once per session."""
    from tests.helpers.trained_runs import trained_run

    return trained_run("prompted", tmp_path_factory)


@pytest.fixture(autouse=True, scope="session")
def _samtune_cache(tmp_path_factory):
    """ONNX graphs exported by `--backend auto|onnxruntime` go to a session cache, not ~/.cache."""
    import os

    previous = os.environ.get("SAMTUNE_CACHE")
    os.environ["SAMTUNE_CACHE"] = str(tmp_path_factory.mktemp("samtune_cache"))
    yield
    if previous is None:
        os.environ.pop("SAMTUNE_CACHE", None)
    else:
        os.environ["SAMTUNE_CACHE"] = previous


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """Random tiny_vit_test weights saved as a plain state dict, for the --model --checkpoint path."""
    from samtune.models.registry import create_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny.pth"
    torch.save(create_model("tiny_vit_test", pretrained=False).state_dict(), path)
    return path
