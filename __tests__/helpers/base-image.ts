import { mkdtempSync, mkdirSync, copyFileSync, symlinkSync, writeFileSync, chmodSync, rmSync, chownSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './exec.js';

/**
 * A tiny base image made without our code: busybox-static on scratch, built into an OCI
 * layout with umoci, then pushed with skopeo (single manifest) and buildah (as an OCI
 * index and as a Docker schema 2 manifest list). Users, groups and a few directories
 * exist so owner-name resolution and parent-directory rules can be tested.
 */
export interface BaseImages {
  /** repository@tag pushed as an OCI image index (one linux/amd64 entry) */
  ociIndex: string;
  /** pushed as a Docker schema 2 manifest list */
  dockerList: string;
  /** pushed as a single OCI manifest */
  single: string;
}

export const BASE_PASSWD =
  'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n';
export const BASE_GROUP = 'root:x:0:\napp:x:1000:\nstaff:x:50:app\nnogroup:x:65534:\n';

export function makeBusyboxRootfs(dir: string): void {
  for (const d of ['bin', 'etc', 'home/app', 'root', 'tmp', 'usr/local/bin', 'opt/data']) mkdirSync(join(dir, d), { recursive: true });
  copyFileSync('/bin/busybox', join(dir, 'bin/busybox'));
  chmodSync(join(dir, 'bin/busybox'), 0o755);
  for (const applet of ['sh', 'echo', 'cat', 'ls', 'id', 'stat', 'env', 'pwd', 'test', 'sleep', 'true', 'false', 'wc', 'sha256sum']) {
    symlinkSync('busybox', join(dir, 'bin', applet));
  }
  writeFileSync(join(dir, 'etc/passwd'), BASE_PASSWD);
  writeFileSync(join(dir, 'etc/group'), BASE_GROUP);
  chmodSync(join(dir, 'tmp'), 0o1777);
  // A directory with an unusual owner and mode, and a symlinked directory, that layers on
  // top must not override by emitting their own parent-directory entries.
  chownSync(join(dir, 'opt/data'), 1000, 1000);
  chmodSync(join(dir, 'opt/data'), 0o750);
  symlinkSync('/opt/data', join(dir, 'data'));
  chownSync(join(dir, 'home/app'), 1000, 1000);
}

export async function pushBusyboxBase(registryHost: string, repo = 'base/busybox'): Promise<BaseImages> {
  const work = mkdtempSync(join(tmpdir(), 'oci-build-base-'));
  try {
    const layout = join(work, 'layout');
    await run('umoci', ['init', '--layout', layout]);
    await run('umoci', ['new', '--image', `${layout}:base`]);
    const bundle = join(work, 'bundle');
    await run('umoci', ['unpack', '--image', `${layout}:base`, bundle]);
    makeBusyboxRootfs(join(bundle, 'rootfs'));
    await run('umoci', ['repack', '--image', `${layout}:base`, bundle]);
    await run('umoci', [
      'config',
      '--image',
      `${layout}:base`,
      '--os',
      'linux',
      '--architecture',
      'amd64',
      '--config.cmd',
      '/bin/sh',
      '--config.env',
      'PATH=/usr/local/bin:/bin',
      '--config.label',
      'org.example.base=busybox',
    ]);
    const dest = (tag: string) => `docker://${registryHost}/${repo}:${tag}`;
    await run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:base`, dest('single')]);
    // An index / manifest list around that manifest, made by buildah's manifest tooling.
    const list = `localhost/oci-build-test-list-${process.pid}-${Date.now()}`;
    await run('buildah', ['manifest', 'create', list]);
    try {
      await run('buildah', ['manifest', 'add', list, `oci:${layout}:base`]);
      await run('buildah', ['manifest', 'push', '--all', '--format', 'oci', '--tls-verify=false', list, dest('oci-index')]);
      await run('buildah', ['manifest', 'push', '--all', '--format', 'v2s2', '--tls-verify=false', list, dest('docker-list')]);
    } finally {
      await run('buildah', ['manifest', 'rm', list], { allowFail: true });
    }
    return {
      ociIndex: `${registryHost}/${repo}:oci-index`,
      dockerList: `${registryHost}/${repo}:docker-list`,
      single: `${registryHost}/${repo}:single`,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * A two-platform base (linux/amd64 and linux/arm64) as an OCI index. Both carry the host's
 * busybox (only the host platform is ever run); /etc/base-arch says which entry is which.
 */
export async function pushMultiArchBase(registryHost: string, repo = 'base/multi'): Promise<string> {
  const work = mkdtempSync(join(tmpdir(), 'oci-build-mbase-'));
  const list = `localhost/oci-build-test-mlist-${process.pid}-${Date.now()}`;
  try {
    const layout = join(work, 'layout');
    await run('umoci', ['init', '--layout', layout]);
    for (const arch of ['amd64', 'arm64']) {
      await run('umoci', ['new', '--image', `${layout}:${arch}`]);
      const bundle = join(work, `bundle-${arch}`);
      await run('umoci', ['unpack', '--image', `${layout}:${arch}`, bundle]);
      makeBusyboxRootfs(join(bundle, 'rootfs'));
      writeFileSync(join(bundle, 'rootfs/etc/base-arch'), `${arch}\n`);
      await run('umoci', ['repack', '--image', `${layout}:${arch}`, bundle]);
      await run('umoci', [
        'config',
        '--image',
        `${layout}:${arch}`,
        '--os',
        'linux',
        '--architecture',
        arch,
        '--config.cmd',
        '/bin/sh',
        '--config.env',
        'PATH=/usr/local/bin:/bin',
      ]);
    }
    await run('buildah', ['manifest', 'create', list]);
    for (const arch of ['amd64', 'arm64']) {
      await run('buildah', [
        'manifest',
        'add',
        '--arch',
        arch,
        '--os',
        'linux',
        ...(arch === 'arm64' ? ['--variant', 'v8'] : []),
        list,
        `oci:${layout}:${arch}`,
      ]);
    }
    const ref = `${registryHost}/${repo}:latest`;
    await run('buildah', ['manifest', 'push', '--all', '--format', 'oci', '--tls-verify=false', list, `docker://${ref}`]);
    return ref;
  } finally {
    await run('buildah', ['manifest', 'rm', list], { allowFail: true });
    rmSync(work, { recursive: true, force: true });
  }
}
