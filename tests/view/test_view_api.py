"""Every endpoint of the page's API through Starlette's TestClient, on a real `samtune eval` folder."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from samtune.data.geometry import LoadedImage
from samtune.data.readers import read_image


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / float(a.sum() + b.sum())


def raw(response, dtype=np.uint8) -> np.ndarray:
    rows, cols = int(response.headers["x-rows"]), int(response.headers["x-cols"])
    return np.frombuffer(response.content, dtype).reshape(rows, cols)


def test_cases_listed_worst_first_with_the_eval_metrics(make_client, view_data):
    client, _ = make_client()
    cases = client.get("/api/cases").json()["cases"]
    assert [c["name"] for c in cases] == ["vol", "photo"]  # vol has the lower Dice
    expected = dice(view_data["gt"].astype(bool), view_data["pred"].astype(bool))
    assert cases[0]["metrics"]["dice"] == pytest.approx(expected, abs=1e-9)
    assert 0 < expected < 0.9
    assert cases[0]["metrics"]["hd95"] == pytest.approx(3 * 0.8, abs=0.5)  # 3-voxel shift along x (0.8 mm)
    assert cases[1]["metrics"] == {"dice": 1.0, "hd95": 0.0, "nsd": 1.0}
    assert all(c["has_gt"] and c["has_pred"] for c in cases)
    session = client.get("/api/session").json()
    assert session["kind"] == "eval" and session["cases"] == 2 and session["model"] == "tiny_vit_test"


def test_case_info_keeps_spacing_in_array_order(make_client):
    client, _ = make_client()
    info = client.get("/api/cases/vol").json()
    assert info["shape"] == [10, 24, 30] and info["spacing"] == pytest.approx([2.5, 0.6, 0.8])
    assert info["is_2d"] is False and info["values"] == [1]
    photo = client.get("/api/cases/photo").json()
    assert photo["shape"] == [1, 32, 40] and photo["is_2d"] is True and photo["spacing"] == [1.0, 1.0, 1.0]
    assert photo["values"] == [255]  # the ground truth's stored value names the class


@pytest.mark.parametrize("axis,index", [(0, 5), (1, 12), (2, 14)])
def test_slices_are_the_volume_cut_along_each_axis(make_client, view_data, axis, index):
    client, _ = make_client()
    image = client.get(f"/api/cases/vol/slice/image/{axis}/{index}")
    assert image.headers["x-dtype"] == "float32" and "max-age" in image.headers["cache-control"]
    np.testing.assert_array_equal(raw(image, "<f4"), np.take(view_data["image"], index, axis).astype(np.float32))
    for layer in ("gt", "pred", "work"):
        got = raw(client.get(f"/api/cases/vol/slice/{layer}/{axis}/{index}"))
        source = view_data["gt" if layer == "gt" else "pred"]  # the working mask starts as the prediction
        np.testing.assert_array_equal(got, np.take(source, index, axis))
    assert client.get(f"/api/cases/vol/slice/work/{axis}/{index}").headers["cache-control"] == "no-store"


def test_photo_labels_are_compacted_to_classes(make_client, view_data):
    client, _ = make_client()
    np.testing.assert_array_equal(raw(client.get("/api/cases/photo/slice/gt/0/0")), view_data["disc"])
    np.testing.assert_array_equal(raw(client.get("/api/cases/photo/slice/pred/0/0")), view_data["disc"])
    np.testing.assert_array_equal(raw(client.get("/api/cases/photo/slice/image/0/0"), "<f4"), view_data["photo"])


def test_slice_requests_outside_the_case_are_refused(make_client):
    client, _ = make_client()
    assert client.get("/api/cases/vol/slice/image/0/10").status_code == 404
    assert client.get("/api/cases/vol/slice/image/3/0").status_code == 404
    assert client.get("/api/cases/vol/slice/secret/0/0").status_code == 404
    assert client.get("/api/cases/nope/slice/image/0/0").status_code == 404
    assert client.get("/api/cases/vol/slice/image/0/x").status_code == 400


def test_prompt_matches_the_predictor_and_caches_the_embedding(make_client, view_data, tiny_predictor):
    client, _ = make_client()
    box = [8.0, 6.0, 22.0, 18.0]
    first = client.post("/api/cases/vol/prompt", json={"axis": 0, "index": 5, "box": box})
    assert first.status_code == 200 and first.headers["x-embedding-cached"] == "false"
    volume = view_data["image"]
    expected = tiny_predictor.predict_image(volume[5], box=box, value_range=tiny_predictor.value_range(volume))
    np.testing.assert_array_equal(raw(first), expected)
    points, labels = [[14.0, 12.0], [3.0, 3.0]], [1, 0]
    second = client.post("/api/cases/vol/prompt", json={"axis": 0, "index": 5, "box": box, "points": points,
                                                         "labels": labels})
    assert second.headers["x-embedding-cached"] == "true" and float(second.headers["x-encode-seconds"]) == 0
    expected = tiny_predictor.predict_image(volume[5], box=box, points=points, point_labels=labels,
                                            value_range=tiny_predictor.value_range(volume))
    np.testing.assert_array_equal(raw(second), expected)
    sagittal = client.post("/api/cases/vol/prompt", json={"axis": 2, "index": 14, "points": [[12, 5]], "labels": [1]})
    assert raw(sagittal).shape == (10, 24)


@pytest.mark.parametrize("body,status", [
    ({"axis": 0, "index": 5}, 400),                                   # no prompt
    ({"axis": 0, "index": 5, "box": [1, 2, 3]}, 400),                 # 3 numbers
    ({"axis": 0, "index": 5, "points": [[1, 1]], "labels": [2]}, 400),  # label not 0/1
    ({"axis": 0, "index": 5, "box": [0, 0, 300, 10]}, 400),          # outside the slice
    ({"axis": 0, "index": 99, "box": [1, 1, 5, 5]}, 404),             # no such slice
])
def test_bad_prompts_are_refused(make_client, body, status):
    client, _ = make_client()
    response = client.post("/api/cases/vol/prompt", json=body)
    assert response.status_code == status and response.json()["error"]
    assert client.post("/api/cases/vol/prompt", content=b"{not json").status_code == 400


def test_propagate_writes_predictor_propagate_into_the_working_mask(make_client, view_data, tiny_predictor):
    client, state = make_client()
    box = [8.0, 6.0, 22.0, 18.0]
    result = client.post("/api/cases/vol/propagate", json={"axis": 0, "index": 5, "box": box, "class": 1}).json()
    volume = LoadedImage(view_data["image"], view_data["geometry"])
    expected = tiny_predictor.propagate(volume, 5, box=box, axis=0)
    assert (result["first"], result["last"]) == (expected.first, expected.last)
    assert result["voxels"] == int(expected.labels.array.sum())
    work = np.where(expected.labels.array > 0, 1, view_data["pred"])
    np.testing.assert_array_equal(state.store.get("vol").work, work)
    assert client.post("/api/cases/photo/propagate", json={"axis": 0, "index": 0, "box": box}).status_code == 400
    assert client.post("/api/cases/vol/propagate", json={"axis": 0, "index": 5, "box": box, "class": 2}).status_code == 400


def test_put_work_then_accept_writes_the_source_geometry(make_client, view_data, tmp_path):
    client, state = make_client(corrections=tmp_path / "fixes")
    originals = {p: p.read_bytes() for p in (view_data["root"] / "labels").iterdir()}
    edited = np.zeros((24, 30), np.uint8)
    edited[4:9, 3:20] = 1
    assert client.put("/api/cases/vol/work/0/5", content=edited.tobytes()).json() == {"ok": True}
    coronal = np.take(state.store.get("vol").work, 7, 1).copy()
    coronal[:, 25:] = 1
    assert client.put("/api/cases/vol/work/1/7", content=coronal.tobytes()).status_code == 200
    accepted = {c["name"]: c["accepted"] for c in client.get("/api/cases").json()["cases"]}
    assert accepted == {"vol": False, "photo": False}
    for _ in range(2):  # accepting again replaces the file and its row
        written = client.post("/api/cases/vol/accept").json()
    accepted = {c["name"]: c["accepted"] for c in client.get("/api/cases").json()["cases"]}
    assert accepted == {"vol": True, "photo": False}
    expected = view_data["pred"].copy()
    expected[5] = edited
    expected[:, 7, :] = coronal
    saved = read_image(written["mask"])
    assert written["mask"] == str(tmp_path / "fixes" / "labels" / "vol.nii.gz")
    np.testing.assert_array_equal(saved.array, expected)
    assert saved.geometry.close_to(view_data["geometry"], atol=1e-5)
    photo = client.post("/api/cases/photo/accept").json()
    assert photo["mask"].endswith("photo.png")
    np.testing.assert_array_equal(read_image(photo["mask"], role="mask").array, view_data["disc"] * 255)  # stored value
    rows = list(csv.DictReader(open(written["list"], newline="")))
    assert rows == [{"image": str(view_data["root"] / "images" / "vol.nii.gz"), "mask": "labels/vol.nii.gz"},
                    {"image": str(view_data["root"] / "images" / "photo.png"), "mask": "labels/photo.png"}]
    assert {p: p.read_bytes() for p in (view_data["root"] / "labels").iterdir()} == originals


def test_bad_working_slices_are_refused(make_client):
    client, state = make_client()
    assert client.put("/api/cases/vol/work/0/5", content=b"\x00" * 10).status_code == 400
    assert client.put("/api/cases/vol/work/0/5", content=bytes([2]) * 720).status_code == 400  # class 2 of 1
    assert client.put("/api/cases/vol/work/0/50", content=b"\x00" * 720).status_code == 404
    assert not state.store.get("vol").dirty


def test_page_and_static_files_are_served(make_client):
    client, _ = make_client()
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text and "static/view.js" in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # nothing fetched from elsewhere (no CDN)
    script = client.get("/static/view.js")
    assert script.status_code == 200 and "api/cases" in script.text
    assert client.get("/static/view.css").status_code == 200
    assert "static/edit.js" in page.text and "/prompt" in client.get("/static/edit.js").text
