import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseMount, type MountContext } from '../src/dockerfile/mounts.js';
import { parseSecretFlag, secretsFromInputs } from '../src/dockerfile/secrets.js';
import { InstructionError } from '../src/dockerfile/instructions.js';
import { runStepKeyParts } from '../src/build/run-key.js';
import type { RunStep } from '../src/config/model.js';

/** RUN --mount options as BuildKit reads them, and build secrets from the CLI and the action's inputs. */

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const ctx = (over: Partial<MountContext> = {}): MountContext => ({
  pos: { line: 7, column: 3 },
  workdir: '/work',
  word: (w) => w.replace('$V', 'expanded'),
  fromRef: async (ref) => `variant-${ref}`,
  secrets: new Set(['token']),
  ...over,
});

describe('parseMount', () => {
  it("gives BuildKit's defaults per type", async () => {
    expect(await parseMount('type=cache,target=cache', ctx())).toEqual({
      type: 'cache',
      target: '/work/cache',
      id: '/work/cache',
      sharing: 'shared',
      mode: 0o755,
      uid: 0,
      gid: 0,
      readonly: false,
      source: '/',
    });
    expect(await parseMount('type=secret,id=token', ctx())).toEqual({
      type: 'secret',
      id: 'token',
      target: '/run/secrets/token',
      required: false,
      mode: 0o400,
      uid: 0,
      gid: 0,
    });
    // env= without a target: only in the environment.
    expect(await parseMount('type=secret,id=token,env=TOKEN', ctx())).not.toHaveProperty('target');
    // bind is the default type, read-only unless rw.
    expect(await parseMount('target=/src,from=build,source=/out', ctx())).toEqual({
      type: 'bind',
      target: '/src',
      from: 'variant-build',
      source: '/out',
      rw: false,
    });
    expect(await parseMount('type=bind,target=/src,rw', ctx())).toMatchObject({ rw: true });
    expect(await parseMount('type=tmpfs,dst=/t,size=64m', ctx())).toEqual({ type: 'tmpfs', target: '/t', size: 64 << 20 });
  });

  it('takes aliases, quotes, octal modes, ids and expanded values', async () => {
    expect(
      await parseMount('type=cache,destination=/c,id=$V,sharing=locked,mode=0700,uid=1000,gid=50,ro,"from=a,b",src=/x', ctx()),
    ).toEqual({
      type: 'cache',
      target: '/c',
      id: 'expanded',
      sharing: 'locked',
      mode: 0o700,
      uid: 1000,
      gid: 50,
      readonly: true,
      from: 'variant-a,b',
      source: '/x',
    });
  });

  it('refuses bad options naming the option and the fix', async () => {
    const bad = async (v: string) => {
      try {
        await parseMount(v, ctx());
      } catch (e) {
        expect(e).toBeInstanceOf(InstructionError);
        expect((e as InstructionError).pos).toEqual({ line: 7, column: 3 });
        return (e as Error).message;
      }
      throw new Error(`${v} was accepted`);
    };
    expect(await bad('type=cache')).toMatch(/needs target=PATH/);
    expect(await bad('type=cache,target=/c,mode=rwx')).toMatch(/mode expects octal digits/);
    expect(await bad('type=cache,target=/c,uid=x')).toMatch(/uid expects a numeric id/);
    expect(await bad('type=tmpfs,target=/t,size=lots')).toMatch(/size expects a size/);
    expect(await bad('type=tmpfs,target=/t,from=x')).toMatch(/unknown option "from" for type=tmpfs/);
    expect(await bad('type=secret,id=other,required')).toMatch(/the required secret "other" was not given/);
    expect(await bad('type=secret,id=token,env=1X')).toMatch(/env "1X" is not a variable name/);
    expect(await bad('type=bind,target=/a,target=/b')).toMatch(/target is given twice/);
    expect(await bad('type=ssh')).toMatch(/unknown type "ssh"/);
  });
});

describe('secrets', () => {
  it('--secret reads a file or a variable; errors never show a value', () => {
    const dir = mkdtempSync(join(tmpdir(), 'oci-build-secret-'));
    dirs.push(dir);
    writeFileSync(join(dir, 's'), 'file-value');
    expect(parseSecretFlag(`id=a,src=${join(dir, 's')}`)).toEqual(['a', Buffer.from('file-value')]);
    expect(parseSecretFlag(`id=a,type=file,source=${join(dir, 's')}`)[1].toString()).toBe('file-value');
    expect(parseSecretFlag('id=a,env=MY_VAR', { MY_VAR: 'env-value' })[1].toString()).toBe('env-value');
    expect(parseSecretFlag('id=MY_VAR', { MY_VAR: 'by-id' })[1].toString()).toBe('by-id');
    expect(() => parseSecretFlag('id=a,env=UNSET_VAR', {})).toThrow(/secret a: the environment variable UNSET_VAR is not set/);
    expect(() => parseSecretFlag(`id=a,src=${join(dir, 'missing')}`)).toThrow(/secret a: cannot read .*missing: ENOENT/);
    expect(() => parseSecretFlag('src=/x')).toThrow(/id= is missing/);
  });

  it("reads build-push-action's secrets, secret-files and secret-envs", () => {
    const dir = mkdtempSync(join(tmpdir(), 'oci-build-secret-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'f'), 'from-file');
    const got = secretsFromInputs(
      { secrets: 'GIT_AUTH_TOKEN=abc=def\n"quoted=with spaces"\n', secretFiles: `npmrc=${join(dir, 'f')}`, secretEnvs: 'a=VAR_A,b=VAR_B' },
      { VAR_A: 'va', VAR_B: 'vb' },
    );
    expect(Object.fromEntries([...got].map(([k, v]) => [k, v.toString()]))).toEqual({
      GIT_AUTH_TOKEN: 'abc=def',
      quoted: 'with spaces',
      npmrc: 'from-file',
      a: 'va',
      b: 'vb',
    });
    expect(() => secretsFromInputs({ secrets: 'novalue-secret-text' })).toThrow(
      /secrets: an entry is not ID=VALUE \(the value is not shown\)/,
    );
    try {
      secretsFromInputs({ secrets: 'novalue-secret-text' });
    } catch (e) {
      expect((e as Error).message).not.toContain('novalue-secret-text');
    }
  });
});

describe('the run step key with mounts', () => {
  const step: RunStep = { kind: 'run', command: 'true', env: {}, network: true, pos: { file: 'Dockerfile', line: 1, column: 1 } };
  const key = (mounts?: unknown[]) => runStepKeyParts(step, [], 'linux/amd64', { config: {} } as never, { env: {} }, undefined, mounts);
  it('a step without mounts keys as before; mounts add their options only', () => {
    expect(key()).not.toHaveProperty('mounts');
    expect(key([])).toEqual(key());
    expect(key([{ type: 'tmpfs', target: '/t' }])).toHaveProperty('mounts', [{ type: 'tmpfs', target: '/t' }]);
  });
});
