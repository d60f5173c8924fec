// The live view page: subscribes to the feed in JSON mode, keeps a LiveModel
// (the same code the server snapshots), and draws one lane per device on a
// canvas. Only the lanes in view are drawn, so hundreds of devices cost what
// a screenful costs.
import { LiveModel } from "./model.js";
import { formatDuration } from "./duration.js";
import { openBatch } from "./batch.js";

const LANE_H = 46;
/** The label column is at least this wide, and grows (to 40% of the lanes) until no label is cut. */
const LABEL_MIN_W = 190;
let LABEL_W = LABEL_MIN_W;
const HOST_COLORS = {
  adding: "#a9c9ec", present: "#3d7cc9", removing: "#f08c3a", stuck: "#b3261e",
  refused: "#9e9e9e", failed: "#616161",
};
const GUEST_COLORS = {
  attaching: "#a8dbb2", attached: "#3b9b52", running: "#1f6e34", "attach-failed": "#9e9e9e",
  deactivated: "#f2b661", detaching: "#e0562b", detached: "#b7b3d6", panic: "#000000",
};
/** A guest detach lasting longer than this (trace time) is shown as stuck. */
const STUCK_NS = 2e9;

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const canvas = /** @type {HTMLCanvasElement} */ ($("canvas"));
const axis = /** @type {HTMLCanvasElement} */ ($("axis"));
const lanesEl = $("lanes");
const spacer = $("spacer");
const labels = $("labels");

const params = new URLSearchParams(location.hash.slice(1));
const token = params.get("token") ?? "";

const S = {
  model: new LiveModel(),
  ws: /** @type {WebSocket | null} */ (null),
  feedPath: "/feed?format=json",
  source: "live",
  status: "idle",
  control: false,
  ops: /** @type {string[]} */ ([]),
  selectedKey: "",
  selectedN: -1,
  follow: true,
  /** Window width in ns; 0 = everything. */
  span: 0,
  v0: 0,
  v1: 1,
  renderedVerdicts: 0,
  firstVerdictN: 0,
  dirty: true,
  reconnectMs: 500,
  nextId: 1,
  /** Whether this page has seen a live feed it can go back to. */
  wasLive: false,
};

// ---------------------------------------------------------------- connection

function connect(path) {
  if (S.ws) {
    S.ws.onclose = null;
    S.ws.close(1000, "switching feed");
  }
  S.feedPath = path;
  // batch=1: live messages arrive grouped, one "batch" message per server write (PROTOCOL.md).
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}${/[?&]batch=/.test(path) ? "" : "&batch=1"}`;
  const ws = new WebSocket(url);
  S.ws = ws;
  setConn("connecting", "");
  ws.onopen = () => {
    S.reconnectMs = 500;
    setConn("connected", "ok");
    if (token) send({ type: "auth", token });
  };
  ws.onmessage = (ev) => {
    if (typeof ev.data !== "string") return;
    let m;
    try {
      m = JSON.parse(ev.data);
    } catch {
      return notice("feed sent a message that is not JSON; ignored");
    }
    onMessage(m);
  };
  ws.onclose = (ev) => {
    if (S.ws !== ws) return;
    setConn(`closed ${ev.code}${ev.reason ? ": " + ev.reason : ""}`, "bad");
    // A live storm may be restarted on the same port; a replay is over.
    if (S.source === "live" && ev.code !== 1000) {
      setTimeout(() => S.ws === ws && connect(S.feedPath), S.reconnectMs);
      S.reconnectMs = Math.min(S.reconnectMs * 2, 10000);
    }
  };
}

function send(m) {
  if (S.ws && S.ws.readyState === WebSocket.OPEN) S.ws.send(JSON.stringify(m));
}

function control(op, args = {}) {
  send({ type: "control", id: S.nextId++, op, ...args });
}

function onMessage(m) {
  switch (m.type) {
    case "snapshot":
      S.model = LiveModel.fromJSON(m.model);
      S.source = m.source;
      if (m.source === "live") S.wasLive = true;
      S.status = m.status;
      S.control = m.control;
      S.ops = m.ops;
      if (m.resync) notice("this page fell behind: resynchronised from a snapshot");
      resetVerdicts();
      updateControls();
      break;
    case "batch":
      // A record is itself, numbered from the batch's "from", its growing numbers as differences; anything else is its message (PROTOCOL.md).
      openBatch(m, (i, x) => S.model.apply(x, i), onMessage);
      break;
    case "header":
      S.model.header = m.header;
      break;
    case "record":
      S.model.apply(m.record, m.index);
      break;
    case "verdict":
      S.model.applyVerdict(m.verdict, m.tNs);
      break;
    case "status":
      S.status = m.status;
      if (m.speed !== undefined) /** @type {HTMLSelectElement} */ ($("speed")).value = String(m.speed);
      updateControls();
      break;
    case "missed":
      notice(`missed ${m.count} records (#${m.fromIndex}–#${m.toIndex}) while this page was behind`);
      break;
    case "auth":
      S.control = m.control;
      if (!m.ok || !m.control) notice(`control token refused${m.error ? ": " + m.error : ""}; read-only`);
      updateControls();
      break;
    case "reply":
      if (!m.ok) notice(`${m.op} refused: ${m.error}`);
      break;
    case "error":
      notice(m.error);
      break;
    case "note":
      notice(m.text);
      break;
  }
  S.dirty = true;
}

function setConn(text, cls) {
  const el = $("conn");
  el.textContent = text;
  el.className = "pill " + cls;
}

let noticeTimer = 0;
function notice(text) {
  const el = $("notice");
  el.textContent = text;
  el.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (el.hidden = true), 8000);
}

// ---------------------------------------------------------------- controls

/** Whether the run (or replay) is over or on its way out: nothing left to pause, resume, stop or hot-remove. */
function runOver() {
  return S.status === "ended" || S.status === "stopped" || S.status === "stopping";
}

function updateControls() {
  const ctl = $("controls");
  const over = runOver();
  ctl.hidden = !(S.control && S.ops.length > 0);
  for (const b of ctl.querySelectorAll("button")) {
    b.hidden = !S.ops.includes(b.dataset.op);
    b.disabled = over;
    b.title = over ? `the run has ${S.status === "stopping" ? "been told to stop" : "ended"}` : "";
  }
  $("speed").hidden = !S.ops.includes("speed");
  /** @type {HTMLSelectElement} */ ($("speed")).disabled = over;
  for (const id of ["hold", "release", "remove", "hold-count", "hold-kind"]) /** @type {HTMLButtonElement} */ ($(id)).disabled = over;
  $("back-live").hidden = S.source === "live" || !S.wasLive;
  renderSelection();
}

$("controls").addEventListener("click", (ev) => {
  const b = /** @type {HTMLElement} */ (ev.target);
  if (b.dataset && b.dataset.op) control(b.dataset.op);
});
$("speed").addEventListener("change", () => control("speed", { speed: /** @type {HTMLSelectElement} */ ($("speed")).value }));
$("hold").addEventListener("click", () =>
  control("holdRefs", {
    nicId: S.selectedKey,
    kind: /** @type {HTMLSelectElement} */ ($("hold-kind")).value,
    count: Number(/** @type {HTMLInputElement} */ ($("hold-count")).value) || 1,
  }),
);
$("release").addEventListener("click", () => control("releaseRefs", { nicId: S.selectedKey }));
$("remove").addEventListener("click", () => control("removeNic", { nicId: S.selectedKey }));
$("back-live").addEventListener("click", () => {
  S.source = "live";
  connect("/feed?format=json");
});

$("fit").addEventListener("click", () => {
  S.span = 0;
  setFollow(true);
});
$("last10").addEventListener("click", () => {
  S.span = 10e9;
  setFollow(true);
});
$("zoom-in").addEventListener("click", () => zoom(0.5, 0.5));
$("zoom-out").addEventListener("click", () => zoom(2, 0.5));
$("follow").addEventListener("change", (ev) => setFollow(/** @type {HTMLInputElement} */ (ev.target).checked));

function setFollow(on) {
  S.follow = on;
  /** @type {HTMLInputElement} */ ($("follow")).checked = on;
  S.dirty = true;
}

/** Zooms the time window by factor around a point (0..1 across the plot). */
function zoom(factor, at) {
  const w = S.v1 - S.v0;
  const c = S.v0 + w * at;
  const nw = Math.max(1e5, w * factor);
  S.v0 = c - nw * at;
  S.v1 = S.v0 + nw;
  S.span = nw;
  setFollow(false);
}

canvas.addEventListener("wheel", (ev) => {
  if (!ev.ctrlKey && !ev.shiftKey) return;
  ev.preventDefault();
  const r = canvas.getBoundingClientRect();
  const at = Math.min(1, Math.max(0, (ev.clientX - r.left - LABEL_W) / (r.width - LABEL_W)));
  zoom(ev.deltaY > 0 ? 1.25 : 0.8, at);
}, { passive: false });

lanesEl.addEventListener("scroll", () => (S.dirty = true));
window.addEventListener("resize", () => (S.dirty = true));
lanesEl.addEventListener("click", (ev) => {
  const r = lanesEl.getBoundingClientRect();
  const row = Math.floor((ev.clientY - r.top + lanesEl.scrollTop) / LANE_H);
  const lane = lanesCache[row];
  if (lane) select(lane.key, -1);
});

// ---------------------------------------------------------------- violations

function resetVerdicts() {
  $("violations").textContent = "";
  S.renderedVerdicts = 0;
  S.firstVerdictN = 0;
}

/** @param {any} v */
function verdictItem(v) {
  const li = document.createElement("li");
  li.dataset.n = String(v.n);
  li.dataset.key = v.key;
  li.dataset.rule = v.rule;
  li.title = `verdict ${v.n + 1}, record #${v.recordIndex}` + (v.holders.length ? `; holders: ${v.holders.join(", ")}` : "");
  const sev = document.createElement("span");
  sev.className = "sev " + v.severity;
  sev.textContent = v.severity;
  const rule = document.createElement("span");
  rule.className = "rule";
  rule.textContent = v.rule;
  const dev = document.createElement("span");
  dev.className = "dev";
  dev.textContent = [v.nicId, v.device].filter(Boolean).join(" / ");
  const time = document.createElement("time");
  time.textContent = fmtT(v.tNs - Math.max(0, S.model.tFirstNs));
  const msg = document.createElement("span");
  msg.className = "msg";
  msg.textContent = v.message;
  li.append(time, sev, rule, dev, msg);
  return li;
}

/**
 * The violations list: causes in run order, each consequence under its cause
 * (docs/cascades.md) in a folded list with its count; a consequence whose
 * cause is no longer kept stands on its own, labelled.
 */
function renderVerdicts() {
  const list = $("violations");
  const vs = S.model.verdicts;
  const total = S.model.counters.verdicts;
  if (S.renderedVerdicts >= total) return;
  // Verdicts dropped from the model's window are dropped from the list too (the first ones never are).
  const kept = new Set(vs.map((v) => v.n));
  for (const li of [...list.querySelectorAll("li[data-n]")]) if (!kept.has(Number(/** @type {HTMLElement} */ (li).dataset.n))) li.remove();
  const frag = document.createDocumentFragment();
  for (const v of vs) {
    if (v.n < S.renderedVerdicts) continue;
    const li = verdictItem(v);
    const causeLi = v.causeN >= 0 ? list.querySelector(`li.cause[data-n="${v.causeN}"]`) ?? frag.querySelector?.(`li.cause[data-n="${v.causeN}"]`) : null;
    if (v.causeN >= 0 && causeLi) {
      li.classList.add("consequence");
      let box = /** @type {HTMLDetailsElement | null} */ (causeLi.querySelector("details.cons"));
      if (!box) {
        box = document.createElement("details");
        box.className = "cons";
        const sum = document.createElement("summary");
        box.append(sum, document.createElement("ol"));
        causeLi.append(box);
      }
      box.querySelector("ol")?.append(li);
      continue;
    }
    if (v.causeN >= 0) {
      li.classList.add("consequence", "orphan");
      const note = document.createElement("span");
      note.className = "cascade";
      note.textContent = `consequence of verdict ${v.causeN + 1}`;
      li.append(note);
    } else li.classList.add("cause");
    frag.append(li);
  }
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
  list.append(frag);
  // Counts beside each cause: all its consequences, also those no longer kept.
  for (const v of vs) {
    if (v.causeN >= 0 || v.consequences === 0) continue;
    const sum = list.querySelector(`li.cause[data-n="${v.n}"] > details.cons > summary`);
    if (sum) sum.textContent = `${v.consequences} consequence${v.consequences === 1 ? "" : "s"} of this`;
  }
  if (atBottom) list.scrollTop = list.scrollHeight;
  S.renderedVerdicts = total;
  const dropped = S.model.counters.verdictsDropped;
  const causes = S.model.causesSeen;
  $("v-note").textContent = `${total}` + (causes < total ? ` (${causes} cause${causes === 1 ? "" : "s"})` : "") + (dropped ? ` (${dropped} later ones not kept; the first are)` : "");
}

$("violations").addEventListener("click", (ev) => {
  const li = /** @type {HTMLElement | null} */ (/** @type {HTMLElement} */ (ev.target).closest("li"));
  if (!li) return;
  const v = S.model.verdicts.find((x) => x.n === Number(li.dataset.n));
  if (!v) return;
  if (!v.key || !S.model.devices.has(v.key)) notice(`the device of this violation is not in view (${v.nicId || v.device || "no device"})`);
  select(v.key, v.n);
  // Centre the time window on the event that broke the rule.
  const total = S.model.tLastNs - Math.max(0, S.model.tFirstNs);
  const w = S.span > 0 ? S.span : Math.min(10e9, Math.max(2e6, total / 2));
  S.v0 = Math.max(Math.max(0, S.model.tFirstNs) - w * 0.05, v.tNs - w / 2);
  S.v1 = S.v0 + w;
  S.span = w;
  setFollow(false);
});

function select(key, n) {
  S.selectedKey = key;
  S.selectedN = n;
  for (const li of $("violations").querySelectorAll("li.active")) li.classList.remove("active");
  if (n >= 0) $("violations").querySelector(`li[data-n="${n}"]`)?.classList.add("active");
  const row = lanesCache.findIndex((d) => d.key === key);
  if (row < 0) {
    // The lane list may be stale (new device since the last frame).
    lanesCache = S.model.lanes();
  }
  const r2 = lanesCache.findIndex((d) => d.key === key);
  if (r2 >= 0) {
    const top = r2 * LANE_H - lanesEl.clientHeight / 2 + LANE_H / 2;
    lanesEl.scrollTop = Math.max(0, top);
  }
  S.dirty = true;
  renderSelection();
}

function renderSelection() {
  const d = S.model.devices.get(S.selectedKey);
  $("selection").hidden = !d;
  if (!d) return;
  $("sel-title").textContent = `${d.nicId || d.key}${d.names.length ? " — " + d.names.join(", ") : ""}`;
  $("sel-info").textContent =
    `${d.kind || d.driver || "?"} on ${d.bus || "?"} ${d.port} · QEMU ${d.host.phase || "—"} · guest ${d.guest.phase || "—"} · refs ${d.refs}` +
    (d.vetoes ? ` · ${d.vetoes} veto(es)` : "");
  const ul = $("sel-holders");
  ul.textContent = "";
  for (const [h, v] of Object.entries(d.holders)) {
    const li = document.createElement("li");
    li.textContent = `${v.count}× ${v.kind} ${h}${v.desc ? " (" + v.desc + ")" : ""}`;
    ul.append(li);
  }
  $("sel-actions").hidden = !(S.control && S.source === "live" && d.nicId && S.ops.includes("holdRefs"));
}

// ---------------------------------------------------------------- drawing

/** @type {any[]} */
let lanesCache = [];
/** @type {Map<string, HTMLElement>} */
const labelEls = new Map();

function frame() {
  if (S.dirty) {
    S.dirty = false;
    draw();
  }
  requestAnimationFrame(frame);
}

function draw() {
  const m = S.model;
  lanesCache = m.lanes();
  const c = m.counters;
  $("c-cycles").textContent = String(c.cycles);
  $("c-inflight").textContent = String(c.inFlight);
  $("c-fps").textContent = String(c.framesPerSecond);
  $("c-lost").textContent = String(c.lostFrames);
  $("c-lost").classList.toggle("alarm", c.lostFrames > 0);
  $("c-verdicts").textContent = String(c.verdicts);
  $("c-verdicts").classList.toggle("alarm", c.verdicts > 0);
  $("c-devices").textContent = String(m.devices.size);
  $("c-records").textContent = String(c.records);
  $("c-time").textContent = fmtT(m.tLastNs - Math.max(0, m.tFirstNs));
  const no = $("not-observed");
  no.hidden = m.notObserved.length === 0;
  // Said as the text summary says it (src/report/format.ts notObservedItem): "WHAT (why)".
  no.textContent = `not observed: ${m.notObserved.map((s) => (s.indexOf(": ") > 0 ? `${s.slice(0, s.indexOf(": "))} (${s.slice(s.indexOf(": ") + 2)})` : s)).join("; ")}`;
  const h = m.header;
  if (h) $("run").textContent = `${h.scenarioName ?? "storm"} · seed ${h.seed ?? 0} · ${h.guestProfile ?? "?"} guest · ${h.modelProfile ?? ""} model`;
  const st = $("status");
  st.textContent = S.source === "replay" ? `replay ${S.status}` : S.status;
  st.className = "pill " + (S.status === "paused" ? "paused" : S.status === "running" ? "ok" : "");
  $("lanes-note").textContent =
    `${lanesCache.length} lanes` + (c.devicesDropped ? ` · ${c.devicesDropped} older finished devices no longer kept (limit ${m.limits.maxDevices})` : "");

  // Time window.
  const first = Math.max(0, m.tFirstNs);
  if (S.follow) {
    S.v1 = Math.max(m.tLastNs, first + 1e6);
    S.v0 = S.span > 0 ? S.v1 - S.span : first;
  }
  $("window").textContent = `${fmtT(S.v0 - first)} – ${fmtT(S.v1 - first)}`;

  const dpr = window.devicePixelRatio || 1;
  const W = lanesEl.clientWidth;
  const H = lanesEl.clientHeight;
  spacer.style.height = `${lanesCache.length * LANE_H}px`;
  spacer.style.marginTop = `-${H}px`;
  for (const cv of [canvas, axis]) {
    const ch = cv === axis ? 20 : H;
    if (cv.width !== Math.round(W * dpr) || cv.height !== Math.round(ch * dpr)) {
      cv.width = Math.round(W * dpr);
      cv.height = Math.round(ch * dpr);
      cv.style.width = `${W}px`;
      cv.style.height = `${ch}px`;
    }
  }
  const x = (t) => LABEL_W + ((t - S.v0) / (S.v1 - S.v0 || 1)) * (W - LABEL_W - 6);
  drawAxis(dpr, W, x, first);

  const g = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, W, H);
  const top = lanesEl.scrollTop;
  const firstRow = Math.max(0, Math.floor(top / LANE_H));
  const lastRow = Math.min(lanesCache.length - 1, Math.ceil((top + H) / LANE_H));
  const seen = new Set();
  g.save();
  g.beginPath();
  g.rect(LABEL_W, 0, W - LABEL_W, H);
  g.clip();
  for (let row = firstRow; row <= lastRow; row++) {
    const d = lanesCache[row];
    const y = row * LANE_H - top;
    drawLane(g, d, y, W, x, m.tLastNs);
    seen.add(d.key);
    placeLabel(d, row, m.tLastNs);
  }
  g.restore();
  for (const [k, el] of labelEls) {
    if (!seen.has(k)) {
      el.remove();
      labelEls.delete(k);
    }
  }
  fitLabels(W);
  renderVerdicts();
  if (!$("selection").hidden || S.selectedKey) renderSelection();
}

function drawAxis(dpr, W, x, first) {
  const g = /** @type {CanvasRenderingContext2D} */ (axis.getContext("2d"));
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, W, 20);
  g.fillStyle = "#6b6b70";
  g.font = "11px system-ui, sans-serif";
  g.fillText("trace time", 6, 14);
  const span = S.v1 - S.v0;
  const step = niceStep(span / Math.max(1, (W - LABEL_W) / 90));
  const startTick = Math.ceil((S.v0 - first) / step) * step + first;
  g.strokeStyle = "#cfcfcf";
  for (let t = startTick; t <= S.v1; t += step) {
    const px = x(t);
    g.beginPath();
    g.moveTo(px + 0.5, 12);
    g.lineTo(px + 0.5, 20);
    g.stroke();
    g.fillText(fmtT(t - first), px + 3, 11);
  }
}

function drawLane(g, d, y, W, x, now) {
  const sel = d.key === S.selectedKey;
  g.fillStyle = sel ? "#fff3b0" : d.order % 2 ? "#f6f6f4" : "#ffffff";
  g.fillRect(LABEL_W, y, W - LABEL_W, LANE_H);
  g.fillStyle = "#e6e6e6";
  g.fillRect(LABEL_W, y + LANE_H - 1, W - LABEL_W, 1);
  // QEMU side above, guest side below, then references held.
  spans(g, d.host.spans, HOST_COLORS, y + 4, 9, x, now);
  spans(g, d.guest.spans, GUEST_COLORS, y + 16, 11, x, now);
  g.fillStyle = "#7b5ea7";
  for (const dr of d.drains) {
    const x0 = x(dr.t0);
    const x1 = x(dr.t1 < 0 ? now : dr.t1);
    g.fillRect(x0, y + 28, Math.max(1, x1 - x0), 2);
  }
  refsPlot(g, d, y + 32, 11, x, now);
  for (const mk of d.marks) {
    const px = Math.round(x(mk.t)) + 0.5;
    g.strokeStyle = mk.severity === "WARNING" ? "#e08a00" : "#c62828";
    g.lineWidth = mk.n === S.selectedN ? 3 : 1.5;
    g.beginPath();
    g.moveTo(px, y + 1);
    g.lineTo(px, y + LANE_H - 2);
    g.stroke();
    g.fillStyle = g.strokeStyle;
    g.beginPath();
    g.moveTo(px - 4, y + 1);
    g.lineTo(px + 4, y + 1);
    g.lineTo(px, y + 7);
    g.fill();
  }
  g.lineWidth = 1;
}

function spans(g, list, colors, y, h, x, now) {
  for (const s of list) {
    const col = colors[s.p];
    if (!col) continue;
    const x0 = x(s.t0);
    const x1 = x(s.t1 < 0 ? now : s.t1);
    if (x1 < LABEL_W || x0 > x(Infinity)) continue;
    g.fillStyle = col;
    g.fillRect(x0, y, Math.max(1.5, x1 - x0), h);
  }
}

function refsPlot(g, d, y, h, x, now) {
  const pts = d.points;
  if (pts.length === 0) return;
  let max = 1;
  for (const p of pts) if (p[1] > max) max = p[1];
  const yv = (v) => y + h - (v / max) * h;
  g.strokeStyle = "#6a3d9a";
  g.beginPath();
  let prev = 0;
  g.moveTo(x(pts[0][0]), yv(0));
  for (const [t, v] of pts) {
    const px = x(t);
    g.lineTo(px, yv(prev));
    g.lineTo(px, yv(v));
    prev = v;
  }
  g.lineTo(x(now), yv(prev));
  g.stroke();
}

/**
 * Widens the label column until no visible label is cut (a label says which
 * NIC, which devices and which phases: cutting it hides the answer), up to
 * 40% of the lanes' width; past that a label ends in "…" and its tooltip
 * holds the whole text. It never narrows again, so lanes do not jump.
 */
function fitLabels(W) {
  let need = 0;
  // Each line clips itself (for the ellipsis): its scrollWidth is what it needs; 13 px are the label's padding and border.
  for (const el of labelEls.values()) for (const line of el.children) need = Math.max(need, line.scrollWidth + 13);
  const w = Math.max(LABEL_MIN_W, Math.min(Math.ceil(need), Math.floor(W * 0.4)));
  if (w <= LABEL_W) return;
  LABEL_W = w;
  lanesEl.style.setProperty("--label-w", `${w}px`);
  S.dirty = true;
}

function placeLabel(d, row, now) {
  let el = labelEls.get(d.key);
  if (!el) {
    el = document.createElement("div");
    el.className = "lane-label";
    el.dataset.key = d.key;
    el.addEventListener("click", (ev) => {
      ev.stopPropagation();
      select(d.key, -1);
    });
    labels.append(el);
    labelEls.set(d.key, el);
  }
  el.style.top = `${row * LANE_H}px`;
  const stuck =
    (d.guest.phase === "detaching" && now - d.guest.since > STUCK_NS) || d.host.phase === "stuck";
  el.classList.toggle("sel", d.key === S.selectedKey);
  el.classList.toggle("stuck", stuck);
  el.classList.toggle("has-v", d.marks.length > 0);
  const text = `${d.nicId || d.key}|${d.names.join(",")}|${d.guest.phase}|${d.host.phase}|${d.refs}|${stuck}`;
  if (el.dataset.text === text) return;
  el.dataset.text = text;
  el.textContent = "";
  const b = document.createElement("b");
  b.textContent = d.nicId || d.key;
  const names = document.createElement("span");
  names.className = "sub";
  names.textContent = ` ${d.names.join(", ")} ${d.bus}`;
  const line2 = document.createElement("div");
  const ph = document.createElement("span");
  ph.className = "phase";
  ph.title = "QEMU side / guest side";
  ph.textContent = `${d.host.phase || "—"} / ${d.guest.phase || "—"}${stuck ? " (stuck)" : ""}`;
  const refs = document.createElement("span");
  refs.className = "sub";
  refs.textContent = ` · refs held ${d.refs}`;
  line2.append(ph, refs);
  const line1 = document.createElement("div");
  line1.append(b, names);
  el.append(line1, line2);
  el.title = `${line1.textContent}\n${line2.textContent}`;
}

function niceStep(raw) {
  const p = Math.pow(10, Math.floor(Math.log10(Math.max(raw, 1))));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

const fmtT = formatDuration;

// ---------------------------------------------------------------- saved traces

async function upload(file) {
  notice(`uploading ${file.name} (${file.size} bytes)…`);
  const speed = /** @type {HTMLSelectElement} */ ($("speed")).value || "max";
  let res;
  try {
    res = await fetch(`/replay?speed=${encodeURIComponent(speed === "1" ? "max" : speed)}`, {
      method: "POST",
      // The server asks for the control token before it reads an upload (a live storm's always).
      headers: token ? { "content-type": "application/octet-stream", "x-plugstorm-token": token } : { "content-type": "application/octet-stream" },
      body: file,
    });
  } catch (err) {
    return notice(`upload failed: ${err}`);
  }
  if (!res.ok) return notice(`${file.name}: ${(await res.text()).trim()}`);
  const j = await res.json();
  S.source = "replay";
  S.model = new LiveModel();
  resetVerdicts();
  S.selectedKey = "";
  notice(`replaying ${file.name}`);
  connect(j.feed);
}

const dz = $("dropzone");
let dragDepth = 0;
window.addEventListener("dragenter", (ev) => {
  ev.preventDefault();
  dragDepth++;
  dz.hidden = false;
});
window.addEventListener("dragleave", () => {
  if (--dragDepth <= 0) dz.hidden = true;
});
window.addEventListener("dragover", (ev) => ev.preventDefault());
window.addEventListener("drop", (ev) => {
  ev.preventDefault();
  dragDepth = 0;
  dz.hidden = true;
  const f = ev.dataTransfer && ev.dataTransfer.files[0];
  if (f) void upload(f);
});
$("file").addEventListener("change", (ev) => {
  const f = /** @type {HTMLInputElement} */ (ev.target).files?.[0];
  if (f) void upload(f);
});

// For tests and the curious: the page's state.
Object.defineProperty(window, "plugstorm", { value: S });

connect(S.feedPath);
requestAnimationFrame(frame);
