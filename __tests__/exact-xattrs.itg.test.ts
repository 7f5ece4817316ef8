import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createTarStream } from '../src/layer/tarwriter.js';
import { readTar } from '../src/layer/tarstream.js';
import type { LayerEntry } from '../src/layer/types.js';
import { extractLayer } from '../src/run/extract.js';
import { diffSnapshots, takeSnapshot, takeSnapshotAsync } from '../src/run/snapshot.js';
import { readTreeXattrs } from '../src/run/xattrs.js';
import { copyFromImage } from '../src/run/copyfrom.js';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushDebianBase } from './helpers/debian-base.js';
import { run } from './helpers/exec.js';
import { cli } from './helpers/cli.js';
import { containerdAvailable, startContainerd } from './helpers/containerd.js';

/**
 * Issue 12, extended attributes: file capabilities (security.capability), user.* and trusted.*
 * go from run: diffs, base layers and copy --from into pax SCHILY.xattr records, and back.
 */

// cap_net_raw+ep as the kernel stores it (VFS_CAP_REVISION_2, effective, permitted bit 13).
const CAP_NET_RAW = Buffer.from('0100000200200000000000000000000000000000', 'hex');
const BINARY = Buffer.from([0x00, 0x0a, 0xff, 0x3d, 0x20]); // NUL, newline, non-UTF-8, '=', space

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'exact-xattrs-'));
});
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

async function getfattr(path: string, recursive = false): Promise<string> {
  const r = await run('getfattr', [...(recursive ? ['-R'] : []), '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', path], {
    env: { ...process.env, LC_ALL: 'C' },
  });
  return r.stdout.split(work).join('<w>');
}

async function tarFile(entries: LayerEntry[], name: string): Promise<string> {
  const out = join(work, name);
  await pipeline(createTarStream(entries, new Date(0)), createWriteStream(out));
  return out;
}

const file = (path: string, content: string, xattrs?: Record<string, Buffer>): LayerEntry => ({
  path,
  type: 'file',
  mode: 0o755,
  uid: 0,
  gid: 0,
  size: Buffer.byteLength(content),
  open: () => Readable.from([Buffer.from(content)]),
  ...(xattrs ? { xattrs } : {}),
});

describe('extended attributes in layer tars', () => {
  it('are written as SCHILY.xattr records GNU tar restores, and read back byte for byte', async () => {
    const tar = await tarFile(
      [
        { path: '/bin', type: 'dir', mode: 0o755, uid: 0, gid: 0, xattrs: { 'user.dir': Buffer.from('d') } },
        file('/bin/ping', '#!/bin/sh\n', { 'security.capability': CAP_NET_RAW, 'user.bin': BINARY, 'trusted.t': Buffer.from('t') }),
        file('/bin/plain', 'x'),
      ],
      'x.tar',
    );
    const dest = join(work, 'gnu');
    mkdirSync(dest);
    await run('tar', ['--xattrs', '--xattrs-include=*', '-xpf', tar, '-C', dest]);
    expect(await getfattr(join(dest, 'bin/ping'))).toBe(
      [
        '# file: <w>/gnu/bin/ping',
        `security.capability=0x${CAP_NET_RAW.toString('hex')}`,
        'trusted.t=0x74',
        'user.bin=0x000aff3d20',
        '',
        '',
      ].join('\n'),
    );
    expect(await getfattr(join(dest, 'bin'))).toContain('user.dir=0x64');
    expect((await run('getcap', [join(dest, 'bin/ping')])).stdout).toMatch(/cap_net_raw[=+]ep/);
    const seen: Record<string, Record<string, string> | undefined> = {};
    for await (const { header } of readTar(createReadStream(tar))) {
      seen[header.name] = header.xattrs && Object.fromEntries(Object.entries(header.xattrs).map(([k, v]) => [k, v.toString('hex')]));
    }
    expect(seen['bin/ping']).toEqual({ 'security.capability': CAP_NET_RAW.toString('hex'), 'trusted.t': '74', 'user.bin': '000aff3d20' });
    expect(seen['bin/plain']).toBeUndefined();
  });

  it('of a GNU tar layer are set on the extracted rootfs, after chown (which clears capabilities)', async () => {
    const src = join(work, 'src');
    mkdirSync(join(src, 'usr/bin'), { recursive: true });
    writeFileSync(join(src, 'usr/bin/ping'), 'ping');
    await run('chown', ['1000:1000', join(src, 'usr/bin/ping')]);
    await run('setcap', ['cap_net_raw+ep', join(src, 'usr/bin/ping')]);
    await run('setfattr', ['-n', 'user.note', '-v', 'hello', join(src, 'usr/bin')]);
    const tar = join(work, 'gnu.tar');
    await run('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-cf', tar, '-C', src, 'usr']);
    const root = join(work, 'root');
    mkdirSync(root);
    await extractLayer(root, createReadStream(tar), { label: 'base layer 1 of 1' });
    expect((await run('getcap', [join(root, 'usr/bin/ping')])).stdout).toMatch(/cap_net_raw[=+]ep/);
    expect(await getfattr(join(root, 'usr/bin'))).toContain('user.note=0x68656c6c6f');
  });

  it('a run: diff sees a change of only an attribute (here on a directory) and carries it', async () => {
    const root = join(work, 'snap');
    mkdirSync(join(root, 'etc/d'), { recursive: true });
    writeFileSync(join(root, 'etc/f'), 'f');
    const before = takeSnapshot(root);
    await run('setfattr', ['-n', 'user.only', '-v', '0x01', join(root, 'etc/d')]);
    await run('setcap', ['cap_net_raw+ep', join(root, 'etc/f')]);
    const { entries } = diffSnapshots(root, before, takeSnapshot(root));
    // run: steps take it with getfattr running beside the walk: the same snapshot.
    const async = await takeSnapshotAsync(root);
    expect(async).toEqual(takeSnapshot(root));
    expect(async.get('/etc/d')!.xattrs).toEqual({ 'user.only': Buffer.from([1]) });
    const byPath = Object.fromEntries(entries.map((e) => [e.path, e]));
    expect(Object.keys(byPath).sort()).toEqual(['/etc/d', '/etc/f']);
    expect(byPath['/etc/d']!.xattrs).toEqual({ 'user.only': Buffer.from([1]) });
    expect(byPath['/etc/f']!.xattrs?.['security.capability']?.toString('hex')).toBe(CAP_NET_RAW.toString('hex'));
  });
});

describe('copy --from', () => {
  it('keeps the attributes of files and directories, for plain paths and globs', async () => {
    const root = join(work, 'stage');
    mkdirSync(join(root, 'usr/bin'), { recursive: true });
    for (const f of ['ping', 'arping', 'plain']) writeFileSync(join(root, 'usr/bin', f), f);
    await run('setcap', ['cap_net_raw+ep', join(root, 'usr/bin/ping')]);
    await run('setfattr', ['-n', 'user.a', '-v', 'x', join(root, 'usr/bin/arping')]);
    await run('setfattr', ['-n', 'trusted.dir', '-v', 'y', join(root, 'usr/bin')]);
    const got: LayerEntry[] = [];
    const step = (pattern: string, to: string) => ({
      kind: 'copy' as const,
      from: 'stage',
      to,
      pos: { file: 'oci-build.yml', line: 3, column: 1 },
      sources: [{ pattern, matches: [], isGlob: /[*?[]/.test(pattern) }],
    });
    const opts = {
      root,
      exists: () => false,
      add: (e: LayerEntry) => {
        got.push(e);
      },
      fail: (m: string): never => {
        throw new Error(m);
      },
    };
    copyFromImage(step('/usr/bin/ping', '/opt/ping'), opts);
    copyFromImage(step('/usr/bin/*ping', '/g/'), opts);
    copyFromImage(step('/usr/bin', '/d'), opts);
    const hex = (e: LayerEntry | undefined) =>
      e?.xattrs && Object.fromEntries(Object.entries(e.xattrs).map(([k, v]) => [k, v.toString('hex')]));
    const at = (p: string) => hex(got.find((e) => e.path === p));
    expect(at('/opt/ping')).toEqual({ 'security.capability': CAP_NET_RAW.toString('hex') });
    expect(at('/g/ping')).toEqual({ 'security.capability': CAP_NET_RAW.toString('hex') });
    expect(at('/g/arping')).toEqual({ 'user.a': '78' });
    expect(at('/d')).toEqual({ 'trusted.dir': '79' });
    expect(at('/d/plain')).toBeUndefined();
  });
});

describe('without the attr tools', () => {
  it('attributes are left out with one warning naming the package, and the build goes on', async () => {
    const dir = join(work, 'notools');
    mkdirSync(dir);
    writeFileSync(join(dir, 'f'), 'f');
    await run('setfattr', ['-n', 'user.x', '-v', '1', join(dir, 'f')]);
    const warnings: string[] = [];
    const onWarning = (w: Error) => {
      warnings.push(w.message);
    };
    process.on('warning', onWarning);
    const path = process.env.PATH;
    process.env.PATH = join(work, 'no-such-bin');
    try {
      expect(readTreeXattrs(dir).size).toBe(0);
    } finally {
      process.env.PATH = path;
    }
    await new Promise((r) => setImmediate(r));
    process.off('warning', onWarning);
    expect(warnings.join('\n')).toMatch(/getfattr is not installed.*install the attr package/);
    expect(readTreeXattrs(dir).get(join(dir, 'f'))).toEqual({ 'user.x': Buffer.from('1') });
  });
});

describe('ping with cap_net_raw on Debian, as buildah builds it', () => {
  let reg: TestRegistry;
  let ctx: string;
  const refs: string[] = [];
  const MIRRORED = process.env.OCI_BUILD_TEST_OFFLINE !== '1';

  beforeAll(async () => {
    reg = await startRegistry();
    await pushDebianBase(reg.host);
    ctx = join(work, 'ctx');
    mkdirSync(ctx);
  }, 900_000);
  afterAll(async () => {
    for (const r of refs) await run('podman', ['rmi', '-f', r], { allowFail: true });
    await reg?.stop();
  });

  const install =
    'apt-get update && apt-get install -y --no-install-recommends iputils-ping && rm -rf /var/lib/apt/lists/* && useradd -u 1000 -m pinger';
  // Not `--user 1000`: podman hands capabilities added with --cap-add to a non-root user
  // directly, so ping would work without its file capability. setpriv drops root's instead
  // (NET_RAW stays in the bounding set), so only the file's cap_net_raw+ep can give it back.
  const pingAs = async (ref: string, bin = 'ping') =>
    run(
      'podman',
      [
        'run',
        '--rm',
        '--tls-verify=false',
        '--network',
        'none',
        '--cap-add',
        'NET_RAW',
        '--user',
        '0',
        ref,
        'setpriv',
        '--reuid',
        '1000',
        '--regid',
        '1000',
        '--clear-groups',
        bin,
        '-c',
        '1',
        '-W',
        '2',
        '127.0.0.1',
      ],
      { allowFail: true },
    );

  /** Mode, owner, size, content hash and attributes of a file in an image (podman image mount; pingAs pulled it). */
  async function fileFacts(ref: string, path: string): Promise<string> {
    const mnt = (await run('podman', ['image', 'mount', ref])).stdout.trim();
    try {
      const st = (await run('stat', ['-c', '%a %u:%g %s', join(mnt, path)])).stdout.trim();
      const sum = (await run('sha256sum', [join(mnt, path)])).stdout.split(' ')[0];
      const x = (
        await run('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', join(mnt, path)], { env: { ...process.env, LC_ALL: 'C' } })
      ).stdout
        .split('\n')
        .filter((l) => l.includes('='))
        .join('\n');
      return `${st} ${sum}\n${x}`;
    } finally {
      await run('podman', ['image', 'unmount', ref], { allowFail: true });
    }
  }

  it.runIf(MIRRORED)(
    "our image of apt-get install iputils-ping lets a non-root user ping, and /usr/bin/ping equals buildah's",
    async () => {
      writeFileSync(
        join(ctx, 'oci-build.yml'),
        [
          'version: 1',
          'variants:',
          '  pinger:',
          `    base: ${reg.host}/base/debian:bookworm`,
          `    image: ${reg.host}/exact/pinger`,
          '    steps:',
          `      - run: ${install}`,
          '        env: { DEBIAN_FRONTEND: noninteractive }',
          '  copied:',
          `    base: ${reg.host}/base/debian:bookworm`,
          `    image: ${reg.host}/exact/copied`,
          '    steps:',
          '      - run: useradd -u 1000 -m pinger',
          '      - copy: /usr/bin/ping',
          '        from: pinger',
          '        to: /usr/local/bin/ping',
        ].join('\n'),
      );
      const r = await cli(['build', '--config', join(ctx, 'oci-build.yml'), '--push', '--tag', 'v1', '--cache-dir', join(ctx, 'cache')], {
        env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000' },
      });
      expect(r.code, r.stderr.slice(-4000)).toBe(0);

      writeFileSync(
        join(ctx, 'Containerfile'),
        `FROM ${reg.host}/base/debian:bookworm\nENV DEBIAN_FRONTEND=noninteractive\nRUN ${install}\n`,
      );
      const theirs = `localhost/exact-buildah-pinger:${process.pid}`;
      refs.push(theirs, `${reg.host}/exact/pinger:v1`, `${reg.host}/exact/copied:v1`);
      await run('buildah', ['bud', '--tls-verify=false', '--network', 'host', '-f', join(ctx, 'Containerfile'), '-t', theirs, ctx], {
        timeoutMs: 900_000,
      });

      const buildahPing = await pingAs(theirs);
      expect(buildahPing.code, buildahPing.stderr).toBe(0);
      for (const [ref, bin] of [
        [`${reg.host}/exact/pinger:v1`, 'ping'],
        [`${reg.host}/exact/copied:v1`, '/usr/local/bin/ping'],
      ] as const) {
        const ours = await pingAs(ref, bin);
        expect(ours.code, `${ref}: ${ours.stdout}${ours.stderr}`).toBe(0);
        expect(ours.stdout).toMatch(/1 packets transmitted, 1 received/);
      }
      const want = await fileFacts(theirs, 'usr/bin/ping');
      expect(want).toContain('security.capability=0x');
      expect(await fileFacts(`${reg.host}/exact/pinger:v1`, 'usr/bin/ping')).toBe(want);
      expect(await fileFacts(`${reg.host}/exact/copied:v1`, 'usr/local/bin/ping')).toBe(want);

      // Our image as a base: its layers are extracted into a rootfs, where `cp -a` (which keeps
      // attributes) makes a second ping; that one can only have the capability if extraction set
      // it. (ping itself cannot use it inside a run: step: steps run with no_new_privs.)
      writeFileSync(
        join(ctx, 'rebase.yml'),
        [
          'version: 1',
          'variants:',
          '  rebased:',
          `    base: ${reg.host}/exact/pinger:v1`,
          `    image: ${reg.host}/exact/rebased`,
          '    steps:',
          '      - run: cp -a /usr/bin/ping /usr/bin/ping-copy',
        ].join('\n'),
      );
      const r2 = await cli(['build', '--config', join(ctx, 'rebase.yml'), '--push', '--tag', 'v1', '--cache-dir', join(ctx, 'cache2')]);
      expect(r2.code, r2.stderr.slice(-4000)).toBe(0);
      refs.push(`${reg.host}/exact/rebased:v1`);
      const copied = await pingAs(`${reg.host}/exact/rebased:v1`, 'ping-copy');
      expect(copied.code, copied.stderr).toBe(0);
      expect(await fileFacts(`${reg.host}/exact/rebased:v1`, 'usr/bin/ping-copy')).toBe(want);
    },
    1_800_000,
  );

  it.runIf(MIRRORED && containerdAvailable())(
    'containerd unpacks the capability too: a non-root user pings under ctr',
    async () => {
      const c = await startContainerd();
      try {
        for (const ref of [`${reg.host}/exact/pinger:v1`, `${reg.host}/exact/copied:v1`]) {
          await c.ctr(['images', 'pull', '--plain-http', '--snapshotter', 'native', ref], { timeoutMs: 300_000 });
          const bin = ref.includes('copied') ? '/usr/local/bin/ping' : '/usr/bin/ping';
          // --net-host: loopback is up, and the host's ping_group_range (1 0) allows no ICMP
          // datagram sockets, so ping needs its file capability once setpriv drops root's.
          const r = await c.ctr(
            [
              'run',
              '--rm',
              '--snapshotter',
              'native',
              '--net-host',
              ref,
              `exact-${process.pid}`,
              'setpriv',
              '--reuid',
              '1000',
              '--regid',
              '1000',
              '--clear-groups',
              bin,
              '-c',
              '1',
              '-W',
              '2',
              '127.0.0.1',
            ],
            { allowFail: true, timeoutMs: 120_000 },
          );
          expect(r.code, `${ref}: ${r.stdout}${r.stderr}`).toBe(0);
          expect(r.stdout).toMatch(/1 packets transmitted, 1 received/);
        }
      } finally {
        await c.stop();
      }
    },
    900_000,
  );
});
