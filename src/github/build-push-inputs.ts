import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseOutput, type OutputSpec } from '../output/sinks.js';
import { secretsFromInputs } from '../dockerfile/secrets.js';
import type { DigestMapEntry } from '../output/digest-map.js';
import type { DockerfileInputs } from '../dockerfile/inputs.js';
import type { GitContext } from './context.js';
import { sanitizeComponent } from './image-names.js';
import { formatRepository, parseReference } from '../oci/reference.js';

/**
 * docker/build-push-action's inputs, for the action's drop-in mode: one Dockerfile build with
 * their names and meanings. It applies when `file` or `context` is given, or when no build file
 * exists and a Dockerfile does. Inputs that need a Docker daemon or BuildKit get a warning that
 * says what to use here instead; build-push-action's outputs (`digest`, `imageid`, `metadata`)
 * are made from the digest map.
 */

export interface BuildPushInputs {
  file: string;
  context: string;
  buildArgs: Record<string, string>;
  target?: string;
  /** Full image references from `tags` (they name the repository and the tags). */
  refs: string[];
  /** `tags` lines that are our metadata-action rules instead (type=..., or a bare tag). */
  tagRules: string[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** From `push` (auto is ours) or `outputs: type=registry|type=image,push=`; build-push-action's default is false. */
  push: 'true' | 'false' | 'auto';
  outputs: OutputSpec[];
  noCache: boolean;
  secrets: Map<string, Buffer>;
  warnings: string[];
}

type Get = (name: string) => string;

const items = (s: string) => (s.includes('\n') ? s.split('\n') : s.split(',')).map((x) => x.trim()).filter((x) => x && !x.startsWith('#'));
const lines = (s: string) =>
  s
    .split('\n')
    .map((x) => x.trim())
    .filter((x) => x && !x.startsWith('#'));

/** `outputs` written in buildx's form (type=...), which only the drop-in mode reads. */
export function isBuildxOutputs(text: string): boolean {
  return /(^|\n)\s*type=/.test(text);
}

/** Whether the action builds a Dockerfile the way build-push-action does. */
export function dropInWanted(get: Get, workspace: string): boolean {
  if (get('file') || get('context')) return true;
  const config = get('config');
  if (config && config !== 'oci-build.yml') return false;
  return !existsSync(resolve(workspace, config || 'oci-build.yml')) && existsSync(join(workspace, 'Dockerfile'));
}

/** Inputs that need a daemon or BuildKit: what to do here instead. */
const DAEMON_ONLY: Record<string, string> = {
  builder: 'there is no builder instance here; drop the input (and docker/setup-buildx-action)',
  load: 'there is no Docker daemon to load into; use outputs: type=docker,dest=image.tar and `docker load -i image.tar`',
  'cache-from': 'the layer cache is kept with the Actions cache (input cache) and in the registry (input cache-registry); drop cache-from',
  'cache-to': 'the layer cache is saved with the Actions cache (input cache) and in the registry (input cache-registry); drop cache-to',
  allow: 'entitlements (network.host, security.insecure) do not apply; RUN --network=host shares the runner network already',
  network: 'RUN steps share the runner network; use RUN --network=none per instruction to cut it off',
  'shm-size': 'RUN steps get a 64 MiB /dev/shm; drop shm-size',
  ulimit: 'RUN steps get the runner process limits; drop ulimit',
  ssh: 'SSH agent forwarding is not supported; pass a key or token with secrets / secret-files and RUN --mount=type=secret',
  'cgroup-parent': 'RUN steps are not put in a chosen cgroup; drop cgroup-parent',
  'add-hosts': 'RUN steps see the runner /etc/hosts; drop add-hosts',
  call: 'only builds are supported (no lint/outline/targets calls); drop call',
  pull: 'base images are always resolved from their registry; drop pull',
  'no-cache-filters': 'use no-cache (all steps) or the CLI --rebuild-from; drop no-cache-filters',
  attests: 'use the provenance and sbom inputs',
};

function keyValues(text: string, input: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of lines(text)) {
    const eq = l.indexOf('=');
    if (eq <= 0) throw new Error(`input ${input}: "${l}" is not KEY=VALUE`);
    out[l.slice(0, eq).trim()] = l.slice(eq + 1);
  }
  return out;
}

/** A `tags` line that is a whole reference (registry/repo:tag, repo:tag), not a tag rule. */
function isReference(t: string): boolean {
  return !t.startsWith('type=') && !t.includes(',') && (t.includes('/') || t.includes(':'));
}

/** `outputs` in buildx's form (type=registry, type=oci,dest=, type=docker,dest=, type=image,push=) into our sinks and push. */
function outputsOf(text: string): { outputs: OutputSpec[]; push?: boolean } {
  const outputs: OutputSpec[] = [];
  let push: boolean | undefined;
  for (const line of lines(text)) {
    if (/^(oci|oci-archive|docker-archive):/.test(line)) {
      outputs.push(parseOutput(line));
      continue;
    }
    const kv = Object.fromEntries(line.split(',').map((p) => [p.split('=')[0]!.trim(), p.slice(p.indexOf('=') + 1).trim()]));
    const type = kv.type ?? (line.includes('=') ? undefined : line);
    if (type === 'registry') push = true;
    else if (type === 'image') push = kv.push === 'true';
    else if ((type === 'oci' || type === 'docker') && kv.dest)
      outputs.push({ kind: type === 'oci' ? (kv.tar === 'false' ? 'oci' : 'oci-archive') : 'docker-archive', path: kv.dest });
    else
      throw new Error(
        `input outputs: "${line}" is not supported here; use type=registry, type=image,push=true|false, type=oci,dest=FILE or type=docker,dest=FILE`,
      );
  }
  return { outputs, ...(push !== undefined ? { push } : {}) };
}

export function readBuildPushInputs(get: Get, workspace: string, env: NodeJS.ProcessEnv = process.env): BuildPushInputs {
  const warnings: string[] = [];
  for (const [name, what] of Object.entries(DAEMON_ONLY)) {
    const v = get(name).trim();
    if (!v || (name === 'pull' && v === 'false') || (name === 'load' && v === 'false')) continue;
    warnings.push(`input ${name} is ignored: ${what}`);
  }
  const context = resolve(workspace, get('context') || '.');
  // As build-push-action: `file` is relative to the workspace, its default is {context}/Dockerfile.
  const file = get('file') ? resolve(workspace, get('file')) : join(context, 'Dockerfile');
  const tags = items(get('tags'));
  const pushInput = get('push').trim().toLowerCase();
  const out = outputsOf(get('outputs'));
  const target = get('target').trim();
  return {
    file,
    context,
    buildArgs: keyValues(get('build-args'), 'build-args'),
    ...(target ? { target } : {}),
    refs: tags.filter(isReference),
    tagRules: tags.filter((t) => !isReference(t)),
    labels: keyValues(get('labels'), 'labels'),
    annotations: Object.fromEntries(
      Object.entries(keyValues(get('annotations'), 'annotations')).map(([k, v]) => [
        k.replace(/^(manifest|index|manifest-descriptor|index-descriptor)(\[[^\]]*\])?:/, ''),
        v,
      ]),
    ),
    push: pushInput === 'true' || pushInput === 'auto' ? pushInput : pushInput === 'false' ? 'false' : out.push ? 'true' : 'false',
    outputs: out.outputs,
    noCache: get('no-cache').trim().toLowerCase() === 'true',
    secrets: secretsFromInputs({ secrets: get('secrets'), secretFiles: get('secret-files'), secretEnvs: get('secret-envs') }, env),
    warnings,
  };
}

/** build-push-action's `metadata` output for the built image. */
export function buildPushMetadata(
  e: DigestMapEntry,
  configDigest: string | undefined,
  descriptor: { mediaType: string; digest: string; size: number } | undefined,
): Record<string, unknown> {
  return {
    'containerimage.digest': e.digest,
    ...(configDigest ? { 'containerimage.config.digest': configDigest } : {}),
    ...(descriptor ? { 'containerimage.descriptor': descriptor } : {}),
    'image.name': e.tags.join(','),
  };
}

/** What a drop-in build changes in the pipeline's inputs: the Dockerfile's target as the one image. */
export interface DropInOverrides {
  config: string;
  dockerfile: DockerfileInputs;
  tags: string[];
  outputs: OutputSpec[];
  cache: boolean;
  secrets: Map<string, Buffer>;
}

export function dropInPipeline<P extends { outputs: OutputSpec[]; cache?: boolean }>(
  pi: P,
  d: BuildPushInputs,
  git: Pick<GitContext, 'repository'>,
): P & DropInOverrides {
  const [owner, repo] = git.repository.split('/');
  // Full references name the repository; their tags join the rules as raw tags, so metadata-action's
  // default rules (used when no rule is given) do not add branch tags build-push-action would not push.
  const refs = d.refs.map((r) => {
    try {
      return parseReference(r);
    } catch (e) {
      throw new Error(`input tags: ${(e as Error).message}`);
    }
  });
  const repos = [...new Set(refs.map((r) => formatRepository(r)))];
  if (repos.length > 1) throw new Error(`input tags: the references name several repositories (${repos.join(', ')}); give one per build`);
  const image = repos[0] ?? (owner && repo ? `ghcr.io/${sanitizeComponent(owner)}/${sanitizeComponent(repo)}` : undefined);
  const tags = [...d.tagRules, ...refs.map((r) => `type=raw,value=${r.tag ?? 'latest'}`)];
  return {
    ...pi,
    config: d.file,
    dockerfile: {
      file: d.file,
      context: d.context,
      buildArgs: d.buildArgs,
      ...(d.target ? { target: d.target } : {}),
      refs: [],
      secretIds: [...d.secrets.keys()],
      labels: d.labels,
      annotations: d.annotations,
      ...(image ? { image } : {}),
    },
    tags,
    outputs: [...pi.outputs, ...d.outputs],
    cache: pi.cache !== false && !d.noCache,
    secrets: d.secrets,
  };
}
