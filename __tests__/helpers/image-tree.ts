import { createHash } from 'node:crypto';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './exec.js';

/** One path of an image's file system, as the corpus compares it (no timestamps). */
export interface TreeNode {
  type: string;
  mode: string;
  uid: number;
  gid: number;
  size?: number;
  link?: string;
  sha256?: string;
  nlink?: number;
}

export interface ImageView {
  tree: Record<string, TreeNode>;
  config: Record<string, unknown>;
}

function walk(root: string, rel: string, out: Record<string, TreeNode>): void {
  for (const name of readdirSync(join(root, rel)).sort()) {
    const r = `${rel}/${name}`;
    const p = join(root, r);
    const st = lstatSync(p);
    const base = { mode: (st.mode & 0o7777).toString(8).padStart(4, '0'), uid: st.uid, gid: st.gid };
    if (st.isSymbolicLink()) out[r] = { type: 'symlink', ...base, link: readlinkSync(p) };
    else if (st.isDirectory()) {
      out[r] = { type: 'dir', ...base };
      walk(root, r, out);
    } else if (st.isFile())
      out[r] = {
        type: 'file',
        ...base,
        size: st.size,
        sha256: createHash('sha256').update(readFileSync(p)).digest('hex'),
        ...(st.nlink > 1 ? { nlink: st.nlink } : {}),
      };
    else out[r] = { type: 'other', ...base };
  }
}

/** Pulls an image from the test registry, unpacks it (as root: owners kept) and lists its tree and config. */
export async function imageView(ref: string): Promise<ImageView> {
  const work = mkdtempSync(join(tmpdir(), 'oci-build-view-'));
  try {
    await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${ref}`, `oci:${work}/layout:img`]);
    await run('umoci', ['unpack', '--image', `${work}/layout:img`, `${work}/bundle`]);
    const tree: Record<string, TreeNode> = {};
    walk(join(work, 'bundle', 'rootfs'), '', tree);
    const raw = JSON.parse((await run('skopeo', ['inspect', '--config', '--tls-verify=false', `docker://${ref}`])).stdout) as {
      config?: Record<string, unknown>;
      author?: string;
    };
    const c = raw.config ?? {};
    const pick = [
      'Env',
      'Entrypoint',
      'Cmd',
      'User',
      'WorkingDir',
      'ExposedPorts',
      'Labels',
      'Volumes',
      'StopSignal',
      'Healthcheck',
      'OnBuild',
    ];
    const config: Record<string, unknown> = Object.fromEntries(pick.map((k) => [k, c[k] ?? null]));
    // buildah stamps its version as a label; it says nothing about the Dockerfile.
    if (config.Labels && typeof config.Labels === 'object') {
      const l = { ...(config.Labels as Record<string, string>) };
      delete l['io.buildah.version'];
      config.Labels = Object.keys(l).length ? l : null;
    }
    for (const k of ['Entrypoint', 'Cmd', 'ExposedPorts', 'Volumes', 'OnBuild'])
      if (Array.isArray(config[k]) && (config[k] as unknown[]).length === 0) config[k] = null;
    if (config.User === '') config.User = null;
    if (config.WorkingDir === '') config.WorkingDir = null;
    config.author = raw.author ?? null;
    return { tree, config };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
