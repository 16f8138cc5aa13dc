// The S8000 local meter's web interface: live readings, interval charts,
// settings, the front panel, discovery and the change log.  Plain modules,
// no framework and nothing fetched from elsewhere (the page's CSP allows
// this site only).
import { el } from "/static/dom.js";
import { renderSettings } from "/static/settings.js";

const state = { csrf: null, panelTimer: null };

// -- helpers --------------------------------------------------------------------------

function $(id) {
  return document.getElementById(id);
}

function number(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  // Rounded to nothing is 0, not "-0".
  if (Number(value.toFixed(digits)) === 0) value = 0;
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function toast(message, isError = false) {
  const node = $("toast");
  node.textContent = message;
  node.className = isError ? "error" : "";
  node.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { node.hidden = true; }, 5000);
}

async function api(path, options = {}) {
  const method = options.method || "GET";
  const headers = { Accept: "application/json" };
  let body;
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.json);
  }
  if (method !== "GET") headers["X-CSRF-Token"] = state.csrf;
  const response = await fetch(path, { method, headers, body, credentials: "same-origin" });
  if (response.status === 401) {
    location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
    throw new Error("not logged in");
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = new Error((data && data.error) || `${method} ${path}: ${response.status}`);
    error.status = response.status;
    error.data = data;
    throw error;
  }
  return data;
}

// -- tabs -----------------------------------------------------------------------------

function showTab(name) {
  for (const button of document.querySelectorAll("#tabs button")) {
    button.classList.toggle("active", button.dataset.tab === name);
  }
  for (const section of document.querySelectorAll("section.tab")) {
    section.hidden = section.id !== `tab-${name}`;
  }
  clearInterval(state.panelTimer);
  if (name === "history") loadHistory();
  if (name === "settings") loadSettings();
  if (name === "panel") {
    refreshPanel();
    state.panelTimer = setInterval(refreshPanel, 400);
  }
  if (name === "discovery") loadDiscovery();
  if (name === "changes") loadChanges();
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
}

// -- live -----------------------------------------------------------------------------

function renderLive(view) {
  $("meter-model").textContent = view.model;
  $("meter-serial").textContent = `serial ${view.serial}`;
  $("meter-time").textContent = `${new Date(view.time * 1000).toISOString().slice(0, 19).replace("T", " ")} UTC`;
  $("meter-status").textContent = view.voltage_valid ? "metering" : "no voltage";
  $("live-voltages").textContent = Object.entries(view.voltages).map(([p, v]) => `${p} ${number(v, 1)} V`).join(" · ");
  $("live-frequency").textContent = `${number(view.frequency, 2)} Hz`;
  const total = view.points.reduce((sum, p) => sum + (p.watts || 0), 0);
  $("live-total").textContent = `${number(total)} W`;
  $("live-pulses").textContent = view.pulses.map((p) => `${p.name}: ${number(p.value, 2)} ${p.unit}`).join(" · ");
  const body = document.querySelector("#live-table tbody");
  const rows = view.points.map((p) => {
    const phases = p.phases.map((ph) => `${ph.phase} ${number(ph.watts)} · ${number(ph.var)} · ${number(ph.amps, 2)}`).join("  |  ");
    return el("tr", { "data-point": p.number, class: p.enabled ? null : "disabled" },
      el("td", { text: p.number }),
      el("td", { "data-field": "name", text: p.name }),
      el("td", { class: "num", "data-field": "kwh_delivered", text: number(p.kwh_delivered, 3) }),
      el("td", { class: "num", "data-field": "kwh_received", text: number(p.kwh_received, 3) }),
      el("td", { class: "num", "data-field": "watts", text: number(p.watts) }),
      el("td", { class: "num", "data-field": "kvarh_delivered", text: number(p.kvarh_delivered, 3) }),
      el("td", { class: "num", "data-field": "kvarh_received", text: number(p.kvarh_received, 3) }),
      el("td", { class: "num", "data-field": "var", text: number(p.var) }),
      el("td", { class: "num", "data-field": "power_factor", text: number(p.power_factor, 2) }),
      el("td", { class: "num", "data-field": "ct_primary", text: `${number(p.ct_primary_a, 1)} A` }),
      el("td", { class: "phases", "data-field": "phases", text: phases }));
  });
  body.replaceChildren(...rows);
  const select = $("history-point");
  if (select.options.length !== view.points.length + 1) {
    select.replaceChildren(el("option", { value: "all", text: "All points" }),
      ...view.points.map((p) => el("option", { value: p.number, text: `${p.number}. ${p.name}` })));
  }
}

function startLive() {
  const source = new EventSource("/api/live/stream");
  source.onmessage = (event) => renderLive(JSON.parse(event.data));
  source.onerror = () => {
    $("meter-status").textContent = "reconnecting…";
    // The browser retries by itself; a lost session shows as a login redirect.
    api("/api/session").catch(() => {});
  };
}

// -- history --------------------------------------------------------------------------

function historyQuery() {
  const params = new URLSearchParams({ point: $("history-point").value, span: $("history-span").value });
  const end = $("history-end").value;
  if (end) params.set("end", `${end}T23:59:59Z`);
  return params;
}

function shiftHistory(direction) {
  const span = $("history-span").value;
  const days = { day: 1, week: 7, month: 30 }[span];
  const current = $("history-end").value ? new Date(`${$("history-end").value}T00:00:00Z`) : new Date();
  current.setUTCDate(current.getUTCDate() + direction * days);
  $("history-end").value = current.toISOString().slice(0, 10);
  loadHistory();
}

async function loadHistory() {
  const params = historyQuery();
  $("history-csv").href = `/api/intervals.csv?${params}`;
  let data;
  try {
    data = await api(`/api/intervals?${params}`);
  } catch (error) {
    toast(error.message, true);
    return;
  }
  $("history-summary").textContent = `${data.name}: ${number(data.delivered, 3)} kWh delivered, ${number(data.received, 3)} kWh received, `
    + `${data.start.replace("T", " ")} to ${data.end.replace("T", " ")} (${data.intervals} intervals)`;
  drawChart($("history-chart"), data);
}

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== null) node.textContent = text;
  return node;
}

function drawChart(container, data) {
  const width = 1000, height = 340, left = 56, right = 10, top = 24, bottom = 36;
  const buckets = data.buckets;
  const high = Math.max(0.001, ...buckets.map((b) => b.delivered));
  const low = Math.max(0, ...buckets.map((b) => b.received));
  const scale = (height - top - bottom) / (high + low);
  const zero = top + high * scale;
  const slot = (width - left - right) / buckets.length;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", "data-buckets": buckets.length });
  for (const fraction of [0, 0.5, 1]) {
    const y = zero - fraction * high * scale;
    chart.append(svg("line", { x1: left, x2: width - right, y1: y, y2: y, class: "grid" }));
    chart.append(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end" }, `${number(fraction * high, 2)}`));
  }
  if (low > 0) {
    chart.append(svg("text", { x: left - 6, y: zero + low * scale, "text-anchor": "end" }, `−${number(low, 2)}`));
  }
  chart.append(svg("text", { x: left, y: 12 }, "kWh"));
  buckets.forEach((bucket, index) => {
    const x = left + index * slot + slot * 0.12;
    const w = slot * 0.76;
    const start = new Date(bucket.start);
    const label = data.step === 3600 ? `${String(start.getUTCHours()).padStart(2, "0")}h`
      : `${start.getUTCMonth() + 1}/${start.getUTCDate()}`;
    const title = `${bucket.start.replace("T", " ")}: ${number(bucket.delivered, 3)} kWh D, ${number(bucket.received, 3)} kWh R`;
    const up = svg("rect", { x, y: zero - bucket.delivered * scale, width: w, height: bucket.delivered * scale, class: "bar-delivered", "data-index": index });
    up.append(svg("title", {}, title));
    chart.append(up);
    if (bucket.received > 0) {
      const down = svg("rect", { x, y: zero, width: w, height: bucket.received * scale, class: "bar-received" });
      down.append(svg("title", {}, title));
      chart.append(down);
    }
    const every = Math.ceil(buckets.length / 15);
    if (index % every === 0) {
      chart.append(svg("text", { x: x + w / 2, y: height - bottom + 16, "text-anchor": "middle" }, label));
    }
  });
  chart.append(svg("line", { x1: left, x2: width - right, y1: zero, y2: zero, class: "axis" }));
  container.replaceChildren(chart);
}

// -- settings and the change log ----------------------------------------------------

async function loadSettings() {
  try {
    const data = await api("/api/settings");
    renderSettings($("settings-root"), data, saveSettings);
  } catch (error) {
    toast(error.message, true);
  }
}

async function saveSettings(changes) {
  // Resolves to the new settings, or rejects with the server's field errors.
  const data = await api("/api/settings", { method: "POST", json: changes });
  toast(data.changes && data.changes.length ? `Saved: ${data.changes.join("; ")}` : "Nothing changed");
  renderSettings($("settings-root"), data.settings, saveSettings);
  return data;
}

async function loadChanges() {
  try {
    const data = await api("/api/changes");
    const rows = data.changes.map((change) => el("tr", {},
      el("td", { text: new Date(change.time * 1000).toISOString().slice(0, 19).replace("T", " ") }),
      el("td", { text: change.user }),
      el("td", { text: change.origin }),
      el("td", { text: change.changes.join("; ") })));
    document.querySelector("#changes-table tbody").replaceChildren(...rows);
  } catch (error) {
    toast(error.message, true);
  }
}

// -- the front panel ------------------------------------------------------------------

function renderPanel(panel) {
  $("lcd-1").textContent = panel.lines[0];
  $("lcd-2").textContent = panel.lines[1];
  $("lcd").className = `lcd c${panel.contrast}`;
  $("lcd").dataset.mode = panel.mode;
  $("lcd").dataset.item = panel.item;
  $("panel-mode").textContent = panel.mode;
  $("panel-contrast").textContent = panel.contrast;
}

async function refreshPanel() {
  try {
    renderPanel(await api("/api/panel"));
  } catch (error) {
    clearInterval(state.panelTimer);
    toast(error.message, true);
  }
}

async function button(name, action) {
  try {
    renderPanel(await api("/api/panel/button", { method: "POST", json: { button: name, action } }));
  } catch (error) {
    toast(error.message, true);
  }
}

function wirePanelButton(id, name) {
  const node = $(id);
  let down = false;
  const press = (event) => {
    event.preventDefault();
    if (down) return;
    down = true;
    node.classList.add("held");
    try {
      node.setPointerCapture(event.pointerId); // the release comes here even off the button
    } catch {
      // a pointer the browser does not track (a second finger, a synthetic event)
    }
    button(name, "press");
  };
  const release = () => {
    if (!down) return;
    down = false;
    node.classList.remove("held");
    button(name, "release");
  };
  node.addEventListener("pointerdown", press);
  node.addEventListener("pointerup", release);
  node.addEventListener("pointercancel", release);
  node.addEventListener("lostpointercapture", release);
}

// -- discovery ------------------------------------------------------------------------

function renderDiscovery(data) {
  $("discovery-scope").textContent = data.networks.length
    ? `Scans ${data.networks.join(", ")}, Modbus TCP port ${data.port}`
    : "No network to scan: start the meter with --discover-network NETWORK.";
  $("discovery-scan").disabled = data.running || !data.networks.length;
  $("discovery-status").textContent = data.running ? "Scanning…"
    : data.error ? `The scan failed: ${data.error}`
      : data.scanned_at ? `${data.found.length} unit(s) found at ${new Date(data.scanned_at * 1000).toISOString().slice(0, 19).replace("T", " ")} UTC` : "Not scanned yet.";
  const rows = data.found.map((unit) => el("tr", { "data-serial": unit.serial },
    ...["ip", "port", "model", "name", "mac", "firmware", "build", "serial", "status"].map((key) => el("td", { text: unit[key] }))));
  document.querySelector("#discovery-table tbody").replaceChildren(...rows);
}

async function loadDiscovery() {
  try {
    renderDiscovery(await api("/api/discovery"));
  } catch (error) {
    toast(error.message, true);
  }
}

async function scan() {
  $("discovery-scan").disabled = true;
  $("discovery-status").textContent = "Scanning…";
  try {
    renderDiscovery(await api("/api/discovery", { method: "POST" }));
  } catch (error) {
    toast(error.message, true);
    loadDiscovery();
  }
}

// -- start ----------------------------------------------------------------------------

async function start() {
  const session = await api("/api/session");
  state.csrf = session.csrf;
  for (const tab of document.querySelectorAll("#tabs button")) {
    tab.addEventListener("click", () => showTab(tab.dataset.tab));
  }
  $("logout").addEventListener("click", async () => {
    await api("/api/logout", { method: "POST" }).catch(() => {});
    location.assign("/login");
  });
  for (const id of ["history-point", "history-span", "history-end"]) $(id).addEventListener("change", loadHistory);
  $("history-prev").addEventListener("click", () => shiftHistory(-1));
  $("history-next").addEventListener("click", () => shiftHistory(1));
  $("discovery-scan").addEventListener("click", scan);
  $("send-now").addEventListener("click", async () => {
    try {
      await api("/api/send", { method: "POST" });
      toast("Sending the unreported intervals to the host server.");
    } catch (error) {
      toast(error.message, true);
    }
  });
  wirePanelButton("btn-display", "display");
  wirePanelButton("btn-left", "left");
  wirePanelButton("btn-right", "right");
  try {
    renderLive(await api("/api/live"));
  } catch (error) {
    toast(error.message, true);
  }
  startLive();
  // The fragment is the URL's, anyone's to write: compared with the tabs'
  // names, never put into a selector.
  const wanted = location.hash.slice(1);
  const tabs = [...document.querySelectorAll("#tabs button")].map((b) => b.dataset.tab);
  showTab(tabs.includes(wanted) ? wanted : "live");
}

start();
