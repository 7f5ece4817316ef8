import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Header } from 'tar';
import { makeBusyboxRootfs } from './base-image.js';
import { run } from './exec.js';

/**
 * Layers written byte by byte, without any of our code and without any sanitizing: names with
 * `..`, absolute names, symlinks and hardlinks pointing anywhere, odd whiteouts. Used to check
 * that extraction for run: steps cannot be tricked into writing outside its root.
 */

export interface RawEntry {
  name: string;
  type?: 'File' | 'Directory' | 'SymbolicLink' | 'Link';
  linkpath?: string;
  content?: string;
  mode?: number;
  uid?: number;
  gid?: number;
}

export function rawTar(entries: RawEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const type = e.type ?? 'File';
    const body = Buffer.from(type === 'File' ? (e.content ?? '') : '');
    const h = new Header({
      path: e.name,
      type,
      mode: e.mode ?? (type === 'Directory' ? 0o755 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      size: body.length,
      mtime: new Date(0),
      uname: '',
      gname: '',
      ...(e.linkpath !== undefined ? { linkpath: e.linkpath } : {}),
    });
    h.encode();
    blocks.push(h.block!, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** The busybox rootfs of base-image.ts as one plain tar (made with GNU tar). */
export async function busyboxTar(): Promise<Buffer> {
  const dir = mkdtempSync(join(tmpdir(), 'oci-build-bbtar-'));
  try {
    makeBusyboxRootfs(join(dir, 'root'));
    await run('tar', ['--numeric-owner', '--sort=name', '--mtime=@0', '-C', join(dir, 'root'), '-cf', join(dir, 'l.tar'), '.']);
    return readFileSync(join(dir, 'l.tar'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Pushes an image made of these uncompressed layer tars (gzipped here) as registry/repo:tag. */
export async function pushRawImage(
  registryHost: string,
  repoTag: string,
  tars: Buffer[],
  env = ['PATH=/usr/local/bin:/usr/bin:/bin'],
): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'oci-build-raw-'));
  try {
    mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
    const put = (b: Buffer | string) => {
      const d = sha(b);
      writeFileSync(join(dir, 'blobs', 'sha256', d.slice(7)), b);
      return d;
    };
    const layers = tars.map((t) => {
      const gz = gzipSync(t);
      return { digest: put(gz), size: gz.length, diffId: sha(t) };
    });
    const config = JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Env: env, Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    });
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: put(config), size: Buffer.byteLength(config) },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })),
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
            annotations: { 'org.opencontainers.image.ref.name': 'img' },
          },
        ],
      }),
    );
    await run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${dir}:img`, `docker://${registryHost}/${repoTag}`]);
    return `${registryHost}/${repoTag}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
