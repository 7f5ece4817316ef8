import { basename, relative } from 'node:path';
import type { CopyStep, FileStep, RunStep, Step, VariantSpec } from '../config/model.js';
import { describeStep } from '../build/steps.js';
import { exportConfig, json, quoteArg, shellQuote } from './instructions.js';

/**
 * Writes a build file's variants as a Dockerfile that BuildKit and Debian 12's buildah 1.28 both
 * build: one stage per variant (a `from:` variant starts FROM its parent's stage), copy steps as
 * COPY, `run:` steps as RUN with their user, workdir, env and shell, and the image config.
 * buildah 1.28 has no heredocs, so a `file:` step's content becomes a file of the build context
 * (under EXPORT_DIR) that a COPY reads. What a Dockerfile cannot say is an ExportError.
 */

/** The directory, relative to the build context, that holds the `file:` steps' contents. */
export const EXPORT_DIR = '.oci-build/export';

export class ExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExportError';
  }
}

/** A file the Dockerfile's COPY reads from the build context. */
export interface ContextFile {
  /** Relative to the build context. */
  path: string;
  content: string;
}

export interface ExportedDockerfile {
  text: string;
  files: ContextFile[];
  /** The stages, in order (the last one is the default target). */
  stages: string[];
}

/** What a stage starts with: its base image's (or parent variant's) User and WorkingDir. */
export interface StartConfig {
  user: string;
  workdir: string;
}

export interface ExportOptions {
  /** The build file's path as shown in the header and in errors. */
  buildFile: string;
  /** The User and WorkingDir of a base image (read from the registry only when needed). */
  baseConfig: (reference: string) => Promise<StartConfig>;
}

/** file:line of a step or variant, the file relative to the working directory (as the user named it). */
const where = (s: Step | VariantSpec) => `${relative(process.cwd(), s.pos.file) || s.pos.file}:${s.pos.line}`;

function unsupported(v: VariantSpec, i: number, s: Step, why: string, fix: string): ExportError {
  return new ExportError(`${where(s)}: variant ${v.name} step ${i + 1} (${describeStep(s)}): ${why} (fix: ${fix})`);
}

/** Tracks a stage's USER and WORKDIR so a run: step gets its own and the image gets the variant's. */
class StageState {
  private current: Partial<StartConfig> = {};
  constructor(private readonly start: () => Promise<StartConfig>) {}

  /** Instructions that make USER and WORKDIR `want` (undefined: as the stage started). */
  async switchTo(want: { user?: string; workdir?: string }): Promise<string[]> {
    const out: string[] = [];
    const user = want.user ?? (this.current.user === undefined ? undefined : (await this.start()).user);
    if (user !== undefined && user !== this.current.user) {
      // An empty User is root: a Dockerfile cannot write it back empty, so it says root.
      out.push(`USER ${user || 'root'}`);
      this.current.user = user;
    }
    const workdir = want.workdir ?? (this.current.workdir === undefined ? undefined : (await this.start()).workdir);
    if (workdir !== undefined && workdir !== this.current.workdir) {
      out.push(`WORKDIR ${quoteArg(workdir || '/')}`);
      this.current.workdir = workdir;
    }
    return out;
  }
}

/** COPY for a copy step: context sources as written (relative to the build file), or --from a stage. */
function copyInstruction(v: VariantSpec, i: number, s: CopyStep): string {
  if (s.platformSources || s.sources.some((x) => x.perPlatform))
    throw unsupported(
      v,
      i,
      s,
      'a source per platform (${arch}, ${os}) has no Dockerfile form',
      'one variant per platform, or TARGETARCH in the Dockerfile by hand',
    );
  if (s.extract || s.dockerRules)
    throw unsupported(v, i, s, 'a step made by the Dockerfile front end', 'export the build file, not a Dockerfile');
  const flags = [
    s.from !== undefined ? `--from=${s.from}` : '',
    s.owner ? `--chown=${s.owner}` : '',
    s.mode !== undefined ? `--chmod=${s.mode.toString(8).padStart(4, '0')}` : '',
  ].filter(Boolean);
  const args = [...s.sources.map((x) => x.pattern), s.to];
  if (args.some((a) => /\s|"/.test(a))) return `COPY ${[...flags, json(args)].join(' ')}`;
  return `COPY ${[...flags, ...args].join(' ')}`;
}

function fileInstruction(v: VariantSpec, i: number, s: FileStep, files: ContextFile[]): string {
  const path = `${EXPORT_DIR}/${v.name}/step-${i + 1}`;
  files.push({ path, content: s.content });
  const flags = [s.owner ? `--chown=${s.owner}` : '', `--chmod=${(s.mode ?? 0o644).toString(8).padStart(4, '0')}`].filter(Boolean);
  return `COPY ${[...flags, ...(/\s|"/.test(s.path) ? [json([path, s.path])] : [path, s.path])].join(' ')}`;
}

/**
 * RUN, exactly as the builder runs it: the step's env is exported by the shell (a Dockerfile's
 * ENV or ARG would outlive the step), a multi-line script goes in JSON so its newlines stay.
 */
function runInstruction(s: RunStep): string {
  // buildah 1.28 refuses RUN --network: the step's network: false stays a comment (buildah bud --network none, BuildKit RUN --network=none).
  const flags = '';
  const exports = Object.entries(s.env).map(([k, x]) => `export ${k}=${shellQuote(x)}`);
  if (Array.isArray(s.command)) {
    if (!exports.length) return `RUN ${flags}${json(s.command)}`;
    return `RUN ${flags}${json(['/bin/sh', '-c', `${exports.join('; ')}; exec "$@"`, 'sh', ...s.command])}`;
  }
  const plain = !s.shell && !exports.length && !s.command.includes('\n') && !s.command.trimEnd().endsWith('\\');
  if (plain) return `RUN ${flags}${s.command}`;
  const script = [...exports, s.command].join('\n');
  return `RUN ${flags}${json([...(s.shell ?? ['/bin/sh', '-c']), script])}`;
}

function checkVariant(v: VariantSpec): void {
  if (!/^[a-z][a-z0-9._-]*$/.test(v.name))
    throw new ExportError(`${where(v)}: variant ${v.name}: a Dockerfile stage name must start with a letter (fix: rename the variant)`);
  if (Object.keys(v.annotations).length)
    throw new ExportError(
      `${where(v)}: variant ${v.name}: annotations (${Object.keys(v.annotations).join(', ')}) are manifest annotations, which a Dockerfile cannot set (fix: remove them, or pass them to the docker build command, e.g. buildx --annotation)`,
    );
  if (v.healthcheck || v.onBuild || v.author)
    throw new ExportError(`${where(v)}: variant ${v.name} comes from a Dockerfile (fix: use that Dockerfile)`);
}

/** One stage; `starts` gives each variant's start config, so a stage built FROM another inherits it. */
async function exportStage(v: VariantSpec, o: ExportOptions, files: ContextFile[], starts: Map<string, () => Promise<StartConfig>>) {
  checkVariant(v);
  const start =
    v.from !== undefined
      ? starts.get(v.from)!
      : async () => (v.base === 'scratch' ? { user: '', workdir: '' } : await o.baseConfig(v.base!));
  // What the next stage FROM this one starts with: this variant's user and workdir, else its own start's.
  let memo: Promise<StartConfig> | undefined;
  const startOnce = () => (memo ??= start());
  starts.set(v.name, async () => ({ user: v.user ?? (await startOnce()).user, workdir: v.workdir ?? (await startOnce()).workdir }));
  const state = new StageState(startOnce);
  const lines = [
    `# variant ${v.name} (${basename(v.pos.file)}:${v.pos.line})${v.stage ? ': a stage, never pushed' : ''}`,
    `FROM ${v.from ?? v.base} AS ${v.name}`,
  ];
  // The variant's env applies to its run: steps too, so it comes first.
  if (Object.keys(v.env).length)
    lines.push(
      `ENV ${Object.entries(v.env)
        .map(([k, x]) => `${k}=${quoteArg(x)}`)
        .join(' ')}`,
    );
  for (const [i, s] of v.steps.entries()) {
    if (s.kind === 'copy') lines.push(copyInstruction(v, i, s));
    else if (s.kind === 'file') lines.push(fileInstruction(v, i, s, files));
    else if (s.kind === 'run') {
      lines.push(...(await state.switchTo({ ...(s.user ? { user: s.user } : {}), ...(s.workdir ? { workdir: s.workdir } : {}) })));
      if (!s.network) lines.push('# network: false (no network for this step: BuildKit RUN --network=none, buildah bud --network none)');
      lines.push(runInstruction(s));
    } else throw unsupported(v, i, s, 'a directory step comes from a Dockerfile WORKDIR', 'export the build file, not a Dockerfile');
  }
  lines.push(...(await state.switchTo({ ...(v.user ? { user: v.user } : {}), ...(v.workdir ? { workdir: v.workdir } : {}) })));
  lines.push(...exportConfig(v));
  return lines.join('\n');
}

/** The Dockerfile for `variants` (dependencies first, as the plan orders them). */
export async function exportDockerfile(variants: VariantSpec[], o: ExportOptions): Promise<ExportedDockerfile> {
  const files: ContextFile[] = [];
  const starts = new Map<string, () => Promise<StartConfig>>();
  const stages: string[] = [];
  for (const v of variants) stages.push(await exportStage(v, o, files, starts));
  const header = [
    `# Exported by oci-build from ${o.buildFile}. Build it with the build file's directory as the context:`,
    `#   docker build -f Dockerfile .   or   buildah bud -f Dockerfile .`,
    ...(files.length ? [`# COPY reads the file: steps' contents from ${EXPORT_DIR}/ there (no heredocs: buildah 1.28 has none).`] : []),
  ];
  return { text: `${[header.join('\n'), ...stages].join('\n\n')}\n`, files, stages: variants.map((v) => v.name) };
}
