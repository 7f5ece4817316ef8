import { createHash } from 'node:crypto';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { canonicalJson, hashKey } from './layer-cache.js';
import { isObject, writeAtomic } from './atomic.js';

/**
 * What each layer of the last build of a variant (per platform) was keyed by, so that
 * `plan --explain` can say *why* a key no longer hits: which entry, step option, parent layer
 * or base digest differs. It only adds files (`<dir>/keys/<variant-platform hash>.json`); the
 * keys themselves are computed and hashed exactly as before.
 */

export interface JournalStep {
  key: string;
  parts: Record<string, unknown>;
  diffId: string;
}

export interface JournalRecord {
  version: 1;
  variant: string;
  platform: string;
  /** The image the variant started from. */
  start: { base?: string; digest?: string; from?: string };
  /** By step index (0-based, as a string). */
  steps: Record<string, JournalStep>;
}

function fingerprint(r: JournalRecord): string {
  const steps = Object.keys(r.steps)
    .sort()
    .map((k) => [k, r.steps[k]!.key, r.steps[k]!.diffId]);
  return createHash('sha256')
    .update(canonicalJson({ version: r.version, variant: r.variant, platform: r.platform, start: r.start, steps }))
    .digest('hex');
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

function recordPath(dir: string, variant: string, platform: string): string {
  return join(dir, 'keys', `${createHash('sha256').update(`${variant}\n${platform}`).digest('hex').slice(0, 32)}.json`);
}

export async function loadJournal(dir: string, variant: string, platform: string): Promise<JournalRecord | undefined> {
  try {
    const v = JSON.parse(await readFile(recordPath(dir, variant, platform), 'utf8')) as unknown;
    if (isObject(v) && v.version === 1 && v.variant === variant && v.platform === platform && isObject(v.steps))
      return v as unknown as JournalRecord;
  } catch {
    /* none yet, or unreadable: no history to compare with */
  }
  return undefined;
}

/** One new layer of a variant and what its cache key was made of (the builder reports these). */
export interface LayerKeyEvent {
  variant: string;
  platform: string;
  /** Step index, 0-based. */
  step: number;
  keyParts: Record<string, unknown>;
  /** hashKey(keyParts) when the producer computed it already. */
  key?: string;
  diffId: string;
  /** The image the variant starts from: its reference and digest, or the `from` variant. */
  start: JournalRecord['start'];
}

/** Collects the keys of one build and writes one record per variant and platform at the end. */
export class KeyJournal {
  private readonly records = new Map<string, JournalRecord>();

  constructor(private readonly dir: string) {}

  add(e: LayerKeyEvent): void {
    const id = `${e.variant}\n${e.platform}`;
    let r = this.records.get(id);
    if (!r) {
      r = { version: 1, variant: e.variant, platform: e.platform, start: e.start, steps: {} };
      this.records.set(id, r);
    }
    r.steps[String(e.step)] = { key: e.key ?? hashKey(e.keyParts), parts: e.keyParts, diffId: e.diffId };
  }

  /**
   * Writes each record, unless the one on disk says the same: a record holds every entry of
   * every layer (megabytes for a node_modules tree), and a no-op rebuild would rewrite it
   * unchanged. Same keys mean the same parts (a key is their hash), so the fingerprint beside
   * the record (the start, the steps' keys and diffIDs) tells without reading the record.
   */
  async save(): Promise<void> {
    for (const r of this.records.values()) {
      const file = recordPath(this.dir, r.variant, r.platform);
      const print = fingerprint(r);
      if ((await readFile(`${file}.print`, 'utf8').catch(() => '')) === print && (await exists(file))) continue;
      await writeAtomic(file, `${JSON.stringify(r)}\n`);
      await writeAtomic(`${file}.print`, print);
    }
  }
}

/** One difference between two sets of key parts: a dotted field path, and both values as JSON. */
export interface KeyChange {
  field: string;
  was?: string;
  now?: string;
}

/**
 * The leaves of key parts by path. Entry lists are keyed by image path (`entries[/etc/x].mode`)
 * and parent chains by position (`parent[3]`), so a change names the file or layer it is about;
 * other arrays are one leaf (a command, a shell).
 */
function flatten(v: unknown, at: string, out: Map<string, string>): void {
  if (Array.isArray(v)) {
    if (at.endsWith('parent')) {
      for (const [i, x] of v.entries()) out.set(`${at}[${i}]`, canonicalJson(x));
      out.set(`${at}.length`, String(v.length));
      return;
    }
    if (v.length && v.every((x) => isObject(x) && typeof x.path === 'string')) {
      // The entry itself (so one that is added or gone is one change), then its fields.
      for (const x of v as { path: string }[]) {
        out.set(`${at}[${x.path}]`, canonicalJson(x));
        for (const [k, y] of Object.entries(x)) if (k !== 'path' && y !== undefined) flatten(y, `${at}[${x.path}].${k}`, out);
      }
      return;
    }
    out.set(at, canonicalJson(v));
    return;
  }
  if (isObject(v)) {
    for (const [k, x] of Object.entries(v)) if (x !== undefined) flatten(x, at ? `${at}.${k}` : k, out);
    return;
  }
  out.set(at, canonicalJson(v));
}

/** What differs between the key parts a layer was cached under and the ones it has now. */
export function diffKeyParts(was: unknown, now: unknown): KeyChange[] {
  const a = new Map<string, string>();
  const b = new Map<string, string>();
  flatten(was, '', a);
  flatten(now, '', b);
  const out: KeyChange[] = [];
  const whole = new Set<string>();
  for (const field of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(field);
    const y = b.get(field);
    if (x === y) continue;
    const entry = /^(entries\[.+?\])(\.|$)/.exec(field);
    if (entry?.[2] === '') {
      // An entry that changed as a whole is told by its fields; one added or gone is one change.
      if (x === undefined || y === undefined) {
        whole.add(field);
        out.push({ field, ...(x !== undefined ? { was: x } : {}), ...(y !== undefined ? { now: y } : {}) });
      }
      continue;
    }
    if (entry && whole.has(entry[1]!)) continue;
    out.push({ field, ...(x !== undefined ? { was: x } : {}), ...(y !== undefined ? { now: y } : {}) });
  }
  return out;
}
