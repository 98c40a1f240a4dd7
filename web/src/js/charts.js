// Horizontal bar charts drawn as SVG by hand (no library).
const NS = "http://www.w3.org/2000/svg";

function el(name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

/** rows: [{label, value}]; format: value -> text. */
export function barChart(title, rows, { format = String, color = "#1565c0" } = {}) {
  const width = 460, bar = 18, gap = 6, left = 170, top = 24;
  const height = top + rows.length * (bar + gap) + 8;
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-label": title,
                          class: "chart" });
  svg.append(el("text", { x: 0, y: 14, class: "chart-title" }, title));
  const max = Math.max(1e-9, ...rows.map((r) => r.value ?? 0));
  rows.forEach((r, i) => {
    const y = top + i * (bar + gap);
    const w = ((r.value ?? 0) / max) * (width - left - 60);
    svg.append(el("text", { x: left - 6, y: y + bar - 5, "text-anchor": "end", class: "chart-label" }, r.label));
    svg.append(el("rect", { x: left, y, width: Math.max(w, 1), height: bar, fill: color, rx: 2 }));
    svg.append(el("text", { x: left + w + 4, y: y + bar - 5, class: "chart-value" },
                  r.value === null || r.value === undefined ? "—" : format(r.value)));
  });
  return svg;
}
