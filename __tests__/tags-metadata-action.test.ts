/**
 * docker/metadata-action's own test cases (its __tests__/meta.test.ts tables and event fixtures,
 * extracted into fixtures/metadata-action/cases.json by extract.mjs there), replayed through our
 * context reading, tag grammar and labels. Every case either agrees with metadata-action on the
 * version, the tags and the labels we produce, or is listed in DIFFERENCES with the reason; a
 * listed case must still differ, so the list cannot go stale. Its tag-line and flavor parsing
 * tables (tag.test.ts, flavor.test.ts) are replayed the same way.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { contextFromEnv, type GitContext } from '../src/github/context.js';
import { ociLabels } from '../src/github/labels.js';
import { computeVersion, parseFlavor, parseTagRules, resolveTagRules, type TagRule } from '../src/tags/index.js';

interface Case {
  table: string;
  name: string;
  event: string;
  inputs: { images?: string[]; tags?: string[]; flavor?: string[]; labels?: string[] };
  /** What metadata-action reports (json: not given; bakeFile: only main, as DOCKER_META_VERSION). */
  version?: { main?: string | null; partial?: string[]; latest?: boolean };
  tags: string[];
  labels: string[];
  prHeadSha?: boolean;
}
interface Data {
  now: string;
  repo: { name: string; description: string; html_url: string; default_branch: string; license: { spdx_id: string } };
  events: Record<string, { env: Record<string, string>; payload?: unknown }>;
  cases: Case[];
  parsing: {
    tags: { line: string; tag: { type?: string; attrs?: Record<string, string> }; invalid: boolean }[];
    flavor: { lines: string[]; flavor: Record<string, unknown>; invalid: boolean }[];
  };
}

const data = JSON.parse(readFileSync(new URL('./fixtures/metadata-action/cases.json', import.meta.url), 'utf8')) as Data;
const NOW = new Date(data.now);

/**
 * Cases where we deliberately differ (README, "GitHub integration"), keyed table/name: why, and
 * the error we give instead of tags when we reject the input.
 */
interface Difference {
  why: string;
  error?: RegExp;
}
const PEP440: Difference = {
  why: 'type=pep440 is not supported: an error naming the line (use type=semver or type=match)',
  error: /line "type=pep440.*type=pep440 is not supported/,
};
const DIFFERENCES: Record<string, Difference> = {
  'push/push12': PEP440,
  'push/push14': PEP440,
  'tag/tag23': PEP440,
  'tag/tag24': PEP440,
  'tag/tag25': PEP440,
  'tag/tag26': PEP440,
  'tag/tag27': PEP440,
  'tag/tag28': PEP440,
  'tag/tag29': PEP440,
  'tag/tag30': PEP440,
  'tag/tag32': PEP440,
  'tag/tag33': PEP440,
  'tag/push35': PEP440,
};

/** The run as metadata-action's test harness sees it. */
function contextOf(c: Case): GitContext {
  const ev = data.events[c.event]!;
  const env = { ...ev.env, ...(c.prHeadSha ? { DOCKER_METADATA_PR_HEAD_SHA: 'true' } : {}) };
  const ctx = contextFromEnv(env, ev.payload);
  // Its harness takes the repository from fixtures/repo.json (an API mock); we read the event
  // payload, which on GitHub always carries it. It also mocks moment() to "now", commit dates too.
  const r = data.repo;
  ctx.repo = { name: r.name, description: r.description, license: r.license.spdx_id, html_url: r.html_url };
  ctx.defaultBranch ??= r.default_branch;
  ctx.commitDate = data.now;
  return ctx;
}

/** metadata-action's `images` input: `name[,enable=false]`, lowercased. */
function imagesOf(c: Case): string[] {
  return (c.inputs.images ?? []).flatMap((line) => {
    const fields = line.split(',').map((f) => f.trim());
    const attrs = Object.fromEntries(fields.map((f) => (f.includes('=') ? f.split('=', 2) : ['name', f])));
    return attrs.enable === 'false' ? [] : [String(attrs.name).toLowerCase()];
  });
}

interface Outcome {
  version: { main?: string; partial: string[]; latest: boolean };
  tags: string[];
  labels: Record<string, string>;
}

function replay(c: Case): Outcome {
  const ctx = contextOf(c);
  const v = computeVersion(resolveTagRules(c.inputs.tags ?? []), parseFlavor(c.inputs.flavor ?? []), ctx, NOW);
  const images = imagesOf(c);
  const tags = images.length ? images.flatMap((i) => v.tags.map((t) => `${i}:${t}`)) : v.tags;
  return { version: { main: v.main, partial: v.partial, latest: v.latest }, tags, labels: ociLabels(ctx, v.main, NOW.toISOString()) };
}

/**
 * metadata-action's expected labels, as we produce them: its standard OCI labels with a value (we
 * leave empty ones out), minus those the case's own `labels` input overrides (a build file sets
 * its own labels; there is no `labels` input to replay).
 */
function expectedLabels(c: Case): Record<string, string> {
  const overridden = new Set((c.inputs.labels ?? []).map((l) => l.split('=')[0]));
  const out: Record<string, string> = {};
  for (const l of c.labels) {
    const eq = l.indexOf('=');
    const [k, v] = [l.slice(0, eq), l.slice(eq + 1)];
    if (k.startsWith('org.opencontainers.image.') && v !== '' && !overridden.has(k)) out[k] = v;
  }
  return out;
}

function ourLabels(c: Case, o: Outcome): Record<string, string> {
  const overridden = new Set((c.inputs.labels ?? []).map((l) => l.split('=')[0]));
  return Object.fromEntries(Object.entries(o.labels).filter(([k]) => !overridden.has(k)));
}

/** Our version, cut to the fields the case gives, next to the case's. */
function versions(c: Case, o: Outcome): [Record<string, unknown>, Record<string, unknown>] {
  const want = Object.fromEntries(Object.entries(c.version ?? {}).map(([k, v]) => [k, v ?? undefined]));
  const got = Object.fromEntries(Object.keys(want).map((k) => [k, o.version[k as keyof Outcome['version']]]));
  return [got, want];
}

function agrees(c: Case, o: Outcome): boolean {
  const [got, want] = versions(c, o);
  return (
    JSON.stringify(got) === JSON.stringify(want) &&
    JSON.stringify(o.tags) === JSON.stringify(c.tags) &&
    JSON.stringify(ourLabels(c, o)) === JSON.stringify(expectedLabels(c))
  );
}

describe('docker/metadata-action test tables, replayed', () => {
  it('has the extracted cases, and every listed difference names a real case', () => {
    expect(data.cases.length).toBeGreaterThan(100);
    expect(data.cases.filter((c) => c.version?.main !== undefined).length).toBeGreaterThan(100);
    const keys = new Set(data.cases.map((c) => `${c.table}/${c.name}`));
    expect(Object.keys(DIFFERENCES).filter((k) => !keys.has(k))).toEqual([]);
  });

  const agreeing = data.cases.filter((c) => !DIFFERENCES[`${c.table}/${c.name}`]);
  it.each(agreeing.map((c) => [`${c.table}/${c.name}`, c] as const))('%s', (_key, c) => {
    const o = replay(c);
    const [got, want] = versions(c, o);
    expect(got).toEqual(want);
    expect(o.tags).toEqual(c.tags);
    expect(ourLabels(c, o)).toEqual(expectedLabels(c));
  });

  const differing = data.cases.filter((c) => DIFFERENCES[`${c.table}/${c.name}`]);
  it.each(
    differing.map((c) => {
      const d = DIFFERENCES[`${c.table}/${c.name}`]!;
      return [`${c.table}/${c.name}`, d.why, d, c] as const;
    }),
  )('%s differs on purpose: %s', (_key, _why, diff, c) => {
    if (diff.error) expect(() => replay(c)).toThrow(diff.error);
    else expect(agrees(c, replay(c))).toBe(false);
  });
});

/** One of metadata-action's tag attributes, read off our parsed rule (it keeps them all as strings). */
function attrOf(rule: TagRule, key: string): string | undefined {
  switch (key) {
    case 'priority':
      return String(rule.priority);
    case 'group':
      return rule.group === undefined ? undefined : String(rule.group);
    case 'match':
      return rule.type === 'semver' ? (rule.match ?? '') : undefined;
    default:
      return (rule as unknown as Record<string, string | undefined>)[key];
  }
}

describe('docker/metadata-action parsing tables, replayed', () => {
  // All agree: these tables have no pep440 line, and the lines they reject we reject too.
  it.each(data.parsing.tags.map((c) => [c.line, c] as const))('tags line %s', (_line, c) => {
    if (c.invalid) {
      expect(() => parseTagRules([c.line])).toThrow(/line/);
      return;
    }
    const [rule] = parseTagRules([c.line]);
    expect(rule!.type).toBe(c.tag.type);
    const attrs = c.tag.attrs ?? {};
    expect(Object.fromEntries(Object.keys(attrs).map((k) => [k, attrOf(rule!, k)]))).toEqual(attrs);
    // Nothing set that metadata-action would not have (a prefix= it does not add, say).
    for (const k of ['prefix', 'suffix'] as const) if (rule![k] !== undefined) expect(attrs).toHaveProperty(k);
  });

  it.each(data.parsing.flavor.map((c) => [c.lines.join(' | '), c] as const))('flavor %s', (_l, c) => {
    if (c.invalid) expect(() => parseFlavor(c.lines)).toThrow(/flavor: line/);
    else expect(parseFlavor(c.lines)).toEqual(c.flavor);
  });
});
