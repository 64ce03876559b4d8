// The loss curve of a job as an inline SVG: train and validation loss against the step.
const NS = 'http://www.w3.org/2000/svg';

export interface ISeries {
  label: string;
  cls: string;
  points: Array<[number, number]>;
}

function el(name: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) {
    node.setAttribute(k, String(v));
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

function fmt(v: number): string {
  return Math.abs(v) >= 0.01 && Math.abs(v) < 1000 ? v.toPrecision(3) : v.toExponential(1);
}

/** An SVG of the series (log y-axis when every value is positive); an empty chart says so. */
export function lossChart(series: ISeries[], width = 300, height = 170): SVGSVGElement {
  const svg = el('svg', {
    width: '100%',
    preserveAspectRatio: 'xMinYMin meet',
    viewBox: `0 0 ${width} ${height}`,
    class: 'physviz-chart',
    role: 'img'
  }) as SVGSVGElement;
  const pad = { l: 46, r: 8, t: 18, b: 24 };
  const finite = series.map(s => ({ ...s, points: s.points.filter(p => Number.isFinite(p[0]) && Number.isFinite(p[1])) }));
  const all = finite.flatMap(s => s.points);
  svg.appendChild(el('title', {}, 'loss curve'));
  if (!all.length) {
    svg.appendChild(el('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle', class: 'physviz-chart-empty' }, 'no loss yet'));
    return svg;
  }
  const log = all.every(p => p[1] > 0);
  const ty = (v: number) => (log ? Math.log10(v) : v);
  const xs = all.map(p => p[0]);
  const ys = all.map(p => ty(p[1]));
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x1 === x0) {
    x1 = x0 + 1;
  }
  if (y1 === y0) {
    y0 -= 0.5;
    y1 += 0.5;
  }
  const W = width - pad.l - pad.r;
  const H = height - pad.t - pad.b;
  const sx = (x: number) => pad.l + ((x - x0) / (x1 - x0)) * W;
  const sy = (y: number) => pad.t + (1 - (ty(y) - y0) / (y1 - y0)) * H;
  svg.appendChild(el('rect', { x: pad.l, y: pad.t, width: W, height: H, class: 'physviz-chart-frame' }));
  for (const t of [y0, (y0 + y1) / 2, y1]) {
    const v = log ? Math.pow(10, t) : t;
    const y = pad.t + (1 - (t - y0) / (y1 - y0)) * H;
    svg.appendChild(el('text', { x: pad.l - 4, y: y + 3, 'text-anchor': 'end', class: 'physviz-chart-tick' }, fmt(v)));
  }
  for (const x of [x0, x1]) {
    svg.appendChild(el('text', { x: sx(x), y: height - 8, 'text-anchor': 'middle', class: 'physviz-chart-tick' }, String(Math.round(x))));
  }
  svg.appendChild(el('text', { x: pad.l + W / 2, y: height - 8, 'text-anchor': 'middle', class: 'physviz-chart-tick' }, 'step'));
  let lx = pad.l + 4;
  for (const s of finite) {
    if (!s.points.length) {
      continue;
    }
    const d = s.points.map((p, i) => `${i ? 'L' : 'M'}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(' ');
    svg.appendChild(el('path', { d, class: `physviz-line ${s.cls}`, 'data-series': s.label, 'data-points': s.points.length }));
    for (const p of s.points.length === 1 ? s.points : []) {
      svg.appendChild(el('circle', { cx: sx(p[0]), cy: sy(p[1]), r: 2.5, class: `physviz-dot ${s.cls}` }));
    }
    svg.appendChild(el('text', { x: lx, y: pad.t - 5, class: `physviz-legend ${s.cls}` }, `${s.label}`));
    lx += 70;
  }
  return svg;
}
