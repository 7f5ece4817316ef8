import { createHash } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { run } from './exec.js';

/**
 * A real Debian 12 base for run: tests, made without Docker: `debootstrap --variant=minbase
 * bookworm` once per machine (about 90 s), cached as a rootfs tarball, then pushed to the test
 * registry as a one-layer OCI image (gzip level 1, hand-made OCI layout, skopeo copy).
 *
 * The cache is /var/cache/oci-build-tests (OCI_BUILD_TEST_CACHE overrides); delete
 * debian-bookworm.tar there to rebuild it. Concurrent test files wait on a lock directory.
 */

export const TEST_CACHE = process.env.OCI_BUILD_TEST_CACHE ?? '/var/cache/oci-build-tests';
const TARBALL = join(TEST_CACHE, 'debian-bookworm.tar');
const LOCK = join(TEST_CACHE, 'debian-bookworm.lock');

/** The Debian mirror this machine's apt uses (deb822 .sources or one-line sources.list). */
export function debianMirror(): string {
  const files = ['/etc/apt/sources.list'];
  try {
    for (const f of readdirSync('/etc/apt/sources.list.d')) files.push(join('/etc/apt/sources.list.d', f));
  } catch {
    /* none */
  }
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    if (f.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (k: string) => new RegExp(`^${k}:\\s*(.+)$`, 'mi').exec(stanza)?.[1]?.trim() ?? '';
        const suites = field('Suites').split(/\s+/);
        if (!/\bdeb\b/.test(field('Types')) || !suites.includes('bookworm')) continue;
        const uri = field('URIs')
          .split(/\s+/)
          .find((u) => /^https?:\/\//.test(u) && !/security/.test(u));
        if (uri) return uri;
      }
    } else {
      for (const line of text.split('\n')) {
        const m = /^deb\s+(?:\[[^\]]*\]\s+)?(https?:\/\/\S+)\s+bookworm\s/.exec(line.trim());
        if (m && !/security/.test(m[1]!)) return m[1]!;
      }
    }
  }
  return 'http://deb.debian.org/debian';
}

async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  mkdirSync(TEST_CACHE, { recursive: true });
  const deadline = Date.now() + 20 * 60_000;
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch {
      // A lock older than 20 minutes is left over from a killed run.
      try {
        if (Date.now() - statSync(LOCK).mtimeMs > 20 * 60_000) {
          rmdirSync(LOCK);
          continue;
        }
      } catch {
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${LOCK}`);
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
  try {
    return await fn();
  } finally {
    rmdirSync(LOCK);
  }
}

/** Path of the cached bookworm minbase rootfs tarball, made with debootstrap when missing. */
export async function debianRootfsTar(): Promise<string> {
  if (existsSync(TARBALL)) return TARBALL;
  return withLock(async () => {
    if (existsSync(TARBALL)) return TARBALL;
    const work = mkdtempSync(join(TEST_CACHE, 'debootstrap-'));
    try {
      const root = join(work, 'root');
      await run('debootstrap', ['--variant=minbase', 'bookworm', root, debianMirror()], { timeoutMs: 15 * 60_000 });
      // What a container base image does not carry: downloaded lists and packages, logs, the
      // host's resolver and name.
      await run('find', [join(root, 'var/lib/apt/lists'), join(root, 'var/cache/apt'), join(root, 'var/log'), '-type', 'f', '-delete']);
      writeFileSync(join(root, 'etc/resolv.conf'), '');
      writeFileSync(join(root, 'etc/hostname'), 'localhost\n');
      await run('tar', ['--numeric-owner', '--sort=name', '-C', root, '-cf', join(work, 'rootfs.tar'), '.'], { timeoutMs: 10 * 60_000 });
      renameSync(join(work, 'rootfs.tar'), TARBALL);
      return TARBALL;
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
}

class Hasher extends Transform {
  readonly hash = createHash('sha256');
  size = 0;
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: (e?: Error | null, d?: Buffer) => void): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }
}

/** Pushes the Debian base to registryHost/repoTag (made and cached on first use); returns the reference. */
export async function pushDebianBase(registryHost: string, repoTag = 'base/debian:bookworm'): Promise<string> {
  const tarball = await debianRootfsTar();
  const dir = mkdtempSync(join(tmpdir(), 'oci-build-debian-'));
  try {
    const blobs = join(dir, 'blobs', 'sha256');
    mkdirSync(blobs, { recursive: true });
    const raw = new Hasher();
    const gz = new Hasher();
    await pipeline(createReadStream(tarball), raw, createGzip({ level: 1 }), gz, createWriteStream(join(dir, 'layer.tmp')));
    const layerHex = gz.hash.digest('hex');
    renameSync(join(dir, 'layer.tmp'), join(blobs, layerHex));
    const put = (s: string) => {
      const h = createHash('sha256').update(s).digest('hex');
      writeFileSync(join(blobs, h), s);
      return `sha256:${h}`;
    };
    const config = JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['bash'] },
      rootfs: { type: 'layers', diff_ids: [`sha256:${raw.hash.digest('hex')}`] },
    });
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: put(config), size: Buffer.byteLength(config) },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${layerHex}`, size: gz.size }],
    });
    const md = put(manifest);
    writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    writeFileSync(
      join(dir, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: md,
            size: Buffer.byteLength(manifest),
            annotations: { 'org.opencontainers.image.ref.name': 'debian' },
          },
        ],
      }),
    );
    await run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${dir}:debian`, `docker://${registryHost}/${repoTag}`]);
    return `${registryHost}/${repoTag}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
