/**
 * `RUN --mount=...` as BuildKit's Dockerfile frontend reads it: comma-separated `key=value`
 * fields (values may be quoted), `type` defaulting to bind, the BuildKit defaults per type
 * (cache: id = target, sharing shared, mode 0755, uid/gid 0; secret: target /run/secrets/ID,
 * mode 0400; bind: read-only). Values are expanded with the stage's args and env, as BuildKit does.
 */
import { posix } from 'node:path';
import type { RunMount } from '../config/model.js';
import type { Position } from './lexer.js';
import { InstructionError } from './instructions.js';

const KEYS: Record<RunMount['type'], readonly string[]> = {
  cache: ['target', 'id', 'sharing', 'mode', 'uid', 'gid', 'from', 'source', 'readonly'],
  secret: ['target', 'id', 'env', 'required', 'mode', 'uid', 'gid'],
  bind: ['target', 'from', 'source', 'readonly', 'rw'],
  tmpfs: ['target', 'size'],
};

const ALIASES: Record<string, string> = {
  dst: 'target',
  destination: 'target',
  src: 'source',
  ro: 'readonly',
  readwrite: 'rw',
};

export interface MountContext {
  pos: Position;
  workdir: string;
  /** Expands a value with the stage's args and env. */
  word(w: string): string;
  /** A stage name/index or an image reference into the variant that provides it. */
  fromRef(ref: string): Promise<string>;
  /** The ids the build was given secrets for. */
  secrets: ReadonlySet<string>;
}

/** Splits `a=b,"c=d,e"` into fields, honouring double and single quotes (BuildKit uses encoding/csv). */
function fields(value: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote = '';
  for (const ch of value) {
    if (quote) {
      if (ch === quote) quote = '';
      else cur += ch;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === ',') {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((f) => f.trim()).filter((f) => f !== '');
}

function bool(v: string | undefined, fail: (m: string) => never): boolean {
  if (v === undefined || v === '' || v === 'true') return true;
  if (v === 'false') return false;
  return fail(`expects true or false, got "${v}"`);
}

function id(v: string | undefined, fail: (m: string) => never): number {
  if (v === undefined || !/^\d+$/.test(v) || Number(v) > 0xffffffff) return fail(`expects a numeric id, got "${v ?? ''}"`);
  return Number(v);
}

/** tmpfs size: bytes, or with a k/m/g suffix (as Docker's go-units RAMInBytes). */
function size(v: string, fail: (m: string) => never): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(v);
  if (!m) return fail(`expects a size such as 64m, got "${v}"`);
  const mult = { '': 1, k: 1 << 10, m: 1 << 20, g: 1 << 30, t: 2 ** 40 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.floor(Number(m[1]) * mult);
}

export async function parseMount(value: string | undefined, c: MountContext): Promise<RunMount> {
  const bad = (message: string, hint?: string): never => {
    throw new InstructionError(c.pos, 'RUN', `--mount=${value ?? ''}: ${message}`, hint);
  };
  const kv = new Map<string, string | undefined>();
  for (const f of fields(value ?? '')) {
    const eq = f.indexOf('=');
    const rawKey = (eq < 0 ? f : f.slice(0, eq)).toLowerCase();
    const key = ALIASES[rawKey] ?? rawKey;
    if (kv.has(key)) bad(`${rawKey} is given twice`);
    kv.set(key, eq < 0 ? undefined : c.word(f.slice(eq + 1)));
  }
  const type = (kv.get('type') ?? 'bind') as RunMount['type'];
  kv.delete('type');
  if (!(type in KEYS)) bad(`unknown type "${type}"`, 'type is cache, secret, bind or tmpfs (ssh is not supported: use a secret)');
  for (const k of kv.keys())
    if (!KEYS[type].includes(k)) bad(`unknown option "${k}" for type=${type}`, `type=${type} takes ${KEYS[type].join(', ')}`);
  const opt = (k: string) => {
    const v = kv.get(k);
    return v === undefined || v === '' ? undefined : v;
  };
  const field = (k: string) => (m: string) => bad(`${k} ${m}`);
  const abs = (p: string) => posix.resolve(c.workdir, p);
  const target = opt('target');
  if (type !== 'secret' && !target) bad('needs target=PATH', 'e.g. --mount=type=cache,target=/root/.cache');
  const mode = (dflt: number) => {
    const m = opt('mode');
    if (m === undefined) return dflt;
    if (!/^[0-7]{1,4}$/.test(m)) return bad(`mode expects octal digits, got "${m}"`, 'e.g. mode=0755');
    return Number.parseInt(m, 8);
  };
  const uid = kv.has('uid') ? id(opt('uid'), field('uid')) : 0;
  const gid = kv.has('gid') ? id(opt('gid'), field('gid')) : 0;
  const from = opt('from') !== undefined ? await c.fromRef(opt('from')!) : undefined;
  switch (type) {
    case 'cache': {
      const sharing = opt('sharing') ?? 'shared';
      if (sharing !== 'shared' && sharing !== 'private' && sharing !== 'locked')
        bad(`sharing must be shared, private or locked, got "${sharing}"`);
      return {
        type,
        target: abs(target!),
        id: opt('id') ?? abs(target!),
        sharing: sharing as 'shared' | 'private' | 'locked',
        mode: mode(0o755),
        uid,
        gid,
        readonly: kv.has('readonly') ? bool(kv.get('readonly'), field('readonly')) : false,
        ...(from ? { from } : {}),
        source: posix.resolve('/', opt('source') ?? '/'),
      };
    }
    case 'secret': {
      const sid = opt('id') ?? (target ? posix.basename(target) : undefined);
      if (!sid) bad('needs id=ID (or a target whose name is the id)', 'e.g. --mount=type=secret,id=token');
      const required = kv.has('required') ? bool(kv.get('required'), field('required')) : false;
      if (required && !c.secrets.has(sid!))
        bad(`the required secret "${sid}" was not given`, `pass it with --secret id=${sid},src=FILE (or env=VAR), or the secrets input`);
      const env = opt('env');
      if (env !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(env)) bad(`env "${env}" is not a variable name`);
      return {
        type,
        id: sid!,
        // BuildKit: with env= and no target the secret is only in the environment.
        ...(target ? { target: abs(target) } : env ? {} : { target: `/run/secrets/${sid}` }),
        ...(env ? { env } : {}),
        required,
        mode: mode(0o400),
        uid,
        gid,
      };
    }
    case 'bind': {
      const ro = kv.has('readonly') ? bool(kv.get('readonly'), field('readonly')) : true;
      const rw = kv.has('rw') ? bool(kv.get('rw'), field('rw')) : !ro;
      return { type, target: abs(target!), ...(from ? { from } : {}), source: posix.resolve('/', opt('source') ?? '/'), rw };
    }
    default: {
      const s = opt('size');
      return { type: 'tmpfs', target: abs(target!), ...(s !== undefined ? { size: size(s, field('size')) } : {}) };
    }
  }
}
