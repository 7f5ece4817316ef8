import { relative } from 'node:path';
import type { Step } from '../config/model.js';
import { diffKeyParts, type JournalRecord, type JournalStep, type KeyChange } from '../cache/key-journal.js';

/** How the next build will get one layer: from the cache, built, built once and shared, or not knowable before building. */
export type Decision = 'cached' | 'rebuilt' | 'shared' | 'unknown';

export interface LayerExplanation {
  /** 1-based step of the variant, as the build file reads. */
  step: number;
  /** 1-based position of the layer in the image (inherited layers first). */
  layer: number;
  createdBy: string;
  decision: Decision;
  /** Why it is not taken from the cache, in words (empty when cached). */
  reasons: string[];
  /** The fields of the cache key that differ from the last build's. */
  changes: KeyChange[];
  key?: string;
  /** The cached layer's digest. */
  digest?: string;
}

export interface VariantExplanation {
  variant: string;
  platform: string;
  stage: boolean;
  start: { base?: string; digest?: string; from?: string; overridden?: string };
  previousStart?: JournalRecord['start'];
  inheritedLayers: number;
  layers: LayerExplanation[];
}

export interface Explained {
  buildFile: string;
  /** The cache directory, or null with --no-cache. */
  cache: string | null;
  variants: VariantExplanation[];
}

/** The base image a from: chain starts with: now, at the last build, and how many layers it has. */
export interface RootBase {
  start: VariantExplanation['start'];
  previousStart?: JournalRecord['start'];
  layers: number;
}

interface WhyInput {
  step: Step;
  fresh: boolean;
  cacheOn: boolean;
  prev: JournalStep | undefined;
  parts: Record<string, unknown> | undefined;
  start: VariantExplanation['start'];
  root: RootBase;
  firstRebuilt: { layer: number; label: string; unknown: boolean } | undefined;
  /** Layers of the image the variant starts from. */
  inherited: number;
  /** Image path -> host file, for naming the source that changed. */
  hostPaths: Map<string, string>;
  context: string;
}

/** Why a layer will not come from the cache: the reasons in words, and the key fields that moved. */
export function whyRebuilt(w: WhyInput): { reasons: string[]; changes: KeyChange[] } {
  if (w.fresh)
    return {
      reasons: ['--rebuild-from: the layer cache is ignored from this step on (and in the variants built from this one)'],
      changes: [],
    };
  if (!w.cacheOn) return { reasons: ['the layer cache is off (--no-cache)'], changes: [] };
  if (w.step.kind === 'copy' && w.step.from !== undefined)
    return { reasons: [`copies from variant ${w.step.from}'s file system, which is known only once it is built`], changes: [] };
  if (!w.parts) {
    const r = w.firstRebuilt
      ? `layer ${w.firstRebuilt.layer + 1}, ${w.firstRebuilt.label}, is ${w.firstRebuilt.unknown ? 'known only when built' : 'rebuilt, so this command starts from another file system'}`
      : 'the image this variant starts from has rebuilt layers, so this command starts from another file system';
    return { reasons: [r], changes: [] };
  }
  if (!w.prev) return { reasons: ['no earlier build of this step is recorded in the cache directory'], changes: [] };
  const changes = diffKeyParts(w.prev.parts, w.parts);
  if (!changes.length) return { reasons: ['the layer recorded under this key is gone from the cache (its blob was removed)'], changes };
  return { reasons: [...new Set(changes.map((c) => describe(c, w)))], changes };
}

function describe(c: KeyChange, w: WhyInput): string {
  const entry = /^entries\[(.+)\](?:\.(\w+))?$/.exec(c.field);
  if (entry) {
    const [, path, what] = entry;
    const host = w.hostPaths.get(path!);
    const name = host ? `${relative(w.context, host)} (${path})` : path!;
    if (c.was === undefined && !what) return `${name} is new in the layer`;
    if (c.now === undefined && !what) return `${path} is no longer in the layer`;
    if (what === 'content' || what === 'size') return `${name} changed`;
    if (what === 'mode') return `mode of ${path}: ${octal(c.was)} -> ${octal(c.now)}`;
    if (what === 'uid' || what === 'gid') return `owner of ${path} changed (${what} ${c.was} -> ${c.now})`;
    if (c.was === undefined) return `${name} is new in the layer`;
    if (c.now === undefined) return `${path} is no longer in the layer`;
    return `${what} of ${path}: ${c.was} -> ${c.now}`;
  }
  const parent = /^parent\[(\d+)\]$/.exec(c.field);
  if (parent || c.field === 'parent.length') {
    const i = parent ? Number(parent[1]) : w.inherited;
    const { start, previousStart, layers } = w.root;
    if (i < layers && previousStart) {
      if (previousStart.base !== start.base) return `base image changed: ${previousStart.base ?? '?'} -> ${start.base}`;
      if (previousStart.digest !== start.digest)
        return `base image ${start.base} moved: ${previousStart.digest ?? '(none)'} -> ${start.digest ?? '(none)'}`;
    }
    if (i < w.inherited)
      return w.start.from ? `layer ${i + 1}, of variant ${w.start.from} it starts from, changed` : `base layer ${i + 1} changed`;
    return `layer ${i + 1} before it changed, so this command starts from another file system`;
  }
  if (c.field.startsWith('step.')) return `step option ${c.field.slice(5)}: ${c.was ?? '(none)'} -> ${c.now ?? '(none)'}`;
  if (c.field.startsWith('image.')) return `the starting image's ${c.field.slice(6)} changed: ${c.was ?? '(none)'} -> ${c.now ?? '(none)'}`;
  if (c.field.startsWith('variantEnv')) return `the variant's env changed (${c.field})`;
  return `${c.field}: ${c.was ?? '(none)'} -> ${c.now ?? '(none)'}`;
}

function octal(json: string | undefined): string {
  return json === undefined || json === 'null' ? '(default)' : Number(json).toString(8).padStart(4, '0');
}

/** The explanation as text, a line per layer. */
export function formatExplained(x: Explained): string {
  const out: string[] = [`build file: ${x.buildFile}`, `layer cache: ${x.cache ?? 'off'}`];
  for (const v of x.variants) {
    const from = v.start.from
      ? `from ${v.start.from}`
      : `base ${v.start.base}${v.start.digest ? `@${v.start.digest}` : ''}${v.start.overridden ? ` (--base; the build file says ${v.start.overridden})` : ''}`;
    out.push('', `variant ${v.variant}${v.stage ? ' (stage)' : ''} ${v.platform}: ${from}, ${v.inheritedLayers} inherited layer(s)`);
    for (const l of v.layers) {
      out.push(`  layer ${l.layer} (step ${l.step}): ${l.createdBy}: ${l.decision}${l.digest ? ` ${l.digest.slice(0, 19)}` : ''}`);
      for (const r of l.reasons) out.push(`      because ${r}`);
    }
  }
  const all = x.variants.flatMap((v) => v.layers);
  const count = (d: Decision) => all.filter((l) => l.decision === d).length;
  out.push('', `${count('cached')} cached, ${count('rebuilt') + count('shared')} to build, ${count('unknown')} known only when built`);
  return `${out.join('\n')}\n`;
}
