import { appendFile } from 'node:fs/promises';
import { formatBytes, formatMs } from '../log.js';

/** One built variant, as the job summary shows it. */
export interface SummaryRow {
  variant: string;
  /** Repository (ghcr.io/acme/app), or the variant name when it has none. */
  image: string;
  digest: string;
  /** image@digest. */
  ref: string;
  /** Tags written (or that would be written): names or full references. */
  tags: string[];
  /** os/arch[/variant] of each image in the manifest (list). */
  platforms: string[];
  /** Compressed bytes a pull transfers at most. */
  size: number;
  layersPushed?: number;
  layersReused?: number;
  durationMs?: number;
  pushed: boolean;
  /** The digest map's attestations: subject digest -> kind -> artifact manifest digest. */
  attestations?: Record<string, Partial<Record<'provenance' | 'sbom', string>>>;
}

/** Digest maps bigger than this are not inlined (a step summary holds 1 MiB at most). */
export const MAX_INLINE_JSON = 512 * 1024;

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const code = (s: string) => `<code>${escapeHtml(s)}</code>`;

function shortDigest(d: string): string {
  const [alg, hex] = d.split(':');
  return hex ? `${alg}:${hex.slice(0, 12)}` : d;
}

function tagName(tag: string, image: string): string {
  return tag.startsWith(`${image}:`) ? tag.slice(image.length + 1) : tag;
}

function layers(r: SummaryRow): string {
  if (r.layersPushed === undefined && r.layersReused === undefined) return '–';
  return `${r.layersPushed ?? 0} pushed / ${r.layersReused ?? 0} reused`;
}

/** "2 provenance, 1 SBOM", with each subject's artifact manifests listed when unfolded. */
function attestationsCell(r: SummaryRow): string {
  const subjects = Object.entries(r.attestations ?? {});
  if (!subjects.length) return '–';
  const count = (k: 'provenance' | 'sbom') => subjects.filter(([, a]) => a[k]).length;
  const parts = [count('provenance') ? `${count('provenance')} provenance` : '', count('sbom') ? `${count('sbom')} SBOM` : ''];
  const list = subjects
    .map(
      ([subject, a]) =>
        `${code(shortDigest(subject))}: ${Object.entries(a)
          .map(([k, d]) => `${escapeHtml(k)} ${code(shortDigest(d))}`)
          .join(', ')}`,
    )
    .join('<br>');
  return `<details><summary>${escapeHtml(parts.filter(Boolean).join(', '))}</summary>${list}</details>`;
}

/**
 * The job summary: one table with a row per variant, then the digest map JSON in a collapsed
 * block. Every value is HTML-escaped. Pure; see {@link writeSummary}.
 */
export function renderSummary(rows: readonly SummaryRow[], digestMap: object): string {
  const pushed = rows.filter((r) => r.pushed).length;
  const head = ['Variant', 'Image', 'Digest', 'Tags', 'Platforms', 'Size', 'Layers', 'Attestations', 'Time'];
  const lines: string[] = [];
  lines.push(`### oci-build: ${rows.length} image${rows.length === 1 ? '' : 's'} built${pushed ? `, ${pushed} pushed` : ', none pushed'}`);
  lines.push('');
  lines.push('<table>');
  lines.push(`<tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr>`);
  for (const r of [...rows].sort((a, b) => (a.variant < b.variant ? -1 : a.variant > b.variant ? 1 : 0))) {
    const cells = [
      `<b>${escapeHtml(r.variant)}</b>${r.pushed ? '' : '<br><sub>not pushed</sub>'}`,
      code(r.image),
      `<details><summary>${code(shortDigest(r.digest))}</summary>${code(r.ref)}</details>`,
      r.tags.length ? r.tags.map((t) => code(tagName(t, r.image))).join(' ') : '–',
      r.platforms.length ? r.platforms.map(escapeHtml).join('<br>') : '–',
      escapeHtml(formatBytes(r.size)),
      escapeHtml(layers(r)),
      attestationsCell(r),
      r.durationMs === undefined ? '–' : escapeHtml(formatMs(r.durationMs)),
    ];
    lines.push(`<tr>${cells.map((c) => `<td>${c}</td>`).join('')}</tr>`);
  }
  lines.push('</table>');
  lines.push('');
  const json = JSON.stringify(digestMap, null, 2);
  lines.push('<details><summary>Digest map (JSON)</summary>');
  lines.push('');
  if (json.length > MAX_INLINE_JSON) {
    lines.push(
      `The digest map is ${formatBytes(json.length)}, too big for the summary: see the \`metadata\` output or the digest map file.`,
    );
  } else {
    const fence = '`'.repeat(Math.max(3, ...[...json.matchAll(/`+/g)].map((m) => m[0].length + 1)));
    lines.push(`${fence}json`, json, fence);
  }
  lines.push('');
  lines.push('</details>');
  lines.push('');
  return lines.join('\n');
}

/**
 * Appends to the step summary file ($GITHUB_STEP_SUMMARY). Returns false, writing nothing, when
 * there is none (off GitHub).
 */
export async function writeSummary(text: string, env: Record<string, string | undefined> = process.env): Promise<boolean> {
  const file = env.GITHUB_STEP_SUMMARY;
  if (!file) return false;
  await appendFile(file, text.endsWith('\n') ? text : `${text}\n`);
  return true;
}
