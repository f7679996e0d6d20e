"""Only the opened folders are served, case names are checked, and a non-loopback server needs its token."""

from __future__ import annotations

import shutil

import pytest

from samtune.errors import UserError


@pytest.mark.parametrize("path", [
    "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/static/..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/static/..%2fapp.py",                     # the package's own source beside static/
    "/static/%2e%2e%2fcatalog.py",
    "/api/cases/..%2f..%2f..%2fetc%2fpasswd",
    "/api/cases/%2e%2e/slice/image/0/0",
    "/api/cases/..%2fimages%2fvol.nii.gz/slice/image/0/0",
    "/api/cases/vol.nii.gz/slice/image/0/0",   # a file name, not a case name
    "/etc/passwd",
])
def test_path_traversal_is_refused(make_client, path):
    client, _ = make_client()
    response = client.get(path)
    assert response.status_code == 404, path
    assert b"root:" not in response.content and b"import" not in response.content


def test_a_symlink_out_of_the_opened_folder_is_refused(view_data, tmp_path):
    from samtune.view.catalog import build_catalog

    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(view_data["root"] / "images" / "photo.png", images / "inside.png")
    (images / "outside.nii.gz").symlink_to(view_data["root"] / "images" / "vol.nii.gz")
    with pytest.raises(UserError, match="outside the opened folders"):
        build_catalog(images)


def test_case_names_are_validated(view_data, tmp_path):
    from samtune.view.catalog import build_catalog

    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in ("good_case-1.png", "bad name!.png", "-dash.png"):
        shutil.copy(view_data["root"] / "images" / "photo.png", folder / name)
    catalog = build_catalog(folder)
    assert list(catalog.cases) == ["good_case-1"]
    for name in ("../good_case-1", "good_case-1/..", "", "bad name!"):
        with pytest.raises(KeyError):
            catalog.case(name)


def test_loopback_server_refuses_foreign_host_headers(make_client):
    client, _ = make_client(base_url="http://evil.example:8000")
    assert client.get("/api/cases").status_code == 403
    assert client.get("/").status_code == 403
    for host in ("http://localhost:8123", "http://127.0.0.1:9", "http://[::1]:80"):
        client, _ = make_client(base_url=host)
        assert client.get("/api/cases").status_code == 200, host


def test_token_is_required_on_every_request(make_client):
    client, _ = make_client(token="s3cret-token", base_url="http://192.0.2.7:8000")
    for path in ("/", "/static/view.js", "/api/session", "/api/cases", "/api/cases/vol",
                 "/api/cases/vol/slice/image/0/0"):
        client.cookies.clear()  # opening "/" with the token sets the cookie
        assert client.get(path).status_code == 403, path
        assert client.get(path, headers={"X-Samtune-Token": "wrong"}).status_code == 403, path
        assert client.get(path, headers={"X-Samtune-Token": "s3cret-token"}).status_code == 200, path
    client.cookies.clear()
    assert client.post("/api/cases/vol/accept").status_code == 403
    assert client.put("/api/cases/vol/work/0/5", content=b"\x00" * 720).status_code == 403
    page = client.get("/?token=s3cret-token")  # the printed URL: sets the cookie the page's scripts then use
    assert page.status_code == 200 and "samtune_token=s3cret-token" in page.headers["set-cookie"]
    assert "httponly" in page.headers["set-cookie"].lower()
    assert client.get("/static/view.js").status_code == 200  # the cookie alone now
    client.cookies.clear()
    assert client.get("/static/view.js").status_code == 403


def test_server_binding_token_and_port_in_use():
    from samtune.view.server import bind, new_token, page_url

    assert new_token("127.0.0.1") is None and new_token("localhost") is None and new_token("::1") is None
    token = new_token("0.0.0.0")
    assert token and len(token) >= 32 and token != new_token("0.0.0.0")
    sock = bind("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        assert page_url(sock, "127.0.0.1", None) == f"http://127.0.0.1:{port}/"
        assert page_url(sock, "10.0.0.5", "abc") == f"http://10.0.0.5:{port}/?token=abc"
        with pytest.raises(UserError, match=f"port {port} on 127.0.0.1 is in use"):
            bind("127.0.0.1", port)
    finally:
        sock.close()
