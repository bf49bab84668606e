// Audit page: who did what, when, from where, old -> new value (operator and above).
import { get } from "../api.js";
import { fmtTime, h } from "../dom.js";
import { can } from "../app.js";

function show(v) {
  if (v === null || v === undefined) return "";
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

export function renderAudit(root) {
  root.append(h("h1", { class: "page", text: "Audit trail" }));
  if (!can("operator")) {
    root.append(h("p", { class: "muted", text: "The audit trail is visible to operators and above." }));
    return null;
  }
  const user = h("input", { placeholder: "filter by user", maxlength: 200, id: "audit-user" });
  const kind = h("select", { id: "audit-kind" }, ...[["writes and logins", ""], ["writes", "audit"], ["logins", "login"]].map(([l, v]) => h("option", { value: v, text: l })));
  const rows = h("tbody", { id: "audit-rows" });
  async function load() {
    const q = new URLSearchParams({ limit: "300" });
    if (user.value) q.set("user", user.value);
    if (kind.value) q.set("kind", kind.value);
    try {
      const events = await get(`/api/audit?${q}`);
      rows.replaceChildren(...events.map((e) => h("tr", { class: e.state === "ok" ? "" : "abnormal" },
        h("td", { text: fmtTime(e.ts) }),
        h("td", { class: "user", text: e.user || e.source }),
        h("td", { text: e.kind }),
        h("td", { text: e.data && e.data.action ? `${e.data.action} ${e.source}` : e.source }),
        h("td", { text: e.data && "old" in e.data ? `${show(e.data.old)} -> ${show(e.data.new)}` : "" }),
        h("td", { text: e.state || "" }),
        h("td", { class: "msg", text: e.message }),
        h("td", { class: "comment", text: e.comment || "" }),
        h("td", { text: e.data ? show(e.data.address) : "" }),
      )));
    } catch (err) {
      rows.replaceChildren(h("tr", {}, h("td", { colspan: 9, class: "error", text: err.message })));
    }
  }
  user.addEventListener("change", load);
  kind.addEventListener("change", load);
  root.append(h("div", { class: "filters" }, user, kind, h("button", { type: "button", text: "Refresh", onclick: load })),
    h("div", { class: "scroll" }, h("table", { class: "audit" },
      h("thead", {}, h("tr", {}, ...["time", "user", "kind", "what", "old -> new", "outcome", "message", "comment", "address"].map((x) => h("th", { text: x })))),
      rows)));
  load();
  return null;
}
