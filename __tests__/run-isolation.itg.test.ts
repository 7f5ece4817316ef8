import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushDebianBase } from './helpers/debian-base.js';
import { run } from './helpers/exec.js';
import { cli } from './helpers/cli.js';

/**
 * Issue 12, security of run: steps, under both isolations (runc, and the chroot fallback forced
 * with --isolation chroot): from inside a step on a real Debian base, the classic escapes and
 * host-changing writes are tried and their exit codes recorded in the image; the host's
 * sentinel files and kernel settings are checked afterwards. The step's capabilities,
 * no_new_privs and seccomp mode come from its own /proc/self/status.
 */

let reg: TestRegistry;
let base: string;
let ctx: string;
const id = randomBytes(4).toString('hex');
const sentinelDir = `/tmp/oci-build-isolation-sentinel-${id}`;
const sentinel = `${sentinelDir}/sentinel.txt`;
const SENTINEL_TEXT = 'host file, never to be written by a run: step\n';
/** Docker's default capability set as a mask (CHOWN … SETFCAP: 14 capabilities). */
const DOCKER_CAPS = '00000000a80425fb';

/** Major and minor of the host's root file system's device, for a mknod attempt. */
function rootDevice(): [number, number] {
  const dev = statSync('/').dev;
  return [(dev >> 8) & 0xfff, (dev & 0xff) | ((dev >> 12) & 0xfff00)];
}

function rootScript(): string {
  const [maj, min] = rootDevice();
  return `set +e
R=/results.txt
grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status | tr -d '\\t' | sed 's/:/=/' > $R
v=$(cat /proc/sys/vm/overcommit_ratio); (echo "$v" > /proc/sys/vm/overcommit_ratio) 2>/dev/null; echo "procsys=$?" >> $R
(echo 0 > /proc/sysrq-trigger) 2>/dev/null; echo "sysrq=$?" >> $R
echo "kcore=$(head -c 16 /proc/kcore 2>/dev/null | wc -c)" >> $R
mkdir -p /mnt/t; mount -t tmpfs none /mnt/t 2>/dev/null; echo "mount=$?" >> $R
unshare -Urm true 2>/dev/null; echo "userns=$?" >> $R
(mknod /tmp/disk b ${maj} ${min} && head -c 512 /tmp/disk > /dev/null) 2>/dev/null; echo "mknod=$?" >> $R; rm -f /tmp/disk
perl -e 'use Socket; socket(my $s, PF_INET, SOCK_RAW, 1) or exit 1; exit 0'; echo "rawroot=$?" >> $R
cat /proc/1/root${sentinel} >/dev/null 2>&1; echo "proc1read=$?" >> $R
(echo pwned > /proc/1/root${sentinelDir}/new) 2>/dev/null; echo "proc1write=$?" >> $R
perl -e 'mkdir "/tmp/x"; chroot "/tmp/x" or exit 5; chdir ".." for 1..64; chroot "." or exit 6; -e $ARGV[0] or exit 3; open(my $f, ">>", $ARGV[0]) or exit 4; print $f "pwned\\n"; exit 0' ${sentinel}; echo "escape=$?" >> $R
umount /mnt/t 2>/dev/null; rmdir /tmp/x /mnt/t 2>/dev/null; true
`;
}

const NOBODY_SCRIPT = `set +e
R=/tmp/results-nobody.txt
grep -E '^(CapEff|CapBnd|NoNewPrivs):' /proc/self/status | tr -d '\\t' | sed 's/:/=/' > $R
perl -e 'use Socket; socket(my $s, PF_INET, SOCK_RAW, 1) or exit 1; exit 0'; echo "rawsock=$?" >> $R
`;

/** Files of the image's layers (the later layer wins), read from an OCI layout with tar. */
async function imageFile(layout: string, path: string): Promise<string> {
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const blob = (d: string) => join(layout, 'blobs/sha256', d.slice(7));
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0]!.digest), 'utf8')) as { layers: { digest: string }[] };
  for (const l of [...manifest.layers].reverse()) {
    const r = await run('tar', ['-xzOf', blob(l.digest), path.slice(1)], { allowFail: true });
    if (r.code === 0) return r.stdout;
  }
  throw new Error(`${path} is in no layer`);
}

function parse(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).trim()]),
  );
}

beforeAll(async () => {
  reg = await startRegistry();
  base = await pushDebianBase(reg.host);
  ctx = mkdtempSync(join(tmpdir(), 'oci-build-isolation-'));
  mkdirSync(sentinelDir, { recursive: true });
  writeFileSync(sentinel, SENTINEL_TEXT);
}, 20 * 60_000);

afterAll(async () => {
  await reg?.stop();
  if (ctx) rmSync(ctx, { recursive: true, force: true });
  rmSync(sentinelDir, { recursive: true, force: true });
});

describe.each(['runc', 'chroot'] as const)('a run: step under --isolation %s', (isolation) => {
  let root: Record<string, string>;
  let nobody: Record<string, string>;
  const overcommit = readFileSync('/proc/sys/vm/overcommit_ratio', 'utf8');

  beforeAll(async () => {
    const dir = join(ctx, isolation);
    mkdirSync(dir);
    writeFileSync(
      join(dir, 'oci-build.yml'),
      `version: 1
variants:
  probe:
    base: ${base}
    steps:
      - run: ${JSON.stringify(rootScript())}
      - run: ${JSON.stringify(NOBODY_SCRIPT)}
        user: nobody
`,
    );
    const r = await cli([
      'build',
      '--config',
      join(dir, 'oci-build.yml'),
      '--isolation',
      isolation,
      '--no-cache',
      '--cache-dir',
      join(ctx, 'cache'),
      '--output',
      `oci:${join(dir, 'layout')}`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(isolation === 'runc' ? 'run: steps run in' : 'run: steps run in the chroot sandbox (isolation chroot)');
    root = parse(await imageFile(join(dir, 'layout'), '/results.txt'));
    nobody = parse(await imageFile(join(dir, 'layout'), '/tmp/results-nobody.txt'));
  }, 10 * 60_000);

  it("has Docker's default capabilities, as root (effective, bounding) and as another user (bounding only)", () => {
    expect(root.CapEff).toBe(DOCKER_CAPS);
    expect(root.CapPrm).toBe(DOCKER_CAPS);
    expect(root.CapBnd).toBe(DOCKER_CAPS);
    expect(nobody.CapEff).toBe('0000000000000000');
    expect(nobody.CapBnd).toBe(DOCKER_CAPS);
  });

  it('runs with no_new_privs (and, under runc, a seccomp filter)', () => {
    expect(root.NoNewPrivs).toBe('1');
    expect(nobody.NoNewPrivs).toBe('1');
    if (isolation === 'runc') expect(root.Seccomp).toBe('2');
  });

  it('cannot change kernel settings: /proc/sys and /proc/sysrq-trigger are read-only, /proc/kcore is masked', () => {
    expect(root.procsys).not.toBe('0');
    expect(root.sysrq).not.toBe('0');
    expect(root.kcore).toBe('0');
    expect(readFileSync('/proc/sys/vm/overcommit_ratio', 'utf8')).toBe(overcommit);
  });

  it('cannot mount, make a user namespace, or use a device node it made for the host disk', () => {
    expect(root.mount).not.toBe('0');
    expect(root.userns).not.toBe('0');
    expect(root.mknod).not.toBe('0');
  });

  it('opens raw sockets as root (CAP_NET_RAW, as Docker) but not as another user', () => {
    expect(root.rawroot).toBe('0');
    expect(nobody.rawsock).not.toBe('0');
  });

  it("cannot reach the host's files: not through /proc/1/root, not with the double-chroot escape", () => {
    expect(root.proc1read).not.toBe('0');
    expect(root.proc1write).not.toBe('0');
    // 3: after chroot, 64 × chdir .. and chroot ., the host's sentinel is not there to be seen.
    expect(root.escape).toBe('3');
    expect(readFileSync(sentinel, 'utf8')).toBe(SENTINEL_TEXT);
    expect(readdirSync(sentinelDir)).toEqual(['sentinel.txt']);
  });
});
