// Hash routes of the plating pages: #/loads, #/history, #/recipes, #/recipes/<id>, #/load/<id>.
import { renderLoads } from "./loads.js";
import { renderHistory } from "./history.js";
import { renderRecipeEditor, renderRecipeList } from "./recipes.js";
import { renderReport } from "./report.js";

const PAGES = new Set(["loads", "history", "recipes", "load"]);

export function isPlatingRoute(first) { return PAGES.has(first); }

/** Render the page of ``parts`` (the split hash) into ``root``; returns the page's cleanup or null. */
export function routePlating(root, parts) {
  const [page, id] = parts;
  if (page === "loads") return renderLoads(root);
  if (page === "history") return renderHistory(root);
  if (page === "recipes") return id ? renderRecipeEditor(root, id) : renderRecipeList(root);
  if (page === "load" && id) return renderReport(root, id);
  return renderHistory(root);
}
