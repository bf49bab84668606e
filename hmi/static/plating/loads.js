// Loads on the line now: one row per tank in line order (load, dwell timer against the step's window,
// rectifier setpoint), the loads waiting or on the hoist, and the operator's commands (new load, enter,
// leave, abort). Normal is grey; an over-dwell is shown in alarm colour, an early exit would be under-dwell.
import { get } from "../api.js";
import { h, typing } from "../dom.js";
import { banner, can } from "../app.js";
import { dwellWindow, fmtDur, fmtNum, issueList, send, tanks } from "./common.js";

const STATE_TEXT = { short: "below min", in_window: "in window", over: "OVER max" };

function loadLink(ld) {
  return h("a", { href: `#/load/${encodeURIComponent(ld.id)}`, class: "load-link", text: ld.id });
}

async function command(path, body, msgEl, reload) {
  msgEl.textContent = "";
  const r = await send("POST", path, body);
  if (!r.ok) { msgEl.textContent = r.detail; msgEl.classList.add("error"); return; }
  reload();
}

function tankRow(tank, ld, reload) {
  if (!ld) {
    return h("tr", { class: "tank-row empty", dataset: { tank: tank.id } },
      h("th", { text: tank.name }), h("td", { colspan: 7, class: "muted", text: "empty" }));
  }
  const msg = h("span", { class: "msg" });
  const actions = h("td", { class: "actions" });
  if (can("operator")) {
    actions.append(h("button", { type: "button", class: "leave", dataset: { load: ld.id }, text: "Leave tank",
      onclick: () => command(`/api/loads/${encodeURIComponent(ld.id)}/leave`, {}, msg, reload) }));
  }
  actions.append(msg);
  const st = ld.dwell_state || "none";
  return h("tr", { class: `tank-row dwell-${st}`, dataset: { tank: tank.id, load: ld.id } },
    h("th", { text: tank.name }),
    h("td", {}, loadLink(ld)),
    h("td", { text: `${ld.part_number} x${ld.quantity}` }),
    h("td", { class: "order", text: ld.customer_order }),
    h("td", { class: "dwell" }, h("span", { class: "timer", text: fmtDur(ld.dwell_s) }),
      h("span", { class: "window", text: ld.dwell_min_s === null ? " (not a recipe step)" : ` / ${dwellWindow(ld.dwell_min_s, ld.dwell_max_s)}` })),
    h("td", { class: "dwell-state", text: STATE_TEXT[ld.dwell_state] || "" }),
    h("td", { text: ld.current_density_a_dm2 === null ? "" : `${fmtNum(ld.current_density_a_dm2, 2)} A/dm2 = ${fmtNum(ld.current_a, 0)} A` }),
    actions,
  );
}

function waitingRow(ld, tankList, reload) {
  const msg = h("span", { class: "msg" });
  const actions = h("td", { class: "actions" });
  if (can("operator")) {
    const sel = h("select", { class: "enter-tank", "aria-label": `tank for ${ld.id}`, dataset: { load: ld.id } },
      ...tankList.map((t) => h("option", { value: t.id, selected: t.id === ld.next_tank, text: t.name })));
    const reason = h("input", { class: "abort-reason", placeholder: "reason to abort", maxlength: 500, "aria-label": `abort reason ${ld.id}` });
    actions.append(sel,
      h("button", { type: "button", class: "enter", dataset: { load: ld.id }, text: "Enter",
        onclick: () => command(`/api/loads/${encodeURIComponent(ld.id)}/enter`, { tank: sel.value }, msg, reload) }),
      reason,
      h("button", { type: "button", class: "abort", text: "Abort",
        onclick: () => command(`/api/loads/${encodeURIComponent(ld.id)}/abort`, { reason: reason.value }, msg, reload) }));
  }
  actions.append(msg);
  return h("tr", { class: "waiting", dataset: { load: ld.id } },
    h("td", {}, loadLink(ld)),
    h("td", { text: `${ld.part_number} x${ld.quantity}` }),
    h("td", { text: `${ld.area_dm2} dm2` }),
    h("td", { class: "order", text: ld.customer_order }),
    h("td", { text: ld.status.replace("_", " ") }),
    h("td", { text: ld.next_tank || "-" }),
    actions,
  );
}

function newLoadForm(reload) {
  const f = (name, attrs) => h("label", {}, attrs.label, h("input", { name, id: `new-${name}`, ...attrs, label: undefined }));
  const out = h("div", { id: "new-load-msg" });
  const form = h("form", { class: "card new-load", id: "new-load" },
    h("h2", { text: "New load" }),
    f("part_number", { label: "Part number", required: true, maxlength: 64 }),
    f("quantity", { label: "Quantity", type: "number", min: 1, step: 1, required: true }),
    f("area_dm2", { label: "Area dm2", type: "number", min: 0, step: "any", required: true }),
    f("customer_order", { label: "Customer order", maxlength: 100 }),
    f("id", { label: "Load id (bar code)", maxlength: 64, placeholder: "generated" }),
    h("button", { type: "submit", id: "new-load-submit", text: "Create" }),
    out);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    const body = {
      part_number: String(fd.get("part_number")), quantity: Number(fd.get("quantity")),
      area_dm2: Number(fd.get("area_dm2")), customer_order: String(fd.get("customer_order") || ""),
    };
    if (fd.get("id")) body.id = String(fd.get("id"));
    const r = await send("POST", "/api/loads", body);
    out.replaceChildren();
    if (!r.ok) { out.append(issueList(r, "new-load-issues")); return; }
    out.append(h("p", { class: "muted", text: `load ${r.data.id} created (recipe ${r.data.recipe_id} v${r.data.recipe_version})` }));
    form.reset();
    reload();
  });
  return form;
}

export function renderLoads(root) {
  const tankBody = h("tbody", { id: "line-loads" });
  const waitBody = h("tbody", { id: "waiting-loads" });
  root.append(
    h("h1", { class: "page", text: "Loads on the line" }),
    h("div", { class: "scroll" }, h("table", { class: "line-loads" },
      h("thead", {}, h("tr", {}, ...["tank", "load", "part", "order", "dwell / window", "", "rectifier", ""].map((x) => h("th", { text: x })))),
      tankBody)),
    h("h2", { text: "Waiting and on the hoist" }),
    h("div", { class: "scroll" }, h("table", { class: "waiting-loads" },
      h("thead", {}, h("tr", {}, ...["load", "part", "area", "order", "status", "next tank", ""].map((x) => h("th", { text: x })))),
      waitBody)),
  );
  let stopped = false;
  async function reload() {
    if (stopped) return;
    try {
      const [tankList, loads] = await Promise.all([tanks(), get("/api/loads?on_line=true&limit=1000")]);
      if (typing(tankBody) || typing(waitBody)) return; // never wipe what the operator is typing
      const byTank = new Map(loads.filter((l) => l.tank).map((l) => [l.tank, l]));
      tankBody.replaceChildren(...tankList.map((t) => tankRow(t, byTank.get(t.id), reload)));
      const waiting = loads.filter((l) => !l.tank);
      waitBody.replaceChildren(...(waiting.length ? waiting.map((l) => waitingRow(l, tankList, reload))
        : [h("tr", {}, h("td", { colspan: 7, class: "muted", text: "no load waiting" }))]));
    } catch (e) { banner(e.message); }
  }
  if (can("operator")) root.append(newLoadForm(reload));
  reload();
  const timer = setInterval(reload, 1000);
  return () => { stopped = true; clearInterval(timer); };
}
