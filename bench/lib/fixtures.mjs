// Benchmark fixtures under .bench/ (gitignored), made once and reused:
//  - a debootstrapped Debian bookworm (minbase) rootfs tarball, and an OCI layout of it (umoci);
//  - the build context of the three-variant matrix (two binaries, a scenarios directory,
//    our build file and the equivalent Containerfile);
//  - the big tree (1 GiB, or 64 MiB with --quick) for the big-layer scenario.
// Everything is deterministic from fixed seeds; stamps record what a directory holds.
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { binaryLike, Rand, textPool } from './gen.mjs';
import { log, run } from './util.mjs';

export const SUITE = 'bookworm';

/** The Debian mirror this machine's apt uses (deb822 .sources or one-line sources.list). */
export function debianMirror() {
  const files = [];
  if (existsSync('/etc/apt/sources.list')) files.push('/etc/apt/sources.list');
  if (existsSync('/etc/apt/sources.list.d')) {
    for (const f of readdirSync('/etc/apt/sources.list.d').sort()) files.push(join('/etc/apt/sources.list.d', f));
  }
  for (const f of files) {
    let text;
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    if (f.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const uris = /^URIs:\s*(.+)$/m.exec(stanza)?.[1]?.trim().split(/\s+/) ?? [];
        const suites = /^Suites:\s*(.+)$/m.exec(stanza)?.[1]?.trim().split(/\s+/) ?? [];
        if (suites.includes(SUITE)) {
          const u = uris.find((x) => /\/debian\/?$/.test(x));
          if (u) return u.replace(/\/$/, '');
        }
      }
    } else {
      for (const line of text.split('\n')) {
        const m = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
        if (m && m[2] === SUITE && /\/debian\/?$/.test(m[1])) return m[1].replace(/\/$/, '');
      }
    }
  }
  return 'http://deb.debian.org/debian';
}

/** .bench/debian-bookworm-minbase.tar: made with debootstrap the first time (about 90 s). */
export async function debianRootfsTar(benchDir) {
  const tarFile = join(benchDir, `debian-${SUITE}-minbase.tar`);
  if (existsSync(tarFile)) return tarFile;
  const mirror = debianMirror();
  const dir = join(benchDir, 'debootstrap');
  rmSync(dir, { recursive: true, force: true });
  log(`fixtures: debootstrap --variant=minbase ${SUITE} from ${mirror} (once; about 90 s)`);
  await run('debootstrap', ['--variant=minbase', SUITE, dir, mirror], { log: join(benchDir, 'logs', 'debootstrap.log') });
  // apt's package lists and caches are not part of a base image.
  for (const p of ['var/cache/apt/archives', 'var/lib/apt/lists']) {
    await run('find', [join(dir, p), '-mindepth', '1', '-maxdepth', '1', '-type', 'f', '-delete'], { allowFail: true });
  }
  const tmp = `${tarFile}.tmp`;
  await run('tar', ['--numeric-owner', '--xattrs', '-C', dir, '-cf', tmp, '.']);
  await run('mv', [tmp, tarFile]);
  rmSync(dir, { recursive: true, force: true });
  return tarFile;
}

/**
 * .bench/base-layout: an OCI image layout (tag "base") of the Debian rootfs, one layer,
 * linux/amd64, made with umoci as the test helper does. Pushed by skopeo to each registry.
 */
export async function baseLayout(benchDir) {
  const layout = join(benchDir, 'base-layout');
  const stamp = join(layout, '.bench-stamp');
  if (existsSync(stamp)) return layout;
  const tarFile = await debianRootfsTar(benchDir);
  log('fixtures: umoci base image from the Debian rootfs');
  rmSync(layout, { recursive: true, force: true });
  const bundle = join(benchDir, 'base-bundle');
  rmSync(bundle, { recursive: true, force: true });
  await run('umoci', ['init', '--layout', layout]);
  await run('umoci', ['new', '--image', `${layout}:base`]);
  await run('umoci', ['unpack', '--image', `${layout}:base`, bundle]);
  await run('tar', ['--numeric-owner', '--same-permissions', '--xattrs', '-C', join(bundle, 'rootfs'), '-xf', tarFile]);
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
    '/bin/bash',
    '--config.env',
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  ]);
  await run('umoci', ['gc', '--layout', layout]);
  rmSync(bundle, { recursive: true, force: true });
  writeFileSync(stamp, `${SUITE} minbase\n`);
  return layout;
}

/** Writes a file only when its content differs, so unchanged fixtures keep their mtimes. */
function writeIfChanged(file, data, mode) {
  let same = false;
  try {
    same = readFileSync(file).equals(data);
  } catch {
    /* missing */
  }
  if (!same) writeFileSync(file, data);
  chmodSync(file, mode);
}

export const SCENARIO_FILES = 300;
export const APP_SIZE = 32 << 20;
export const TOOL_SIZE = 12 << 20;

/** The file S3 edits (restored by makeContext). */
export const EDITED_SCENARIO = 'scenarios/s02/case-0042.yml';

/**
 * .bench/ctx: the matrix's build context. Regenerated every run (cheap; only differing files
 * are rewritten), which also undoes S3's edit.
 */
export function makeContext(benchDir) {
  const ctx = join(benchDir, 'ctx');
  mkdirSync(join(ctx, 'bin'), { recursive: true });
  writeIfChanged(join(ctx, 'bin', 'app'), binaryLike('app', APP_SIZE), 0o755);
  writeIfChanged(join(ctx, 'bin', 'tool'), binaryLike('tool', TOOL_SIZE), 0o755);
  const pool = textPool('scenarios', 1 << 20);
  const r = new Rand('scenarios');
  const want = new Set();
  for (let i = 0; i < SCENARIO_FILES; i++) {
    const sub = `s${String(i % 8).padStart(2, '0')}`;
    const name = `case-${String(i).padStart(4, '0')}.yml`;
    mkdirSync(join(ctx, 'scenarios', sub), { recursive: true });
    const size = r.logUniform(300, 12_000);
    const start = r.int(pool.length - size);
    const body = Buffer.concat([Buffer.from(`# scenario ${i}\nname: ${sub}/${name}\nsteps:\n`), pool.subarray(start, start + size)]);
    writeIfChanged(join(ctx, 'scenarios', sub, name), body, 0o644);
    want.add(`${sub}/${name}`);
  }
  for (const sub of readdirSync(join(ctx, 'scenarios'))) {
    for (const f of readdirSync(join(ctx, 'scenarios', sub)))
      if (!want.has(`${sub}/${f}`)) rmSync(join(ctx, 'scenarios', sub, f), { force: true });
  }
  writeFileSync(join(ctx, 'oci-build.yml'), OUR_BUILD_FILE);
  writeFileSync(join(ctx, 'Containerfile'), CONTAINERFILE);
  writeFileSync(join(ctx, 'oci-build-run.yml'), OUR_RUN_FILE);
  writeFileSync(join(ctx, 'Containerfile.run'), CONTAINERFILE_RUN);
  return ctx;
}

/** The matrix, in the shape of the coop images: app; app + scenarios; base + a second binary + env. */
const OUR_BUILD_FILE = `# Generated by bench/lib/fixtures.mjs. REGISTRY and RUN come from the environment.
version: 1
args:
  REGISTRY: 127.0.0.1:5000
  RUN: r0
defaults:
  base: \${REGISTRY}/bench/base:${SUITE}
  image: \${REGISTRY}/bench/ours-\${RUN}-\${variant}
variants:
  app:
    steps:
      - copy: bin/app
        to: /usr/local/bin/app
        mode: "0755"
    entrypoint: [/usr/local/bin/app]
  scenarios:
    from: app
    steps:
      - copy: scenarios/
        to: /opt/app/scenarios/
        owner: "1000:1000"
    env:
      APP_SCENARIOS: /opt/app/scenarios
  tool:
    steps:
      - copy: bin/tool
        to: /usr/local/bin/tool
        mode: "0755"
    env:
      TOOL_HOME: /opt/tool
    entrypoint: [/usr/local/bin/tool]
`;

/** The same three images for buildah: one stage per variant, built with --target each. */
const CONTAINERFILE = `# Generated by bench/lib/fixtures.mjs; the equivalent of oci-build.yml.
ARG BASE
FROM \${BASE} AS app
COPY bin/app /usr/local/bin/app
ENTRYPOINT ["/usr/local/bin/app"]

FROM app AS scenarios
COPY --chown=1000:1000 scenarios/ /opt/app/scenarios/
ENV APP_SCENARIOS=/opt/app/scenarios

FROM \${BASE} AS tool
COPY bin/tool /usr/local/bin/tool
ENV TOOL_HOME=/opt/tool
ENTRYPOINT ["/usr/local/bin/tool"]
`;

export const VARIANTS = ['app', 'scenarios', 'tool'];

/** S5: packages from the Debian mirror (as in the coop images), a user, the binary. */
export const RUN_PACKAGES = 'jq tree ca-certificates';
const APT_CLEANUP =
  'rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log /var/log/alternatives.log /var/cache/debconf/*-old /var/lib/dpkg/*-old /var/cache/ldconfig/aux-cache';

const OUR_RUN_FILE = `# Generated by bench/lib/fixtures.mjs (S5). REGISTRY, RUN and APT_PROXY come from the environment.
version: 1
args:
  REGISTRY: 127.0.0.1:5000
  RUN: r0
  APT_PROXY: ""
variants:
  runner:
    base: \${REGISTRY}/bench/base:${SUITE}
    image: \${REGISTRY}/bench/ours-\${RUN}-runner
    steps:
      - run: |
          set -eu
          apt-get update
          apt-get install -y --no-install-recommends ${RUN_PACKAGES}
          ${APT_CLEANUP}
        env:
          DEBIAN_FRONTEND: noninteractive
          http_proxy: \${APT_PROXY}
      - run: useradd --create-home --uid 1000 --user-group --shell /bin/bash app
      - copy: bin/app
        to: /usr/local/bin/app
        mode: "0755"
    entrypoint: [/usr/local/bin/app]
`;

const CONTAINERFILE_RUN = `# Generated by bench/lib/fixtures.mjs; the equivalent of oci-build-run.yml (S5).
ARG BASE
FROM \${BASE}
RUN set -eu; apt-get update; DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${RUN_PACKAGES}; ${APT_CLEANUP}
RUN useradd --create-home --uid 1000 --user-group --shell /bin/bash app
COPY bin/app /usr/local/bin/app
ENTRYPOINT ["/usr/local/bin/app"]
`;

/**
 * The big tree: `bytes` of mixed files (text-like source/data, incompressible media/archives,
 * binary-like libraries) of various sizes in nested directories, plus a build file that copies
 * it as one layer onto scratch. Returns the context directory (holding tree/ and oci-build.yml).
 */
export function makeBigTree(benchDir, bytes) {
  const name = bytes >= 1 << 30 ? `big-${bytes >> 30}g` : `big-${bytes >> 20}m`;
  const ctx = join(benchDir, name);
  const tree = join(ctx, 'tree');
  const spec = JSON.stringify({ v: 1, bytes, seed: 'tree' });
  const stamp = join(ctx, '.bench-stamp');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === spec)
    return { ctx, tree, ...JSON.parse(readFileSync(join(ctx, '.bench-stats'), 'utf8')) };
  log(`fixtures: generating the ${name} tree (once)`);
  rmSync(ctx, { recursive: true, force: true });
  const { files, dirs: dirIndex, bytes: total } = writeMixedTree(tree, bytes, 'tree');
  writeFileSync(
    join(ctx, 'oci-build.yml'),
    `# Generated by bench/lib/fixtures.mjs: the whole tree as one layer.
version: 1
variants:
  big:
    base: scratch
    steps:
      - copy: tree/
        to: /data/
`,
  );
  const stats = { files, dirs: dirIndex, bytes: total };
  writeFileSync(join(ctx, '.bench-stats'), JSON.stringify(stats));
  writeFileSync(stamp, spec);
  return { ctx, tree, ...stats };
}

/**
 * Writes `bytes` of mixed files into `tree` (see makeBigTree), deterministic from `seed`.
 * Returns { files, dirs, bytes }.
 */
export function writeMixedTree(tree, bytes, seed) {
  mkdirSync(tree, { recursive: true });
  const r = new Rand(seed);
  const pool = textPool(seed, 8 << 20);
  const binPool = binaryLike(`${seed}-lib`, 16 << 20, pool);
  // Kinds by share of bytes: [name, share, min size, max size, extensions].
  const kinds = [
    ['text', 0.4, 200, 256 << 10, ['js', 'ts', 'json', 'md', 'yml', 'txt', 'c', 'h', 'py']],
    ['data', 0.1, 256 << 10, 8 << 20, ['csv', 'log', 'sql']],
    ['random', 0.35, 4 << 10, 48 << 20, ['png', 'gz', 'jpg', 'zip', 'woff2']],
    ['binary', 0.15, 64 << 10, 24 << 20, ['so', 'node', 'bin']],
  ];
  let total = 0;
  let files = 0;
  const budget = kinds.map((k) => k[1] * bytes);
  let dirIndex = 0;
  let inDir = 0;
  let dir = '';
  while (total < bytes) {
    // Pick a kind with budget left, in proportion to what is left.
    const left = budget.map((b) => Math.max(0, b));
    const sum = left.reduce((a, b) => a + b, 0);
    let x = r.float() * sum;
    let k = 0;
    while (k < kinds.length - 1 && x >= left[k]) {
      x -= left[k];
      k++;
    }
    const [kind, , lo, hi, exts] = kinds[k];
    let size = Math.min(r.logUniform(lo, Math.min(hi, Math.max(lo, bytes / 16))), bytes - total);
    if (size <= 0) size = Math.min(lo, bytes - total);
    if (inDir === 0 || inDir > 40) {
      dir = join(
        `d${String(dirIndex % 24).padStart(2, '0')}`,
        `p${String(Math.floor(dirIndex / 24)).padStart(3, '0')}`,
        ...(dirIndex % 3 === 0 ? ['deep', 'er'] : []),
      );
      mkdirSync(join(tree, dir), { recursive: true });
      dirIndex++;
      inDir = 0;
    }
    let data;
    if (kind === 'random') data = r.bytes(size);
    else if (kind === 'binary') data = slices(r, binPool, size);
    else data = slices(r, pool, size);
    const file = join(tree, dir, `f${String(files).padStart(6, '0')}.${r.pick(exts)}`);
    writeFileSync(file, data);
    chmodSync(file, kind === 'binary' && r.int(2) === 0 ? 0o755 : 0o644);
    budget[k] -= size;
    total += size;
    files++;
    inDir++;
  }
  return { files, dirs: dirIndex, bytes: total };
}

/** `size` bytes made of random slices of a pool (so content is not one long repeat). */
function slices(r, pool, size) {
  const out = Buffer.allocUnsafe(size);
  let off = 0;
  while (off < size) {
    const n = Math.min(size - off, 16_384 + r.int(65_536));
    const start = r.int(pool.length - n);
    pool.copy(out, off, start, start + n);
    off += n;
  }
  return out;
}
