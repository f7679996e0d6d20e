"""The prompts JSON file of `samtune predict`: accepted entries and one-line errors."""

from __future__ import annotations

import json

import pytest

from samtune.errors import UserError
from samtune.inference.prompt_file import InputPrompt, load_prompt_file, parse_prompt


def test_entries_are_parsed(tmp_path):
    path = tmp_path / "prompts.json"
    path.write_text(json.dumps({
        "a.png": {"box": [1, 2, 30.5, 40]},
        "b": {"points": [[3, 4], [5, 6]], "point_labels": [1, 0]},
        "brain.nii.gz": {"box": [60, 40, 140, 180], "slice": 94},
    }))
    prompts = load_prompt_file(path)
    assert prompts["a.png"] == InputPrompt(box=(1.0, 2.0, 30.5, 40.0))
    assert prompts["b"] == InputPrompt(points=((3.0, 4.0), (5.0, 6.0)), point_labels=(1, 0))
    assert prompts["brain.nii.gz"].slice == 94 and not prompts["brain.nii.gz"].is_empty
    assert InputPrompt(slice=3).is_empty


@pytest.mark.parametrize("entry, message", [
    ({"box": [1, 2, 3]}, "'box' must be"),
    ({"box": [1, 2, 3, "x"]}, "is not a finite number"),
    ({"points": [[1, 2, 3]]}, "'points' must be a list of"),
    ({"points": [[1, 2]], "point_labels": [1, 1]}, "2 point_labels for 1 points"),
    ({"points": [[1, 2]], "point_labels": [2]}, "'point_labels' must be"),
    ({"slice": -1}, "'slice' must be a slice index"),
    ({"slice": True}, "'slice' must be a slice index"),
    ({"bbox": [1, 2, 3, 4]}, "unknown key"),
    ([1, 2, 3, 4], "expected an object"),
])
def test_bad_entries_name_the_entry(entry, message):
    with pytest.raises(UserError, match=message) as error:
        parse_prompt(entry, "p.json entry 'a'")
    assert str(error.value).startswith("p.json entry 'a'")


def test_bad_files(tmp_path):
    with pytest.raises(UserError, match="prompts file not found"):
        load_prompt_file(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(UserError, match="is not valid JSON"):
        load_prompt_file(broken)
    listed = tmp_path / "list.json"
    listed.write_text("[]")
    with pytest.raises(UserError, match="expected an object"):
        load_prompt_file(listed)
