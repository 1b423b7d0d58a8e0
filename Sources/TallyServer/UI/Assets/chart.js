// A canvas line chart for exact M4 curves: one line per run through every returned point, the min/max envelope of
// each bucket drawn as a band under it, NaN/Inf markers, drag to zoom (the caller refetches at full resolution),
// double-click to reset, log scale, EMA smoothing and a hover readout across runs.

export const COLORS = ["#0a5bd3", "#d1480b", "#1a7f37", "#8250df", "#bf3989", "#0f7b8a", "#9a6700", "#57606a",
  "#cf222e", "#2da44e", "#6639ba", "#e16f24"];

export function ema(values, alpha) {
  if (!alpha) return values;
  const out = new Float64Array(values.length);
  let acc = NaN;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) { out[i] = v; continue; }
    acc = Number.isNaN(acc) ? v : alpha * acc + (1 - alpha) * v;
    out[i] = acc;
  }
  return out;
}

export class Chart {
  /// series: [{label, color, steps: Float64Array, values: Float32Array|Float64Array}]
  constructor(container, { height = 260, onZoom = null, onReset = null, title = "" } = {}) {
    this.el = document.createElement("div");
    this.el.className = "chart";
    this.el.style.height = height + "px";
    this.canvas = document.createElement("canvas");
    this.canvas.setAttribute("role", "img");
    this.readout = document.createElement("div");
    this.readout.className = "readout";
    this.el.append(this.canvas, this.readout);
    container.append(this.el);
    this.title = title;
    this.series = [];
    this.log = false;
    this.smoothing = 0;
    this.onZoom = onZoom;
    this.onReset = onReset;
    this.drag = null;
    this.canvas.addEventListener("mousedown", (e) => { this.drag = { x0: this.px(e), x1: this.px(e) }; });
    this.canvas.addEventListener("mousemove", (e) => {
      if (this.drag) { this.drag.x1 = this.px(e); this.draw(); } else this.hover(e);
    });
    this.canvas.addEventListener("mouseleave", () => { this.readout.style.display = "none"; });
    window.addEventListener("mouseup", () => this.endDrag());
    this.canvas.addEventListener("dblclick", () => { if (this.onReset) this.onReset(); });
    new ResizeObserver(() => this.draw()).observe(this.el);
  }

  px(e) { return e.clientX - this.canvas.getBoundingClientRect().left; }

  endDrag() {
    if (!this.drag) return;
    const { x0, x1 } = this.drag;
    this.drag = null;
    if (Math.abs(x1 - x0) > 4 && this.onZoom && this.view) {
      const a = this.xToStep(Math.min(x0, x1)), b = this.xToStep(Math.max(x0, x1));
      if (b > a) this.onZoom(a, b);
    }
    this.draw();
  }

  /// range: [first step, last step] shown; grid: {start, width} of the compare buckets (for the envelope).
  set(series, range, grid) {
    this.series = series;
    this.range = range;
    this.grid = grid;
    this.canvas.setAttribute("aria-label", this.title + ": " + series.length + " series");
    this.draw();
  }

  xToStep(x) { const v = this.view; return v.x0 + (x - v.left) / (v.w) * (v.x1 - v.x0); }

  draw() {
    const c = this.canvas, dpr = window.devicePixelRatio || 1;
    const W = this.el.clientWidth, H = this.el.clientHeight;
    if (!W || !H) return;
    c.width = W * dpr; c.height = H * dpr;
    const g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, W, H);
    const left = 56, right = 8, top = 8, bottom = 24, w = W - left - right, h = H - top - bottom;
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    const ys = this.series.map((s) => ema(s.values, this.smoothing));
    this.series.forEach((s, k) => {
      for (let i = 0; i < s.steps.length; i++) {
        const v = ys[k][i];
        x0 = Math.min(x0, s.steps[i]); x1 = Math.max(x1, s.steps[i]);
        if (Number.isFinite(v) && (!this.log || v > 0)) { y0 = Math.min(y0, v); y1 = Math.max(y1, v); }
      }
    });
    if (this.range) { x0 = this.range[0]; x1 = this.range[1]; }
    if (!(x1 > x0)) { const c = Number.isFinite(x0) ? x0 : 0; x0 = c - 1; x1 = c + 1; }  // one step: centred
    if (!(y1 >= y0)) { y0 = 0; y1 = 1; }
    if (y1 === y0) { y0 -= 1; y1 += 1; }
    const ty = (v) => this.log ? Math.log10(v) : v;
    const Y0 = ty(y0), Y1 = ty(y1);
    const X = (s) => left + (s - x0) / (x1 - x0) * w;
    const Y = (v) => top + h - (ty(v) - Y0) / (Y1 - Y0) * h;
    this.view = { x0, x1, left, w, X, Y, ys };
    // Axes.
    g.strokeStyle = "#d0d7de"; g.fillStyle = "#57606a"; g.font = "11px system-ui"; g.lineWidth = 1;
    g.beginPath(); g.moveTo(left, top); g.lineTo(left, top + h); g.lineTo(left + w, top + h); g.stroke();
    // Ticks at round numbers (1, 2 or 5 × 10^k apart; whole steps on a step axis, decades on a log axis).
    const yTicks = this.log && Y1 - Y0 >= 1 ? decadeTicks(Y0, Y1) : niceTicks(y0, y1, 4);
    for (const v of yTicks) {
      const y = Y(v);
      if (y < top - 1 || y > top + h + 1) continue;
      g.fillText(fmt(v), 2, y + 4);
    }
    const stepAxis = (this.xLabel || "step") === "step";
    const xTicks = niceTicks(x0, x1, Math.max(2, Math.floor(w / 90)), stepAxis);
    for (const s of xTicks) g.fillText(fmt(s), Math.min(X(s) - 10, W - 40), H - 6);
    this.el.dataset.xticks = xTicks.map(fmt).join(" ");
    this.el.dataset.yticks = yTicks.map(fmt).join(" ");
    // Series: the min/max envelope of each bucket (raw values) as a band, then the line through every point.
    g.save();
    g.beginPath();
    g.rect(left, top - 1, w + 1, h + 2);
    g.clip();
    const dots = [];
    this.series.forEach((s, k) => {
      const vs = ys[k];
      if (this.grid) this.band(g, s, X, Y);
      g.fillStyle = s.color + "33";
      g.strokeStyle = s.color;
      g.lineWidth = 1.25;
      g.beginPath();
      let pen = false;
      for (let i = 0; i < s.steps.length; i++) {
        const v = vs[i];
        if (!Number.isFinite(v) || (this.log && v <= 0)) {
          pen = false;
          const x = X(s.steps[i]);
          g.fillStyle = "#b42318"; g.fillRect(x - 1.5, v > 0 ? top : (Number.isNaN(v) ? top + h / 2 : top + h - 3), 3, 3);
          g.fillStyle = s.color + "33";
          continue;
        }
        const x = X(s.steps[i]), y = Y(v);
        if (pen) g.lineTo(x, y); else { g.moveTo(x, y); pen = true; }
        // A point with no finite neighbour draws no line: mark it with a dot (and its value, when it is the only one).
        const prev = i > 0 ? vs[i - 1] : NaN, next = i + 1 < s.steps.length ? vs[i + 1] : NaN;
        if (!Number.isFinite(prev) && !Number.isFinite(next)) dots.push([x, y, v, s.color, s.steps.length === 1]);
      }
      g.stroke();
    });
    for (const [x, y, v, color, alone] of dots) {
      g.fillStyle = color;
      g.beginPath(); g.arc(x, y, 3.5, 0, 2 * Math.PI); g.fill();
      if (alone) { g.fillStyle = "#24292f"; g.fillText(fmt(v), Math.min(x + 6, left + w - 40), Math.max(y - 6, top + 10)); }
    }
    this.el.dataset.dots = JSON.stringify(dots.map(([x, y, v]) => [Math.round(x), Math.round(y), v]));
    g.restore();
    if (this.drag) {
      g.fillStyle = "rgba(10,91,211,.12)";
      g.fillRect(Math.min(this.drag.x0, this.drag.x1), top, Math.abs(this.drag.x1 - this.drag.x0), h);
    }
  }

  band(g, s, X, Y) {
    const { start, width } = this.grid;
    const lo = [], hi = [];
    let bucket = null, mn = Infinity, mx = -Infinity, x = 0;
    const flush = () => { if (bucket !== null && mn <= mx) { lo.push([x, mn]); hi.push([x, mx]); } };
    for (let i = 0; i < s.steps.length; i++) {
      const b = Math.floor((s.steps[i] - start) / width), v = s.values[i];
      if (b !== bucket) { flush(); bucket = b; mn = Infinity; mx = -Infinity; x = X(start + (b + 0.5) * width); }
      if (Number.isFinite(v) && (!this.log || v > 0)) { mn = Math.min(mn, v); mx = Math.max(mx, v); }
    }
    flush();
    if (lo.length < 2) return;
    g.fillStyle = s.color + "2e";
    g.beginPath();
    hi.forEach(([px, v], i) => (i ? g.lineTo(px, Y(v)) : g.moveTo(px, Y(v))));
    for (let i = lo.length - 1; i >= 0; i--) g.lineTo(lo[i][0], Y(lo[i][1]));
    g.closePath();
    g.fill();
  }

  hover(e) {
    if (!this.view || !this.series.length) return;
    const step = this.xToStep(this.px(e));
    const lines = [`${this.xLabel || "step"} ${fmt(step)}`];
    this.series.forEach((s, k) => {
      let best = -1, d = Infinity;
      for (let i = 0; i < s.steps.length; i++) { const dd = Math.abs(s.steps[i] - step); if (dd < d) { d = dd; best = i; } }
      if (best >= 0) lines.push(`<span style="color:${s.color}">■</span> ${escape(s.label)}: ${fmt(this.view.ys[k][best])} @ ${s.steps[best]}`);
    });
    this.readout.innerHTML = lines.join("<br>");
    this.readout.style.display = "block";
    this.readout.style.left = Math.min(this.px(e) + 12, this.el.clientWidth - 220) + "px";
    this.readout.style.top = "8px";
  }
}

/// Round tick values covering [lo, hi]: about `count` of them, 1, 2 or 5 × 10^k apart (at least 1 apart on an
/// integer axis), multiples of that spacing.
export function niceTicks(lo, hi, count, integer = false) {
  if (!(hi > lo) || !Number.isFinite(lo) || !Number.isFinite(hi)) return Number.isFinite(lo) ? [lo] : [];
  const raw = (hi - lo) / Math.max(1, count);
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  // The round spacing whose tick count is nearest the one asked for.
  let step = [1, 2, 5, 10].map((m) => m * p).reduce((a, b) => Math.abs((hi - lo) / b - count) < Math.abs((hi - lo) / a - count) ? b : a);
  if (integer) step = Math.max(1, Math.round(step));
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9 && out.length < 50; t += step) {
    out.push(Math.abs(t) < step * 1e-9 ? 0 : Number((Math.round(t / step) * step).toPrecision(12)));
  }
  return out;
}

/// Powers of ten within [10^a, 10^b] (a log axis).
export function decadeTicks(a, b) {
  const out = [];
  for (let k = Math.ceil(a - 1e-9); k <= b + 1e-9 && out.length < 30; k++) out.push(Math.pow(10, k));
  return out;
}

export function fmt(v) {
  if (typeof v !== "number") return String(v);
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "∞" : "−∞";
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(3);
  return String(Math.round(v * 1e4) / 1e4);
}

export function escape(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
