import { imageView, type ImageView } from './image-tree.js';
import { run } from './exec.js';

/**
 * Builds `target` of `dockerfile` with `buildah bud` in `context`, pushes it to the test registry
 * as `ref`, and lists it as image-tree.ts does, less what buildah's RUN leaves behind (empty
 * mount points and /etc/hostname, which BuildKit does not).
 */
export async function buildahView(context: string, dockerfile: string, target: string, ref: string): Promise<ImageView> {
  const local = `localhost/oci-build-buildah-view-${target}:${process.pid}`;
  await run(
    'buildah',
    ['bud', '--quiet', '--tls-verify=false', '--format', 'oci', '--target', target, '-f', dockerfile, '-t', local, '.'],
    {
      cwd: context,
      timeoutMs: 240_000,
    },
  );
  try {
    await run('buildah', ['push', '--quiet', '--tls-verify=false', local, `docker://${ref}`]);
  } finally {
    await run('buildah', ['rmi', '-f', local], { allowFail: true });
  }
  const view = await imageView(ref);
  for (const p of ['/dev', '/proc', '/sys', '/run', '/etc/hostname', '/etc/hosts', '/etc/resolv.conf']) {
    const n = view.tree[p];
    const empty = n?.type === 'dir' ? !Object.keys(view.tree).some((k) => k.startsWith(`${p}/`)) : n?.size === 0;
    if (n && empty) delete view.tree[p];
  }
  return view;
}
