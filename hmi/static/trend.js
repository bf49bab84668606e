// A small hand-written SVG trend: min/max band and average from the historian, live points appended,
// the setpoint as a dashed line, the normal window as a light band. Bad/empty buckets leave a gap.
const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

export class Trend {
  constructor({ title, unit, width = 600, height = 170 }) {
    this.title = title;
    this.unit = unit;
    this.w = width;
    this.h = height;
    this.buckets = [];
    this.live = [];
    this.sp = null;
    this.window = null;
    this.span = [0, 1];
    this.root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "trend", role: "img" });
    this.root.setAttribute("aria-label", `${title} trend`);
  }

  setHistory(buckets, start, end) {
    this.buckets = buckets;
    this.span = [start, end];
    this.live = [];
    this.draw();
  }

  setSetpoint(sp) { this.sp = typeof sp === "number" ? sp : null; this.draw(); }
  setWindow(range) { this.window = range; this.draw(); }

  addLive(ts, value, quality) {
    if (typeof value !== "number") return;
    this.live.push([ts, value, quality]);
    const end = Math.max(this.span[1], ts);
    const width = this.span[1] - this.span[0];
    this.span = [end - width, end];
    this.live = this.live.filter((p) => p[0] >= this.span[0]);
    if (!this._pending) {
      this._pending = true;
      requestAnimationFrame(() => { this._pending = false; this.draw(); });
    }
  }

  draw() {
    const { w, h } = this;
    const pad = { l: 46, r: 8, t: 16, b: 18 };
    const vals = [];
    for (const b of this.buckets) if (b.count > 0 && b.min !== null) vals.push(b.min, b.max);
    for (const p of this.live) vals.push(p[1]);
    if (this.sp !== null) vals.push(this.sp);
    if (this.window) vals.push(this.window.min, this.window.max);
    let lo = vals.length ? Math.min(...vals) : 0;
    let hi = vals.length ? Math.max(...vals) : 1;
    if (hi - lo < 1e-6) { hi += 0.5; lo -= 0.5; }
    const m = (hi - lo) * 0.08; lo -= m; hi += m;
    const [t0, t1] = this.span;
    const x = (t) => pad.l + ((t - t0) / Math.max(1e-9, t1 - t0)) * (w - pad.l - pad.r);
    const y = (v) => pad.t + (1 - (v - lo) / (hi - lo)) * (h - pad.t - pad.b);
    const root = this.root;
    root.replaceChildren();
    root.append(svg("rect", { x: pad.l, y: pad.t, width: w - pad.l - pad.r, height: h - pad.t - pad.b, class: "plot" }));
    if (this.window) {
      const top = y(Math.min(hi, this.window.max)), bot = y(Math.max(lo, this.window.min));
      if (bot > top) root.append(svg("rect", { x: pad.l, y: top, width: w - pad.l - pad.r, height: bot - top, class: "window" }));
    }
    for (let i = 0; i <= 4; i++) {
      const v = lo + ((hi - lo) * i) / 4;
      const yy = y(v);
      root.append(svg("line", { x1: pad.l, x2: w - pad.r, y1: yy, y2: yy, class: "grid" }));
      const label = svg("text", { x: pad.l - 4, y: yy + 4, class: "axis", "text-anchor": "end" });
      label.textContent = v.toFixed(Math.abs(hi - lo) < 5 ? 2 : 1);
      root.append(label);
    }
    const title = svg("text", { x: pad.l, y: 12, class: "title" });
    title.textContent = `${this.title}${this.unit ? " [" + this.unit + "]" : ""}`;
    root.append(title);
    // min/max band and average line; a gap where a bucket has no good data
    let band = "", avg = "", gap = true, bad = [];
    for (const b of this.buckets) {
      if (b.count === 0 || b.avg === null) { gap = true; if (b.count > 0) bad.push(b); continue; }
      const xm = x((b.start + b.end) / 2);
      avg += `${gap ? "M" : "L"}${xm.toFixed(1)},${y(b.avg).toFixed(1)}`;
      band += `M${xm.toFixed(1)},${y(b.min).toFixed(1)}V${y(b.max).toFixed(1)}`;
      gap = false;
      if (b.good_fraction < 1) bad.push(b);
    }
    for (const b of bad) {
      root.append(svg("rect", { x: x(b.start), y: pad.t, width: Math.max(1, x(b.end) - x(b.start)), height: h - pad.t - pad.b, class: "badzone" }));
    }
    if (band) root.append(svg("path", { d: band, class: "band" }));
    if (avg) root.append(svg("path", { d: avg, class: "avg" }));
    if (this.live.length) {
      let d = "";
      this.live.forEach((p, i) => { d += `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`; });
      root.append(svg("path", { d, class: "live" }));
    }
    if (this.sp !== null) {
      const ys = y(this.sp);
      root.append(svg("line", { x1: pad.l, x2: w - pad.r, y1: ys, y2: ys, class: "sp" }));
      const t = svg("text", { x: w - pad.r - 2, y: ys - 3, class: "axis", "text-anchor": "end" });
      t.textContent = `SP ${this.sp}`;
      root.append(t);
    }
  }
}
