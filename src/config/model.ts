/**
 * The build file after parsing, substitution and validation. Everything the builder
 * needs is here, already checked; the builder never re-validates user input.
 */

/** Where a value came from in the build file, for messages. */
export interface SourcePos {
  file: string;
  line: number;
  column: number;
}

/** A copy source after glob expansion and context checks. */
export interface CopySource {
  /** The pattern as written (after ${} substitution), relative to the build context. */
  pattern: string;
  /** Matches, as absolute host paths inside the context, sorted; one for a plain path. */
  matches: string[];
  /** True when the pattern had glob characters (then each match is copied into `to` as a directory). */
  isGlob: boolean;
  /** The pattern has ${platform}/${os}/${arch}/${arch_variant}: matches are resolved per platform. */
  perPlatform?: boolean;
  /** COPY --parents: the match's parent directories (relative), recreated under `to`. */
  under?: string;
  /**
   * COPY --from --parents: each match keeps its parent directories relative to this image
   * directory (`/`, or the part before a `/./` pivot); known only when that image is built.
   */
  parentsOf?: string;
}

export interface CopyStep {
  kind: 'copy';
  sources: CopySource[];
  /** Absolute image path; a trailing slash means "into this directory". */
  to: string;
  /** Sources resolved for each platform ("linux/arm64" -> sources), when any source is per platform. */
  platformSources?: Record<string, CopySource[]>;
  mode?: number;
  /** As written: "uid:gid", "uid", "name", "name:group" (names resolved against the base's /etc/passwd, /etc/group). */
  owner?: string;
  /**
   * Copy out of another variant's final file system (a multi-stage copy) instead of the build
   * context: each source's `pattern` is then an absolute image path (globs allowed) and
   * `matches` is empty (resolved against that image when it is built).
   */
  from?: string;
  /**
   * Docker's COPY rules instead of the build file's (a Dockerfile front end sets it): source
   * permission bits are kept as they are (setuid/setgid/sticky included) instead of being
   * normalized to 0755/0644, and a destination without a trailing slash that is an existing
   * directory in the image is copied into; every directory the copy creates gets `owner`; `mode`
   * applies to copied directories too.
   */
  dockerRules?: boolean;
  /**
   * ADD: a source file that is a tar archive (plain, gzip, bzip2, xz, zstd) is unpacked into `to`
   * (modes, owners and links as in the archive; `owner` overrides) instead of being copied.
   */
  extract?: boolean;
  /** COPY --exclude: the context paths (absolute host paths) its patterns leave out, with everything under them. */
  excluded?: string[];
  /** COPY --from --exclude: the patterns, applied to that image's paths when it is built (--exclude with the context: `excluded`). */
  exclude?: string[];
  /** The layer's history `created_by` (a Dockerfile front end gives Docker's form); default: `oci-build <step>`. */
  createdBy?: string;
  pos: SourcePos;
}

/** Runs a command in the image built so far (no daemon: namespaces + chroot); its changes are the layer. */
export interface RunStep {
  kind: 'run';
  /** A string is the shell form (run with `shell`, else the image's Shell, else /bin/sh -c); a list is the exec form. */
  command: string | string[];
  /** The shell for the shell form, when the step sets one. */
  shell?: string[];
  /** Added to the image's environment (Env and the variant's env) for this command only. */
  env: Record<string, string>;
  /** As written (name, uid, uid:gid, name:group); default: the starting image's User, else root. */
  user?: string;
  /** Absolute; created when missing. Default: the starting image's WorkingDir, else /. */
  workdir?: string;
  /** Share the host's network (default); false gives the command a network namespace with only loopback. */
  network: boolean;
  /**
   * `env` is the step's whole addition to the starting image's Env: the variant's `env` does not
   * apply (a Dockerfile ENV only affects the instructions after it, so the front end gives each
   * RUN the environment as of that line).
   */
  ownEnv?: boolean;
  /** `user` is a Dockerfile USER: a uid alone runs with its passwd entry's group, else gid 0 (not gid = uid). */
  dockerUser?: boolean;
  /** The layer's history `created_by` (a Dockerfile front end gives Docker's form); default: `oci-build <step>`. */
  createdBy?: string;
  /** RUN --mount: what is mounted for the command only (never part of the layer). */
  mounts?: RunMount[];
  pos: SourcePos;
}

/**
 * A Dockerfile `RUN --mount` (BuildKit's types). Paths are absolute image paths; `from` is a
 * variant of the build (a stage or an image), absent for the build context.
 */
export type RunMount =
  | {
      type: 'cache';
      target: string;
      id: string;
      sharing: 'shared' | 'private' | 'locked';
      mode: number;
      uid: number;
      gid: number;
      readonly: boolean;
      /** Seeds an empty cache from this variant's `source`. */
      from?: string;
      source: string;
    }
  | { type: 'secret'; id: string; target?: string; env?: string; required: boolean; mode: number; uid: number; gid: number }
  | { type: 'bind'; target: string; from?: string; source: string; rw: boolean }
  | { type: 'tmpfs'; target: string; size?: number };

export interface FileStep {
  kind: 'file';
  /** Absolute image path. */
  path: string;
  content: string;
  mode?: number;
  owner?: string;
  /** The layer's history `created_by` (a Dockerfile front end gives Docker's form); default: `oci-build <step>`. */
  createdBy?: string;
  pos: SourcePos;
}

/**
 * Creates a directory and its missing parents (all owned by `owner`, default root), as a
 * Dockerfile's WORKDIR does; nothing when it exists. Its layer is left out when it is empty.
 */
export interface DirStep {
  kind: 'dir';
  /** Absolute image path. */
  path: string;
  owner?: string;
  /** The layer's history `created_by` (a Dockerfile front end gives Docker's form); default: `oci-build <step>`. */
  createdBy?: string;
  pos: SourcePos;
}

export type Step = CopyStep | FileStep | RunStep | DirStep;

export interface VariantSpec {
  name: string;
  /** Repository to push to (no tag), substituted; undefined when none was given. */
  image?: string;
  /** `scratch`, an image reference, or undefined when `from` is set. */
  base?: string;
  /** Another variant whose result this one starts from. */
  from?: string;
  steps: Step[];
  entrypoint?: string[];
  cmd?: string[];
  env: Record<string, string>;
  workdir?: string;
  user?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Normalized "8080/tcp" form. */
  expose: string[];
  volumes: string[];
  stopSignal?: string;
  /** The config's `author` (a Dockerfile's MAINTAINER). */
  author?: string;
  /** The config's `Healthcheck` as Docker writes it (Test, Interval, Timeout, StartPeriod, StartInterval, Retries; durations in ns). */
  healthcheck?: { Test: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; StartInterval?: number; Retries?: number };
  /** The config's `OnBuild` triggers; an empty list removes inherited ones (they ran in this image). */
  onBuild?: string[];
  /** Extra metadata-action tag rules and flavor lines for this variant (checked by the loader). */
  tags?: string[];
  flavor?: string[];
  /** Platforms declared in the build file (normalized os/arch[/variant]); the result is an index. */
  platforms?: string[];
  /** A build stage: built for `from` / `copy: from:` only; never pushed, recorded or output. */
  stage?: boolean;
  /**
   * Built for this one platform (os/arch[/variant]) whatever platform the variants using it
   * (`from`, `copy: from:`, a RUN mount's `from`) are built for: a Dockerfile stage with
   * `FROM --platform=$BUILDPLATFORM` (or a literal platform). Set by the Dockerfile front end only.
   */
  fixedPlatform?: string;
  /**
   * What the variant is for some of its platforms when that differs from its own fields (a
   * Dockerfile converted once per platform: TARGETARCH in ENV, RUN, COPY, LABEL, FROM): platform
   * (os/arch[/variant]) -> the build-defining fields for it, complete (a field left out is unset
   * there). Platforms not listed build the variant's own fields. See src/config/per-platform.ts.
   */
  perPlatform?: Record<string, PlatformSpec>;
  /**
   * The variant is a Dockerfile (`dockerfile:` in the build file). As loaded it has no steps; the
   * plan converts it (src/dockerfile/variants.ts) into its stages' variants, this one the target.
   */
  dockerfile?: DockerfileSource;
  pos: SourcePos;
}

/** The fields of a variant that may differ per platform (what is built; not where it goes). */
export const PLATFORM_FIELDS = [
  'base',
  'from',
  'steps',
  'entrypoint',
  'cmd',
  'env',
  'workdir',
  'user',
  'labels',
  'expose',
  'volumes',
  'stopSignal',
  'author',
  'healthcheck',
  'onBuild',
] as const satisfies readonly (keyof VariantSpec)[];

export type PlatformSpec = Pick<VariantSpec, (typeof PLATFORM_FIELDS)[number]>;

/** A build-file variant made from a Dockerfile. */
export interface DockerfileSource {
  /** Absolute path of the Dockerfile. */
  file: string;
  /** Absolute build context (default: the Dockerfile's directory). */
  context: string;
  /** The stage to build (default: the last one). */
  target?: string;
  /** Build args (after `${NAME}` substitution). */
  args: Record<string, string>;
  /**
   * Named contexts, as bake's `contexts:`: a name a FROM or COPY --from may use, lower-cased,
   * to another variant of the build file (`variant:NAME`) or an image (`docker-image://REF`).
   */
  contexts: Record<string, { variant: string } | { image: string }>;
  /** Where `target` and each context are written, for messages. */
  targetPos?: SourcePos;
  contextPos: Record<string, SourcePos>;
}

export interface BuildFile {
  /** Absolute path of the build file. */
  file: string;
  /** The build context: the build file's directory (absolute). */
  context: string;
  version: 1;
  args: Record<string, string>;
  /** In file order; `from` targets may come later in the file. */
  variants: VariantSpec[];
}

export interface ConfigProblem {
  file: string;
  line?: number;
  column?: number;
  /** Dotted path of the offending field, e.g. variants.empty.steps[0].mode */
  field?: string;
  message: string;
  /** How to fix it. */
  hint?: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: ConfigProblem[]) {
    super(formatProblems(problems));
    this.name = 'ConfigError';
  }
}

export function formatProblems(problems: ConfigProblem[]): string {
  const lines = problems.map((p) => {
    const where = `${p.file}${p.line ? `:${p.line}${p.column ? `:${p.column}` : ''}` : ''}`;
    const field = p.field ? ` ${p.field}:` : '';
    return `${where}:${field} ${p.message}${p.hint ? ` (fix: ${p.hint})` : ''}`;
  });
  return `${problems.length} problem${problems.length === 1 ? '' : 's'} in the build file:\n${lines.map((l) => `  - ${l}`).join('\n')}`;
}
