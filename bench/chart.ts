// Bar charts (SVG) of benchmark figures, one group of bars per configuration, one colour per
// target: what bench/RESULTS.md shows for each suite.
//   node dist/bench/chart.js "TITLE" results.txt out.svg    (results: bench/run.js MEDIAN/RESULT lines)
//   node dist/bench/chart.js --table results.txt [BASELINE]  (a Markdown table, ratios to the baseline)
import * as fs from 'node:fs';

export interface Bar { name: string; value: number; note?: string }
export interface Group { label: string; bars: Bar[] }

const COLORS = ['#9aa5b1', '#c9a227', '#4c9be8', '#1f5fa8', '#8a6d0b', '#5aa469', '#b85c5c'];

/** An SVG bar chart: `groups` side by side, each bar labelled with its value (and note below). */
export function barChart(title: string, yLabel: string, groups: Group[]): string {
  const names = [...new Set(groups.flatMap((g) => g.bars.map((b) => b.name)))];
  const bw = 44, gap = 14, pad = 60, top = 40 + Math.ceil(names.length / 3) * 18;
  const groupW = names.length * (bw + gap) + 40;
  const W = Math.max(700, pad + 20 + groups.length * groupW), H = top + 260;
  const max = Math.max(...groups.flatMap((g) => g.bars.map((b) => b.value))) * 1.15 || 1;
  let bars = '';
  groups.forEach((g, gi) => {
    const gx = pad + 20 + gi * groupW;
    names.forEach((nm, ni) => {
      const b = g.bars.find((x) => x.name === nm);
      if (!b) return;
      const h = ((H - top - pad) * b.value) / max;
      const x = gx + ni * (bw + gap);
      bars += `<rect x="${x}" y="${H - pad - h}" width="${bw}" height="${h}" fill="${COLORS[ni % COLORS.length]}"/>`;
      bars += `<text x="${x + bw / 2}" y="${H - pad - h - 6}" font-size="10" text-anchor="middle">${Math.round(b.value).toLocaleString('en-US')}</text>`;
      if (b.note) bars += `<text x="${x + bw / 2}" y="${H - pad + 14}" font-size="10" text-anchor="middle">${b.note}</text>`;
    });
    bars += `<text x="${gx + (names.length * (bw + gap)) / 2}" y="${H - pad + 32}" font-size="12" text-anchor="middle">${g.label}</text>`;
  });
  const legend = names.map((nm, i) => `<rect x="${pad + (i % 3) * 250}" y="${30 + Math.floor(i / 3) * 18}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>` +
    `<text x="${pad + 18 + (i % 3) * 250}" y="${41 + Math.floor(i / 3) * 18}" font-size="12">${nm}</text>`).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">` +
    `<rect width="100%" height="100%" fill="white"/><text x="${pad}" y="18" font-size="14" font-weight="bold">${title}</text>${legend}` +
    `<text x="14" y="${(H + top) / 2}" font-size="12" transform="rotate(-90 14 ${(H + top) / 2})" text-anchor="middle">${yLabel}</text>` +
    `<line x1="${pad}" y1="${H - pad}" x2="${W - 20}" y2="${H - pad}" stroke="#333"/>${bars}</svg>\n`;
}

/** Groups bench/run.js lines (MEDIAN, else RESULT) by connections x in flight. */
export function groupsFromRuns(text: string): Group[] {
  const lines = text.split('\n').filter((l) => l.startsWith('MEDIAN'));
  const use = lines.length > 0 ? lines : text.split('\n').filter((l) => l.startsWith('RESULT'));
  const groups = new Map<string, Group>();
  for (const l of use) {
    const f = (k: string) => new RegExp(`\\b${k}=([^\\s]+)`).exec(l)?.[1] ?? '';
    const label = Number(f('inflight')) > 1 ? `${f('conns')} conns x ${f('inflight')}` : `${f('conns')} conns`;
    const g = groups.get(label) ?? { label, bars: [] };
    groups.set(label, g);
    g.bars.push({ name: f('target'), value: Number(f('qps')), note: `${(Number(f('srv_cpu_pct')) / 100 / Number(f('qps')) * 1e6).toFixed(1)} µs` });
  }
  return [...groups.values()];
}

/**
 * A Markdown table of bench/run.js MEDIAN lines: one row per configuration, per target QPS (server
 * CPU %), and each target's QPS over the baseline's (the first target of the row unless named).
 */
export function markdownTable(text: string, baseline?: string): string {
  const groups = groupsFromRuns(text);
  const lines = text.split('\n').filter((l) => l.startsWith('MEDIAN') || l.startsWith('RESULT'));
  const cpu = new Map(lines.map((l) => [`${/target=(\S+)/.exec(l)?.[1]}|${/conns=(\S+)/.exec(l)?.[1]}|${/inflight=(\S+)/.exec(l)?.[1]}`, /srv_cpu_pct=(\S+)/.exec(l)?.[1] ?? '?']));
  const rss = new Map(lines.map((l) => [`${/target=(\S+)/.exec(l)?.[1]}|${/conns=(\S+)/.exec(l)?.[1]}|${/inflight=(\S+)/.exec(l)?.[1]}`, Number(/rss_kb=(\S+)/.exec(l)?.[1] ?? NaN)]));
  const names = [...new Set(groups.flatMap((g) => g.bars.map((b) => b.name)))];
  const base = baseline ?? names[0]!;
  const out = [`| connections x in flight | ${names.join(' | ')} | ${names.filter((n) => n !== base).map((n) => `${n} / ${base}`).join(' | ')} |`,
    `|---|${names.map(() => '---|').join('')}${names.filter((n) => n !== base).map(() => '---|').join('')}`];
  for (const g of groups) {
    const [c, p] = [/^(\d+)/.exec(g.label)?.[1], /x (\d+)$/.exec(g.label)?.[1] ?? '1'];
    const q = (n: string) => g.bars.find((b) => b.name === n)?.value;
    const cells = names.map((n) => {
      const v = q(n);
      const k = `${n}|${c}|${p}`;
      return v === undefined ? '' : `${Math.round(v).toLocaleString('en-US')} (${cpu.get(k)} % CPU, ${(rss.get(k)! / 1024).toFixed(1)} MB)`;
    });
    const ratios = names.filter((n) => n !== base).map((n) => (q(n) !== undefined && q(base) ? `${(q(n)! / q(base)!).toFixed(2)}x` : ''));
    out.push(`| ${g.label} | ${cells.join(' | ')} | ${ratios.join(' | ')} |`);
  }
  return out.join('\n');
}

if (require.main === module && process.argv[2] === '--table') {
  console.log(markdownTable(fs.readFileSync(process.argv[3]!, 'utf8'), process.argv[4]));
} else if (require.main === module) {
  const [title, input, output] = process.argv.slice(2);
  if (!title || !input || !output) { console.error('usage: node dist/bench/chart.js TITLE results.txt out.svg'); process.exit(2); }
  fs.writeFileSync(output, barChart(title, 'requests/s (bar), server CPU µs per request (below)', groupsFromRuns(fs.readFileSync(input, 'utf8'))));
}
