// Alarm page: active list (ISA-18.2 states) with acknowledge and shelve, and the journal below.
import { get, post } from "../api.js";
import { fmtTime, h, typing } from "../dom.js";
import { activeAlarms, banner, can, onAlarmChange } from "../app.js";

const PRIO = { critical: 0, high: 1, medium: 2, low: 3, log: 4 };

function alarmRow(a) {
  const actions = h("td", { class: "actions" });
  if (can("operator")) {
    if (!a.acked) {
      actions.append(h("button", { type: "button", class: "ack", dataset: { alarm: a.id }, text: "Ack", onclick: async () => {
        try { await post(`/api/alarms/${encodeURIComponent(a.id)}/ack`, {}); } catch (e) { banner(e.message); }
      } }));
    }
    const comment = h("input", { class: "shelve-comment", placeholder: "reason to shelve", maxlength: 500, "aria-label": `shelve reason ${a.id}` });
    const dur = h("select", { "aria-label": "shelve duration" },
      ...[["15 min", 900], ["1 h", 3600], ["8 h", 28800]].map(([l, s]) => h("option", { value: s, text: l })));
    if (a.state === "shelved") {
      actions.append(h("button", { type: "button", text: "Unshelve", onclick: async () => {
        try { await post(`/api/alarms/${encodeURIComponent(a.id)}/shelve`, { duration_s: 0, comment: "unshelved from the HMI" }); } catch (e) { banner(e.message); }
      } }));
    } else {
      actions.append(comment, dur, h("button", { type: "button", class: "shelve", text: "Shelve", onclick: async () => {
        try { await post(`/api/alarms/${encodeURIComponent(a.id)}/shelve`, { duration_s: Number(dur.value), comment: comment.value }); }
        catch (e) { banner(e.message); }
      } }));
    }
  }
  return h("tr", { class: `alarm p-${a.priority} ${a.acked ? "acked" : "unacked"} st-${a.state}`, dataset: { alarm: a.id } },
    h("td", { text: fmtTime(a.ts) }),
    h("td", { class: "prio", text: a.priority }),
    h("td", { text: a.tank || a.area || "" }),
    h("td", { text: a.message || a.source }),
    h("td", { text: a.value === null ? "" : String(a.value) }),
    h("td", { class: "state", text: a.state === "shelved" ? `shelved until ${fmtTime(a.shelved_until)}` : a.state.replace("_", " ") }),
    actions,
  );
}

export function renderAlarms(root) {
  const active = h("tbody", { id: "alarm-rows" });
  const journal = h("tbody", { id: "journal-rows" });
  root.append(
    h("h1", { class: "page", text: "Alarms" }),
    h("div", { class: "scroll" }, h("table", { class: "alarms" },
      h("thead", {}, h("tr", {}, ...["time", "priority", "tank", "message", "value", "state", ""].map((x) => h("th", { text: x })))), active)),
    h("h2", { text: "Journal (last 7 days)" }),
    h("div", { class: "scroll" }, h("table", { class: "journal" },
      h("thead", {}, h("tr", {}, ...["time", "alarm", "state", "message", "user", "comment"].map((x) => h("th", { text: x })))), journal)),
  );
  function paint(list) {
    if (typing(active)) return; // do not wipe what the operator is typing
    const sorted = [...list].sort((a, b) => (a.acked - b.acked) || (PRIO[a.priority] - PRIO[b.priority]) || (b.ts - a.ts));
    active.replaceChildren(...(sorted.length ? sorted.map(alarmRow) : [h("tr", {}, h("td", { colspan: 7, class: "muted", text: "no active alarms" }))]));
  }
  async function loadJournal() {
    try {
      const events = await get("/api/alarms/journal?limit=200");
      journal.replaceChildren(...events.map((e) => h("tr", {},
        h("td", { text: fmtTime(e.ts) }), h("td", { text: e.source }), h("td", { text: e.state || "" }),
        h("td", { text: e.message }), h("td", { text: e.user || "" }), h("td", { text: e.comment || "" }))));
    } catch (e) { banner(e.message); }
  }
  async function loadActive() {
    try { paint(await get("/api/alarms")); } catch (e) { banner(e.message); }
  }
  paint(activeAlarms());
  loadActive();
  loadJournal();
  const off = onAlarmChange((list) => { paint(list); loadJournal(); });
  return () => off();
}
