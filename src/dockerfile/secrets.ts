import { readFileSync } from 'node:fs';

/**
 * Build secrets (RUN --mount=type=secret) from the CLI's `--secret` (buildx's syntax:
 * `id=ID,src=FILE`, `id=ID,env=VAR`, `type=file|env`, `source=` for src) and from
 * docker/build-push-action's inputs (`secrets`: ID=VALUE lines, `secret-files`: ID=FILE,
 * `secret-envs`: ID=VAR). Values are read here once and only ever handed to the builder;
 * errors name the id and the file or variable, never a value.
 */

export class SecretError extends Error {}

function readSecretFile(id: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new SecretError(`secret ${id}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

function fromEnv(id: string, name: string, env: NodeJS.ProcessEnv): Buffer {
  const v = env[name];
  if (v === undefined) throw new SecretError(`secret ${id}: the environment variable ${name} is not set`);
  return Buffer.from(v, 'utf8');
}

/** One `--secret` value into [id, value]. */
export function parseSecretFlag(spec: string, env: NodeJS.ProcessEnv = process.env): [string, Buffer] {
  const kv = new Map<string, string>();
  for (const part of spec.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new SecretError(`--secret ${spec}: "${part}" is not KEY=VALUE (write id=ID,src=FILE or id=ID,env=VAR)`);
    const k = part.slice(0, eq).trim().toLowerCase();
    kv.set(k === 'source' ? 'src' : k, part.slice(eq + 1));
  }
  for (const k of kv.keys())
    if (!['id', 'src', 'env', 'type'].includes(k)) throw new SecretError(`--secret ${spec}: unknown key "${k}" (id, src, env, type)`);
  const id = kv.get('id');
  if (!id) throw new SecretError(`--secret ${spec}: id= is missing (write id=ID,src=FILE or id=ID,env=VAR)`);
  const type = kv.get('type');
  if (type !== undefined && type !== 'file' && type !== 'env') throw new SecretError(`--secret ${spec}: type must be file or env`);
  const src = kv.get('src');
  const envName = kv.get('env');
  if (src !== undefined && envName !== undefined) throw new SecretError(`--secret id=${id}: give src= or env=, not both`);
  if (type === 'env' || envName !== undefined) return [id, fromEnv(id, envName ?? src ?? id, env)];
  if (src !== undefined) return [id, readSecretFile(id, src)];
  // buildx: id alone reads the variable of that name.
  return [id, fromEnv(id, id, env)];
}

/** Lines of `ID=...` (build-push-action's list inputs: one per line or comma-separated on one line; quotes allowed). */
function pairs(text: string, input: string): [string, string][] {
  const lines = text.includes('\n') ? text.split('\n') : text.split(',');
  const out: [string, string][] = [];
  for (const raw of lines) {
    const line = raw.trim();
    if (!line) continue;
    const unq = /^"(.*)"$/s.exec(line)?.[1] ?? line;
    const eq = unq.indexOf('=');
    if (eq <= 0) throw new SecretError(`${input}: an entry is not ID=VALUE (the value is not shown)`);
    let value = unq.slice(eq + 1);
    if (/^".*"$/s.test(value)) value = value.slice(1, -1);
    out.push([unq.slice(0, eq).trim(), value]);
  }
  return out;
}

/** build-push-action's `secrets`, `secret-files` and `secret-envs` inputs into id -> value. */
export function secretsFromInputs(
  inputs: { secrets?: string; secretFiles?: string; secretEnvs?: string },
  env: NodeJS.ProcessEnv = process.env,
): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const [id, v] of pairs(inputs.secrets ?? '', 'secrets')) out.set(id, Buffer.from(v, 'utf8'));
  for (const [id, f] of pairs(inputs.secretFiles ?? '', 'secret-files')) out.set(id, readSecretFile(id, f));
  for (const [id, n] of pairs(inputs.secretEnvs ?? '', 'secret-envs')) out.set(id, fromEnv(id, n, env));
  return out;
}
