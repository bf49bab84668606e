// Level 2 line overview: tanks in line order, PV / SP / quality, interlock and alarm state.
// Grey when normal; colour only for abnormal (alarm priority, tripped interlock, bad quality).
import { get } from "../api.js";
import { h } from "../dom.js";
import { liveConn, onAlarmChange } from "../app.js";
import { valueEl } from "../quality.js";

const GROUP_LABEL = { temperature: "Temp", ph: "pH", current: "Current", voltage: "Voltage", conductivity: "Cond.", amp_hours: "Ah", current_density: "CD" };

function tankCard(t) {
  const s = t.summary;
  const abnormal = s.tripped > 0 || s.alarms > 0 || s.quality !== "good";
  const card = h("a", { class: `tank card${abnormal ? " abnormal" : ""}`, href: `#/tank/${encodeURIComponent(t.id)}`, dataset: { tank: t.id } });
  card.append(h("h2", { text: t.name }), h("div", { class: "proc", text: t.process.replaceAll("_", " ") }));
  const table = h("table", { class: "pvs" });
  for (const pv of t.pvs.filter((p) => p.group !== "amp_hours")) {
    const loop = t.loops.find((l) => l.pv === pv.group);
    table.append(h("tr", {},
      h("th", { text: GROUP_LABEL[pv.group] || pv.group }),
      h("td", {}, valueEl(pv.tag, pv, pv.unit)),
      h("td", { class: "sp" }, loop && loop.setpoint !== null ? `SP ${loop.setpoint}` : ""),
      h("td", { class: "mode" }, loop && loop.mode !== "auto" ? loop.mode.toUpperCase() : ""),
    ));
  }
  card.append(table);
  const flags = h("div", { class: "flags" });
  if (s.tripped) flags.append(h("span", { class: "flag tripped", text: `${s.tripped} interlock${s.tripped > 1 ? "s" : ""} tripped` }));
  if (s.bypassed) flags.append(h("span", { class: "flag bypassed", text: `${s.bypassed} bypassed` }));
  if (s.alarms) flags.append(h("span", { class: `flag p-${s.worst_priority || "low"}`, text: `${s.alarms} alarm${s.alarms > 1 ? "s" : ""}${s.unacked ? ` (${s.unacked} unack)` : ""}` }));
  if (!t.in_service) flags.append(h("span", { class: "flag oos", text: "out of service" }));
  card.append(flags);
  return card;
}

export function renderOverview(root) {
  const grid = h("section", { class: "overview", id: "overview" });
  const status = h("p", { class: "muted", text: "loading..." });
  root.append(h("h1", { class: "page", text: "Line overview" }), status, grid);
  let stopped = false;

  async function load() {
    try {
      const tanks = await get("/api/tanks");
      if (stopped) return;
      grid.replaceChildren(...tanks.map(tankCard));
      status.textContent = "";
      liveConn().subscribe(tanks.flatMap((t) => t.pvs.map((p) => p.tag)));
    } catch (e) {
      status.textContent = `could not load the line: ${e.message}`;
    }
  }
  load();
  const timer = setInterval(load, 5000);
  const off = onAlarmChange(() => load());
  return () => { stopped = true; clearInterval(timer); off(); };
}
