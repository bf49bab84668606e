// Level 3 tank page: trends (temperature, pH, current density) with setpoint lines over a selectable
// window, setpoint entry within the role's limits, loop modes, interlocks with reset/bypass, per-probe
// diagnostics of the voted sensors, inputs/outputs and the tank's alarms.
import { get, post, put } from "../api.js";
import { fmtClock, h, typing } from "../dom.js";
import { banner, can, currentRole, liveConn, onAlarmChange } from "../app.js";
import { reasonText, valueEl } from "../quality.js";
import { Trend } from "../trend.js";

const WINDOWS = [["10 min", 600], ["1 h", 3600], ["8 h", 28800], ["24 h", 86400]];
const TREND_TITLE = { temperature: "Temperature", ph: "pH", current_density: "Current density" };
const WINDOW_KEY = { temperature: "temperature_c", ph: "ph", current_density: "current_density_a_dm2" };

function roleRange(loop) {
  if (can("engineer")) return loop.limits;
  return loop.operator_limits || loop.limits;
}

function loopRow(loop, reload) {
  const rng = roleRange(loop);
  const input = h("input", {
    type: "number", step: "any", min: rng ? rng.min : undefined, max: rng ? rng.max : undefined,
    value: loop.setpoint ?? "", class: "sp-input", "aria-label": `${loop.id} setpoint`, dataset: { loop: loop.id },
  });
  const msg = h("span", { class: "msg" });
  const apply = h("button", { type: "button", class: "apply", dataset: { loop: loop.id }, text: "Set" });
  apply.addEventListener("click", async () => {
    msg.textContent = "";
    const v = Number(input.value);
    if (input.value === "" || !Number.isFinite(v)) { msg.textContent = "enter a number"; return; }
    try {
      await put(`/api/loops/${encodeURIComponent(loop.id)}/setpoint`, { value: v });
      msg.textContent = "applied";
      reload();
    } catch (e) {
      msg.textContent = e.message;
      msg.classList.add("error");
    }
  });
  const mode = h("select", { class: "mode-select", "aria-label": `${loop.id} mode`, dataset: { loop: loop.id } },
    ...["auto", "manual", "off"].map((m) => h("option", { value: m, selected: m === loop.mode, text: m })));
  mode.addEventListener("change", async () => {
    try { await put(`/api/loops/${encodeURIComponent(loop.id)}/mode`, { mode: mode.value }); reload(); }
    catch (e) { banner(e.message); reload(); }
  });
  const writable = can("operator");
  input.disabled = !writable; apply.disabled = !writable; mode.disabled = !writable;
  const limitText = rng ? `${rng.min} .. ${rng.max} ${loop.unit}` : "";
  return h("tr", { class: `loop${loop.mode !== "auto" ? " abnormal" : ""}`, dataset: { loop: loop.id } },
    h("th", { text: `${loop.loop} (${loop.kind})` }),
    h("td", { class: "sp-now", dataset: { loop: loop.id }, text: loop.setpoint === null ? "----" : `${loop.setpoint} ${loop.unit}` }),
    h("td", {}, input, apply, h("div", { class: "limits", text: `${currentRole()} range ${limitText}` }), msg),
    h("td", {}, mode),
    h("td", { class: "muted", text: loop.output === null ? "" : `out ${Number(loop.output).toFixed(1)}` }),
    h("td", { class: "muted", text: loop.detail || "" }),
  );
}

function interlockRow(il, reload) {
  const abnormal = il.status !== "healthy";
  const cells = h("td", {});
  if (abnormal && il.status !== "bypassed" && can("operator")) {
    cells.append(h("button", { type: "button", class: "reset", text: "Reset", onclick: async () => {
      try { await post(`/api/interlocks/${encodeURIComponent(il.id)}/reset`, {}); reload(); } catch (e) { banner(e.message); }
    } }));
  }
  if (il.bypassable && can("engineer")) {
    if (il.status === "bypassed") {
      cells.append(h("button", { type: "button", text: "End bypass", onclick: async () => {
        try { await post(`/api/interlocks/${encodeURIComponent(il.id)}/bypass`, { enable: false, duration_s: 1, reason: "bypass ended" }); reload(); }
        catch (e) { banner(e.message); }
      } }));
    } else {
      const reason = h("input", { placeholder: "bypass reason", maxlength: 500, class: "reason-input" });
      cells.append(reason, h("button", { type: "button", text: "Bypass 1 h", onclick: async () => {
        try {
          await post(`/api/interlocks/${encodeURIComponent(il.id)}/bypass`, { enable: true, duration_s: Math.min(3600, il.max_bypass_s), reason: reason.value });
          reload();
        } catch (e) { banner(e.message); }
      } }));
    }
  }
  const statusText = il.status === "bypassed" ? `bypassed until ${fmtClock(il.bypass_until)} by ${il.bypass_by || "?"}` : il.status;
  return h("tr", { class: `interlock s-${il.status}${abnormal ? " abnormal" : ""}`, dataset: { interlock: il.id } },
    h("th", { text: il.interlock }),
    h("td", { class: "il-status", text: statusText }),
    h("td", { text: il.description || il.trip_when.join(" or ") }),
    h("td", { class: "muted", text: il.causes.length ? `cause: ${il.causes.join(", ")}` : "" }),
    cells,
  );
}

function sensorBlock(group, s) {
  const probes = h("table", { class: "probes" },
    h("tr", {}, h("th", { text: "probe" }), h("th", { text: "value" }), h("th", { text: "NE 107" }), h("th", { text: "detail" })),
    ...s.probes.map((p) => h("tr", { dataset: { probe: p.tag } },
      h("td", { text: p.tag }),
      h("td", {}, valueEl(p.tag, p, s.unit)),
      h("td", { text: p.ne107 }),
      h("td", { class: "muted", text: p.detail || reasonText(p.reason) }),
    )));
  return h("div", { class: "sensor card", dataset: { group } },
    h("h3", {}, `${group} `, h("span", { class: "muted", text: `voting ${s.voting}` })),
    h("div", { class: "pv-big" }, valueEl(s.tag, s.pv, s.unit)),
    probes,
  );
}

function ioTable(title, io) {
  const rows = Object.entries(io).map(([role, s]) => h("tr", {}, h("th", { text: role }), h("td", {}, valueEl(s.tag, s, "")), h("td", { class: "muted", text: s.tag })));
  if (!rows.length) return null;
  return h("div", { class: "card" }, h("h3", { text: title }), h("table", { class: "io" }, ...rows));
}

export function renderTank(root, tankId) {
  let stopped = false;
  let windowS = 3600;
  const trends = new Map();
  const head = h("h1", { class: "page" }, h("a", { href: "#/", text: "Line" }), " / ", h("span", { id: "tank-name" }));
  const winSel = h("div", { class: "windows" }, ...WINDOWS.map(([label, s]) => h("button", {
    type: "button", class: s === windowS ? "on" : "", dataset: { window: String(s) }, text: label,
    onclick: (ev) => { windowS = s; for (const b of winSel.children) b.classList.toggle("on", b === ev.target); loadHistory(); },
  })));
  const trendBox = h("section", { class: "trends" });
  const loopsTable = h("table", { class: "loops" });
  const ilTable = h("table", { class: "interlocks" });
  const sensors = h("section", { class: "sensors" });
  const io = h("section", { class: "io-grid" });
  const alarms = h("ul", { class: "tank-alarms" });
  root.append(head, winSel, trendBox,
    h("h2", { text: "Loops" }), h("div", { class: "scroll" }, loopsTable),
    h("h2", { text: "Interlocks" }), h("div", { class: "scroll" }, ilTable),
    h("h2", { text: "Alarms" }), alarms,
    h("h2", { text: "Sensors and probe diagnostics" }), sensors, io);
  let tank = null;
  let lastLoops = "", lastIl = "";

  async function load() {
    let t;
    try { t = await get(`/api/tanks/${encodeURIComponent(tankId)}`); }
    catch (e) { root.append(h("p", { class: "error", text: e.message })); return; }
    if (stopped) return;
    const first = tank === null;
    tank = t;
    document.getElementById("tank-name").textContent = t.name;
    // Rebuild the command tables only when their state changed and nobody is typing in them.
    const loopsKey = JSON.stringify(t.loops), ilKey = JSON.stringify(t.interlocks);
    if (loopsKey !== lastLoops && !typing(loopsTable)) {
      lastLoops = loopsKey;
      loopsTable.replaceChildren(
        h("tr", {}, ...["loop", "setpoint", "new setpoint", "mode", "output", "state"].map((x) => h("th", { text: x }))),
        ...t.loops.map((l) => loopRow(l, load)));
    }
    if (ilKey !== lastIl && !typing(ilTable)) {
      lastIl = ilKey;
      ilTable.replaceChildren(...t.interlocks.map((i) => interlockRow(i, load)));
    }
    alarms.replaceChildren(...(t.alarms.length ? t.alarms.map((a) => h("li", { class: `p-${a.priority} ${a.acked ? "acked" : "unacked"}`, text: `${a.priority}: ${a.message} (${a.state})` }))
      : [h("li", { class: "muted", text: "no alarms" })]));
    sensors.replaceChildren(...Object.entries(t.sensors).map(([g, s]) => sensorBlock(g, s)));
    io.replaceChildren(...[ioTable("Inputs", t.inputs), ioTable("Outputs", t.outputs)].filter(Boolean));
    if (first) {
      for (const tr of t.trends) {
        const trend = new Trend({ title: TREND_TITLE[tr.group] || tr.group, unit: tr.unit });
        trends.set(tr.tag, { trend, spec: tr });
        trendBox.append(h("div", { class: "trend-box card", dataset: { trend: tr.group } }, trend.root));
      }
      loadHistory();
      const patterns = new Set([...Object.values(t.sensors).flatMap((s) => [s.tag, ...s.probes.map((p) => p.tag)]),
        ...Object.values(t.inputs).map((s) => s.tag), ...Object.values(t.outputs).map((s) => s.tag),
        ...t.trends.map((x) => x.tag)]);
      liveConn().subscribe([...patterns]);
    }
    for (const { trend, spec } of trends.values()) {
      const loop = t.loops.find((l) => l.id === spec.loop);
      trend.setSetpoint(loop ? loop.setpoint : null);
      const win = t.window[WINDOW_KEY[spec.group]];
      trend.setWindow(win || null);
    }
  }

  async function loadHistory() {
    if (!trends.size) return;
    const tags = [...trends.keys()];
    const end = Date.now() / 1000, start = end - windowS;
    try {
      const q = new URLSearchParams({ tags: tags.join(","), start: String(start), end: String(end), buckets: "120" });
      const res = await get(`/api/history?${q}`);
      for (const [tag, { trend }] of trends) trend.setHistory(res.series[tag] || [], res.start, res.end);
    } catch (e) {
      banner(`history: ${e.message}`);
    }
  }

  const offTag = liveConn().onTag((name, s) => {
    const t = trends.get(name);
    if (t) t.trend.addLive(s.server_ts, s.quality === "bad" ? null : s.value, s.quality);
  });
  const offAlarm = onAlarmChange(() => load());
  load();
  const timer = setInterval(load, 3000);
  return () => { stopped = true; clearInterval(timer); offTag(); offAlarm(); };
}
