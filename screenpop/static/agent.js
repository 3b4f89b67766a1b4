// The agent's page. Every customer field is put on the page with textContent, never
// as HTML: names and notes come from callers and other agents.
"use strict";
const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem("hotline.token") || "", lastId: sessionStorage.getItem("hotline.lastId") || "", ws: null, call: null };

const DIALECTS = { mandarin: "普通话", cantonese: "粤语", minnan: "闽南语", wu: "吴语", sichuanese: "四川话" };
const dialect = (d) => (d ? DIALECTS[d] || d : "");
function text(el, value) { el.textContent = value === null || value === undefined || value === "" ? "—" : String(value); }
function row(cells) { const tr = document.createElement("tr"); for (const c of cells) { const td = document.createElement("td"); text(td, c); tr.appendChild(td); } return tr; }
function item(value) { const li = document.createElement("li"); text(li, value); return li; }
function log(message) { const li = item(new Date().toLocaleTimeString() + " " + message); $("log").prepend(li); }

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { "Authorization": "Bearer " + state.token, "Content-Type": "application/json", ...(options.headers || {}) } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.message || response.statusText);
  return body;
}

function showCustomer(c) {
  $("customer").hidden = false; $("candidates").hidden = true;
  text($("c-name"), c.name); text($("c-tier"), c.tier); text($("c-id"), c.id); text($("c-dialect"), dialect(c.preferred_dialect));
  $("c-phones").replaceChildren(...(c.phones || []).map((p) => item(`${p.e164} ${p.kind || ""} ${p.region || ""}`)));
  $("c-addresses").replaceChildren(...(c.addresses || []).map((a) => item(a.raw || a.normalised || "")));
  $("c-products").replaceChildren(...(c.products || []).map((p) => row([p.model, p.serial, p.purchase_date, p.warranty_end])));
  $("c-calls").replaceChildren(...(c.recent_calls || []).map((k) => row([k.arrived_at, k.outcome, k.agent, k.notes])));
}

function showCandidates(list, title) {
  $("customer").hidden = true; $("candidates").hidden = false;
  text($("cand-title"), title);
  $("cand-list").replaceChildren(...list.map((cand) => {
    const li = document.createElement("li");
    const label = document.createElement("span");
    text(label, `${cand.name} · ${cand.matched || cand.field || ""} · ${cand.score ?? ""}`);
    const pick = document.createElement("button");
    pick.type = "button"; pick.textContent = "就是此客户";
    pick.onclick = () => linkCustomer(cand.id ?? cand.customer_id);
    li.append(label, " ", pick);
    return li;
  }));
}

async function linkCustomer(customerId) {
  if (!state.call) return;
  try {
    await api(`/api/calls/${encodeURIComponent(state.call.linkedid)}/customer`, { method: "POST", body: JSON.stringify({ customer_id: customerId }) });
    log("已关联客户 " + customerId);
    showCustomer(await api(`/api/customers/${encodeURIComponent(customerId)}`));
  } catch (e) { log("关联失败: " + e.message); }
}

function onPop(m) {
  state.call = m;
  $("pop").hidden = false;
  $("pop-state").className = "badge"; text($("pop-state"), "振铃");
  text($("pop-queue"), m.queue); text($("pop-dialect"), dialect(m.dialect)); text($("pop-wait"), m.wait_seconds === undefined ? "" : Math.round(m.wait_seconds));
  text($("pop-number"), m.caller_e164 || m.caller_number); text($("pop-ivr"), (m.ivr_path || []).join(" → "));
  if (m.customer) showCustomer(m.customer);
  else showCandidates(m.candidates || [], (m.candidates || []).length ? "多位客户共用此号码，请确认" : "未找到客户，请搜索或新建");
  $("wrapup-result").textContent = "";
}

function onMessage(m) {
  if (m.id) { state.lastId = m.id; sessionStorage.setItem("hotline.lastId", m.id); }
  switch (m.type) {
    case "hello": log("已连接，坐席 " + m.agent); break;
    case "screenpop": onPop(m); log("来电弹屏 " + (m.customer ? m.customer.name : "未知客户"));
      if (state.ws) state.ws.send(JSON.stringify({ type: "ack", linkedid: m.linkedid })); break;
    case "screenpop.withdrawn": if (state.call && state.call.linkedid === m.linkedid) { $("pop-state").className = "badge withdrawn"; text($("pop-state"), "已撤回"); } log("弹屏撤回 (" + m.reason + ")"); break;
    case "call.connected": if (state.call && state.call.linkedid === m.linkedid) { $("pop-state").className = "badge connected"; text($("pop-state"), "通话中"); } log("通话接通"); break;
    case "call.ended": if (state.call && state.call.linkedid === m.linkedid) text($("pop-state"), "已结束"); log("通话结束"); break;
    default: break;
  }
}

function connect() {
  if (!state.token) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const params = new URLSearchParams({ token: state.token });
  if (state.lastId) params.set("last_id", state.lastId);
  const ws = new WebSocket(`${scheme}://${location.host}/ws/agent?${params}`);
  state.ws = ws;
  ws.onopen = () => { $("status").className = "status on"; $("status").textContent = "在线"; };
  ws.onmessage = (e) => { try { onMessage(JSON.parse(e.data)); } catch (err) { log("坏消息: " + err); } };
  ws.onclose = () => { $("status").className = "status off"; $("status").textContent = "已断开，重连中"; state.ws = null; setTimeout(connect, 1000); };
}

$("signin").onsubmit = (e) => { e.preventDefault(); state.token = $("token").value.trim(); sessionStorage.setItem("hotline.token", state.token); if (state.ws) state.ws.close(); else connect(); };

$("search-form").onsubmit = async (e) => {
  e.preventDefault();
  const q = $("q").value.trim();
  if (!q) return;
  try {
    const result = await api("/api/customers/search?" + new URLSearchParams({ q, limit: "10" }));
    const items = result.items || result.candidates || result;
    $("search-results").replaceChildren(...items.map((cand) => {
      const li = document.createElement("li");
      const label = document.createElement("span");
      text(label, `${cand.name} · ${[].concat(cand.matched || []).join("/")} · ${cand.city || ""} ${(cand.phones || []).join(" ")}`);
      const pick = document.createElement("button"); pick.type = "button"; pick.textContent = "关联到当前来电";
      pick.onclick = () => linkCustomer(cand.id ?? cand.customer_id);
      li.append(label, " ", pick); return li;
    }));
  } catch (err) { log("搜索失败: " + err.message); }
};

$("create-customer").onclick = async () => {
  if (!state.call) return;
  const name = prompt("客户姓名");
  if (!name) return;
  try {
    const created = await api("/api/customers", { method: "POST", body: JSON.stringify({ name, phones: [state.call.caller_e164 || state.call.caller_number] }) });
    log("已新建客户 " + created.id);
    await linkCustomer(created.id);
  } catch (err) { log("新建失败: " + err.message); }
};

$("wrapup").onsubmit = async (e) => {
  e.preventDefault();
  if (!state.call) return;
  try {
    await api(`/api/calls/${encodeURIComponent(state.call.linkedid)}/wrapup`, { method: "POST", body: JSON.stringify({ notes: $("notes").value, disposition: $("disposition").value }) });
    $("wrapup-result").textContent = "已保存";
    log("小结已保存");
  } catch (err) { $("wrapup-result").textContent = "保存失败: " + err.message; }
};

if (state.token) { $("token").value = state.token; connect(); }
