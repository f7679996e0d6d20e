"""The page's ASGI app (Starlette): static files plus a small JSON / binary API.

Endpoints (``NAME`` is a case name of the catalog, never a path; ``AXIS`` 0 axial,
1 coronal, 2 sagittal; slices are raw little-endian arrays, row-major, shape in the
``X-Rows`` / ``X-Cols`` headers):

    GET  /                                    the page
    GET  /static/...                          its script and style (package data)
    GET  /api/session                         what was opened, the model, the corrections folder
    GET  /api/cases                           cases, worst Dice first: metrics, accepted or not
    GET  /api/cases/NAME                      shape, spacing, intensity range, label values
    GET  /api/cases/NAME/slice/LAYER/AXIS/K   image (float32) or gt / pred / work (uint8 ranks)
    PUT  /api/cases/NAME/work/AXIS/K          replace a slice of the working mask (uint8 body)
    POST /api/cases/NAME/prompt               {axis, index, box?, points?, labels?} -> 0/1 mask (uint8)
    POST /api/cases/NAME/propagate            the same prompt + {class}: propagated into the working mask
    POST /api/cases/NAME/accept               write the working mask to the corrections folder

Every request first passes `samtune.view.security.AccessGuard`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from samtune.errors import UserError
from samtune.view.catalog import Catalog
from samtune.view.corrections import correction_path, save_correction
from samtune.view.prompting import PromptEngine
from samtune.view.security import TOKEN_COOKIE, AccessGuard, request_token
from samtune.view.volumes import LAYERS, CaseStore

STATIC = Path(__file__).parent / "static"
MAX_BODY = 64 << 20  # a working-mask slice is at most a few MB; refuse anything far larger


@dataclass
class ViewState:
    catalog: Catalog
    store: CaseStore
    prompts: PromptEngine
    corrections: Path
    token: str | None = None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _slice_response(array: np.ndarray, immutable: bool) -> Response:
    dtype = "float32" if array.dtype.kind == "f" else "uint8"
    data = array.astype("<f4" if dtype == "float32" else np.uint8, copy=False).tobytes()
    headers = {"X-Rows": str(array.shape[0]), "X-Cols": str(array.shape[1]), "X-Dtype": dtype,
               "Cache-Control": "private, max-age=3600" if immutable else "no-store"}
    return Response(data, media_type="application/octet-stream", headers=headers)


def _int(value: Any, what: str) -> int:  # a JSON value
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UserError(f"{what} must be an integer, got {value!r}") from None


def _prompt_args(body: dict) -> dict:
    """Checked prompt fields of a JSON body: box [x0, y0, x1, y1], points [[x, y]...], labels [0/1...]."""
    box, points, labels = body.get("box"), body.get("points") or None, body.get("labels")
    try:
        box = [float(v) for v in box] if box is not None else None
        points = [[float(x), float(y)] for x, y in points] if points else None
        labels = [int(v) for v in labels] if labels is not None else None
    except (TypeError, ValueError):
        raise UserError("prompt must be box [x0, y0, x1, y1], points [[x, y], ...], labels [1 or 0, ...]") from None
    if box is not None and len(box) != 4:
        raise UserError(f"box needs 4 numbers [x0, y0, x1, y1], got {len(box)}")
    if points and (labels is None or len(labels) != len(points) or any(v not in (0, 1) for v in labels)):
        raise UserError("labels must give 1 (object) or 0 (background) for each point")
    if box is None and not points:
        raise UserError("give a box or at least one point")
    return {"box": box, "points": points, "labels": labels if points else None}


def build_app(state: ViewState) -> AccessGuard:
    """The Starlette app behind the access guard."""

    def guarded(handler):
        async def endpoint(request: Request):
            try:
                return await handler(request)
            except KeyError:
                return _error(404, "no such case")
            except (IndexError, LookupError) as error:
                return _error(404, str(error))
            except UserError as error:
                return _error(400, str(error))
        return endpoint

    async def index(request: Request):
        response = FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})
        if state.token is not None and request_token(request.scope) == state.token:
            response.set_cookie(TOKEN_COOKIE, state.token, httponly=True, samesite="strict")
        return response

    async def session(request: Request):
        return JSONResponse({
            "kind": state.catalog.kind, "cases": len(state.catalog.cases),
            "model": state.prompts.description if state.prompts.available else None,
            "corrections": str(state.corrections),
        })

    async def cases(request: Request):
        rows: list[dict[str, Any]] = [{"name": c.name, "metrics": c.metrics, "has_gt": c.gt is not None, "has_pred": c.pred is not None,
                 "accepted": correction_path(state.corrections, c).is_file()}
                for c in state.catalog.cases.values()]
        # worst first: lowest Dice, cases without a Dice last, then by name
        rows.sort(key=lambda r: (r["metrics"].get("dice") is None, r["metrics"].get("dice") or 0.0, r["name"]))
        return JSONResponse({"cases": rows})

    async def info(request: Request):
        opened = await run_in_threadpool(state.store.get, request.path_params["name"])
        return JSONResponse(await run_in_threadpool(opened.info))

    async def slice_(request: Request):
        p = request.path_params
        layer = p["layer"]
        if layer not in LAYERS:
            return _error(404, f"unknown layer {layer!r}; one of {', '.join(LAYERS)}")
        opened = await run_in_threadpool(state.store.get, p["name"])
        axis, index = _int(p["axis"], "axis"), _int(p["index"], "slice")
        if layer == "work":
            with opened.lock:
                array = opened.slice_of(layer, axis, index)
        else:
            array = opened.slice_of(layer, axis, index)
        return _slice_response(array, immutable=layer != "work")

    async def put_work(request: Request):
        p = request.path_params
        opened = await run_in_threadpool(state.store.get, p["name"])
        axis, index = _int(p["axis"], "axis"), _int(p["index"], "slice")
        shape = opened.slice_of("work", axis, index).shape
        body = await request.body()
        if len(body) != shape[0] * shape[1]:
            raise UserError(f"slice body has {len(body)} bytes; expected {shape[0]} x {shape[1]} uint8")
        values = np.frombuffer(body, np.uint8).reshape(shape)
        if values.max(initial=0) > max(len(opened.values), 1):
            raise UserError(f"label {int(values.max())} is above the case's {len(opened.values)} class(es)")
        with opened.lock:
            opened.set_work_slice(axis, index, values)
        return JSONResponse({"ok": True})

    async def _json(request: Request) -> dict:
        body = await request.body()
        if len(body) > MAX_BODY:
            raise UserError("request too large")
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise UserError("request body is not JSON") from None
        if not isinstance(data, dict):
            raise UserError("request body must be a JSON object")
        return data

    async def prompt(request: Request):
        body = await _json(request)
        opened = await run_in_threadpool(state.store.get, request.path_params["name"])
        axis, index = _int(body.get("axis", 0), "axis"), _int(body.get("index"), "index")
        opened.slice_of("image", axis, index)  # IndexError -> 404 before the model runs
        mask = await run_in_threadpool(state.prompts.mask, opened, axis, index, **_prompt_args(body))
        response = _slice_response(mask, immutable=False)
        timing = state.prompts.last_timing
        response.headers["X-Encode-Seconds"] = f"{timing.get('encode_s', 0):.4f}"
        response.headers["X-Decode-Seconds"] = f"{timing.get('decode_s', 0):.4f}"
        response.headers["X-Embedding-Cached"] = str(bool(timing.get("cached"))).lower()
        return response

    async def propagate(request: Request):
        body = await _json(request)
        opened = await run_in_threadpool(state.store.get, request.path_params["name"])
        axis, index = _int(body.get("axis", 0), "axis"), _int(body.get("index"), "index")
        label = _int(body.get("class", 1), "class")
        if not 1 <= label <= max(len(opened.values), 1):
            raise UserError(f"class {label} is not one of the case's classes 1..{len(opened.values)}")
        opened.slice_of("image", axis, index)
        result = await run_in_threadpool(state.prompts.propagate, opened, axis, index, **_prompt_args(body))
        with opened.lock:
            opened.work[result.labels.array > 0] = label
            opened.dirty = True
        return JSONResponse({"first": result.first, "last": result.last,
                             "voxels": int((result.labels.array > 0).sum())})

    async def accept(request: Request):
        opened = await run_in_threadpool(state.store.get, request.path_params["name"])
        mask, listed = await run_in_threadpool(save_correction, state.corrections, opened, state.catalog)
        return JSONResponse({"mask": str(mask), "list": str(listed)})

    routes = [
        Route("/", index),
        Route("/api/session", guarded(session)),
        Route("/api/cases", guarded(cases)),
        Route("/api/cases/{name}", guarded(info)),
        Route("/api/cases/{name}/slice/{layer}/{axis}/{index}", guarded(slice_)),
        Route("/api/cases/{name}/work/{axis}/{index}", guarded(put_work), methods=["PUT"]),
        Route("/api/cases/{name}/prompt", guarded(prompt), methods=["POST"]),
        Route("/api/cases/{name}/propagate", guarded(propagate), methods=["POST"]),
        Route("/api/cases/{name}/accept", guarded(accept), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return AccessGuard(Starlette(routes=routes), state.token)
