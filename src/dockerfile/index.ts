/**
 * The Dockerfile front end: a Dockerfile, its context and build args into the same BuildFile
 * model the YAML build file gives, with the target stage as the one variant to ship. Every
 * problem is collected and reported at once (Dockerfile:LINE:COL, the instruction, a fix)
 * before anything is built.
 */
import { readFile } from 'node:fs/promises';
import { relative, resolve } from 'node:path';
import { ConfigError, type BuildFile, type ConfigProblem } from '../config/model.js';
import type { ContainerConfig, Platform } from '../oci/types.js';
import { ExpandError, expandWord } from './expand.js';
import { lex } from './lexer.js';
import { InstructionError, parseInstruction, type Instruction } from './instructions.js';
import { Converter, type NamedContext, type Stage } from './convert.js';
import { platformArgs } from './state.js';
import { joinPlatforms, type PlatformConversion } from './platforms.js';
import { formatPlatform } from '../oci/platform.js';
import { canExecute } from '../run/binfmt.js';
import { filterContext, ignoreFileFor, type FilteredContext } from './dockerignore.js';

export interface DockerfileOptions {
  /** Path of the Dockerfile. */
  file: string;
  /** The build context directory (default: the Dockerfile's directory). */
  context: string;
  buildArgs: Record<string, string>;
  /** The stage to build (default: the last one). */
  target?: string;
  /**
   * The target platforms, in order. With several, the Dockerfile is converted once for each
   * (TARGETARCH and friends take each one's values) and the conversions are joined: the target
   * variant lists them all (an index), and what differs per platform is in `perPlatform`.
   */
  platforms: Platform[];
  /** The machine's platform (BUILDPLATFORM and friends). */
  buildPlatform: Platform;
  /** A base image's runtime config for a platform, for its Env, User and WorkingDir; undefined when unknown. */
  imageConfig(ref: string, platform: Platform): Promise<ContainerConfig | undefined>;
  /** Whether this machine can run a platform's programs (default: src/run/binfmt.ts canExecute). */
  canRun?(platform: Platform): boolean;
  note?(message: string): void;
  /** The ids of the secrets given to the build (--secret). */
  secrets?: ReadonlySet<string>;
  /** For a build file's Dockerfile variant: its variant-name prefix and named contexts (see Converter). */
  prefix?: string;
  contexts?: ReadonlyMap<string, NamedContext>;
  /** Where the target is named (a build file's `target:`), for the unknown-target message. */
  targetAt?: Pick<ConfigProblem, 'file' | 'line' | 'column' | 'field'>;
}

export interface LoadedDockerfile {
  buildFile: BuildFile;
  /** The variant of the target stage. */
  target: string;
  /** The context the build reads (a filtered copy when a .dockerignore applies). */
  context: string;
  /** Removes the filtered context copy, if one was made. */
  dispose(): Promise<void>;
}

const STAGE_NAME = /^[a-z][a-z0-9_.-]*$/;

export async function loadDockerfile(o: DockerfileOptions): Promise<LoadedDockerfile> {
  const file = resolve(o.file);
  const shown = relative(process.cwd(), file) || file;
  const text = await readFile(file, 'utf8').catch((e: Error) => {
    throw new ConfigError([{ file: shown, message: `cannot read the Dockerfile: ${e.message}`, hint: 'give its path with -f' }]);
  });
  const problems: ConfigProblem[] = [];
  const report = (e: InstructionError) =>
    problems.push({
      file: shown,
      line: e.pos.line,
      column: e.pos.column,
      message: `${e.instruction}: ${e.message}`,
      ...(e.hint ? { hint: e.hint } : {}),
    });
  const lexed = lex(text);
  for (const p of lexed.problems)
    problems.push({ file: shown, line: p.pos.line, column: p.pos.column, message: p.message, ...(p.hint ? { hint: p.hint } : {}) });
  if (lexed.directives.syntax)
    o.note?.(`${shown}: # syntax=${lexed.directives.syntax} is ignored (this builder's own Dockerfile front end is used)`);
  const esc = lexed.directives.escape;
  const parsed: Instruction[] = [];
  for (const raw of lexed.instructions) {
    try {
      parsed.push(parseInstruction(raw, esc));
    } catch (e) {
      if (e instanceof InstructionError) report(e);
      else throw e;
    }
  }
  const { meta, stages } = splitStages(parsed, report);
  // Checked once here (each platform's conversion reads them again, for its own values).
  metaArgsFor(meta, platformArgs(o.platforms[0] ?? o.buildPlatform, o.buildPlatform), o.buildArgs, esc, report);
  if (!stages.length) {
    if (!problems.length) problems.push({ file: shown, message: 'the Dockerfile has no FROM', hint: 'start a stage with FROM image' });
    throw new ConfigError(problems);
  }
  // Instructions with problems are left out; the rest are still converted so every problem is reported at once.

  const targetStage = o.target === undefined ? stages[stages.length - 1]! : stages.find((s) => s.name === o.target!.toLowerCase());
  if (!targetStage) {
    throw new ConfigError([
      {
        file: shown,
        ...o.targetAt,
        message: `target stage "${o.target}" is not in the Dockerfile${o.targetAt ? ` ${shown}` : ''}`,
        hint: `stages: ${stages.map((s) => s.name ?? `(unnamed ${s.index})`).join(', ')}`,
      },
    ]);
  }
  const ignoreFile = ignoreFileFor(file, o.context);
  let filtered: FilteredContext | undefined;
  if (ignoreFile) {
    filtered = await filterContext(o.context, ignoreFile);
    o.note?.(`${relative(process.cwd(), ignoreFile) || ignoreFile}: ${filtered.dropped} path(s) left out of the context`);
  }
  const context = filtered?.dir ?? o.context;
  try {
    const conversions: PlatformConversion[] = [];
    for (const platform of o.platforms) {
      const pArgs = platformArgs(platform, o.buildPlatform);
      const converter = new Converter({
        file: shown,
        context,
        stages,
        metaArgs: metaArgsFor(meta, pArgs, o.buildArgs, esc, report),
        buildArgs: o.buildArgs,
        platformArgs: pArgs,
        platform,
        escape: esc,
        imageConfig: o.imageConfig,
        canRun: o.canRun ?? ((p) => canExecute(p).ok),
        ...(o.secrets ? { secrets: o.secrets } : {}),
        problem: report,
        ...(o.prefix !== undefined ? { prefix: o.prefix } : {}),
        ...(o.contexts ? { contexts: o.contexts } : {}),
      });
      const target = await converter.stage(targetStage).catch((e: unknown) => {
        if (e instanceof InstructionError) {
          report(e);
          return undefined;
        }
        throw e;
      });
      if (!target) continue;
      target.variant.stage = false;
      conversions.push({ platform: formatPlatform(platform), variants: await converter.variants(), target: target.variant.name });
    }
    const variants = problems.length || conversions.length < o.platforms.length ? [] : joinPlatforms(conversions, report);
    // One problem per place and message, however many platforms it was found for.
    if (problems.length) throw new ConfigError([...new Map(problems.map((p) => [JSON.stringify(p), p])).values()]);
    return {
      buildFile: { file, context, version: 1, args: {}, variants },
      target: conversions[0]!.target,
      context,
      dispose: async () => {
        await filtered?.dispose();
      },
    };
  } catch (err) {
    await filtered?.dispose();
    throw err;
  }
}

/** The args declared before the first FROM, for one target platform (build args applied). */
function metaArgsFor(
  meta: Instruction[],
  pArgs: Map<string, string>,
  buildArgs: Record<string, string>,
  esc: string,
  report: (e: InstructionError) => void,
): Map<string, string | undefined> {
  const metaArgs = new Map<string, string | undefined>(pArgs);
  for (const ins of meta) {
    if (ins.keyword !== 'ARG') {
      report(new InstructionError(ins.pos, ins.keyword, `${ins.keyword} before the first FROM`, 'only ARG may come before the first FROM'));
      continue;
    }
    for (const a of ins.args) {
      try {
        metaArgs.set(a.name, buildArgs[a.name] ?? (a.value !== undefined ? expandWord(a.value, (n) => metaArgs.get(n), esc) : undefined));
      } catch (e) {
        if (e instanceof ExpandError) report(new InstructionError(ins.pos, 'ARG', e.message));
        else throw e;
      }
    }
  }
  return metaArgs;
}

function splitStages(parsed: Instruction[], report: (e: InstructionError) => void): { meta: Instruction[]; stages: Stage[] } {
  const meta: Instruction[] = [];
  const stages: Stage[] = [];
  for (const ins of parsed) {
    if (ins.keyword === 'FROM') {
      const name = ins.stage?.toLowerCase();
      if (name !== undefined && !STAGE_NAME.test(name))
        report(
          new InstructionError(ins.pos, 'FROM', `invalid stage name "${ins.stage}"`, 'start with a letter; use letters, digits, _ . -'),
        );
      if (name !== undefined && stages.some((s) => s.name === name))
        report(
          new InstructionError(
            ins.pos,
            'FROM',
            `duplicate stage name "${ins.stage}"`,
            'stage names are case-insensitive and must be unique',
          ),
        );
      stages.push({ index: stages.length, ...(name !== undefined ? { name } : {}), from: ins, body: [] });
    } else if (stages.length) stages[stages.length - 1]!.body.push(ins);
    else meta.push(ins);
  }
  return { meta, stages };
}
