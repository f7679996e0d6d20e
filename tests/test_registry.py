"""The one registry type (samtune.registry) and the four registries built on it."""

from __future__ import annotations

import pytest

from samtune.data.readers import EXTENSIONS, FORMATS, format_for
from samtune.data.sources import SOURCES, load_source
from samtune.errors import ConfigError, DataError, UnknownNameError
from samtune.methods.registry import METHODS
from samtune.models.registry import MODELS
from samtune.registry import Registry


def test_register_get_and_list_in_order():
    colours: Registry[int] = Registry("colour")
    for value, name in enumerate(("red", "green", "blue", "grey")):
        colours.register(name, value)
    assert colours.get("blue") == 2
    assert colours.names() == ["red", "green", "blue", "grey"] and colours.names("gr*") == ["green", "grey"]
    assert "red" in colours and "pink" not in colours and len(colours) == 4
    with pytest.raises(ValueError, match="colour 'red' is already registered"):
        colours.register("red", 9)
    assert colours.get("red") == 0  # the first registration stands


def test_unknown_name_is_one_line_with_close_names():
    colours: Registry[int] = Registry("colour")
    for name in ("red", "green", "grey", "blue"):
        colours.register(name, 0)
    with pytest.raises(UnknownNameError) as caught:
        colours.get("gren", where="style.yaml")
    assert str(caught.value) == (
        "style.yaml: unknown colour 'gren'; did you mean green, grey or red? (available: red, green, grey, blue)"
    )
    with pytest.raises(UnknownNameError) as caught:
        colours.get("violet")
    assert str(caught.value) == "unknown colour 'violet' (available: red, green, grey, blue)"
    # one type that is both: configuration checks and per-file data checks each see it
    assert isinstance(caught.value, ConfigError) and isinstance(caught.value, DataError)


def test_the_registries_hold_the_built_ins():
    assert {"lite_medsam", "sam_vit_b", "unet"} <= set(MODELS)
    assert METHODS.names() == ["full", "adapter", "lora", "dora"]
    assert FORMATS.names() == ["png", "jpeg", "bmp", "tiff", "nifti", "nrrd", "metaimage", "dicom"]
    assert EXTENSIONS.get(".nii.gz").name == "nifti" and format_for("a/b.NII.GZ").name == "nifti"
    assert SOURCES.names() == ["list", "nnunet", "folders"]


def test_source_kinds_are_looked_up_in_the_registry(tmp_path):
    from PIL import Image

    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
        Image.new("L", (4, 4)).save(tmp_path / sub / "a.png")
    assert load_source(tmp_path).kind == "folders"  # detected
    with pytest.raises(UnknownNameError, match=r"unknown source kind 'folder'; did you mean folders\?"):
        load_source(tmp_path, kind="folder")
    with pytest.raises(DataError, match="--root only applies to list files, not to a folders source"):
        load_source(tmp_path, kind="folders", root=tmp_path)
