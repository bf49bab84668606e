// One WebSocket per page: subscribe to the tags the current view shows (plus alarms), paint changes.
// When the connection drops every value on screen turns stale until fresh data arrives.
import { paint } from "./quality.js";

export class Live {
  constructor(onAlarms, onState) {
    this.patterns = [];
    this.latest = new Map();
    this.listeners = new Set();
    this.onAlarms = onAlarms;
    this.onState = onState;
    this.ws = null;
    this.retry = 500;
    this.stopped = false;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    if (this.ws) this.ws.close();
    this.ws = null;
  }

  connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/api/ws`);
    this.ws = ws;
    ws.addEventListener("open", () => {
      this.retry = 500;
      this.onState("live");
      this.sendSubscription();
    });
    ws.addEventListener("message", (ev) => this.handle(ev.data));
    ws.addEventListener("close", () => {
      if (this.ws === ws) this.ws = null;
      this.onState("offline");
      if (!this.stopped) {
        setTimeout(() => this.connect(), this.retry);
        this.retry = Math.min(this.retry * 2, 10000);
      }
    });
  }

  handle(text) {
    let msg;
    try { msg = JSON.parse(text); } catch { return; }
    if (msg.type === "tags") {
      for (const [name, sample] of Object.entries(msg.values)) {
        this.latest.set(name, sample);
        for (const el of document.querySelectorAll("[data-tag]")) {
          if (el.dataset.tag === name) paint(el, sample);
        }
        for (const fn of this.listeners) fn(name, sample);
      }
    } else if (msg.type === "alarms") {
      this.onAlarms(msg.active);
    } else if (msg.type === "error") {
      console.warn("live:", msg.message);
    }
  }

  /** Replace the tag patterns of this page (alarms are always on). */
  subscribe(patterns) {
    if (JSON.stringify(patterns) === JSON.stringify(this.patterns)) return;
    this.patterns = patterns;
    this.sendSubscription();
  }

  sendSubscription() {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ type: "subscribe", tags: this.patterns, alarms: true }));
    }
  }

  onTag(fn) { this.listeners.add(fn); return () => this.listeners.delete(fn); }
}
