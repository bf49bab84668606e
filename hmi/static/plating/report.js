// One load's record: verdict, identity, non-conformities, the tank visits (dwell against its window,
// temperature / pH min-avg-max, amp-hours, current density, thickness) and the trends of each dwell,
// with links to the printable report and the CSV. Text only through textContent.
import { get } from "../api.js";
import { fmtTime, h } from "../dom.js";
import { banner } from "../app.js";
import { Trend } from "../trend.js";
import { dwellWindow, fmtDur, fmtNum } from "./common.js";

const TRENDS = { temperature: ["Temperature", "°C"], ph: ["pH", ""], current: ["Current", "A"] };
const MAX_BUCKETS = 240;

/** Trend points [{ts, value, quality}] -> the Trend's buckets (min/max/avg per interval; Bad = gap). */
function toBuckets(points, t0, t1) {
  const n = Math.max(1, Math.min(MAX_BUCKETS, points.length));
  const width = Math.max(1e-6, (t1 - t0) / n);
  const acc = Array.from({ length: n }, (_, i) => ({ start: t0 + i * width, end: t0 + (i + 1) * width, vals: [], count: 0, good: 0 }));
  for (const p of points) {
    const b = acc[Math.min(n - 1, Math.max(0, Math.floor((p.ts - t0) / width)))];
    b.count += 1;
    if (p.quality !== "bad" && typeof p.value === "number") { b.vals.push(p.value); if (p.quality === "good") b.good += 1; }
  }
  return acc.map((b) => ({
    start: b.start, end: b.end, count: b.count,
    min: b.vals.length ? Math.min(...b.vals) : null, max: b.vals.length ? Math.max(...b.vals) : null,
    avg: b.vals.length ? b.vals.reduce((s, v) => s + v, 0) / b.vals.length : null,
    good_fraction: b.count ? b.good / b.count : 0,
  }));
}

function stats(s) {
  if (!s || s.min === null) return "-";
  return `${fmtNum(s.min)} / ${fmtNum(s.avg)} / ${fmtNum(s.max)}` + (s.bad_count ? ` (${s.bad_count} bad)` : "");
}

function stepRow(s) {
  const win = s.dwell_min_s === null ? "not a recipe step" : dwellWindow(s.dwell_min_s, s.dwell_max_s);
  return h("tr", { class: `step ${s.conforming ? "ok" : "nc"}`, dataset: { seq: s.seq, tank: s.tank } },
    h("td", { text: String(s.seq) }),
    h("td", { text: s.tank_name }),
    h("td", { text: fmtTime(s.entry_ts) }),
    h("td", { text: s.exit_ts === null ? "in tank" : fmtTime(s.exit_ts) }),
    h("td", { class: "dwell", text: `${fmtDur(s.dwell_s)} (${win})` }),
    h("td", { text: stats(s.temperature) }),
    h("td", { text: stats(s.ph) }),
    h("td", { text: fmtNum(s.amp_hours, 3) }),
    h("td", { text: fmtNum(s.avg_current_density_a_dm2) }),
    h("td", { text: s.thickness_um === null ? "-" : `${fmtNum(s.thickness_um)} ${s.metal || ""}` }),
    h("td", { class: "verdict-cell", text: s.conforming ? "yes" : "NO" }),
  );
}

function stepTrends(s) {
  const box = h("section", { class: "card step-trends", dataset: { seq: s.seq } },
    h("h3", { text: `${s.seq}. ${s.tank_name}` }));
  for (const r of s.nonconformities) box.append(h("p", { class: "nc-reason", text: r }));
  const grid = h("div", { class: "trends" });
  const t1 = s.exit_ts === null ? s.entry_ts + s.dwell_s : s.exit_ts;
  for (const [group, [title, unit]] of Object.entries(TRENDS)) {
    const pts = (s.trends || {})[group];
    if (!pts || !pts.length) continue;
    const tr = new Trend({ title, unit, width: 420, height: 150 });
    const win = group === "temperature" ? s.temperature_window : group === "ph" ? s.ph_window : null;
    if (win) tr.setWindow({ min: win[0], max: win[1] });
    tr.setHistory(toBuckets(pts, s.entry_ts, t1), s.entry_ts, t1);
    tr.root.dataset.quantity = group;
    grid.append(h("div", {}, tr.root));
  }
  box.append(grid);
  return box;
}

export function renderReport(root, id) {
  const enc = encodeURIComponent(id);
  root.append(h("p", { class: "links" },
    h("a", { href: "#/history", text: "Load history" }), " | ",
    h("a", { id: "printable", href: `/api/loads/${enc}/report`, target: "_blank", rel: "noopener", text: "Printable report" }), " | ",
    h("a", { id: "csv", href: `/api/loads/${enc}/record.csv`, text: "CSV" })));
  const body = h("div", { id: "record" }, h("p", { class: "muted", text: "loading the record ..." }));
  root.append(body);
  get(`/api/loads/${enc}/record?trends=true`).then((rec) => {
    const ld = rec.load;
    const ident = [["Part number", ld.part_number], ["Quantity", ld.quantity], ["Area dm2", ld.area_dm2],
      ["Customer order", ld.customer_order], ["Recipe", `${ld.recipe_id} v${ld.recipe_version}`], ["Status", ld.status],
      ["Created", `${fmtTime(ld.created_ts)} by ${ld.created_by}`], ["Amp-hours", fmtNum(rec.amp_hours, 3)],
      ["Thickness µm", Object.entries(rec.thickness_um).map(([m, t]) => `${m} ${fmtNum(t)}`).join(", ") || "-"]];
    const parts = [
      h("h1", { class: "page" }, `Load ${ld.id} `,
        h("span", { id: "verdict", class: rec.conforming ? "verdict ok" : "verdict nc", text: rec.conforming ? "conforming" : "NON-CONFORMING" })),
      h("table", { class: "identity", id: "record-identity" }, ...ident.map(([k, v]) => h("tr", {}, h("th", { text: k }), h("td", { text: String(v) })))),
    ];
    if (rec.nonconformities.length) {
      parts.push(h("h2", { text: "Non-conformities" }),
        h("ul", { id: "record-nc", class: "nc-list" }, ...rec.nonconformities.map((r) => h("li", { text: r }))));
    }
    parts.push(h("h2", { text: "Tanks" }), h("div", { class: "scroll" }, h("table", { class: "record-steps" },
      h("thead", {}, h("tr", {}, ...["#", "tank", "entry", "exit", "dwell (window)", "T min/avg/max", "pH min/avg/max", "Ah", "A/dm2", "µm", "OK"].map((x) => h("th", { text: x })))),
      h("tbody", { id: "record-steps" }, ...(rec.steps.length ? rec.steps.map(stepRow)
        : [h("tr", {}, h("td", { colspan: 11, class: "muted", text: "not in a tank yet" }))])))));
    parts.push(...rec.steps.map(stepTrends));
    body.replaceChildren(...parts);
  }).catch((e) => {
    body.replaceChildren(h("p", { class: "error", text: e.message }));
    banner(e.message);
  });
  return null;
}
