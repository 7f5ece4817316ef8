/**
 * A build-file variant made from a Dockerfile (`dockerfile:`, with `context:`, `target:`, `args:`,
 * `contexts:`): checked here, where the build file is read, and kept in the model as a
 * DockerfileSource. The plan converts it into variants (src/dockerfile/variants.ts), because the
 * conversion needs the base images' configs from their registries.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { DockerfileSource, SourcePos } from './model.js';
import type { LineCol, Path } from './positions.js';
import type { RawDefaults, RawVariant } from './schema.js';

/** What a Dockerfile says itself; setting it in the build file too would be two sources of truth. */
const DOCKERFILE_OWNS = [
  'base',
  'from',
  'steps',
  'env',
  'user',
  'workdir',
  'entrypoint',
  'cmd',
  'expose',
  'volumes',
  'stop-signal',
] as const;
/** Only meaningful with `dockerfile:`. */
const DOCKERFILE_ONLY = ['context', 'target', 'args', 'contexts'] as const;
/** What `defaults` gives a Dockerfile variant (the rest of defaults is for YAML variants). */
const FROM_DEFAULTS = ['image', 'labels', 'annotations', 'platforms', 'tags', 'flavor'] as const;

export interface VariantReporter {
  file: string;
  add(path: Path, message: string, hint: string, opts?: { key?: boolean }): void;
  pos(path: Path, key?: boolean): LineCol;
  /** A named context that refers to a variant, checked once every variant is known. */
  variantRef(variant: string, ref: string, path: Path): void;
}

export const isDockerfileVariant = (v: RawVariant) => v.dockerfile !== undefined;

/** `defaults` as a Dockerfile variant sees them. */
export function dockerfileDefaults(d: RawDefaults): RawDefaults {
  return Object.fromEntries(Object.entries(d).filter(([k]) => (FROM_DEFAULTS as readonly string[]).includes(k)));
}

/** Reports Dockerfile-only keys on a YAML variant. */
export function checkYamlVariantKeys(name: string, v: RawVariant, r: VariantReporter): void {
  for (const k of DOCKERFILE_ONLY)
    if (v[k] !== undefined)
      r.add(['variants', name, k], `${k} is only for a Dockerfile variant`, 'add dockerfile: path/to/Dockerfile, or remove it', {
        key: true,
      });
}

/** The Dockerfile source of a variant, or undefined after reporting its problems. */
export async function dockerfileSource(
  name: string,
  v: RawVariant,
  buildDir: string,
  r: VariantReporter,
): Promise<DockerfileSource | undefined> {
  const vp: Path = ['variants', name];
  const at = (p: Path, key = false): SourcePos => ({ file: r.file, ...r.pos(p, key) });
  let ok = true;
  for (const k of DOCKERFILE_OWNS) {
    if (v[k] === undefined) continue;
    ok = false;
    r.add([...vp, k], `${k} cannot be set on a Dockerfile variant`, `set it in the Dockerfile (${v.dockerfile}), or remove it here`, {
      key: true,
    });
  }
  const file = path.resolve(buildDir, v.dockerfile!);
  const fileStat = await stat(file).catch((e: NodeJS.ErrnoException) => e);
  if (fileStat instanceof Error || !fileStat.isFile()) {
    ok = false;
    r.add(
      [...vp, 'dockerfile'],
      `cannot read the Dockerfile ${v.dockerfile}: ${fileStat instanceof Error ? (fileStat.code ?? fileStat.message) : 'not a file'}`,
      'give its path relative to the build file',
    );
  }
  const context = path.resolve(buildDir, v.context ?? path.dirname(v.dockerfile!));
  const ctxStat = await stat(context).catch((e: NodeJS.ErrnoException) => e);
  // A missing default context is the missing Dockerfile's directory: said once, above.
  if ((ok || v.context !== undefined) && (ctxStat instanceof Error || !ctxStat.isDirectory())) {
    ok = false;
    r.add(
      [...vp, v.context !== undefined ? 'context' : 'dockerfile'],
      `the build context ${path.relative(buildDir, context) || '.'} is not a directory`,
      "give context: a directory relative to the build file (default: the Dockerfile's directory)",
    );
  }
  const contexts: DockerfileSource['contexts'] = {};
  const contextPos: Record<string, SourcePos> = {};
  for (const [key, value] of Object.entries(v.contexts ?? {})) {
    const p: Path = [...vp, 'contexts', key];
    const lower = key.toLowerCase();
    contextPos[lower] = at(p);
    if (value.startsWith('variant:')) {
      contexts[lower] = { variant: value.slice('variant:'.length) };
      r.variantRef(name, value.slice('variant:'.length), p);
    } else if (value.startsWith('docker-image://')) contexts[lower] = { image: value.slice('docker-image://'.length) };
    else {
      ok = false;
      r.add(p, `context ${key}: "${value}" is neither variant:NAME nor docker-image://REF`, `e.g. ${key}: "variant:${key}"`);
    }
  }
  if (!ok) return undefined;
  return {
    file,
    context,
    ...(v.target !== undefined ? { target: v.target, targetPos: at([...vp, 'target']) } : {}),
    args: Object.fromEntries(Object.entries(v.args ?? {}).map(([k, x]) => [k, String(x)])),
    contexts,
    contextPos,
  };
}
