// samtune view: the page. Plain JavaScript, no dependencies, nothing fetched but this server's API.
// Arrays are row-major slices [rows, cols]; prompts are slice pixels (x = column, y = row).
// Coronal and sagittal slices are drawn with the volume's slice axis (z) pointing up.
"use strict";

const TOKEN = new URLSearchParams(location.search).get("token");
const PALETTE = [[255, 200, 0], [0, 200, 255], [255, 120, 40], [150, 255, 80], [220, 110, 255], [255, 90, 150]];
const FP = [255, 40, 40], FN = [40, 110, 255], TP = [60, 220, 90];
const PRESETS = { "ct-soft": [400, 40], "ct-lung": [1500, -600], "ct-bone": [1800, 400], "ct-brain": [80, 40] };
const PREFETCH = 3;
const CACHE_SLICES = 1500;  // slices kept by the page: about 100-250 MB for 256-512 px slices

const S = {  // the page's state; window.samtune exposes it to tests
  cases: [], sort: { key: "dice", asc: true }, name: null, info: null, axis: 0, index: 0,
  cache: new Map(), window: [1, 0], overlay: "diff", opacity: 0.5, tool: "box", cls: 1,
  prompt: null, drag: null, undo: [], busy: 0, prompts: 0, lastLatency: null, accepted: null, dirty: false,
};
window.samtune = S;
const $ = (id) => document.getElementById(id);
const canvas = $("canvas"), ctx = canvas.getContext("2d");

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (TOKEN) headers["X-Samtune-Token"] = TOKEN;
  const response = await fetch(path, Object.assign({}, options, { headers, credentials: "same-origin" }));
  if (!response.ok) {
    let message = response.statusText;
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

async function busy(label, work) {
  S.busy += 1; document.body.dataset.state = "busy"; setStatus(label + "…");
  try { return await work(); }
  catch (error) { setStatus(error.message, true); throw error; }
  finally { S.busy -= 1; if (!S.busy) document.body.dataset.state = "idle"; }
}

// ------------------------------------------------------------------ slices
function sliceUrl(layer, axis, index) {
  return `api/cases/${encodeURIComponent(S.name)}/slice/${layer}/${axis}/${index}`;
}

async function fetchSlice(layer, axis, index) {
  const key = `${S.name}/${layer}/${axis}/${index}`;
  if (!S.cache.has(key)) {
    const promise = api(sliceUrl(layer, axis, index)).then(async (r) => {
      const rows = +r.headers.get("X-Rows"), cols = +r.headers.get("X-Cols");
      const buffer = await r.arrayBuffer();
      const data = r.headers.get("X-Dtype") === "float32" ? new Float32Array(buffer) : new Uint8Array(buffer);
      return { rows, cols, data };
    });
    S.cache.set(key, promise);
    promise.catch(() => S.cache.delete(key));
    if (S.cache.size > CACHE_SLICES) {  // forget the oldest slices (Map keeps insertion order)
      for (const old of S.cache.keys()) {
        if (S.cache.size <= CACHE_SLICES * 0.8) break;
        if (!old.includes("/work/")) S.cache.delete(old);  // the working mask stays: edits live there
      }
    }
  }
  return S.cache.get(key);
}

function dropWorkCache() {
  for (const key of [...S.cache.keys()]) if (key.startsWith(`${S.name}/work/`)) S.cache.delete(key);
}

function layersShown() {
  const layers = ["image", "work"];
  if (S.info.has_gt) layers.push("gt");
  if (S.info.has_pred) layers.push("pred");
  return layers;
}

function prefetch() {
  const count = S.info.shape[S.axis];
  for (let d = 1; d <= PREFETCH; d++) {
    for (const i of [S.index + d, S.index - d]) {
      if (i < 0 || i >= count) continue;
      for (const layer of layersShown()) if (layer !== "work") fetchSlice(layer, S.axis, i);
    }
  }
}

// ------------------------------------------------------------------ geometry of the drawing
function layout(rows, cols) {
  const sp = S.info.spacing;  // array order z, y, x (mm)
  const [rowSp, colSp] = S.axis === 0 ? [sp[1], sp[2]] : S.axis === 1 ? [sp[0], sp[2]] : [sp[0], sp[1]];
  const width = cols * colSp, height = rows * rowSp;
  const scale = Math.min(canvas.width / width, canvas.height / height);
  const dw = width * scale, dh = height * scale;
  return { rows, cols, dw, dh, ox: (canvas.width - dw) / 2, oy: (canvas.height - dh) / 2, flip: S.axis !== 0 };
}

function toSlice(event) {  // canvas event -> continuous slice pixel coordinates {x: column, y: row}
  const rect = canvas.getBoundingClientRect(), L = S.layout;
  const cx = (event.clientX - rect.left) * canvas.width / rect.width;
  const cy = (event.clientY - rect.top) * canvas.height / rect.height;
  const x = (cx - L.ox) / L.dw * L.cols;
  let y = (cy - L.oy) / L.dh * L.rows;
  if (L.flip) y = L.rows - y;
  return { x: Math.max(0, Math.min(L.cols, x)), y: Math.max(0, Math.min(L.rows, y)) };
}

function toCanvas(x, y) {
  const L = S.layout;
  return [L.ox + x / L.cols * L.dw, L.oy + (L.flip ? L.rows - y : y) / L.rows * L.dh];
}

// ------------------------------------------------------------------ drawing
function blend(px, o, color, a) {
  px[o] = px[o] * (1 - a) + color[0] * a;
  px[o + 1] = px[o + 1] * (1 - a) + color[1] * a;
  px[o + 2] = px[o + 2] * (1 - a) + color[2] * a;
}

async function draw() {
  if (!S.info) return;
  const axis = S.axis, index = S.index;
  const get = (layer) => fetchSlice(layer, axis, index);
  const image = await get("image");
  const gt = S.info.has_gt ? await get("gt") : null;
  const pred = S.info.has_pred ? await get("pred") : null;
  const work = await get("work");
  if (axis !== S.axis || index !== S.index) return;  // a newer slice was asked for meanwhile
  S.current = { key: `${S.name}/${axis}/${index}`, work };
  const { rows, cols, data } = image;
  const off = new OffscreenCanvas(cols, rows), octx = off.getContext("2d");
  const pixels = octx.createImageData(cols, rows), px = pixels.data;
  const [width, level] = S.window, low = level - width / 2, a = S.opacity;
  for (let i = 0; i < data.length; i++) {
    const g = Math.max(0, Math.min(255, (data[i] - low) / width * 255));
    const o = 4 * i;
    px[o] = px[o + 1] = px[o + 2] = g; px[o + 3] = 255;
    if (S.overlay === "diff" && gt && pred) {
      const t = gt.data[i], p = pred.data[i];
      if (p && p !== t) blend(px, o, FP, a); else if (t && p !== t) blend(px, o, FN, a); else if (t) blend(px, o, TP, a * 0.5);
    } else {
      const src = S.overlay === "gt" ? gt : S.overlay === "pred" ? pred : S.overlay === "work" || S.overlay === "diff" ? work : null;
      const v = src ? src.data[i] : 0;
      if (v) blend(px, o, PALETTE[(v - 1) % PALETTE.length], a);
    }
  }
  octx.putImageData(pixels, 0, 0);
  const L = S.layout = layout(rows, cols);
  ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.imageSmoothingEnabled = false;
  ctx.save();
  if (L.flip) { ctx.translate(L.ox, L.oy + L.dh); ctx.scale(1, -1); ctx.drawImage(off, 0, 0, L.dw, L.dh); }
  else ctx.drawImage(off, L.ox, L.oy, L.dw, L.dh);
  ctx.restore();
  drawPrompt();
  $("slice-label").textContent = `${index} / ${S.info.shape[axis] - 1}`;
  document.body.dataset.drawn = `${S.name}/${axis}/${index}`;
  prefetch();
}

function drawPrompt() {
  const p = S.prompt, d = S.drag;
  ctx.lineWidth = 2;
  const box = d && d.box ? d.box : p && p.key === sliceKey() ? p.box : null;
  if (box) {
    const [x0, y0] = toCanvas(box[0], box[1]), [x1, y1] = toCanvas(box[2], box[3]);
    ctx.strokeStyle = "#00ff66"; ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
  }
  if (p && p.key === sliceKey()) {
    p.points.forEach(([x, y], i) => {
      const [cx, cy] = toCanvas(x, y);
      ctx.fillStyle = p.labels[i] ? "#00ff66" : "#ff3355";
      ctx.beginPath(); ctx.arc(cx, cy, 5, 0, 2 * Math.PI); ctx.fill();
    });
  }
}

function legend() {
  const items = [];
  if (S.overlay === "diff" && S.info.has_gt && S.info.has_pred) {
    items.push(["agreement", TP], ["false positive (prediction only)", FP], ["false negative (missed)", FN]);
  } else if (S.overlay !== "none") {
    S.info.values.forEach((v, k) => items.push([`class ${k + 1} (value ${v})`, PALETTE[k % PALETTE.length]]));
  }
  $("legend").innerHTML = "";
  for (const [text, c] of items) {
    const span = document.createElement("span");
    span.textContent = text; span.style.setProperty("--c", `rgb(${c.join(",")})`);
    $("legend").appendChild(span);
  }
}

// ------------------------------------------------------------------ case list
function fmt(v, digits) { return v === null || v === undefined ? "–" : v.toFixed(digits); }

function renderCases() {
  const { key, asc } = S.sort;
  const value = (c) => key === "name" ? c.name : c.metrics[key] ?? c.metrics[Object.keys(c.metrics).find((k) => k.startsWith(key))];
  const rows = [...S.cases].sort((a, b) => {
    const va = value(a), vb = value(b);
    if (va == null && vb == null) return a.name.localeCompare(b.name);
    if (va == null) return 1; if (vb == null) return -1;  // cases without the metric last
    const order = typeof va === "string" ? va.localeCompare(vb) : va - vb;
    return asc ? order : -order;
  });
  const body = $("cases").tBodies[0]; body.innerHTML = "";
  for (const c of rows) {
    const tr = body.insertRow(); tr.dataset.name = c.name;
    if (c.name === S.name) tr.className = "selected";
    const qcKey = Object.keys(c.metrics).find((k) => k.toLowerCase().startsWith("qc"));
    [(c.accepted ? "✓ " : "") + c.name, fmt(c.metrics.dice, 3), fmt(c.metrics.hd95, 1), fmt(c.metrics.nsd, 3), fmt(qcKey ? c.metrics[qcKey] : null, 3)]
      .forEach((text) => { tr.insertCell().textContent = text; });
    tr.onclick = () => openCase(c.name);
  }
  for (const th of $("cases").tHead.rows[0].cells) {
    th.className = th.dataset.key === key ? (asc ? "sorted" : "sorted desc") : "";
  }
}

// ------------------------------------------------------------------ window / level
function applyPreset(name) {
  const t = S.info.intensity;
  if (name === "full") S.window = [t.max - t.min || 1, (t.max + t.min) / 2];
  else if (PRESETS[name]) S.window = PRESETS[name].slice();
  else S.window = [t.high - t.low || 1, (t.high + t.low) / 2];  // auto and MR: robust percentiles
  $("ww").value = +S.window[0].toPrecision(5); $("wl").value = +S.window[1].toPrecision(5);
}

// ------------------------------------------------------------------ cases and slices
async function openCase(name) {
  await busy(`opening ${name}`, async () => {
    const info = await (await api(`api/cases/${encodeURIComponent(name)}`)).json();
    S.name = name; S.info = info; S.undo = []; S.prompt = null;
    const axisSelect = $("axis");
    for (const option of axisSelect.options) option.disabled = info.is_2d && option.value !== "0";
    if (info.is_2d) S.axis = 0;
    axisSelect.value = String(S.axis);
    $("class").innerHTML = info.values.map((v, k) => `<option value="${k + 1}">${k + 1} (value ${v})</option>`).join("");
    S.cls = 1;
    S.overlay = info.has_gt && info.has_pred ? "diff" : info.has_pred ? "pred" : info.has_gt ? "gt" : "work";
    $("overlay").value = S.overlay;
    applyPreset($("preset").value);
    setSlice(Math.floor(info.shape[S.axis] / 2));
    renderCases(); legend();
    $("metrics").textContent = info.per_class.map((c) =>
      `class ${c.class}${c.name ? " " + c.name : ""}: Dice ${fmt(c.dice, 3)} · HD95 ${fmt(c.hd95, 1)} · NSD ${fmt(c.nsd, 3)}`).join("   |   ");
    await draw();
    setStatus(`${name}: ${info.shape.join(" × ")} voxels, spacing ${info.spacing.map((s) => +s.toFixed(3)).join(" × ")} mm`);
  });
}

function sliceKey() { return `${S.name}/${S.axis}/${S.index}`; }

function setSlice(index) {
  const count = S.info.shape[S.axis];
  S.index = Math.max(0, Math.min(count - 1, index));
  $("slice").max = count - 1; $("slice").value = S.index;
}

function moveSlice(delta) { if (S.info) { setSlice(S.index + delta); draw(); } }

function sizeCanvas() {  // fill the viewer, leaving room for the legend and metrics lines below
  const box = $("viewer").getBoundingClientRect();
  canvas.width = Math.max(200, Math.floor(box.width - 20));
  canvas.height = Math.max(200, Math.floor(window.innerHeight - canvas.getBoundingClientRect().top - 70));
}
window.addEventListener("resize", () => { sizeCanvas(); draw(); });
window.addEventListener("beforeunload", (event) => {  // unsaved edits stay on the server, but say so
  if (S.dirty) { event.preventDefault(); event.returnValue = ""; }
});

async function start() {  // called at the end of edit.js, once every handler is in place
  try {
    const session = await (await api("api/session")).json();
    $("session").textContent = `${session.cases} case(s) · model: ${session.model || "none (review only)"} · corrections: ${session.corrections}`;
    S.cases = (await (await api("api/cases")).json()).cases;
    renderCases(); selectTool("box");
    sizeCanvas();
    const first = $("cases").tBodies[0].rows[0];
    if (first) await openCase(first.dataset.name);
    document.body.dataset.state = "idle";
  } catch (error) { setStatus(error.message, true); document.body.dataset.state = "error"; }
}
