// The supervisors' wallboard. Live from /ws/supervisor: a snapshot on connect, then frames.
// Every value is put on the page with textContent (never as HTML): caller names and pause
// reasons come from outside. Waits tick locally from each value's server time, corrected
// by the server/browser clock offset measured on connect.
"use strict";
const $ = (id) => document.getElementById(id);
const QUEUE_LABELS = { mandarin: "普通话", cantonese: "粤语", minnan: "闽南语", wu: "吴语", sichuanese: "四川话" };
const STATE_LABELS = { available: "空闲", ringing: "振铃", on_call: "通话中", wrap_up: "话后处理", paused: "暂停", unavailable: "离线", logged_out: "已签出" };
const STATE_ORDER = ["on_call", "ringing", "available", "wrap_up", "paused", "unavailable", "logged_out"];
const HISTORY_SECONDS = 3600, SAMPLE_SECONDS = 5;

const live = { queues: {}, agents: {}, abandoned: [], connected: false };
const state = { token: sessionStorage.getItem("hotline.supervisor.token") || "", phone: localStorage.getItem("hotline.supervisor.phone") || "", lastId: "", ws: null, offset: 0, history: [], tickers: [], pending: false };

const serverNow = () => Date.now() / 1000 + state.offset;
function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = text === null || text === "" ? "—" : String(text); if (cls) e.className = cls; return e; }
function cells(values) { const tr = document.createElement("tr"); for (const v of values) { if (v instanceof Node) { const td = document.createElement("td"); td.append(v); tr.append(td); } else tr.append(el("td", v)); } return tr; }
function pct(x) { return x === null || x === undefined ? "—" : (x * 100).toFixed(1) + "%"; }
function secs(x) { return x === null || x === undefined ? "—" : Math.round(x) + " 秒"; }
function duration(s) { s = Math.max(0, Math.floor(s)); const m = Math.floor(s / 60); return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}` : `${m}:${String(s % 60).padStart(2, "0")}`; }
function masked(number) { return number ? "…" + String(number).slice(-4) : "未显示号码"; }
function log(message) { $("log").prepend(el("li", new Date().toLocaleTimeString() + " " + message)); }
function queueLabel(name) { return QUEUE_LABELS[name] ? `${QUEUE_LABELS[name]} (${name})` : name; }

// A span whose text is base + elapsed server time since `at`, refreshed every second.
function ticking(base, at, format = duration) { const span = el("span", ""); state.tickers.push({ span, base, at, format }); span.textContent = format(base + serverNow() - at); return span; }
function tick() { const now = serverNow(); for (const t of state.tickers) t.span.textContent = t.format(t.base + now - t.at); $("clock").textContent = new Date(now * 1000).toLocaleTimeString(); }

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { "Authorization": "Bearer " + state.token, "Content-Type": "application/json", ...(options.headers || {}) } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.message || response.statusText);
  return body;
}

// -- rendering --------------------------------------------------------------------------
function slClass(view) {
  if (view.service_level === null || view.service_level === undefined) return "tile";
  if (view.service_level >= view.target) return "tile ok";
  if (view.service_level >= view.target - 0.10) return "tile warn";
  return "tile bad";
}

function tile(name, view) {
  const box = el("div", undefined, slClass(view));
  box.dataset.queue = name;
  const title = el("h3"); title.append(el("span", queueLabel(name)), el("span", `目标 ${pct(view.target)} / ${view.service_level_seconds} 秒`));
  const sl = el("div", pct(view.service_level), "sl");
  const longest = el("div", undefined, "longest");
  const waits = (view.waiting || []).filter((c) => c.wait !== null && c.wait !== undefined);
  longest.append(el("span", `排队 ${view.waiting_count ?? 0} 人 · 最长等待 `));
  if (waits.length) longest.append(ticking(Math.max(...waits.map((c) => c.wait)), view._at)); else longest.append(el("span", "0:00"));
  const counts = view.counts || {};
  const dl = el("dl");
  for (const [label, value] of [["SL", pct(view.service_level)], ["SL2", pct(view.service_level2)], ["ASA", secs(view.asa)], ["AHT", secs(view.aht)],
    ["放弃率", pct(view.abandon_rate)], ["接通", counts.answered ?? 0], ["放弃", counts.abandoned ?? 0], ["短放弃", counts.short_abandoned ?? 0],
    ["超时", counts.timeout ?? 0], ["溢出", counts.overflow ?? 0]]) { dl.append(el("dt", label), el("dd", value)); }
  const list = el("ol", undefined, "waiting");
  for (const c of view.waiting || []) {
    const li = el("li", `${c.caller_name || ""} ${masked(c.caller_number)} · 已等 `);
    li.append(c.wait === null || c.wait === undefined ? el("span", "?") : ticking(c.wait, view._at));
    list.append(li);
  }
  box.append(title, sl, longest, dl, list);
  return box;
}

function agentActions(view) {
  const box = document.createDocumentFragment();
  const id = view.name || view.interface;
  if (view.state === "paused" || view.state === "wrap_up") {
    const b = el("button", "恢复"); b.type = "button"; b.onclick = () => act(`/api/agents/${encodeURIComponent(id)}/unpause`, {}, `恢复坐席 ${id}`); box.append(b);
  } else if (view.state !== "logged_out") {
    const b = el("button", "暂停", "warn"); b.type = "button";
    b.onclick = () => { const reason = prompt("暂停原因", "休息"); if (reason !== null) act(`/api/agents/${encodeURIComponent(id)}/pause`, { reason: reason.slice(0, 64) }, `暂停坐席 ${id}`); };
    box.append(b);
  }
  if (view.state === "on_call" && view.on_call_with) {
    for (const [mode, label] of [["listen", "监听"], ["whisper", "耳语"], ["barge", "强插"]]) {
      const b = el("button", label); b.type = "button";
      b.onclick = () => { if (!state.phone) { log("请先填写我的话机"); return; } act(`/api/calls/${encodeURIComponent(view.on_call_with)}/spy`, { mode, supervisor_phone: state.phone, agent_id: id }, `${label} 坐席 ${id}`); };
      box.append(b);
    }
  }
  return box;
}

function renderAgents() {
  const views = Object.values(live.agents).filter(Boolean);
  views.sort((a, b) => STATE_ORDER.indexOf(a.state) - STATE_ORDER.indexOf(b.state) || String(a.name).localeCompare(String(b.name)));
  $("agents").replaceChildren(...views.map((v) => cells([
    v.name || v.interface, el("span", STATE_LABELS[v.state] || v.state, "state " + v.state), v.reason || "",
    ticking(v.time_in_state || 0, v._at), (v.queues || []).map((q) => QUEUE_LABELS[q] || q).join("、"), v.handled ?? 0, secs(v.aht), agentActions(v),
  ])));
}

function renderAbandoned() {
  const free = Object.values(live.agents).filter((v) => v && v.state === "available");
  $("abandoned").replaceChildren(...live.abandoned.map((a) => {
    const pick = document.createElement("select");
    for (const v of free) { const o = el("option", v.name || v.interface); o.value = v.name || v.interface; pick.append(o); }
    const call = el("button", "回拨"); call.type = "button"; call.disabled = !a.caller_number || !free.length;
    call.onclick = () => act(`/api/abandoned/${encodeURIComponent(a.linkedid)}/callback`, { agent_id: pick.value }, `回拨 ${masked(a.caller_number)} 由坐席 ${pick.value}`);
    return cells([new Date(a.abandoned_at * 1000).toLocaleTimeString(), QUEUE_LABELS[a.queue] || a.queue, masked(a.caller_number), secs(a.wait), pick, call]);
  }));
}

function render() {
  state.pending = false;
  state.tickers = [];
  const names = Object.keys(live.queues).filter((n) => live.queues[n]).sort();
  $("tiles").replaceChildren(...(names.length ? names.map((n) => tile(n, live.queues[n])) : [el("p", "暂无实时数据", "empty")]));
  renderAgents();
  renderAbandoned();
  $("link").textContent = live.connected ? "" : "Asterisk 连接中断，数据可能已过时";
  $("link").className = live.connected ? "link" : "link down";
}
function schedule() { if (!state.pending) { state.pending = true; requestAnimationFrame(render); } }

// -- the last hour, drawn as SVG ---------------------------------------------------------
function sample() {
  const now = serverNow();
  const waiting = Object.values(live.queues).reduce((n, q) => n + ((q && q.waiting_count) || 0), 0);
  const available = Object.values(live.agents).filter((v) => v && v.state === "available").length;
  state.history.push({ t: now, waiting, available });
  while (state.history.length && state.history[0].t < now - HISTORY_SECONDS) state.history.shift();
  drawChart(now);
}

function drawChart(now) {
  const svg = $("chart"), ns = "http://www.w3.org/2000/svg", W = 600, H = 160;
  const top = Math.max(5, ...state.history.map((p) => Math.max(p.waiting, p.available)));
  const x = (t) => ((t - (now - HISTORY_SECONDS)) / HISTORY_SECONDS) * W, y = (v) => H - 12 - (v / top) * (H - 24);
  const nodes = [];
  for (let m = 0; m <= 60; m += 15) {
    const line = document.createElementNS(ns, "line");
    const gx = String((m / 60) * W);
    for (const [k, v] of [["x1", gx], ["x2", gx], ["y1", "0"], ["y2", String(H)], ["stroke", "#2c3e50"]]) line.setAttribute(k, v);
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", String(Math.min(W - 40, (m / 60) * W + 2))); label.setAttribute("y", String(H - 2)); label.setAttribute("fill", "#a9b7c6"); label.setAttribute("font-size", "10");
    label.textContent = m === 60 ? "现在" : `-${60 - m} 分`;
    nodes.push(line, label);
  }
  const max = document.createElementNS(ns, "text");
  max.setAttribute("x", "2"); max.setAttribute("y", "10"); max.setAttribute("fill", "#a9b7c6"); max.setAttribute("font-size", "10"); max.textContent = String(top);
  nodes.push(max);
  for (const [key, colour] of [["waiting", "#f5b041"], ["available", "#2ecc71"]]) {
    const path = document.createElementNS(ns, "polyline");
    path.setAttribute("points", state.history.map((p) => `${x(p.t).toFixed(1)},${y(p[key]).toFixed(1)}`).join(" "));
    path.setAttribute("fill", "none"); path.setAttribute("stroke", colour); path.setAttribute("stroke-width", "2");
    nodes.push(path);
  }
  svg.replaceChildren(...nodes);
}

// -- the feed -----------------------------------------------------------------------------
function stamp(view, at) { if (view) view._at = at; return view; }

function applySnapshot(snap) {
  live.queues = {}; live.agents = {};
  if (!snap) { live.abandoned = []; live.connected = false; return; }
  for (const [n, v] of Object.entries(snap.queues || {})) live.queues[n] = stamp(v, snap.at);
  for (const [i, v] of Object.entries(snap.agents || {})) live.agents[i] = stamp(v, snap.at);
  live.abandoned = snap.abandoned || [];
  live.connected = !!snap.connected;
}

function onFrame(m) {
  if (m.id) state.lastId = m.id;
  if (m.server_time) state.offset = m.server_time - Date.now() / 1000;
  switch (m.type) {
    case "snapshot": applySnapshot(m.snapshot); if (!state.history.length) setTimeout(sample, 0); break;
    case "queue": if (m.view) live.queues[m.queue] = stamp(m.view, m.at); else delete live.queues[m.queue]; break;
    case "agent": if (m.view) live.agents[m.interface] = stamp(m.view, m.at); else delete live.agents[m.interface]; break;
    case "caller.waiting": {
      // Show the caller at once; the queue frame that follows carries the whole list.
      const q = live.queues[m.queue] || stamp({ name: m.queue, waiting: [], waiting_count: 0, counts: {}, target: 0.8, service_level_seconds: 20 }, m.at);
      const entry = { ...(m.caller || { uniqueid: m.uniqueid, position: m.position, wait: 0 }) };
      entry.wait = entry.wait === null || entry.wait === undefined ? null : entry.wait + (q._at - m.at);
      if (!(q.waiting || []).some((c) => c.uniqueid === m.uniqueid)) { q.waiting = [...(q.waiting || []), entry]; q.waiting_count = q.waiting.length; }
      live.queues[m.queue] = q; break;
    }
    case "caller.left": { const q = live.queues[m.queue]; if (q) { q.waiting = (q.waiting || []).filter((c) => c.uniqueid !== m.uniqueid); q.waiting_count = q.waiting.length; } break; }
    case "abandoned": if (!live.abandoned.some((a) => a.linkedid === m.linkedid)) live.abandoned = [m, ...live.abandoned]; break;
    case "link": live.connected = m.connected; log(m.connected ? "Asterisk 已重新连接" : "Asterisk 连接中断"); break;
    case "action": log(`${m.action === "spy" ? "监控" : "回拨"} ${m.ok ? "成功" : "失败"} (${m.status}${m.reason ? " " + m.reason : ""})`); break;
    default: return;
  }
  schedule();
}

function connect() {
  if (!state.token) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const params = new URLSearchParams({ token: state.token });
  if (state.lastId) params.set("last_id", state.lastId); // only within this page's life
  const ws = new WebSocket(`${scheme}://${location.host}/ws/supervisor?${params}`);
  state.ws = ws;
  ws.onopen = () => { $("status").className = "status on"; $("status").textContent = "在线"; };
  ws.onmessage = (e) => { try { onFrame(JSON.parse(e.data)); } catch (err) { log("坏消息: " + err); } };
  ws.onclose = () => { $("status").className = "status off"; $("status").textContent = "已断开，重连中"; state.ws = null; setTimeout(connect, 1000); };
}

async function act(path, body, what) {
  try { const r = await api(path, { method: "POST", body: JSON.stringify(body) }); log(`${what}: ${r.status === "ringing" ? "振铃中" : "已执行"}`); }
  catch (err) { log(`${what} 失败: ${err.message}`); }
}

$("signin").onsubmit = (e) => {
  e.preventDefault();
  state.token = $("token").value.trim(); sessionStorage.setItem("hotline.supervisor.token", state.token);
  state.phone = $("phone").value.trim(); localStorage.setItem("hotline.supervisor.phone", state.phone);
  state.lastId = "";
  if (state.ws) state.ws.close(); else connect();
};

$("phone").value = state.phone;
setInterval(tick, 1000);
setInterval(sample, SAMPLE_SECONDS * 1000);
if (state.token) { $("token").value = state.token; connect(); }
