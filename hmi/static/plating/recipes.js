// Recipes: the list, and the editor (steps table: tank, dwell min/max, current density or current, ramp,
// temperature and pH windows, efficiency). Saving makes a new version (engineer+); a refusal lists each
// reason with its key path and marks the field it names. Older versions can be loaded into the form.
import { get } from "../api.js";
import { fmtTime, h } from "../dom.js";
import { banner, can } from "../app.js";
import { issueList, send, tanks } from "./common.js";

// [key in the step, column title, kind]; "min"/"max" of a window are "temperature_c.min" etc.
const COLS = [
  ["dwell_min_s", "dwell min s"], ["dwell_max_s", "dwell max s"], ["current_density_a_dm2", "A/dm2"],
  ["current_a", "or A"], ["ramp_s", "ramp s"], ["temperature_c.min", "T min"], ["temperature_c.max", "T max"],
  ["ph.min", "pH min"], ["ph.max", "pH max"], ["efficiency", "eff."],
];

export function renderRecipeList(root) {
  const rows = h("tbody", { id: "recipe-rows" });
  root.append(h("h1", { class: "page", text: "Recipes" }));
  if (can("engineer")) {
    const id = h("input", { id: "new-recipe-id", placeholder: "new recipe id", maxlength: 64, "aria-label": "new recipe id" });
    const form = h("form", { class: "filters" }, id, h("button", { type: "submit", text: "New recipe" }));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (id.value) location.hash = `#/recipes/${encodeURIComponent(id.value)}`;
    });
    root.append(form);
  }
  root.append(h("div", { class: "scroll" }, h("table", { class: "recipes" },
    h("thead", {}, h("tr", {}, ...["recipe", "part number", "version", "tanks", "by", "saved", "comment"].map((x) => h("th", { text: x })))),
    rows)));
  get("/api/recipes").then((list) => {
    rows.replaceChildren(...(list.length ? list.map((r) => h("tr", { dataset: { recipe: r.id } },
      h("td", {}, h("a", { href: `#/recipes/${encodeURIComponent(r.id)}`, text: r.id })),
      h("td", { class: "part", text: r.body.part_number }),
      h("td", { text: `v${r.version}` }),
      h("td", { text: r.body.steps.map((s) => s.tank).join(" > ") }),
      h("td", { text: r.user }),
      h("td", { text: fmtTime(r.created_ts) }),
      h("td", { text: r.comment }),
    )) : [h("tr", {}, h("td", { colspan: 7, class: "muted", text: "no recipe yet" }))]));
  }).catch((e) => banner(e.message));
  return null;
}

function getPath(step, key) {
  const [a, b] = key.split(".");
  const v = b ? (step[a] ? step[a][b] : null) : step[a];
  return v === null || v === undefined ? "" : String(v);
}

function stepRow(step, tankList, editable, onRemove) {
  const tank = h("select", { class: "f-tank", "aria-label": "tank", disabled: !editable, dataset: { key: "tank" } },
    ...tankList.map((t) => h("option", { value: t.id, selected: t.id === step.tank, text: t.name })));
  if (step.tank && !tankList.some((t) => t.id === step.tank)) tank.append(h("option", { value: step.tank, selected: true, text: step.tank }));
  const cells = COLS.map(([key, title]) => h("td", {}, h("input", {
    type: "number", step: "any", class: "num-in", value: getPath(step, key), "aria-label": title, disabled: !editable, dataset: { key },
  })));
  const note = h("input", { class: "note-in", value: step.note || "", maxlength: 200, "aria-label": "note", disabled: !editable, dataset: { key: "note" } });
  const tr = h("tr", { class: "step" }, h("td", { class: "seq" }), h("td", {}, tank), ...cells, h("td", {}, note));
  if (editable) tr.append(h("td", {}, h("button", { type: "button", class: "remove", text: "Remove", onclick: () => onRemove(tr) })));
  return tr;
}

/** The form's steps back to a RecipeBody step (empty fields left out; numbers as numbers). */
function readStep(tr) {
  const step = {};
  for (const el of tr.querySelectorAll("[data-key]")) {
    const key = el.dataset.key;
    if (key === "tank" || key === "note") { if (el.value) step[key] = el.value; continue; }
    if (el.value === "") continue;
    const v = Number(el.value);
    const [a, b] = key.split(".");
    if (b) { step[a] = step[a] || {}; step[a][b] = v; } else step[a] = v;
  }
  return step;
}

export function renderRecipeEditor(root, id) {
  const editable = can("engineer");
  const part = h("input", { id: "recipe-part", maxlength: 64, "aria-label": "part number", disabled: !editable, dataset: { key: "part_number" } });
  const desc = h("input", { id: "recipe-desc", maxlength: 500, "aria-label": "description", disabled: !editable, dataset: { key: "description" } });
  const comment = h("input", { id: "recipe-comment", maxlength: 500, placeholder: "what changed and why", "aria-label": "comment", disabled: !editable });
  const steps = h("tbody", { id: "recipe-steps" });
  const out = h("div", { id: "recipe-msg" });
  const title = h("h1", { class: "page", text: `Recipe ${id}` });
  const versions = h("tbody", { id: "recipe-versions" });
  let tankList = [];

  function renumber() { steps.querySelectorAll("td.seq").forEach((td, i) => { td.textContent = String(i + 1); }); }
  function addStep(step) { steps.append(stepRow(step, tankList, editable, (tr) => { tr.remove(); renumber(); })); renumber(); }
  function fill(r) {
    part.value = r ? r.body.part_number : "";
    desc.value = r ? r.body.description || "" : "";
    steps.replaceChildren();
    const list = r ? r.body.steps : [{ tank: tankList.length ? tankList[0].id : "", dwell_min_s: 60, dwell_max_s: 600 }];
    for (const s of list) addStep(s);
    title.textContent = r ? `Recipe ${id} (v${r.version} shown)` : `Recipe ${id} (new)`;
  }
  function markIssues(issues) {
    for (const el of root.querySelectorAll(".invalid")) el.classList.remove("invalid");
    for (const i of issues || []) {
      const m = /^steps\[(\d+)\]\.?([a-z_]+)?/.exec(i.path || "");
      if (m) {
        const tr = steps.children[Number(m[1])];
        if (!tr) continue;
        const target = m[2] ? [...tr.querySelectorAll("[data-key]")].filter((el) => el.dataset.key.split(".")[0] === m[2]) : [tr];
        for (const el of target) el.classList.add("invalid");
      } else if (i.path === "part_number") part.classList.add("invalid");
    }
  }
  async function save(ev) {
    ev.preventDefault();
    const body = { part_number: part.value, description: desc.value, steps: [...steps.children].map(readStep) };
    const r = await send("PUT", `/api/recipes/${encodeURIComponent(id)}`, { body, comment: comment.value });
    out.replaceChildren();
    markIssues(r.ok ? [] : r.issues);
    if (!r.ok) { out.append(issueList(r, "recipe-issues")); return; }
    out.append(h("p", { class: "muted", id: "recipe-saved", text: r.data.changed ? `saved as version ${r.data.version}` : "no change: nothing saved" }));
    comment.value = "";
    fill(r.data);
    loadVersions();
  }
  async function loadVersions() {
    try {
      const list = await get(`/api/recipes/${encodeURIComponent(id)}/versions`);
      versions.replaceChildren(...list.slice().reverse().map((r) => h("tr", { dataset: { version: r.version } },
        h("td", { text: `v${r.version}` }), h("td", { text: r.user }), h("td", { text: fmtTime(r.created_ts) }),
        h("td", { text: r.comment }),
        h("td", {}, h("button", { type: "button", text: "Load into form", onclick: () => fill(r) })))));
    } catch { versions.replaceChildren(); }
  }

  const form = h("form", { id: "recipe-form" },
    h("div", { class: "recipe-head" },
      h("label", {}, "Part number ", part), h("label", {}, "Description ", desc)),
    h("div", { class: "scroll" }, h("table", { class: "recipe-steps" },
      h("thead", {}, h("tr", {}, ...["#", "tank", ...COLS.map((c) => c[1]), "note", ""].map((x) => h("th", { text: x })))),
      steps)));
  if (editable) {
    form.append(h("div", { class: "filters" },
      h("button", { type: "button", id: "add-step", text: "Add step", onclick: () => addStep({ tank: tankList.length ? tankList[0].id : "" }) }),
      comment, h("button", { type: "submit", id: "recipe-save", text: "Save new version" })));
    form.addEventListener("submit", save);
  } else {
    form.append(h("p", { class: "muted", text: "Recipes are edited by engineers." }));
  }
  root.append(h("p", {}, h("a", { href: "#/recipes", text: "All recipes" })), title, form, out,
    h("h2", { text: "Versions" }), h("div", { class: "scroll" }, h("table", { class: "versions" }, versions)));

  (async () => {
    try {
      tankList = await tanks();
      let latest = null;
      try { latest = await get(`/api/recipes/${encodeURIComponent(id)}`); } catch (e) { if (e.status !== 404) throw e; }
      fill(latest);
      loadVersions();
    } catch (e) { banner(e.message); }
  })();
  return null;
}
