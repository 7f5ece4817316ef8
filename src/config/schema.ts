/**
 * Zod schemas of the raw build file (`oci-build.yml`), as YAML parses it.
 *
 * These check structure only: types, required keys and unknown keys (strict objects).
 * Value formats (references, modes, ports, paths, ...) are checked by load.ts after
 * `${NAME}` substitution, because any string may contain `${...}`. Messages are not
 * taken from zod: load.ts builds them from the issue code, the raw value and
 * `expectationFor(path)` below, so every problem reads the same way.
 *
 * Each section (top level, defaults, one variant, one step) is parsed separately so that
 * one bad field does not hide the problems of the rest of the file.
 */
import { z } from 'zod';

/** A YAML scalar that we accept where a string is wanted (numbers and booleans become strings). */
export const scalarSchema = z.union([z.string(), z.number(), z.boolean()]);
export type RawScalar = z.infer<typeof scalarSchema>;

const stringMapSchema = z.record(z.string(), scalarSchema);
/** A list of strings (numbers/booleans are converted), or one string for the shell form. */
const commandSchema = z.union([z.string(), z.array(scalarSchema)]);
const intOrString = z.union([z.string(), z.number().int()]);

/** Fields a variant shares with `defaults`. */
const commonFields = {
  image: z.string(),
  base: z.string(),
  labels: stringMapSchema,
  annotations: stringMapSchema,
  env: stringMapSchema,
  user: intOrString,
  workdir: z.string(),
  entrypoint: commandSchema,
  cmd: commandSchema,
  expose: z.array(intOrString),
  volumes: z.array(z.string()),
  'stop-signal': intOrString,
  platforms: z.array(z.string()),
  // docker/metadata-action tag rules and flavor lines, added to the action's `tags` / `flavor`.
  tags: z.array(z.string()),
  flavor: z.array(z.string()),
};

export const topSchema = z.strictObject({
  version: z.literal(1),
  args: z.record(z.string(), scalarSchema).optional(),
  // Parsed on their own (see load.ts), so that a bad variant does not hide the others.
  defaults: z.unknown().optional(),
  variants: z.record(z.string(), z.unknown()),
});
export type RawTop = z.infer<typeof topSchema>;

export const defaultsSchema = z.strictObject(commonFields).partial();
export type RawDefaults = z.infer<typeof defaultsSchema>;

export const variantSchema = z
  .strictObject({
    ...commonFields,
    from: z.string(),
    // A build stage: usable by from / copy-from, never pushed or recorded.
    stage: z.boolean(),
    // Each step is parsed on its own: copy and file steps have different keys.
    steps: z.array(z.unknown()),
    // A Dockerfile variant (src/config/dockerfile-variant.ts): the file, its context, stage, build args, named contexts.
    dockerfile: z.string(),
    context: z.string(),
    target: z.string(),
    args: stringMapSchema,
    contexts: z.record(z.string(), z.string()),
  })
  .partial();
export type RawVariant = z.infer<typeof variantSchema>;

export const copyStepSchema = z.strictObject({
  copy: z.union([z.string(), z.array(z.string()).min(1)]),
  to: z.string(),
  mode: intOrString.optional(),
  owner: intOrString.optional(),
  from: z.string().optional(),
});
export type RawCopyStep = z.infer<typeof copyStepSchema>;

export const runStepSchema = z.strictObject({
  run: z.union([z.string(), z.array(scalarSchema).min(1)]),
  shell: z.array(z.string()).min(1).optional(),
  env: stringMapSchema.optional(),
  user: intOrString.optional(),
  workdir: z.string().optional(),
  network: z.boolean().optional(),
});
export type RawRunStep = z.infer<typeof runStepSchema>;

export const fileStepSchema = z.strictObject({
  file: z.string(),
  content: scalarSchema,
  mode: intOrString.optional(),
  owner: intOrString.optional(),
});
export type RawFileStep = z.infer<typeof fileStepSchema>;

/** Known keys per section, for "unknown key" hints. */
export const TOP_KEYS = Object.keys(topSchema.shape);
export const DEFAULTS_KEYS = Object.keys(defaultsSchema.shape);
export const VARIANT_KEYS = Object.keys(variantSchema.shape);
export const COPY_STEP_KEYS = Object.keys(copyStepSchema.shape);
export const FILE_STEP_KEYS = Object.keys(fileStepSchema.shape);
export const RUN_STEP_KEYS = Object.keys(runStepSchema.shape);

/**
 * Names people reach for from Dockerfiles and Compose files, mapped to ours. Used when
 * the edit distance finds nothing close.
 */
export const KEY_ALIASES: Record<string, string> = {
  ports: 'expose',
  environment: 'env',
  working_dir: 'workdir',
  workingdir: 'workdir',
  command: 'cmd',
  stopsignal: 'stop-signal',
  label: 'labels',
  volume: 'volumes',
  arg: 'args',
  extends: 'from',
  src: 'copy',
  source: 'copy',
  dest: 'to',
  destination: 'to',
  target: 'to',
  path: 'file',
  contents: 'content',
  chmod: 'mode',
  chown: 'owner',
  exec: 'run',
  script: 'run',
  net: 'network',
  variant: 'variants',
};

export interface Expectation {
  /** What the value should be, e.g. "an octal mode". */
  form: string;
  /** A short example, used in hints. */
  example: string;
}

const E = (form: string, example: string): Expectation => ({ form, example });

const FIELD_EXPECTATIONS: Record<string, { self: Expectation; item?: Expectation }> = {
  image: { self: E('a repository name', 'image: ghcr.io/acme/app') },
  base: { self: E('an image reference or `scratch`', 'base: docker.io/library/ubuntu:24.04') },
  from: { self: E('the name of another variant', 'from: base') },
  dockerfile: { self: E('the path of a Dockerfile', 'dockerfile: services/api/Dockerfile') },
  context: { self: E('a directory', 'context: services/api') },
  target: { self: E('a stage name of the Dockerfile', 'target: runtime') },
  contexts: {
    self: E('a map of names to variant:NAME or docker-image://REF', 'contexts: { rust-base: "variant:rust-base" }'),
    item: E('variant:NAME or docker-image://REF', '"variant:rust-base"'),
  },
  labels: { self: E('a map of label names to strings', 'labels: { org.opencontainers.image.title: app }'), item: E('a string', '"value"') },
  annotations: {
    self: E('a map of annotation names to strings', 'annotations: { org.opencontainers.image.title: app }'),
    item: E('a string', '"value"'),
  },
  env: { self: E('a map of variable names to strings', 'env: { RUST_LOG: info }'), item: E('a string', '"value"') },
  user: { self: E('a user name or uid[:gid]', 'user: "1000:1000"') },
  workdir: { self: E('an absolute path', 'workdir: /app') },
  entrypoint: {
    self: E('a list of strings (or one string for the shell form)', 'entrypoint: [/usr/local/bin/app]'),
    item: E('a string', '"--flag"'),
  },
  cmd: { self: E('a list of strings (or one string for the shell form)', 'cmd: ["--port", "8080"]'), item: E('a string', '"--flag"') },
  expose: { self: E('a list of ports', 'expose: [8080, "53/udp"]'), item: E('a port number or "port/proto"', '8080 or "53/udp"') },
  volumes: { self: E('a list of absolute paths', 'volumes: [/data]'), item: E('an absolute path', '/data') },
  'stop-signal': { self: E('a signal name or number', 'stop-signal: SIGTERM') },
  tags: {
    self: E('a list of tag rules', 'tags: ["type=raw,value=edge", "type=sha"]'),
    item: E('a tag rule', '"type=semver,pattern={{version}}"'),
  },
  flavor: {
    self: E('a list of flavor lines', 'flavor: ["suffix=-claude,onlatest=true"]'),
    item: E('a flavor line', '"suffix=-claude,onlatest=true"'),
  },
  platforms: { self: E('a list of platforms', 'platforms: [linux/amd64, linux/arm64]'), item: E('os/arch[/variant]', 'linux/arm64') },
  steps: { self: E('a list of steps', 'steps: [{ copy: bin/app, to: /usr/local/bin/ }]') },
  copy: { self: E('a path or a non-empty list of paths', 'copy: target/release/app'), item: E('a path', 'target/release/app') },
  to: { self: E('an absolute image path', 'to: /usr/local/bin/') },
  file: { self: E('an absolute image path', 'file: /etc/app/config.toml') },
  content: { self: E('a string', 'content: "key = 1"') },
  mode: { self: E('an octal mode', 'mode: "0755"') },
  run: {
    self: E('a shell command, or a non-empty list (exec form)', 'run: apt-get update && apt-get install -y curl'),
    item: E('a string', '"--flag"'),
  },
  shell: { self: E('a non-empty list of strings', 'shell: ["/bin/bash", "-euo", "pipefail", "-c"]'), item: E('a string', '"-c"') },
  network: { self: E('true or false', 'network: false') },
  stage: { self: E('true or false', 'stage: true') },
  owner: { self: E('uid, uid:gid, name or name:group', 'owner: "1000:1000"') },
};

const GENERIC = E('a different value', 'see the documentation of oci-build.yml');

/** What the value at a path of the raw file should look like. */
export function expectationFor(path: readonly (string | number)[]): Expectation {
  const [head, ...rest] = path;
  if (head === undefined) return E('a map with version and variants', 'version: 1');
  if (head === 'version') return E('the number 1', 'version: 1');
  if (head === 'args') {
    return rest.length === 0 ? E('a map of argument names to values', 'args: { APP: app }') : E('a string, number or boolean', 'APP: app');
  }
  let p: (string | number)[];
  if (head === 'variants') {
    if (rest.length === 0) return E('a map of variant names to settings', 'variants: { app: { base: "ubuntu:24.04" } }');
    if (rest.length === 1) return E('a map of settings', 'app: { base: "ubuntu:24.04" }');
    p = rest.slice(1);
  } else if (head === 'defaults') {
    if (rest.length === 0) return E('a map of default settings', 'defaults: { base: "ubuntu:24.04" }');
    p = rest;
  } else {
    return GENERIC;
  }
  if (p[0] === 'steps' && p.length >= 2) {
    if (p.length === 2)
      return E('a step: a map with `copy` and `to`, `file` and `content`, or `run`', '- { copy: bin/app, to: /usr/local/bin/ }');
    p = p.slice(2);
  }
  const f = FIELD_EXPECTATIONS[String(p[0])];
  if (!f) return GENERIC;
  return p.length === 1 ? f.self : (f.item ?? GENERIC);
}
