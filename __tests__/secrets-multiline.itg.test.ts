import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushBusyboxBase } from './helpers/base-image.js';
import { cli, runNode, ACTION, parseGithubOutput } from './helpers/cli.js';
import { imageView } from './helpers/image-tree.js';
import { createHash } from 'node:crypto';

/**
 * A multi-line secret (a PEM private key given as a file): a RUN that prints it, line by line
 * (`cat`) and through an environment variable, shows *** for each of its lines, and so does the
 * error of a RUN that prints it and fails; a build file's Dockerfile variant gets it from the
 * CLI's --secret and from the action's secrets / secret-files inputs. Afterwards every blob the
 * registry holds (images, attestations, the registry cache records; layers decompressed), the
 * digest maps and the cache directories are searched for each line of the key and the token.
 */

let reg: TestRegistry;
let base: string;
const work = mkdtempSync(join(tmpdir(), 'oci-build-secretlines-'));
// Outside `work`: the searched directories must not hold the secrets' own files.
const secretsDir = mkdtempSync(join(tmpdir(), 'oci-build-secretfiles-'));
const PEM = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const KEY_FILE = join(secretsDir, 'key.pem');
const TOKEN = `tok-${randomBytes(12).toString('hex')}`;
/** The lines that must never be shown (the BEGIN/END lines too: they are lines of the value). */
const PEM_LINES = PEM.trim().split('\n');
/** What must never be stored: the key's material (its BEGIN/END lines are in the Dockerfile's history) and the token. */
const MATERIAL = [...PEM_LINES.filter((l) => !l.startsWith('-----')), TOKEN];

const DOCKERFILE = `ARG BASE
FROM \${BASE}
RUN --mount=type=secret,id=key,required --mount=type=secret,id=key,env=KEY \\
    grep -c . /run/secrets/key > /key-lines && cat /run/secrets/key && echo "$KEY"
RUN --mount=type=secret,id=token test ! -e /run/secrets/token || wc -c < /run/secrets/token > /token-bytes
`;

beforeAll(async () => {
  reg = await startRegistry();
  base = (await pushBusyboxBase(reg.host, 'secretlines/busybox')).single;
  writeFileSync(KEY_FILE, PEM, { mode: 0o600 });
});
afterAll(async () => {
  await reg?.stop();
  rmSync(work, { recursive: true, force: true });
  rmSync(secretsDir, { recursive: true, force: true });
});

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

function shownLines(output: string): string[] {
  // The runner takes ::add-mask:: lines itself (never shown); every other line is searched.
  return output.split('\n').filter((l) => !l.startsWith('::add-mask::') && PEM_LINES.some((p) => l.includes(p)));
}

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    const st = lstatSync(p);
    return st.isDirectory() ? files(p) : st.isFile() ? [p] : [];
  });
}

/** The pieces of the secrets found in the files (gzip ones decompressed). */
function leaks(paths: string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    const raw = readFileSync(p);
    const bytes = raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw;
    const text = bytes.toString('latin1');
    for (const m of MATERIAL) if (text.includes(m)) out.push(`${p}: ${m.slice(0, 12)}…`);
  }
  return out;
}

function context(name: string): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'Dockerfile'), DOCKERFILE);
  return dir;
}

async function keyLinesIn(ref: string): Promise<Record<string, string | undefined>> {
  const tree = (await imageView(ref)).tree;
  return { '/key-lines': tree['/key-lines']?.sha256, '/token-bytes': tree['/token-bytes']?.sha256 };
}

describe('a multi-line secret', () => {
  it('a RUN printing it shows *** for each of its lines (CLI --secret, Dockerfile)', async () => {
    const ctx = context('cli');
    const ref = `${reg.host}/secretlines/cli:v1`;
    const r = await cli(
      [
        'build',
        '-f',
        join(ctx, 'Dockerfile'),
        '--build-arg',
        `BASE=${base}`,
        '-t',
        ref,
        '--push',
        '--verbose',
        '--provenance',
        'mode=max',
      ].concat([
        '--secret',
        `id=key,src=${KEY_FILE}`,
        '--cache-dir',
        join(work, 'cache-cli'),
        '--digest-map',
        join(work, 'cli-map.json'),
        ctx,
      ]),
    );
    expect(r.code, r.stderr).toBe(0);
    expect(shownLines(r.stdout + r.stderr)).toEqual([]);
    // Both prints (cat, echo) reached the log, each line hidden.
    expect((r.stderr.match(/\*\*\*/g) ?? []).length).toBeGreaterThanOrEqual(2 * PEM_LINES.length);
    expect(await keyLinesIn(ref)).toEqual({ '/key-lines': sha(`${PEM_LINES.length}\n`), '/token-bytes': undefined });
  });

  it('the error of a RUN that prints it and fails quotes *** for its lines; nothing is pushed', async () => {
    const ctx = join(work, 'fails');
    mkdirSync(ctx, { recursive: true });
    writeFileSync(join(ctx, 'Dockerfile'), `ARG BASE\nFROM \${BASE}\nRUN --mount=type=secret,id=key cat /run/secrets/key && exit 3\n`);
    const ref = `${reg.host}/secretlines/fails:v1`;
    const r = await cli([
      'build',
      '-f',
      join(ctx, 'Dockerfile'),
      '--build-arg',
      `BASE=${base}`,
      '-t',
      ref,
      '--push',
      '--secret',
      `id=key,src=${KEY_FILE}`,
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Dockerfile:3: run: .* failed with exit code 3; last \d+ line\(s\) of its output:\n {2}\| \*\*\*\n/);
    expect(shownLines(r.stdout + r.stderr)).toEqual([]);
    expect((await fetch(`${reg.url}/v2/secretlines/fails/tags/list`)).status).toBe(404);
  });

  it("a build file's Dockerfile variant gets it from the CLI's --secret", async () => {
    const ctx = context('buildfile-cli');
    writeFileSync(
      join(ctx, 'oci-build.yml'),
      `version: 1\nvariants:\n  app:\n    dockerfile: Dockerfile\n    image: ${reg.host}/secretlines/bf-cli\n    args: { BASE: "${base}" }\n    tags: ["type=raw,value=v1"]\n`,
    );
    const r = await cli(
      [
        'build',
        '--config',
        join(ctx, 'oci-build.yml'),
        '--push',
        '--secret',
        `id=key,src=${KEY_FILE}`,
        '--secret',
        'id=token,env=TOKEN',
      ].concat(['--cache-dir', join(work, 'cache-bf'), '--digest-map', join(work, 'bf-map.json')]),
      { env: { ...process.env, TOKEN } },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(shownLines(r.stdout + r.stderr)).toEqual([]);
    expect(r.stdout + r.stderr).not.toContain(TOKEN);
    expect(await keyLinesIn(`${reg.host}/secretlines/bf-cli:v1`)).toEqual({
      '/key-lines': sha(`${PEM_LINES.length}\n`),
      '/token-bytes': sha(`${TOKEN.length}\n`),
    });
  });

  it("a build file's Dockerfile variant gets it from the action's secrets and secret-files inputs", async () => {
    const ws = context('action-ws');
    writeFileSync(
      join(ws, 'oci-build.yml'),
      `version: 1\nvariants:\n  app:\n    dockerfile: Dockerfile\n    image: ${reg.host}/secretlines/bf-action\n    args: { BASE: "${base}" }\n    tags: ["type=raw,value=v1"]\n`,
    );
    const out = join(work, 'action-output');
    writeFileSync(out, '');
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      RUNNER_TEMP: join(work, 'runner-temp'),
      GITHUB_OUTPUT: out,
      GITHUB_WORKSPACE: ws,
      GITHUB_REPOSITORY: 'Acme/Secrets',
      GITHUB_SHA: 'abc1234def5678901234567890abcdef12345678',
      GITHUB_EVENT_NAME: 'push',
      GITHUB_REF: 'refs/heads/main',
      SOURCE_DATE_EPOCH: '1700000000',
      INPUT_PUSH: 'true',
      INPUT_SUMMARY: 'false',
      // The layer cache on (its Actions cache side finds no runner service and is skipped): the registry cache record is written.
      INPUT_CACHE: 'true',
      'INPUT_ARTIFACT-NAME': '',
      'INPUT_DIGEST-MAP': join(work, 'action-map.json'),
      INPUT_SECRETS: `token=${TOKEN}`,
      'INPUT_SECRET-FILES': `key=${KEY_FILE}`,
    };
    const r = await runNode(ACTION, [], { env, cwd: ws });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(parseGithubOutput(readFileSync(out, 'utf8')).pushed).toBe('true');
    // Every line of the key and the token are masked before anything else is logged.
    for (const l of [...PEM_LINES, TOKEN]) expect(r.stdout).toContain(`::add-mask::${l}\n`);
    expect(shownLines(r.stdout + r.stderr)).toEqual([]);
    expect(`${r.stdout}\n${r.stderr}`.split('\n').filter((l) => !l.startsWith('::add-mask::') && l.includes(TOKEN))).toEqual([]);
    expect(await keyLinesIn(`${reg.host}/secretlines/bf-action:v1`)).toEqual({
      '/key-lines': sha(`${PEM_LINES.length}\n`),
      '/token-bytes': sha(`${TOKEN.length}\n`),
    });
  });

  it('is in no blob of the registry (layers, configs, history, attestations, cache records), digest map or cache directory', async () => {
    const blobs = files(join(reg.dir, 'data'));
    // The builds above wrote their registry cache records (`buildcache`) beside their images.
    for (const repo of ['cli', 'bf-cli', 'bf-action']) {
      const tags = (await (await fetch(`${reg.url}/v2/secretlines/${repo}/tags/list`)).json()) as { tags: string[] };
      expect(tags.tags).toContain('buildcache');
    }
    expect(blobs.length).toBeGreaterThan(20);
    expect(leaks(blobs)).toEqual([]);
    expect(leaks(files(work))).toEqual([]);
  });
});
