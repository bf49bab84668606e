// Load history with search: by text (id, part number, order), part number, customer order, status and
// creation date; each load links to its record page.
import { get } from "../api.js";
import { fmtTime, h } from "../dom.js";
import { fmtNum } from "./common.js";

const STATUSES = ["", "queued", "in_tank", "in_transit", "done", "aborted"];

export function renderHistory(root) {
  const text = h("input", { id: "hist-text", placeholder: "id, part number or order", maxlength: 100, "aria-label": "search" });
  const part = h("input", { id: "hist-part", placeholder: "part number", maxlength: 64, "aria-label": "part number" });
  const order = h("input", { id: "hist-order", placeholder: "customer order", maxlength: 100, "aria-label": "customer order" });
  const status = h("select", { id: "hist-status", "aria-label": "status" },
    ...STATUSES.map((s) => h("option", { value: s, text: s ? s.replace("_", " ") : "any status" })));
  const from = h("input", { id: "hist-from", type: "date", "aria-label": "created from" });
  const to = h("input", { id: "hist-to", type: "date", "aria-label": "created until" });
  const rows = h("tbody", { id: "history-rows" });
  async function search(ev) {
    if (ev) ev.preventDefault();
    const q = new URLSearchParams({ limit: "200" });
    if (text.value) q.set("text", text.value);
    if (part.value) q.set("part", part.value);
    if (order.value) q.set("order", order.value);
    if (status.value) q.set("status", status.value);
    // the dates are local days: send epoch seconds
    if (from.value) q.set("start", String(new Date(`${from.value}T00:00:00`).getTime() / 1000));
    if (to.value) q.set("end", String(new Date(`${to.value}T00:00:00`).getTime() / 1000 + 86400));
    try {
      const loads = await get(`/api/loads?${q}`);
      rows.replaceChildren(...(loads.length ? loads.map((ld) => h("tr", { class: `load st-${ld.status}`, dataset: { load: ld.id } },
        h("td", {}, h("a", { href: `#/load/${encodeURIComponent(ld.id)}`, text: ld.id })),
        h("td", { class: "part", text: ld.part_number }),
        h("td", { text: String(ld.quantity) }),
        h("td", { text: String(ld.area_dm2) }),
        h("td", { class: "order", text: ld.customer_order }),
        h("td", { text: `${ld.recipe_id} v${ld.recipe_version}` }),
        h("td", { text: ld.status.replace("_", " ") }),
        h("td", { text: fmtTime(ld.created_ts) }),
        h("td", { text: fmtTime(ld.finished_ts) }),
        h("td", { text: fmtNum(ld.amp_hours, 3) }),
      )) : [h("tr", {}, h("td", { colspan: 10, class: "muted", text: "no load matches" }))]));
    } catch (e) {
      rows.replaceChildren(h("tr", {}, h("td", { colspan: 10, class: "error", text: e.message })));
    }
  }
  const form = h("form", { class: "filters", id: "history-search" }, text, part, order, status, from, to,
    h("button", { type: "submit", text: "Search" }));
  form.addEventListener("submit", search);
  root.append(h("h1", { class: "page", text: "Load history" }), form,
    h("div", { class: "scroll" }, h("table", { class: "history" },
      h("thead", {}, h("tr", {}, ...["load", "part", "qty", "dm2", "order", "recipe", "status", "created", "finished", "Ah"].map((x) => h("th", { text: x })))),
      rows)));
  search();
  return null;
}
