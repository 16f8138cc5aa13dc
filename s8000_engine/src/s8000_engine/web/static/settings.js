// The configuration tool's four sections: unit, report, meter points and
// pulse probes.  Each section is saved on its own; the server validates every
// field and answers the wrong ones by their dotted path (unit.gateway,
// points.3.ct_primary, …), shown next to the field.  Secrets (FTP, PPP
// passwords, the report token) are never sent to the page: a password field
// stays empty and only a typed value (or "clear") is sent.

import { el as node } from "/static/dom.js";

const UNIT = [
  ["dhcp", "DHCP enabled", "checkbox"],
  ["ip", "Default IP address"], ["netmask", "Network mask"], ["gateway", "Gateway"],
  ["dns_primary", "DNS primary"], ["dns_secondary", "DNS secondary"],
  ["ntp_host", "NTP host (time server)"],
  ["ppp_username", "PPP user name"], ["ppp_password", "PPP password", "secret"],
  ["phone", "Modem phone #"], ["alt_phone", "Modem alternate phone #"], ["at_string", "Modem AT string"],
];
const REPORT = [
  ["recording_minutes", "Recording interval (minutes)", "choice"],
  ["demand_type", "Demand type", "choice"],
  ["demand_interval_minutes", "Demand interval (minutes)", "choice"],
  ["demand_subinterval_minutes", "Sliding subinterval (minutes)", "number"],
  ["every_minutes", "Reporting schedule (minutes, 0 = only on Send)", "choice"],
  ["protocol", "Reporting protocol", "choice"],
  ["host", "Host server"], ["port", "Host server port", "number"],
  ["upload_directory", "Upload directory"],
  ["username", "FTP user name"], ["password", "FTP password", "secret"],
  ["url", "Report URL (HTTP POST)"], ["token", "Report token", "secret"],
];
const PULSE = [["name", "Name"], ["unit", "Unit"], ["scale", "Scale (units per pulse)", "number"]];
const LABELS = { dhcp: "DHCP", demand_type: { block: "Block", sliding: "Sliding window" } };

function field(path, label, kind, value, options = {}) {
  let input;
  if (kind === "checkbox") {
    input = node("input", { type: "checkbox", "data-path": path, checked: Boolean(value) });
  } else if (kind === "choice") {
    input = node("select", { "data-path": path, "data-kind": options.numeric ? "number" : "text" },
      ...options.choices.map((choice) => node("option", {
        value: choice, selected: String(choice) === String(value),
        text: (LABELS[path.split(".").pop()] || {})[choice] || String(choice),
      })));
  } else if (kind === "secret") {
    input = node("input", {
      type: "password", "data-path": path, "data-kind": "secret", autocomplete: "new-password",
      placeholder: options.set ? "set — leave empty to keep it" : "not set",
    });
  } else {
    input = node("input", {
      type: kind === "number" ? "number" : "text", step: kind === "number" ? "any" : null,
      "data-path": path, "data-kind": kind === "number" ? "number" : "text",
      value: value === null || value === undefined ? "" : value,
    });
  }
  const wrapper = node("label", { "data-field": path }, label, input,
    node("span", { class: "field-error", "data-error-for": path }));
  if (kind === "secret" && options.set) {
    wrapper.append(node("span", { class: "small" },
      node("input", { type: "checkbox", "data-clear": path }), " clear it"));
  }
  return wrapper;
}

function valueOf(input) {
  if (input.type === "checkbox") return input.checked;
  const kind = input.dataset.kind;
  if (kind === "number") return input.value.trim() === "" ? null : Number(input.value);
  return input.value;
}

function collect(form, prefix) {
  // The section's fields as the server takes them: {"field": value, "3": {...}}.
  const out = {};
  for (const input of form.querySelectorAll("[data-path]")) {
    const parts = input.dataset.path.split(".").slice(1);
    if (input.dataset.kind === "secret") {
      const clear = form.querySelector(`[data-clear="${input.dataset.path}"]`);
      if (clear && clear.checked) assign(out, parts, "");
      else if (input.value !== "") assign(out, parts, input.value);
      continue;
    }
    if (input.dataset.phase !== undefined) {
      // A point's CT phases: one select per CT, empty = no CT.
      const list = assignList(out, parts.slice(0, -1));
      list[Number(parts[parts.length - 1])] = input.value;
      continue;
    }
    assign(out, parts, valueOf(input));
  }
  for (const point of Object.values(out)) {
    if (point && Array.isArray(point.phases)) point.phases = point.phases.filter((p) => p);
  }
  return { [prefix]: out };
}

function assign(target, parts, value) {
  let here = target;
  for (const part of parts.slice(0, -1)) here = here[part] ??= {};
  here[parts[parts.length - 1]] = value;
}

function assignList(target, parts) {
  let here = target;
  for (const part of parts.slice(0, -1)) here = here[part] ??= {};
  return (here[parts[parts.length - 1]] ??= []);
}

function showErrors(form, errors) {
  for (const span of form.querySelectorAll(".field-error")) span.textContent = "";
  for (const input of form.querySelectorAll(".invalid")) input.classList.remove("invalid");
  const unplaced = [];
  for (const error of errors) {
    // The deepest field of the form the error names (points.3.phases.1 → points.3.phases).
    let path = error.field;
    let span = form.querySelector(`[data-error-for="${path}"]`);
    while (!span && path.includes(".")) {
      path = path.slice(0, path.lastIndexOf("."));
      span = form.querySelector(`[data-error-for="${path}"]`);
    }
    if (span) {
      span.textContent = error.message;
      for (const input of form.querySelectorAll(`[data-path^="${path}"]`)) input.classList.add("invalid");
    } else {
      unplaced.push(`${error.field}: ${error.message}`);
    }
  }
  const status = form.querySelector(".section-status");
  status.className = "section-status error";
  status.textContent = unplaced.length ? unplaced.join("; ") : "Not saved: see the fields marked.";
}

function section(name, title, body, save, hint) {
  const form = node("form", { id: `settings-${name}`, novalidate: true });
  const status = node("span", { class: "section-status" });
  form.append(node("fieldset", {}, node("legend", { text: title }),
    hint ? node("p", { class: "hint", text: hint }) : null, body,
    node("div", { class: "section-actions" },
      node("button", { type: "submit", id: `save-${name}`, text: `Save ${title.toLowerCase()}` }), status)));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.className = "section-status";
    status.textContent = "Saving…";
    try {
      await save(collect(form, name));
    } catch (error) {
      if (error.data && error.data.errors) showErrors(form, error.data.errors);
      else {
        status.className = "section-status error";
        status.textContent = error.message;
      }
    }
  });
  return form;
}

function unitSection(data, save) {
  const grid = node("div", { class: "grid-form" });
  for (const [key, label, kind] of UNIT) {
    grid.append(field(`unit.${key}`, label, kind || "text", data.unit[key], { set: data.unit[`${key}_set`] }));
  }
  return section("unit", "Unit", grid, save,
    "Network settings used when no DHCP server answers (the factory default IP is 192.168.0.9), the time server and the modem.");
}

function reportSection(data, save) {
  const grid = node("div", { class: "grid-form" });
  const choices = data.report.choices || {};
  for (const [key, label, kind] of REPORT) {
    const options = { set: data.report[`${key}_set`], choices: choices[key], numeric: key !== "demand_type" && key !== "protocol" };
    grid.append(field(`report.${key}`, label, kind === "choice" && !choices[key] ? "text" : kind || "text", data.report[key], options));
  }
  return section("report", "Report", grid, save,
    "How often intervals are recorded, how demand is computed, and where and when the intervals are reported.");
}

function wire(colour) {
  return node("i", { class: `wire-${colour.toLowerCase()}`, title: colour });
}

function pointsSection(data, save) {
  const points = data.points;
  const service = points.services.find((s) => s.value === points.service) || points.services[0];
  const top = node("div", { class: "grid-form" },
    field("points.service", "Service type", "choice", points.service, { choices: points.services.map((s) => s.value) }),
    field("points.pt_ratio", "PT ratio", "number", points.pt_ratio));
  const serviceSelect = top.querySelector("select");
  for (const option of serviceSelect.options) {
    option.textContent = points.services.find((s) => s.value === option.value).label;
  }
  const head = node("tr", {}, ...["#", "Name", "CT primary (A)", ...Array.from({ length: points.elements }, (_, k) => `CT ${k + 1}: phase · X1 / X2 wires`), "In use"]
    .map((text) => node("th", { text })));
  const rows = points.items.map((item) => {
    const base = `points.${item.index}`;
    const ctCells = item.cts.map((ct, k) => {
      const select = node("select", { "data-path": `${base}.phases.${k}`, "data-phase": k },
        node("option", { value: "", text: "—" }),
        ...service.phases.map((phase) => node("option", { value: phase, text: phase, selected: ct.phase === phase })));
      return node("td", { "data-ct": ct.channel }, select, " ",
        node("span", { class: "wire" }, wire(ct.x1), `${ct.channel} X1 ${ct.x1}`),
        node("span", { class: "wire" }, wire(ct.x2), `X2 ${ct.x2}`));
    });
    return node("tr", { "data-point": item.number },
      node("td", { text: item.number }),
      node("td", {}, node("input", { "data-path": `${base}.name`, "data-kind": "text", value: item.name })),
      node("td", {}, node("input", { type: "number", step: "any", "data-path": `${base}.ct_primary`, "data-kind": "number", value: item.ct_primary, min: points.min_ct_primary, max: points.max_ct_primary })),
      ...ctCells,
      node("td", {}, node("input", { type: "checkbox", "data-path": `${base}.enabled`, checked: item.enabled })),
      node("td", {}, node("span", { class: "field-error", "data-error-for": base }),
        node("span", { class: "field-error", "data-error-for": `${base}.name` }),
        node("span", { class: "field-error", "data-error-for": `${base}.ct_primary` }),
        node("span", { class: "field-error", "data-error-for": `${base}.phases` })));
  });
  const table = node("table", { class: "data", id: "points-table" }, node("thead", {}, head), node("tbody", {}, ...rows));
  return section("points", "Meter points", node("div", {}, top, table), save,
    `${data.model.code}: ${points.max_points} points of ${points.elements} CT(s). Check each CT's splice against its X1 (positive) and X2 (neutral) wire colours.`);
}

function pulsesSection(data, save) {
  const rows = data.pulses.map((pulse) => node("div", { class: "grid-form" },
    node("strong", { text: `Pulse input ${pulse.number}` }),
    ...PULSE.map(([key, label, kind]) => field(`pulses.${pulse.index}.${key}`, label, kind || "text", pulse[key]))));
  return section("pulses", "Pulse probes", node("div", {}, ...rows), save,
    "What each pulse input counts: its name, the unit of one pulse's quantity and the quantity per pulse.");
}

export function renderSettings(root, data, save) {
  root.replaceChildren(unitSection(data, save), reportSection(data, save), pointsSection(data, save), pulsesSection(data, save));
}
