// How a value looks: Good = plain grey text; Uncertain = marked; Bad = hatched, no number, with the reason.
// A value shown while the live connection is down is stale (the body gets the class "stale").
import { h } from "./dom.js";

export function formatValue(v, unit) {
  if (v === null || v === undefined) return "----";
  if (typeof v === "boolean") return v ? "ON" : "OFF";
  if (typeof v === "number") {
    const a = Math.abs(v);
    const s = a >= 1000 ? v.toFixed(0) : a >= 100 ? v.toFixed(1) : a >= 10 ? v.toFixed(2) : v.toFixed(3);
    return s;
  }
  return String(v);
}

const REASON_TEXT = {
  waiting_for_initial_data: "waiting for data",
  comm_failure: "comm failure",
  not_connected: "not connected",
  device_failure: "device failure",
  sensor_failure: "sensor failure",
  out_of_range: "out of range",
  config_error: "config error",
  last_known_value: "last known value",
  substituted: "substituted",
  sensor_not_accurate: "sensor not accurate",
  discrepancy: "probes disagree",
  out_of_service: "out of service",
};

export function reasonText(r) {
  return REASON_TEXT[r] || (r && r !== "none" ? String(r) : "");
}

/** A live value element bound to a tag: <span class="val q-..."> with value, unit and reason. */
export function valueEl(tag, sample, unit = "") {
  const el = h("span", { class: "val", dataset: { tag, unit } });
  paint(el, sample);
  return el;
}

export function paint(el, sample) {
  const q = (sample && sample.quality) || "bad";
  const unit = el.dataset.unit || "";
  el.classList.remove("q-good", "q-uncertain", "q-bad");
  el.classList.add(`q-${q}`);
  const reason = sample ? reasonText(sample.reason) : "no data";
  const detail = sample && sample.detail ? ` (${sample.detail})` : "";
  el.title = q === "good" ? `good${sample && sample.server_ts ? " " + new Date(sample.server_ts * 1000).toLocaleTimeString() : ""}`
    : `${q.toUpperCase()}: ${reason}${detail}`;
  el.replaceChildren();
  if (q === "bad") {
    el.append(h("span", { class: "num", text: "BAD" }), h("span", { class: "reason", text: reason }));
    return;
  }
  el.append(h("span", { class: "num", text: formatValue(sample.value) }));
  if (unit) el.append(h("span", { class: "unit", text: unit }));
  if (q === "uncertain") el.append(h("span", { class: "reason", text: `? ${reason}` }));
}
