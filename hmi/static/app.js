// Entry point: login, navigation (hash routes), the live connection and the alarm summary.
import { api, get, post, setUnauthorizedHandler } from "./api.js";
import { clear, h } from "./dom.js";
import { Live } from "./live.js";
import { renderOverview } from "./views/overview.js";
import { renderTank } from "./views/tank.js";
import { renderAlarms } from "./views/alarms.js";
import { renderAudit } from "./views/audit.js";
import { isPlatingRoute, routePlating } from "./plating/index.js";

const state = { me: null, alarms: [], live: null, cleanup: null, alarmListeners: new Set() };
const view = document.getElementById("view");

const RANK = { viewer: 0, operator: 1, engineer: 2, admin: 3 };
export function can(role) { return state.me && RANK[state.me.role] >= RANK[role]; }
export function currentRole() { return state.me ? state.me.role : "viewer"; }
export function liveConn() { return state.live; }
export function activeAlarms() { return state.alarms; }
export function onAlarmChange(fn) { state.alarmListeners.add(fn); return () => state.alarmListeners.delete(fn); }

function setConn(s) {
  const el = document.getElementById("conn");
  el.textContent = s === "live" ? "live" : "offline - values stale";
  el.className = `conn ${s}`;
  document.body.classList.toggle("stale", s !== "live");
}

function setAlarms(active) {
  state.alarms = active;
  const unacked = active.filter((a) => !a.acked && a.state !== "shelved");
  const el = document.getElementById("alarm-count");
  el.textContent = unacked.length ? String(unacked.length) : "";
  const prios = ["critical", "high", "medium", "low"];
  const worst = prios.find((p) => unacked.some((a) => a.priority === p));
  el.className = `count ${worst ? "p-" + worst : ""}`;
  for (const fn of state.alarmListeners) fn(active);
}

function showLogin(message) {
  if (state.live) { state.live.stop(); state.live = null; }
  state.me = null;
  document.getElementById("nav").hidden = true;
  document.getElementById("logout").hidden = true;
  document.getElementById("who").textContent = "";
  if (state.cleanup) { state.cleanup(); state.cleanup = null; }
  clear(view);
  const form = document.getElementById("login-template").content.firstElementChild.cloneNode(true);
  view.append(form);
  const err = form.querySelector("#login-error");
  if (message) err.textContent = message;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.textContent = "";
    const fd = new FormData(form);
    try {
      await post("/api/auth/login", { username: String(fd.get("username")), password: String(fd.get("password")) });
      await start();
    } catch (e) {
      err.textContent = e.message;
    }
  });
  form.querySelector("#username").focus();
}

async function start() {
  try {
    state.me = await get("/api/auth/me");
  } catch {
    showLogin();
    return;
  }
  document.getElementById("nav").hidden = false;
  document.getElementById("logout").hidden = false;
  document.getElementById("who").textContent = `${state.me.username} (${state.me.role})`;
  state.live = new Live(setAlarms, setConn);
  state.live.start();
  route();
}

function route() {
  if (!state.me) return;
  if (state.cleanup) { state.cleanup(); state.cleanup = null; }
  clear(view);
  const hash = location.hash || "#/";
  const parts = hash.slice(2).split("/").map(decodeURIComponent);
  for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("active", a.dataset.nav === (parts[0] || "overview"));
  let cleanup;
  try {
    if (parts[0] === "tank" && parts[1]) cleanup = renderTank(view, parts[1]);
    else if (parts[0] === "alarms") cleanup = renderAlarms(view);
    else if (parts[0] === "audit") cleanup = renderAudit(view);
    else if (isPlatingRoute(parts[0])) cleanup = routePlating(view, parts);
    else cleanup = renderOverview(view);
  } catch (e) {
    view.append(h("p", { class: "error", text: String(e) }));
  }
  state.cleanup = cleanup || null;
}

export function banner(text, kind = "error") {
  const b = document.getElementById("banner");
  b.textContent = text;
  b.className = `banner ${kind}`;
  b.hidden = !text;
  if (text) setTimeout(() => { if (b.textContent === text) b.hidden = true; }, 6000);
}

document.getElementById("logout").addEventListener("click", async () => {
  try { await api("POST", "/api/auth/logout"); } catch { /* the cookie is gone either way */ }
  showLogin();
});
window.addEventListener("hashchange", route);
setUnauthorizedHandler(() => showLogin("Session ended: please sign in again."));
start();
