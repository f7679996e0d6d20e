// samtune view: editing (prompts, brush, eraser, undo, propagate, accept) and the page's controls.
// Loaded after view.js, whose state (S), drawing and API helpers it uses.
"use strict";

// ------------------------------------------------------------------ editing
function workSlice() {  // the working mask of the slice on screen (set by draw); null until it is drawn
  const c = S.current;
  return c && c.key === sliceKey() ? c.work : null;
}

function storeWork(axis, index, slice) {  // local copy first (drawn at once), then the server's
  S.dirty = true;
  S.cache.set(`${S.name}/work/${axis}/${index}`, Promise.resolve(slice));
  return api(`api/cases/${encodeURIComponent(S.name)}/work/${axis}/${index}`, { method: "PUT", body: slice.data });
}

function pushUndo() {
  const w = workSlice();
  S.undo.push({ axis: S.axis, index: S.index, slice: { rows: w.rows, cols: w.cols, data: w.data.slice() } });
  if (S.undo.length > 50) S.undo.shift();
}

async function undo() {
  const step = S.undo.pop();
  if (!step) return setStatus("nothing to undo");
  await storeWork(step.axis, step.index, step.slice);
  S.prompt = null;
  if (step.axis === S.axis && step.index === S.index) await draw();
  setStatus(`undone on slice ${step.index}`);
}

async function runPrompt() {
  const p = S.prompt;
  const body = { axis: S.axis, index: S.index, box: p.box, points: p.points, labels: p.labels };
  await busy("asking the model", async () => {
    const started = performance.now();
    const r = await api(`api/cases/${encodeURIComponent(S.name)}/prompt`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const mask = new Uint8Array(await r.arrayBuffer());
    S.lastLatency = (performance.now() - started) / 1000;
    const next = p.baseline.data.slice();
    // The prompt's mask is added to the slice as it was before this prompt's first click: further
    // clicks refine that mask; nothing outside it is removed (the eraser or "clear" do that).
    for (let i = 0; i < next.length; i++) if (mask[i]) next[i] = S.cls;
    await storeWork(body.axis, body.index, { rows: p.baseline.rows, cols: p.baseline.cols, data: next });
    S.prompts += 1;
    if (S.overlay !== "work") { S.overlay = "work"; $("overlay").value = "work"; legend(); }
    await draw();
    const cached = r.headers.get("X-Embedding-Cached") === "true";
    setStatus(`mask in ${S.lastLatency.toFixed(2)} s (${cached ? "cached embedding" : "slice encoded"})`);
  });
}

function startPrompt() {
  if (!S.prompt || S.prompt.key !== sliceKey()) {
    pushUndo();
    const w = workSlice();
    S.prompt = { key: sliceKey(), box: null, points: [], labels: [], baseline: { rows: w.rows, cols: w.cols, data: w.data.slice() } };
  }
  return S.prompt;
}

function paint(slice, at, value) {
  const r = Math.max(0, +$("brush-size").value - 1), { rows, cols } = slice;
  for (let y = Math.floor(at.y - r); y <= at.y + r; y++) {
    for (let x = Math.floor(at.x - r); x <= at.x + r; x++) {
      if (x < 0 || y < 0 || x >= cols || y >= rows) continue;
      if ((x + 0.5 - at.x) ** 2 + (y + 0.5 - at.y) ** 2 <= (r + 0.5) ** 2) slice.data[y * cols + x] = value;
    }
  }
}

canvas.addEventListener("mousedown", (event) => {
  // synchronous up to S.drag, so that a quick mouseup always finds the drag it ends
  if (!S.info || event.button !== 0 || !workSlice()) return;
  const at = toSlice(event);
  if (S.tool === "box") S.drag = { start: at, box: null };
  else if (S.tool === "point") {
    const p = startPrompt();
    p.points.push([at.x, at.y]); p.labels.push(event.shiftKey ? 0 : 1);
    runPrompt().catch(() => {});
  } else {
    pushUndo();
    const w = workSlice();
    S.drag = { paint: { rows: w.rows, cols: w.cols, data: w.data.slice() }, axis: S.axis, index: S.index };
    paint(S.drag.paint, at, S.tool === "brush" ? S.cls : 0);
    S.cache.set(`${S.name}/work/${S.axis}/${S.index}`, Promise.resolve(S.drag.paint)); draw();
  }
});

canvas.addEventListener("mousemove", (event) => {
  if (!S.drag) return;
  const at = toSlice(event);
  if (S.drag.start) {
    const s = S.drag.start;
    S.drag.box = [Math.min(s.x, at.x), Math.min(s.y, at.y), Math.max(s.x, at.x), Math.max(s.y, at.y)];
    draw();
  } else if (S.drag.paint) {
    paint(S.drag.paint, at, S.tool === "brush" ? S.cls : 0); draw();
  }
});

window.addEventListener("mouseup", async () => {
  const d = S.drag; S.drag = null;
  if (!d) return;
  if (d.paint) { await storeWork(d.axis, d.index, d.paint); S.prompt = null; return; }
  if (d.box && d.box[2] - d.box[0] >= 2 && d.box[3] - d.box[1] >= 2) {
    if (!workSlice()) return;
    const p = startPrompt();
    p.box = d.box;
    await runPrompt();
  } else draw();
});

// Right-drag: window (horizontal) and level (vertical), scaled to the case's intensity range.
canvas.addEventListener("contextmenu", (event) => event.preventDefault());
canvas.addEventListener("mousedown", (event) => {
  if (event.button === 2 && S.info) S.wlDrag = { x: event.clientX, y: event.clientY, window: S.window.slice() };
});
window.addEventListener("mousemove", (event) => {
  const d = S.wlDrag;
  if (!d) return;
  const span = (S.info.intensity.max - S.info.intensity.min || 1) / 400;
  S.window = [Math.max(span, d.window[0] + (event.clientX - d.x) * span), d.window[1] - (event.clientY - d.y) * span];
  $("ww").value = +S.window[0].toPrecision(5); $("wl").value = +S.window[1].toPrecision(5);
  draw();
});
window.addEventListener("mouseup", () => { S.wlDrag = null; });

canvas.addEventListener("wheel", (event) => { event.preventDefault(); moveSlice(event.deltaY > 0 ? 1 : -1); }, { passive: false });

document.addEventListener("keydown", (event) => {
  if (event.target.tagName === "INPUT" && event.target.type === "number") return;
  const keys = { ArrowUp: 1, ArrowDown: -1, PageUp: 10, PageDown: -10 };
  if (event.key in keys) { event.preventDefault(); moveSlice(keys[event.key]); }
  else if ((event.ctrlKey || event.metaKey) && event.key === "z") { event.preventDefault(); undo(); }
  else if ({ b: "box", p: "point", r: "brush", e: "eraser" }[event.key]) selectTool({ b: "box", p: "point", r: "brush", e: "eraser" }[event.key]);
});

function selectTool(tool) {
  S.tool = tool;
  for (const b of document.querySelectorAll("[data-tool]")) b.classList.toggle("active", b.dataset.tool === tool);
}

// ------------------------------------------------------------------ controls
$("axis").onchange = () => { S.axis = +$("axis").value; S.prompt = null; setSlice(Math.floor(S.info.shape[S.axis] / 2)); draw(); };
$("slice").oninput = () => { setSlice(+$("slice").value); draw(); };
$("preset").onchange = () => { applyPreset($("preset").value); draw(); };
$("ww").onchange = $("wl").onchange = () => { S.window = [Math.max(1e-6, +$("ww").value), +$("wl").value]; draw(); };
$("overlay").onchange = () => { S.overlay = $("overlay").value; legend(); draw(); };
$("opacity").oninput = () => { S.opacity = +$("opacity").value; draw(); };
$("class").onchange = () => { S.cls = +$("class").value; S.prompt = null; };
$("undo").onclick = () => undo();
$("clear").onclick = async () => {  // remove the chosen class from this slice (undoable)
  if (!S.info || !workSlice()) return;
  pushUndo();
  const w = workSlice(), data = w.data.slice();
  for (let i = 0; i < data.length; i++) if (data[i] === S.cls) data[i] = 0;
  await storeWork(S.axis, S.index, { rows: w.rows, cols: w.cols, data });
  S.prompt = null; draw();
};
for (const b of document.querySelectorAll("[data-tool]")) b.onclick = () => selectTool(b.dataset.tool);
for (const th of $("cases").tHead.rows[0].cells) {
  // a new column sorts worst first: lowest Dice / NSD / QC, largest HD95
  th.onclick = () => { const k = th.dataset.key; S.sort = { key: k, asc: S.sort.key === k ? !S.sort.asc : k !== "hd95" }; renderCases(); };
}
$("propagate").onclick = () => {
  const p = S.prompt;
  if (!p || p.key !== sliceKey()) return setStatus("prompt this slice first (box or points), then propagate", true);
  busy("propagating through the volume", async () => {
    const r = await api(`api/cases/${encodeURIComponent(S.name)}/propagate`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ axis: S.axis, index: S.index, box: p.box, points: p.points, labels: p.labels, class: S.cls }) });
    const result = await r.json();
    dropWorkCache(); S.undo = []; S.dirty = true;  // the volume changed beyond this slice: slice undo no longer applies
    await draw();
    setStatus(`propagated over slices ${result.first}–${result.last} (${result.voxels} voxels)`);
  });
};
$("accept").onclick = () => busy("writing the correction", async () => {
  const result = await (await api(`api/cases/${encodeURIComponent(S.name)}/accept`, { method: "POST" })).json();
  S.accepted = result; S.dirty = false;
  const listed = S.cases.find((c) => c.name === S.name);
  if (listed) { listed.accepted = true; renderCases(); }
  setStatus(`wrote ${result.mask} (listed in ${result.list})`);
});

start();
