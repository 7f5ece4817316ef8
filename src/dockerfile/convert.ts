/**
 * Dockerfile stages into build-file variants: each stage needed by the target becomes one
 * variant (`stage: true` unless it is the target), FROM a previous stage becomes `from:`, FROM an
 * image `base:`; RUN/COPY/ADD/WORKDIR become steps, the rest settings. Stages are converted on
 * demand from the target, so a stage nothing needs is never read (as BuildKit skips it).
 */
import { posix } from 'node:path';
import type { ContainerConfig, Platform } from '../oci/types.js';
import type { RunMount, RunStep, SourcePos, VariantSpec } from '../config/model.js';
import { parseMount } from './mounts.js';
import { formatPlatform, hostPlatform, parsePlatform } from '../oci/platform.js';
import { ExpandError, expandWord, type Lookup } from './expand.js';
import type { Instruction } from './instructions.js';
import { InstructionError } from './instructions.js';
import { cloneState, lookupIn, runEnv, stateFromConfig, type StageState } from './state.js';
import { copySteps, type CopyContext } from './copy.js';
import { healthcheck } from './healthcheck.js';
import { lex } from './lexer.js';
import { parseInstruction } from './instructions.js';

export interface Stage {
  index: number;
  /** Lower-cased `AS` name. */
  name?: string;
  from: Extract<Instruction, { keyword: 'FROM' }>;
  body: Instruction[];
}

export interface ConvertOptions {
  file: string;
  context: string;
  stages: Stage[];
  /** Values of the args declared before the first FROM (build args applied). */
  metaArgs: Map<string, string | undefined>;
  buildArgs: Record<string, string>;
  /** Automatic platform args (TARGETPLATFORM, ...). */
  platformArgs: Map<string, string>;
  /** The target platform this conversion is for (a stage without FROM --platform is built for it). */
  platform: Platform;
  escape: string;
  /** The runtime config of a base image for a platform (its Env, User, WorkingDir); undefined when unknown. */
  imageConfig(ref: string, platform: Platform): Promise<ContainerConfig | undefined>;
  /** Whether this machine can run programs of a platform (a RUN in a stage built for it). */
  canRun(platform: Platform): boolean;
  /** The ids of the secrets the build was given (RUN --mount=type=secret,required checks them). */
  secrets?: ReadonlySet<string>;
  /** Problems found along the way (conversion goes on to report them all). */
  problem(err: InstructionError): void;
  /** Put before every variant name (a build file's Dockerfile variant: `<variant>.`), so several Dockerfiles' stages do not meet. */
  prefix?: string;
  /** Names FROM and COPY --from may use beyond the stages (a build file's `contexts:`), lower-cased. */
  contexts?: ReadonlyMap<string, NamedContext>;
}

/** Another variant of the build file (its config for ENV, USER, WORKDIR), or an image. */
export type NamedContext = { variant: string; config?: ContainerConfig } | { image: string };

type RunInstruction = Extract<Instruction, { keyword: 'RUN' | 'CMD' | 'ENTRYPOINT' }>;

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

interface Converted {
  variant: VariantSpec;
  state: StageState;
  /** What the stage is built for: the target platform, or FROM --platform's (its own or its parent stage's). */
  platform: Platform;
}

export class Converter {
  private readonly done = new Map<number, Promise<Converted>>();
  private readonly inProgress = new Set<number>();
  /** Step-less variants for `COPY --from=<image>`. */
  readonly imageVariants = new Map<string, VariantSpec>();

  constructor(private readonly o: ConvertOptions) {}

  /** The stage a name or index refers to (FROM, COPY --from), case-insensitively. */
  stageOf(ref: string, before?: number): Stage | undefined {
    const lower = ref.toLowerCase();
    const byName = this.o.stages.find((s) => s.name === lower);
    if (byName) return byName;
    if (/^\d+$/.test(ref)) return this.o.stages.find((s) => s.index === Number(ref) && (before === undefined || s.index < before));
    return undefined;
  }

  variantName(s: Stage): string {
    return `${this.o.prefix ?? ''}${s.name ?? `stage-${s.index}`}`;
  }

  /** All variants converted so far (dependencies first is not needed: selectVariants orders them). */
  async variants(): Promise<VariantSpec[]> {
    const out = await Promise.all([...this.done.values()]);
    return [...out.map((c) => c.variant), ...this.imageVariants.values()];
  }

  stage(s: Stage): Promise<Converted> {
    // Conversion is sequential: the stages in progress are the ones on the current path.
    if (this.inProgress.has(s.index))
      throw new InstructionError(
        s.from.pos,
        'FROM',
        `stage ${this.variantName(s)} depends on itself (through FROM or COPY --from)`,
        'a stage can only use stages that do not use it',
      );
    let p = this.done.get(s.index);
    if (!p) {
      this.inProgress.add(s.index);
      p = this.convert(s);
      this.done.set(s.index, p);
    }
    return p;
  }

  private pos(i: Instruction): SourcePos {
    return { file: this.o.file, line: i.pos.line, column: i.pos.column };
  }

  private async convert(s: Stage): Promise<Converted> {
    const o = this.o;
    const meta: Lookup = (n) => o.metaArgs.get(n);
    let image = expandWord(s.from.image, meta, o.escape);
    const fixed = this.fromPlatform(s);
    let platform = fixed ?? o.platform;
    const parent = image.toLowerCase() === 'scratch' ? undefined : this.stageOf(image, s.index);
    const named = parent ? undefined : o.contexts?.get(image.toLowerCase());
    if (named && 'image' in named) image = named.image;
    let state: StageState;
    const variant = emptyStage(this.variantName(s), this.pos(s.from));
    let triggers: string[] = [];
    if (named && 'variant' in named) {
      // Another variant of the build file: built first, its config known from the model.
      state = stateFromConfig(named.config);
      const own = (named.config as { OnBuild?: unknown } | undefined)?.OnBuild;
      triggers = Array.isArray(own) ? own.filter((t): t is string => typeof t === 'string') : [];
      variant.from = named.variant;
    } else if (parent) {
      const p = await this.stage(parent);
      state = cloneState(p.state);
      triggers = p.state.onBuild;
      variant.from = p.variant.name;
      // A stage built FROM another is built for that one's platform (as BuildKit does).
      platform = p.platform;
      if (p.variant.fixedPlatform) variant.fixedPlatform = p.variant.fixedPlatform;
    } else {
      // A registry failure is no Dockerfile problem (exit 1, not 2), but it says where the image is named.
      const config =
        image.toLowerCase() === 'scratch'
          ? undefined
          : await o.imageConfig(image, platform).catch((e: Error) => {
              throw new Error(`${o.file}:${s.from.pos.line}:${s.from.pos.column}: FROM ${image}: ${e.message}`, { cause: e });
            });
      const own = (config as { OnBuild?: unknown } | undefined)?.OnBuild;
      triggers = Array.isArray(own) ? own.filter((t): t is string => typeof t === 'string') : [];
      state = stateFromConfig(config);
      variant.base = image.toLowerCase() === 'scratch' ? 'scratch' : image;
      // As BuildKit's empty image: scratch starts with the default PATH in its config.
      if (variant.base === 'scratch') {
        state.env.set('PATH', DEFAULT_PATH);
        variant.env.PATH = DEFAULT_PATH;
      }
    }
    if (fixed && !variant.fixedPlatform) variant.fixedPlatform = formatPlatform(fixed);
    // The base's ONBUILD triggers run first, here only: they leave the config (no grandchild runs them).
    state.onBuild = [];
    if (triggers.length) variant.onBuild = [];
    const body = [...this.triggerInstructions(triggers, s), ...s.body];
    const ownEnv = new Map<string, string>();
    for (const ins of body) {
      try {
        await this.apply(ins, s, state, ownEnv, variant, platform);
      } catch (err) {
        if (err instanceof InstructionError) o.problem(err);
        else if (err instanceof ExpandError) o.problem(new InstructionError(ins.pos, ins.keyword, err.message));
        else throw err;
      }
    }
    this.inProgress.delete(s.index);
    return { variant, state, platform };
  }

  /** FROM --platform=...: the platform the stage is built for whatever the target is (undefined: none given). */
  private fromPlatform(s: Stage): Platform | undefined {
    const flag = s.from.flags.find((f) => f.name === 'platform');
    if (flag?.value === undefined) return undefined;
    const o = this.o;
    const wanted = expandWord(flag.value, (n) => o.platformArgs.get(n) ?? o.metaArgs.get(n), o.escape);
    try {
      return parsePlatform(wanted);
    } catch (e) {
      throw new InstructionError(
        s.from.pos,
        'FROM',
        `--platform=${wanted}: ${(e as Error).message}`,
        'give os/arch[/variant], e.g. --platform=$BUILDPLATFORM or --platform=linux/arm64',
      );
    }
  }

  /** One instruction of a stage, applied to its state and variant. */
  private async apply(
    ins: Instruction,
    s: Stage,
    st: StageState,
    ownEnv: Map<string, string>,
    v: VariantSpec,
    platform: Platform,
  ): Promise<void> {
    const o = this.o;
    const word = (w: string) => expandWord(w, lookupIn(st), o.escape);
    switch (ins.keyword) {
      case 'ARG':
        for (const a of ins.args) {
          const value =
            o.buildArgs[a.name] ??
            (a.value !== undefined ? word(a.value) : undefined) ??
            (o.metaArgs.has(a.name) ? o.metaArgs.get(a.name) : o.platformArgs.get(a.name));
          st.args.set(a.name, value);
        }
        return;
      case 'ENV': {
        // Every value of one ENV sees the environment as it was before the instruction.
        const values = ins.pairs.map((p) => [word(p.key), word(p.value)] as const);
        for (const [k, val] of values) {
          st.env.set(k, val);
          ownEnv.set(k, val);
          v.env[k] = val;
        }
        return;
      }
      case 'LABEL':
        for (const p of ins.pairs) v.labels[word(p.key)] = word(p.value);
        return;
      case 'MAINTAINER':
        v.author = ins.value;
        return;
      case 'USER':
        st.user = word(ins.value);
        v.user = st.user;
        return;
      case 'STOPSIGNAL':
        v.stopSignal = word(ins.value);
        return;
      case 'WORKDIR': {
        // Owned by USER; a uid alone also gives the gid (BuildKit's mkdir chown, unlike a RUN's user).
        st.workdir = posix.resolve(st.workdir, word(ins.value));
        v.workdir = st.workdir;
        v.steps.push({
          kind: 'dir',
          path: st.workdir,
          ...(st.user ? { owner: st.user } : {}),
          createdBy: `WORKDIR ${st.workdir}`,
          pos: this.pos(ins),
        });
        return;
      }
      case 'SHELL':
        st.shell = ins.exec;
        return;
      case 'CMD':
      case 'ENTRYPOINT': {
        const argv = 'exec' in ins.command ? ins.command.exec : [...(st.shell ?? ['/bin/sh', '-c']), ins.command.shell];
        if (ins.keyword === 'CMD') v.cmd = argv;
        else v.entrypoint = argv;
        return;
      }
      case 'EXPOSE':
        for (const w of ins.words) for (const p of exposed(word(w), ins)) if (!v.expose.includes(p)) v.expose.push(p);
        return;
      case 'VOLUME':
        for (const p of ins.paths) {
          const path = word(p);
          if (path && !v.volumes.includes(path)) v.volumes.push(path);
        }
        return;
      case 'RUN':
        if (!o.canRun(platform)) throw foreignRun(ins, platform);
        v.steps.push(await this.run(ins, s, st, ownEnv, v.fixedPlatform));
        return;
      case 'COPY':
      case 'ADD': {
        const ctx: CopyContext = {
          file: o.file,
          context: o.context,
          escape: o.escape,
          lookup: lookupIn(st),
          workdir: st.workdir,
          pos: this.pos(ins),
          fromRef: (ref) => this.copyFromRef(ref, s, ins, v.fixedPlatform),
        };
        const flags = ins.flags.map((f) => `--${f.name}${f.value !== undefined ? `=${f.value}` : ''} `).join('');
        const createdBy = `${ins.keyword} ${flags}${ins.text} # buildkit`;
        v.steps.push(...(await copySteps(ins, ctx)).map((step) => ({ ...step, createdBy })));
        return;
      }
      case 'HEALTHCHECK':
        v.healthcheck = healthcheck(ins, word);
        return;
      case 'ONBUILD': {
        this.triggerInstructions([ins.rest], s, ins.pos); // checked now, run by the child
        st.onBuild.push(ins.rest);
        v.onBuild = [...st.onBuild];
        return;
      }
      case 'FROM':
        return;
    }
  }

  private async run(ins: RunInstruction, s: Stage, st: StageState, ownEnv: Map<string, string>, fixed?: string): Promise<RunStep> {
    let network = true;
    const mounts: RunMount[] = [];
    for (const f of ins.flags) {
      if (f.name === 'mount') {
        mounts.push(
          await parseMount(f.value, {
            pos: ins.pos,
            workdir: st.workdir,
            word: (w) => expandWord(w, lookupIn(st), this.o.escape),
            fromRef: (ref) => this.copyFromRef(ref, s, ins, fixed),
            secrets: this.o.secrets ?? new Set(),
          }),
        );
      } else if (f.name === 'network') {
        if (f.value === 'none') network = false;
        else if (f.value !== 'default' && f.value !== 'host')
          throw new InstructionError(
            ins.pos,
            'RUN',
            `--network=${f.value ?? ''} is not supported`,
            'use --network=none or --network=default',
          );
      } else {
        throw new InstructionError(ins.pos, 'RUN', `--${f.name} is not supported`, 'drop the flag');
      }
    }
    let command: string | string[] = 'exec' in ins.command ? ins.command.exec : ins.command.shell;
    if (ins.heredocs.length && typeof command === 'string') command = heredocScript(ins, command);
    // Docker's history form: the args with values, then the command as run (`|N K=V ... argv`).
    const args = [...st.args].filter(([k, val]) => val !== undefined && !st.env.has(k)).map(([k, val]) => `${k}=${val}`);
    const argv = typeof command === 'string' ? [...(st.shell ?? ['/bin/sh', '-c']), command] : command;
    const createdBy = `RUN ${args.length ? `|${args.length} ${args.join(' ')} ` : ''}${argv.join(' ')} # buildkit`;
    return {
      kind: 'run',
      command,
      env: runEnv(st, ownEnv),
      ownEnv: true,
      dockerUser: true,
      network,
      createdBy,
      ...(st.shell ? { shell: st.shell } : {}),
      ...(st.user ? { user: st.user } : {}),
      workdir: st.workdir,
      ...(mounts.length ? { mounts } : {}),
      pos: this.pos(ins),
    };
  }

  /** ONBUILD trigger texts as instructions, placed at the FROM (or the ONBUILD) that brings them. */
  private triggerInstructions(triggers: string[], s: Stage, at = s.from.pos): Instruction[] {
    return triggers.map((t) => {
      const raw = lex(t).instructions[0];
      if (!raw || ['ONBUILD', 'FROM', 'MAINTAINER'].includes(raw.keyword))
        throw new InstructionError(
          at,
          'ONBUILD',
          `invalid trigger "${t}"`,
          'ONBUILD takes one instruction other than ONBUILD, FROM or MAINTAINER',
        );
      return { ...parseInstruction(raw, this.o.escape), pos: at };
    });
  }

  /**
   * `COPY --from=X`: a stage's variant name, or a step-less variant for an image (for the
   * copying stage's platform: a stage with FROM --platform copies that platform's files).
   */
  private async copyFromRef(ref: string, s: Stage, ins: Instruction, fixed?: string): Promise<string> {
    const target = this.stageOf(ref);
    if (target) {
      if (target.index === s.index)
        throw new InstructionError(ins.pos, ins.keyword, `--from=${ref} is the stage itself`, 'copy from an earlier stage');
      return (await this.stage(target)).variant.name;
    }
    if (/^\d+$/.test(ref))
      throw new InstructionError(
        ins.pos,
        ins.keyword,
        `--from=${ref}: there is no stage ${ref}`,
        'stages are numbered from 0 in file order',
      );
    const named = this.o.contexts?.get(ref.toLowerCase());
    if (named && 'variant' in named) return named.variant;
    if (named) ref = named.image;
    const slug = (x: string) => x.toLowerCase().replace(/[^a-z0-9_.-]+/g, '-');
    const name = `${this.o.prefix ?? ''}image-${slug(ref)}`.slice(0, 100) + (fixed ? `@${slug(fixed)}` : '');
    if (!this.imageVariants.has(name)) {
      this.imageVariants.set(name, { ...emptyStage(name, this.pos(ins)), base: ref, ...(fixed ? { fixedPlatform: fixed } : {}) });
    }
    return name;
  }
}

/** A RUN in a stage built for a platform this machine cannot execute: found before any work. */
function foreignRun(ins: RunInstruction, platform: Platform): InstructionError {
  const p = formatPlatform(platform);
  const text = 'exec' in ins.command ? JSON.stringify(ins.command.exec) : ins.command.shell.trim();
  return new InstructionError(
    ins.pos,
    'RUN',
    `"${text.length > 60 ? `${text.slice(0, 57)}...` : text}" runs in a stage built for ${p}, which this ${formatPlatform(hostPlatform())} machine cannot execute (no binfmt_misc emulator is registered for it)`,
    `register QEMU before the build (docker/setup-qemu-action, or the qemu-user-static package), or run the stage on the build platform (FROM --platform=$BUILDPLATFORM) and cross-compile for $TARGETOS/$TARGETARCH, or build ${p} on a matching runner`,
  );
}

/**
 * A RUN with heredocs, as BuildKit runs it: `RUN <<EOF` alone runs the body with the shell;
 * otherwise the shell gets the command line and the heredocs, and does the redirection itself.
 */
function heredocScript(ins: RunInstruction, command: string): string {
  const only = ins.heredocs.length === 1 ? /^<<-?(["']?)([A-Za-z_][A-Za-z0-9_]*)\1$/.exec(command.trim()) : null;
  if (only) {
    const body = ins.heredocs[0]!.content;
    if (body.startsWith('#!'))
      throw new InstructionError(
        ins.pos,
        'RUN',
        'a heredoc with a #! line is not supported yet',
        'write the script with COPY <<EOF /script and RUN /script',
      );
    return body;
  }
  return `${command}\n${ins.heredocs.map((h) => `${h.content}${h.name}\n`).join('')}`;
}

/** EXPOSE values as config keys: 80 -> 80/tcp, 53/udp, 8000-8001 -> each port. */
function exposed(value: string, ins: Instruction): string[] {
  const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(value);
  if (!m) throw new InstructionError(ins.pos, 'EXPOSE', `invalid port "${value}"`, 'write PORT, PORT/tcp, PORT/udp or FIRST-LAST');
  const first = Number(m[1]);
  const last = m[2] ? Number(m[2]) : first;
  if (last < first || last - first > 1000 || last > 65535) throw new InstructionError(ins.pos, 'EXPOSE', `invalid port range "${value}"`);
  const proto = (m[3] ?? 'tcp').toLowerCase();
  return Array.from({ length: last - first + 1 }, (_, i) => `${first + i}/${proto}`);
}

/** A stage variant with nothing in it yet (the converter fills in its base, steps and config). */
function emptyStage(name: string, pos: SourcePos): VariantSpec {
  return { name, steps: [], env: {}, labels: {}, annotations: {}, expose: [], volumes: [], stage: true, pos };
}
