// Shared bits of the plating pages: durations, refusal messages with their key paths, tank names.
import { get } from "../api.js";
import { h } from "../dom.js";

/** Seconds as m:ss or h:mm:ss (a dwell timer). */
export function fmtDur(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return "";
  const t = Math.max(0, Math.floor(s));
  const hh = Math.floor(t / 3600), mm = Math.floor((t % 3600) / 60), ss = t % 60;
  const p = (n) => String(n).padStart(2, "0");
  return hh ? `${hh}:${p(mm)}:${p(ss)}` : `${mm}:${p(ss)}`;
}

export function fmtNum(v, digits = 2) {
  return typeof v === "number" && Number.isFinite(v) ? v.toFixed(digits) : "-";
}

/** The window text of a dwell: "30 s .. 5:00". */
export function dwellWindow(min, max) {
  if (min === null || min === undefined) return "";
  return `${fmtDur(min)} .. ${fmtDur(max)}`;
}

/** Like api(), but a refusal keeps its key-path issues (PUT /api/recipes, POST /api/loads answer them). */
export async function send(method, path, body) {
  const headers = { Accept: "application/json", "Content-Type": "application/json" };
  for (const part of document.cookie.split(";")) {
    const [k, v] = part.trim().split("=");
    if (k === "scada_csrf") headers["X-CSRF-Token"] = decodeURIComponent(v || "");
  }
  const res = await fetch(path, { method, headers, credentials: "same-origin", body: JSON.stringify(body) });
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  if (res.ok) return { ok: true, data };
  let detail = `HTTP ${res.status}`;
  let issues = [];
  if (data && typeof data.detail === "string") detail = data.detail;
  else if (data && Array.isArray(data.detail)) {
    issues = data.detail.map((e) => ({ path: String(e.loc).replace(/^body\.?/, ""), message: e.msg }));
    detail = issues.map((i) => `${i.path}: ${i.message}`).join("; ");
  }
  if (data && Array.isArray(data.issues)) issues = data.issues;
  return { ok: false, status: res.status, detail, issues };
}

/** A list of refusal reasons (text only). */
export function issueList(result, id) {
  const ul = h("ul", { class: "issues", id, role: "alert" });
  const items = result.issues && result.issues.length ? result.issues : [{ path: "", message: result.detail }];
  for (const i of items) ul.append(h("li", { dataset: { path: i.path }, text: i.path ? `${i.path}: ${i.message}` : i.message }));
  return ul;
}

let tanksCache = null;
/** Tanks in line order: [{id, name}] (from /api/tanks, cached for the session). */
export async function tanks() {
  if (!tanksCache) {
    const list = await get("/api/tanks");
    tanksCache = list.map((t) => ({ id: t.id, name: t.name || t.id }));
  }
  return tanksCache;
}
