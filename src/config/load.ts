/**
 * Loads `oci-build.yml`: YAML -> structure check (schema.ts) -> `${NAME}` substitution
 * (substitute.ts) -> value checks (fields.ts) and copy-source checks (sources.ts) -> the
 * resolved model (model.ts). Every problem of the whole file is collected and thrown as one
 * ConfigError, each with file, line, column, field path, message and fix hint, sorted by line.
 *
 * Decisions:
 * - `image` and `base` are kept as written (after substitution), not normalized; they are
 *   only validated here with parseReference. Consumers parse them again.
 * - After a real YAML syntax error only the YAML errors are reported (the structure YAML
 *   recovers is unreliable and would produce noise). Duplicate keys are not fatal: the
 *   rest of the file is still checked.
 * - Merge keys (`<<: *anchor`) are enabled, and top-level keys starting with `x-` are ignored
 *   (a place for anchors, as in Compose files).
 * - `null` for a variant (`app:` with nothing) means an empty variant that takes everything
 *   from `defaults`.
 * - YAML numbers and booleans are accepted where strings are wanted in env, labels,
 *   annotations, args, user, entrypoint/cmd items and file content, and converted to strings.
 * - `entrypoint` and `cmd` given as one string are the shell form: ["/bin/sh", "-c", string].
 * - Problem `file` is the path as given by the caller; BuildFile.file is absolute.
 */
import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import {
  checkArgName,
  checkBase,
  checkEnvName,
  checkImage,
  checkImagePath,
  checkOwner,
  checkVariantName,
  closest,
  parseExpose,
  parseMode,
  parseStopSignal,
  type Check,
} from './fields.js';
import { ConfigError, type BuildFile, type ConfigProblem, type CopySource, type RunStep, type Step, type VariantSpec } from './model.js';
import { formatPath, Locator, type LineCol, type Path } from './positions.js';
import {
  COPY_STEP_KEYS,
  copyStepSchema,
  DEFAULTS_KEYS,
  defaultsSchema,
  expectationFor,
  FILE_STEP_KEYS,
  fileStepSchema,
  RUN_STEP_KEYS,
  runStepSchema,
  KEY_ALIASES,
  TOP_KEYS,
  topSchema,
  VARIANT_KEYS,
  variantSchema,
  type RawDefaults,
  type RawVariant,
} from './schema.js';
import { isGlobPattern, resolveCopySource } from './sources.js';
import { hasPlatformPlaceholder, PLATFORM_PLACEHOLDERS } from './platform-sources.js';
import { formatPlatform, parsePlatform } from '../oci/platform.js';
import { parseFlavorOverrides, parseTagRules } from '../tags/index.js';
import { substitute, type SubstitutionScope } from './substitute.js';
import { dependencyPath, fromCycles } from './graph.js';
import {
  checkYamlVariantKeys,
  dockerfileDefaults,
  dockerfileSource,
  isDockerfileVariant,
  type VariantReporter,
} from './dockerfile-variant.js';

export interface LoadOptions {
  /**
   * Environment used to override args of the same name (default: process.env). Only
   * declared args can be overridden; other variables are never visible to the file.
   */
  env?: Readonly<Record<string, string | undefined>>;
}

/** Reads, validates and resolves a build file. Throws ConfigError with all problems. */
export async function loadBuildFile(file: string, opts: LoadOptions = {}): Promise<BuildFile> {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (e) {
    throw new ConfigError([
      {
        file,
        message: `cannot read the build file: ${(e as Error).message}`,
        hint: 'check the path of the build file (default oci-build.yml)',
      },
    ]);
  }
  return parseBuildFileText(text, file, path.dirname(abs), opts);
}

/** Like loadBuildFile, from text; `context` is the directory copy sources are relative to. */
export async function parseBuildFileText(text: string, file: string, context: string, opts: LoadOptions = {}): Promise<BuildFile> {
  const loader = new Loader(text, file, path.resolve(context), opts.env ?? process.env);
  return loader.load();
}

type Issue = z.ZodError['issues'][number];

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'nothing (null)';
  if (Array.isArray(v)) return v.length ? 'a list' : 'an empty list';
  if (typeof v === 'object') return 'a map';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
  if (typeof v === 'number') return `the number ${v}`;
  if (typeof v === 'boolean') return String(v);
  return typeof v;
}

function rawAt(v: unknown, p: readonly PropertyKey[]): unknown {
  let cur = v;
  for (const seg of p) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[seg];
  }
  return cur;
}

interface Picked<T> {
  value: T;
  path: Path;
}

class Loader {
  private readonly problems: ConfigProblem[] = [];
  private readonly seen = new Set<string>();
  private readonly badSubs: string[] = [];
  /** `copy` steps with `from:`, checked once every variant is known. */
  private readonly copyFroms: { variant: string; from: string; path: Path; what?: string }[] = [];
  private readonly lc = new LineCounter();
  private readonly loc: Locator;
  private readonly doc;
  private realContext?: Promise<string | undefined>;

  constructor(
    text: string,
    private readonly file: string,
    private readonly context: string,
    private readonly env: Readonly<Record<string, string | undefined>>,
  ) {
    this.doc = parseDocument(text, { lineCounter: this.lc, merge: true, prettyErrors: true, uniqueKeys: true });
    this.loc = new Locator(this.doc, this.lc);
  }

  private add(path: Path, message: string, hint: string, opts: { key?: boolean; at?: LineCol } = {}): void {
    const { line, column } = opts.at ?? this.loc.pos(path, opts.key);
    const field = formatPath(path) || undefined;
    const id = `${line}:${column}:${field}:${message}`;
    if (this.seen.has(id)) return;
    this.seen.add(id);
    this.problems.push({ file: this.file, line, column, ...(field ? { field } : {}), message, hint });
  }

  private addCheck<T>(path: Path, c: Check<T>): T | undefined {
    if (c.ok) return c.value;
    this.add(path, c.message, c.hint);
    return undefined;
  }

  private fail(): never {
    const sorted = this.problems
      .map((p, i) => ({ p, i }))
      .sort((a, b) => (a.p.line ?? Infinity) - (b.p.line ?? Infinity) || (a.p.column ?? 0) - (b.p.column ?? 0) || a.i - b.i)
      .map((x) => x.p);
    throw new ConfigError(sorted);
  }

  async load(): Promise<BuildFile> {
    let fatal = false;
    for (const e of this.doc.errors) {
      const at = this.loc.offsetPos(e.pos[0]);
      const p = this.loc.pathAt(e.pos[0]);
      if (e.code === 'DUPLICATE_KEY') {
        const key = p.at(-1);
        this.add(
          p,
          `duplicate key${key !== undefined ? ` "${key}"` : ''}: keys of a YAML map must be unique`,
          'remove or rename one of them',
          { at },
        );
      } else if (e.code === 'MULTIPLE_DOCS') {
        fatal = true;
        this.add([], 'the build file contains several YAML documents', 'keep one document: remove the --- separator and what follows', {
          at,
        });
      } else {
        fatal = true;
        const msg = e.message.replace(/ at line \d+, column \d+[\s\S]*$/, '');
        const hint =
          e.code === 'TAB_AS_INDENT' ? 'indent with spaces' : 'check the indentation, quotes and brackets at and just before this line';
        this.add(p, `YAML syntax error: ${msg}`, hint, { at });
      }
    }
    if (fatal) this.fail();

    let root: unknown;
    try {
      root = this.doc.toJS();
    } catch (e) {
      this.add([], `cannot read the YAML: ${(e as Error).message}`, 'simplify the anchors and aliases');
      this.fail();
    }
    const result = await this.resolve(root);
    if (this.problems.length || !result) this.fail();
    return result;
  }

  /** Reports zod issues of the section at `base`, with messages built from expectationFor. */
  private report(issues: Issue[], base: Path, raw: unknown, known: string[], ignoreKey: (k: string) => boolean): void {
    for (const iss of issues) {
      const p: Path = [...base, ...iss.path.map((s) => (typeof s === 'number' ? s : String(s)))];
      if (iss.code === 'unrecognized_keys') {
        for (const k of iss.keys) {
          if (ignoreKey(k)) continue;
          const s = closest(k, known, KEY_ALIASES);
          this.add([...p, k], `unknown key "${k}"`, s ? `did you mean "${s}"?` : `remove it; known keys here: ${known.join(', ')}`, {
            key: true,
          });
        }
        continue;
      }
      const v = rawAt(raw, iss.path);
      const exp = expectationFor(p);
      const last = p.at(-1);
      if (v === undefined) this.add(p, `"${String(last)}" is missing`, `add it, e.g. ${exp.example}`);
      else this.add(p, `expected ${exp.form}, got ${describe(v)}`, `for example: ${exp.example}`);
    }
  }

  /**
   * Parses one section. On problems, reports them, drops the offending keys and parses the
   * rest again, so the valid part of a section is still checked further.
   */
  private part<S extends z.ZodType>(
    schema: S,
    raw: unknown,
    base: Path,
    known: string[],
    ignoreKey: (k: string) => boolean = () => false,
  ): { data?: z.output<S>; bad: Set<string> } {
    const bad = new Set<string>();
    const r = schema.safeParse(raw);
    if (r.success) return { data: r.data, bad };
    this.report(r.error.issues, base, raw, known, ignoreKey);
    for (const iss of r.error.issues) {
      if (iss.path.length > 0) bad.add(String(iss.path[0]));
      else if (iss.code === 'unrecognized_keys') for (const k of iss.keys) bad.add(k);
      else return { bad };
    }
    if (!isPlainObject(raw)) return { bad };
    const again = schema.safeParse(Object.fromEntries(Object.entries(raw).filter(([k]) => !bad.has(k))));
    return again.success ? { data: again.data, bad } : { bad };
  }

  /** Substitutes every string in `value` (not keys); remembers the paths that failed. */
  private sub<T>(value: T, p: Path, scope: SubstitutionScope): T {
    if (typeof value === 'string') {
      const r = substitute(value, scope);
      for (const pr of r.problems) this.add(p, pr.message, pr.hint);
      if (r.problems.length) this.badSubs.push(formatPath(p));
      return r.value as T;
    }
    if (Array.isArray(value)) return value.map((x, i) => this.sub(x, [...p, i], scope)) as T;
    if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, x]) => [k, this.sub(x, [...p, k], scope)])) as T;
    return value;
  }

  /** True when substitution failed at or below `p` (its value is not checked further). */
  private subFailed(p: Path): boolean {
    const f = formatPath(p);
    return this.badSubs.some((b) => b === f || (b.startsWith(f) && (b[f.length] === '.' || b[f.length] === '[')));
  }

  private async resolve(root: unknown): Promise<BuildFile | undefined> {
    if (root === null || root === undefined) {
      this.add([], 'the build file is empty', 'start with "version: 1" and a "variants:" map');
      return undefined;
    }
    const top = this.part(topSchema.partial(), root, [], TOP_KEYS, (k) => k.startsWith('x-'));
    const t = top.data;
    if (!t) return undefined;
    if (t.version === undefined && !top.bad.has('version'))
      this.add(['version'], '"version" is missing', 'add "version: 1" at the top of the file');

    // Args, with the environment overriding declared args only (reproducible builds).
    const args: Record<string, string> = {};
    for (const [k, v] of Object.entries(t.args ?? {})) {
      const c = checkArgName(k);
      if (!c.ok) {
        this.add(['args', k], c.message, c.hint, { key: true });
        continue;
      }
      args[k] = this.env[k] ?? String(v);
    }

    let defaults: RawDefaults = {};
    const defaultsBad = new Set<string>();
    if (t.defaults !== undefined && t.defaults !== null) {
      const d = this.part(defaultsSchema, t.defaults, ['defaults'], DEFAULTS_KEYS);
      defaults = d.data ?? {};
      for (const k of d.bad) defaultsBad.add(k);
      // Unreadable defaults: do not also complain that variants lack a base.
      if (!d.data) defaultsBad.add('base');
    }

    const rawVariants = t.variants ?? {};
    if (t.variants === undefined && !top.bad.has('variants')) {
      this.add(['variants'], '"variants" is missing', 'add a "variants:" map, e.g. variants: { app: { base: "ubuntu:24.04" } }');
    } else if (t.variants !== undefined && Object.keys(rawVariants).length === 0) {
      this.add(['variants'], 'no variants are defined', 'add at least one variant, e.g. variants: { app: { base: "ubuntu:24.04" } }');
    }
    const names = this.loc.keysInOrder(['variants']);
    for (const k of Object.keys(rawVariants)) if (!names.includes(k)) names.push(k);

    const variants: VariantSpec[] = [];
    const froms = new Map<string, string>();
    for (const name of names) {
      const vp: Path = ['variants', name];
      const nameCheck = checkVariantName(name);
      if (!nameCheck.ok) this.add(vp, nameCheck.message, nameCheck.hint, { key: true });
      const raw = rawVariants[name] ?? {};
      const part = this.part(variantSchema, raw, vp, VARIANT_KEYS);
      if (!part.data) continue;
      // Platform placeholders are kept as written here and filled in per platform when the
      // build is planned (copy sources only).
      const scope: SubstitutionScope = {
        vars: new Map([...Object.entries(args), ['variant', name], ...PLATFORM_PLACEHOLDERS.map((n): [string, string] => [n, `\${${n}}`])]),
        env: this.env,
      };
      const v = this.sub(part.data, vp, scope);
      const d = this.sub(defaults, ['defaults'], scope);
      this.checkPlaceholders(v, vp);
      this.checkPlaceholders(d, ['defaults']);
      const spec = await this.variant(name, v, d, part.bad, defaultsBad);
      if (spec.from !== undefined && !this.subFailed([...vp, 'from'])) froms.set(name, spec.from);
      variants.push(spec);
    }
    this.checkFroms(names, froms);
    this.checkCopyFroms(names, froms);
    return { file: path.resolve(this.file), context: this.context, version: 1, args, variants };
  }

  /** Platform placeholders only mean something in copy sources; anywhere else they are a mistake. */
  private checkPlaceholders(value: unknown, p: Path): void {
    const inCopy = p.length >= 5 && p[2] === 'steps' && p[4] === 'copy';
    if (typeof value === 'string') {
      if (!inCopy && hasPlatformPlaceholder(value)) {
        this.add(
          p,
          `\${platform}, \${os}, \${arch} and \${arch_variant} can only be used in copy sources`,
          "use them in a copy step's source path, e.g. copy: target/${arch}/app",
        );
      }
    } else if (Array.isArray(value)) for (const [i, x] of value.entries()) this.checkPlaceholders(x, [...p, i]);
    else if (isPlainObject(value)) for (const [k, x] of Object.entries(value)) this.checkPlaceholders(x, [...p, k]);
  }

  /** copy-from names exist, and from + copy-from dependencies have no cycle through a copy. */
  private checkCopyFroms(names: string[], froms: Map<string, string>): void {
    const all = new Set(names);
    const edges = new Map<string, string[]>();
    for (const [v, f] of froms) edges.set(v, [f]);
    for (const c of this.copyFroms) {
      if (!all.has(c.from)) {
        const s = closest(c.from, names);
        this.add(
          c.path,
          `${c.what ?? 'copy from'}: unknown variant "${c.from}"`,
          `${s ? `did you mean "${s}"? ` : ''}variants in this file: ${names.join(', ')}`,
        );
        continue;
      }
      edges.set(c.variant, [...(edges.get(c.variant) ?? []), c.from]);
    }
    for (const c of this.copyFroms) {
      if (!all.has(c.from)) continue;
      const back = dependencyPath(edges, c.from, c.variant);
      if (back) {
        this.add(
          c.path,
          `${c.what ?? 'copy from'}: variants depend on each other in a cycle: ${[c.variant, ...back].join(' -> ')}`,
          'a variant cannot copy from itself or from a variant that starts from or copies from it',
        );
      }
    }
  }

  private keyPos(p: Path): LineCol {
    return this.loc.pos(p, true);
  }

  private checkFroms(names: string[], froms: Map<string, string>): void {
    const all = new Set(names);
    for (const [name, f] of froms) {
      if (!all.has(f)) {
        const s = closest(f, names);
        this.add(
          ['variants', name, 'from'],
          `from: unknown variant "${f}"`,
          `${s ? `did you mean "${s}"? ` : ''}variants in this file: ${names.join(', ')}`,
        );
      }
    }
    for (const cycle of fromCycles(names, froms)) {
      this.add(
        ['variants', cycle[0]!, 'from'],
        `from: variants start from each other in a cycle: ${cycle.join(' -> ')}`,
        'one variant of the cycle must start from an image (base) instead',
      );
    }
  }

  /** Variant value if set, else the default, with the path it came from. */
  private pick<K extends keyof RawDefaults>(
    v: RawVariant,
    d: RawDefaults,
    name: string,
    k: K,
  ): Picked<NonNullable<RawDefaults[K]>> | undefined {
    const own = (v as RawDefaults)[k];
    if (own !== undefined && own !== null) return { value: own, path: ['variants', name, k] };
    const def = d[k];
    if (def !== undefined && def !== null) return { value: def, path: ['defaults', k] };
    return undefined;
  }

  private mergeMap(v: RawVariant, d: RawDefaults, name: string, k: 'env' | 'labels' | 'annotations'): Record<string, string> {
    const out: Record<string, string> = {};
    const sources: [Record<string, unknown> | undefined, Path][] = [
      [d[k], ['defaults', k]],
      [v[k], ['variants', name, k]],
    ];
    for (const [m, base] of sources) {
      for (const [key, val] of Object.entries(m ?? {})) {
        const c = k === 'env' ? checkEnvName(key) : undefined;
        if (c && !c.ok) {
          this.add([...base, key], c.message, c.hint, { key: true });
          continue;
        }
        if (key.trim() === '') {
          this.add([...base, key], `${k} key is empty`, 'give it a name', { key: true });
          continue;
        }
        out[key] = String(val);
      }
    }
    return out;
  }

  /** The loader as the Dockerfile variant checks see it. */
  private reporter(): VariantReporter {
    return {
      file: this.file,
      add: (p, message, hint, opts) => this.add(p, message, hint, opts),
      pos: (p, key) => this.loc.pos(p, key),
      variantRef: (variant, ref, p) => this.copyFroms.push({ variant, from: ref, path: p, what: 'contexts' }),
    };
  }

  private async variant(name: string, v: RawVariant, dflt: RawDefaults, bad: Set<string>, defaultsBad: Set<string>): Promise<VariantSpec> {
    const vp: Path = ['variants', name];
    const isDockerfile = isDockerfileVariant(v);
    if (!isDockerfile) checkYamlVariantKeys(name, v, this.reporter());
    const d = isDockerfile ? dockerfileDefaults(dflt) : dflt;
    const spec: VariantSpec = {
      name,
      steps: [],
      env: this.mergeMap(v, d, name, 'env'),
      labels: this.mergeMap(v, d, name, 'labels'),
      annotations: this.mergeMap(v, d, name, 'annotations'),
      expose: [],
      volumes: [],
      pos: { file: this.file, ...this.keyPos(vp) },
    };

    if (isDockerfile) {
      const source = await dockerfileSource(name, v, path.dirname(path.resolve(this.file)), this.reporter());
      if (source) spec.dockerfile = source;
    } else if (v.from !== undefined) {
      spec.from = v.from;
      if (v.base !== undefined) {
        this.add(
          [...vp, 'from'],
          `variant "${name}" sets both base and from`,
          'keep one: base starts from an image, from starts from the result of another variant',
        );
      }
    } else {
      const b = this.pick(v, d, name, 'base');
      if (b) {
        if (!this.subFailed(b.path)) spec.base = this.addCheck(b.path, checkBase(b.value));
      } else if (!bad.has('base') && !bad.has('from') && !defaultsBad.has('base')) {
        this.add(
          vp,
          `variant "${name}" has neither base nor from`,
          'add "base: <image>" (or scratch) or "from: <variant>", or set defaults.base',
          { key: true },
        );
      }
    }

    const image = this.pick(v, d, name, 'image');
    if (image && !this.subFailed(image.path)) spec.image = this.addCheck(image.path, checkImage(image.value));

    for (const k of ['entrypoint', 'cmd'] as const) {
      const c = this.pick(v, d, name, k);
      if (c) spec[k] = typeof c.value === 'string' ? ['/bin/sh', '-c', c.value] : c.value.map(String);
    }

    const workdir = this.pick(v, d, name, 'workdir');
    if (workdir && !this.subFailed(workdir.path))
      spec.workdir = this.addCheck(workdir.path, checkImagePath(workdir.value, 'workdir', 'strip'));

    const user = this.pick(v, d, name, 'user');
    if (user && !this.subFailed(user.path)) spec.user = this.addCheck(user.path, checkOwner(user.value, 'user'));

    const expose = this.pick(v, d, name, 'expose');
    expose?.value.forEach((e, i) => {
      const p = [...expose.path, i];
      const port = this.subFailed(p) ? undefined : this.addCheck(p, parseExpose(e));
      if (port !== undefined && !spec.expose.includes(port)) spec.expose.push(port);
    });

    const volumes = this.pick(v, d, name, 'volumes');
    volumes?.value.forEach((vol, i) => {
      const p = [...volumes.path, i];
      const ok = this.subFailed(p) ? undefined : this.addCheck(p, checkImagePath(vol, 'volume', 'strip'));
      if (ok !== undefined && !spec.volumes.includes(ok)) spec.volumes.push(ok);
    });

    for (const k of ['tags', 'flavor'] as const) {
      const lines = this.pick(v, d, name, k);
      if (!lines) continue;
      const ok: string[] = [];
      lines.value.forEach((line, i) => {
        const p = [...lines.path, i];
        if (this.subFailed(p)) return;
        try {
          if (k === 'tags') parseTagRules([line]);
          else parseFlavorOverrides([line]);
          ok.push(line);
        } catch (e) {
          this.add(
            p,
            (e as Error).message,
            k === 'tags'
              ? 'see docker/metadata-action tag rules, e.g. type=raw,value=edge'
              : 'e.g. suffix=-claude,onlatest=true or latest=false',
          );
        }
      });
      spec[k] = ok;
    }

    const platforms = this.pick(v, d, name, 'platforms');
    if (platforms) {
      const list: string[] = [];
      platforms.value.forEach((raw, i) => {
        const p = [...platforms.path, i];
        if (this.subFailed(p)) return;
        try {
          const f = formatPlatform(parsePlatform(raw));
          if (list.includes(f)) this.add(p, `platform ${f} is listed twice`, 'list each platform once');
          else list.push(f);
        } catch (e) {
          this.add(p, (e as Error).message, 'write os/arch[/variant], e.g. linux/amd64, linux/arm64, linux/arm/v7');
        }
      });
      if (platforms.value.length === 0)
        this.add(
          platforms.path,
          'platforms is empty',
          "list at least one platform, or remove the field to build for the runner's platform",
        );
      if (list.length) spec.platforms = list;
    }

    if (v.stage) spec.stage = true;

    const sig = this.pick(v, d, name, 'stop-signal');
    if (sig && !this.subFailed(sig.path)) spec.stopSignal = this.addCheck(sig.path, parseStopSignal(sig.value));

    for (const [i, raw] of (v.steps ?? []).entries()) {
      const step = await this.step(raw, [...vp, 'steps', i]);
      if (step) spec.steps.push(step);
    }
    return spec;
  }

  private mode(raw: string | number | undefined, p: Path): number | undefined {
    if (raw === undefined || this.subFailed(p)) return undefined;
    const format = this.loc.scalarFormat(p);
    if (typeof raw === 'number' && format === 'HEX') {
      this.add(p, `mode 0x${raw.toString(16)} is written in hexadecimal`, `write it in octal: "0${raw.toString(8)}"`);
      return undefined;
    }
    return this.addCheck(p, parseMode(raw, format === 'OCT'));
  }

  private owner(raw: string | number | undefined, p: Path): string | undefined {
    if (raw === undefined || this.subFailed(p)) return undefined;
    return this.addCheck(p, checkOwner(raw));
  }

  private async step(raw: unknown, p: Path): Promise<Step | undefined> {
    const pos = { file: this.file, ...this.loc.pos(p) };
    if (!isPlainObject(raw)) {
      const exp = expectationFor(p);
      this.add(p, `expected ${exp.form}, got ${describe(raw)}`, `for example: ${exp.example}`);
      return undefined;
    }
    const kinds = (['copy', 'file', 'run'] as const).filter((k) => k in raw);
    if (kinds.length > 1) {
      const list = kinds.length === 2 ? `both "${kinds[0]}" and "${kinds[1]}"` : '"copy", "file" and "run"';
      this.add(
        p,
        `a step has ${list}`,
        'split it into one step each: copy takes files from the context (or another variant), file writes inline content, run runs a command',
      );
      return undefined;
    }
    if (kinds.length === 0) {
      const known = [...new Set([...COPY_STEP_KEYS, ...FILE_STEP_KEYS, ...RUN_STEP_KEYS])];
      let suggested = false;
      for (const k of Object.keys(raw)) {
        if (known.includes(k)) continue;
        const s = closest(k, known, KEY_ALIASES);
        if (s === 'copy' || s === 'file' || s === 'run') suggested = true;
        this.add([...p, k], `unknown key "${k}"`, s ? `did you mean "${s}"?` : `remove it; known keys here: ${known.join(', ')}`, {
          key: true,
        });
      }
      if (!suggested)
        this.add(
          p,
          'a step needs "copy" (with "to"), "file" (with "content") or "run"',
          'for example: - { copy: bin/app, to: /usr/local/bin/ }',
        );
      return undefined;
    }
    if (kinds[0] === 'run') return this.runStep(raw, p, pos);
    if (kinds[0] === 'file') {
      const s = this.part(fileStepSchema, raw, p, FILE_STEP_KEYS).data;
      if (!s) return undefined;
      const fp = [...p, 'file'];
      const target = this.subFailed(fp) ? undefined : this.addCheck(fp, checkImagePath(s.file, 'file', 'forbid'));
      const mode = this.mode(s.mode, [...p, 'mode']);
      const owner = this.owner(s.owner, [...p, 'owner']);
      if (target === undefined) return undefined;
      return {
        kind: 'file',
        path: target,
        content: String(s.content),
        ...(mode !== undefined ? { mode } : {}),
        ...(owner !== undefined ? { owner } : {}),
        pos,
      };
    }

    const s = this.part(copyStepSchema, raw, p, COPY_STEP_KEYS).data;
    if (!s) return undefined;
    const patterns: Picked<string>[] =
      typeof s.copy === 'string'
        ? [{ value: s.copy, path: [...p, 'copy'] }]
        : s.copy.map((x, i) => ({ value: x, path: [...p, 'copy', i] }));
    const sources: CopySource[] = [];
    let complete = true;
    const from = s.from !== undefined && !this.subFailed([...p, 'from']) ? s.from : undefined;
    if (s.from !== undefined && from === undefined) complete = false;
    for (const pat of patterns) {
      if (this.subFailed(pat.path)) {
        complete = false;
        continue;
      }
      if (s.from !== undefined) {
        // Paths inside the other variant's image, resolved when it is built.
        if (hasPlatformPlaceholder(pat.value)) {
          this.add(
            pat.path,
            'platform placeholders cannot be used in a copy with from',
            'the source variant is built for the same platform: write the path inside that image',
          );
          complete = false;
          continue;
        }
        const c = this.addCheck(pat.path, checkImagePath(pat.value, 'copy source', 'strip'));
        if (c === undefined) complete = false;
        else sources.push({ pattern: c, matches: [], isGlob: isGlobPattern(c) });
        continue;
      }
      if (hasPlatformPlaceholder(pat.value)) {
        // Resolved for each platform when the build is planned (resolvePlatformSources).
        sources.push({ pattern: pat.value, matches: [], isGlob: isGlobPattern(pat.value), perPlatform: true });
        continue;
      }
      const rc = await this.getRealContext(pat.path);
      if (rc === undefined) return undefined;
      const r = await resolveCopySource(this.context, pat.value, rc);
      for (const pr of r.problems) this.add(pat.path, pr.message, pr.hint);
      if (r.source) sources.push(r.source);
      else complete = false;
    }
    const tp = [...p, 'to'];
    const to = this.subFailed(tp) ? undefined : this.addCheck(tp, checkImagePath(s.to, 'to'));
    const several = patterns.length > 1 || patterns.some((x) => isGlobPattern(x.value));
    if (to !== undefined && several && !to.endsWith('/')) {
      this.add(
        tp,
        `"to" must be a directory ending with / when copying ${patterns.length > 1 ? 'several sources' : 'a glob'}`,
        `add a trailing slash: to: ${to}/`,
      );
    }
    const mode = this.mode(s.mode, [...p, 'mode']);
    const owner = this.owner(s.owner, [...p, 'owner']);
    if (from !== undefined) this.copyFroms.push({ variant: String(p[1]), from, path: [...p, 'from'] });
    if (to === undefined || !complete) return undefined;
    return {
      kind: 'copy',
      sources,
      to,
      ...(mode !== undefined ? { mode } : {}),
      ...(owner !== undefined ? { owner } : {}),
      ...(from !== undefined ? { from } : {}),
      pos,
    };
  }

  private runStep(raw: Record<string, unknown>, p: Path, pos: RunStep['pos']): RunStep | undefined {
    const s = this.part(runStepSchema, raw, p, RUN_STEP_KEYS).data;
    if (!s) return undefined;
    let ok = true;
    const rp = [...p, 'run'];
    let command: string | string[] | undefined;
    if (!this.subFailed(rp)) {
      if (typeof s.run === 'string') {
        if (s.run.trim() === '') this.add(rp, 'run is empty', 'give the command to run, e.g. run: make install');
        else command = s.run;
      } else {
        command = s.run.map(String);
        if (command[0]!.trim() === '') {
          this.add([...rp, 0], 'the program to run is empty', 'start the exec form with the program, e.g. run: [/usr/bin/make, install]');
          command = undefined;
        }
      }
    }
    if (command === undefined) ok = false;
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(s.env ?? {})) {
      const c = checkEnvName(k);
      if (!c.ok) {
        this.add([...p, 'env', k], c.message, c.hint, { key: true });
        ok = false;
        continue;
      }
      env[k] = String(v);
    }
    let user: string | undefined;
    if (s.user !== undefined && !this.subFailed([...p, 'user'])) {
      user = this.addCheck([...p, 'user'], checkOwner(s.user, 'user'));
      if (user === undefined) ok = false;
    }
    let workdir: string | undefined;
    if (s.workdir !== undefined && !this.subFailed([...p, 'workdir'])) {
      workdir = this.addCheck([...p, 'workdir'], checkImagePath(s.workdir, 'workdir', 'strip'));
      if (workdir === undefined) ok = false;
    }
    if (s.shell && typeof s.run !== 'string') {
      this.add([...p, 'shell'], 'shell only applies to the shell form (run: as one string)', 'remove shell, or write run as one string');
      ok = false;
    }
    if (!ok || command === undefined) return undefined;
    return {
      kind: 'run',
      command,
      ...(s.shell ? { shell: s.shell } : {}),
      env,
      ...(user !== undefined ? { user } : {}),
      ...(workdir !== undefined ? { workdir } : {}),
      network: s.network ?? true,
      pos,
    };
  }

  private async getRealContext(p: Path): Promise<string | undefined> {
    this.realContext ??= realpath(this.context).catch(() => undefined);
    const rc = await this.realContext;
    if (rc === undefined)
      this.add(
        p,
        `the build context ${this.context} does not exist`,
        'put the build file in the directory its copy sources are relative to',
      );
    return rc;
  }
}
