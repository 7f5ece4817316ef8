#!/usr/bin/env node
// `npm run bench`: oci-build (dist/cli.js) against buildah on the same machine and registry.
// See bench/README.md for the scenarios and how each number is measured.
//
//   node bench/run.mjs [--quick] [--scenarios S1,S1B,S2,S3,S4,S5,S6,S7,S8,S9] [--runs N]
// Scenario code: here (S1-S3, S5), bench/lib/scenarios-floor.mjs (S1's floor, S1B),
// bench/lib/scenarios-layers.mjs (S4, S8) and bench/lib/scenarios-big.mjs (S7, S7P); the table
// and targets: bench/lib/report.mjs.
import { cpus, totalmem, release, availableParallelism, loadavg } from 'node:os';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, renameSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createHash } from 'node:crypto';
import { startAptProxy } from './lib/apt-proxy.mjs';
import { baseLayout, debianMirror, EDITED_SCENARIO, makeContext, RUN_PACKAGES, SUITE, VARIANTS } from './lib/fixtures.mjs';
import { startRegistry } from './lib/registry.mjs';
import { ORDER, ratios, report, targets } from './lib/report.mjs';
import { floorNote, floorRatio, floorRun, s1b, S1_LAYERS } from './lib/scenarios-floor.mjs';
import { s4, s8 } from './lib/scenarios-layers.mjs';
import { s9 } from './lib/scenarios-regcache.mjs';
import { s6 } from './lib/scenarios-dockerfile.mjs';
import { s7 } from './lib/scenarios-big.mjs';
import { fmtBytes, fmtMs, log, measured, median, parseBytes, run, TIME_BIN } from './lib/util.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BENCH = join(ROOT, '.bench');
// The bench runs a snapshot of dist/ taken at its start: a long run must not pick up a
// half-rebuilt dist/ (npm run build removes and rewrites it).
const CLI = join(ROOT, '.bench', 'dist', 'cli.js');
const RESULTS = join(ROOT, 'bench', 'results');

// Run as part of another scenario (S8N with S8, S6N and S6E with S6, S7P with S7), not on their own.
const PART_OF = { S8N: 'S8', S6N: 'S6', S6E: 'S6', S7P: 'S7' };
const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    scenarios: { type: 'string', default: ORDER.filter((s) => !PART_OF[s]).join(',') },
    runs: { type: 'string' },
    dist: { type: 'string' },
    report: { type: 'string' },
    'gzip-level': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (opt.help) {
  process.stdout.write(`usage: node bench/run.mjs [--quick] [--scenarios S1,S1B,S2,S3,S4,S5,S6,S7,S8,S9] [--runs N]
  --quick       2 measured runs (+1 warm-up), a 64 MiB big tree and 10,000 small files instead of 5, 1 GiB and 100,000;
                S7's image at 1/16 of its size
  --scenarios   which scenarios to run (default: all)
  --runs N      measured runs per tool and scenario (default 5, quick 2)
  --dist DIR    the build of oci-build to measure (default: dist/; copied to .bench/dist at start)
  --report F    print the table of an earlier results file (medians recomputed) and exit
  --gzip-level N  our gzip level, and the pipelines' and floor's (default: 1, our default)
Results: a table on stdout and bench/results/latest.json (quick runs: latest-quick.json).\n`);
  process.exit(0);
}
const DIST = resolve(opt.dist ?? join(ROOT, 'dist'));
const QUICK = opt.quick;
const RUNS = opt.runs ? Number(opt.runs) : QUICK ? 2 : 5;
const WARMUP = 1;
const BIG_BYTES = QUICK ? 64 << 20 : 1 << 30;
// Our default gzip level (src/cli.ts, action.yml; chosen by bench/gzip-levels.mjs), given
// explicitly so the results say it; `--gzip-level N` measures another. buildah runs with its
// own default (containers/image: gzip level 6). S4's pipeline uses the same level as ours.
const GZIP_LEVEL = opt['gzip-level'] !== undefined ? Number(opt['gzip-level']) : 1;
const selected = new Set(
  opt.scenarios
    .split(',')
    .map((s) => s.trim().toUpperCase())
    .filter(Boolean),
);
for (const s of selected)
  if (!ORDER.includes(s) || PART_OF[s]) {
    console.error(`unknown scenario ${s} (${ORDER.filter((x) => !PART_OF[x]).join(', ')})`);
    process.exit(2);
  }
if (!Number.isInteger(RUNS) || RUNS < 1) {
  console.error('--runs must be a positive integer');
  process.exit(2);
}
if (!Number.isInteger(GZIP_LEVEL) || GZIP_LEVEL < 0 || GZIP_LEVEL > 9) {
  console.error('--gzip-level must be 0-9');
  process.exit(2);
}

const BUILDAH = ['--root', join(BENCH, 'buildah', 'root'), '--runroot', join(BENCH, 'buildah', 'runroot'), '--storage-driver', 'vfs'];
const LOGS = join(BENCH, 'logs');

// ---------------------------------------------------------------------------------------------

async function checkTools() {
  const missing = [];
  for (const t of ['buildah', 'docker-registry', 'skopeo', 'umoci', 'debootstrap', 'tar', 'gzip', 'pigz', 'curl', 'sha256sum', 'du']) {
    const r = await run('sh', ['-c', `command -v ${t}`], { allowFail: true });
    if (r.code !== 0) missing.push(t);
  }
  if (!existsSync(TIME_BIN)) missing.push(`${TIME_BIN} (Debian package "time")`);
  if (missing.length) throw new Error(`missing: ${missing.join(', ')}; run "bash .ci/setup-host.sh" (as root)`);
  if (!existsSync(join(DIST, 'cli.js'))) throw new Error(`${DIST}/cli.js is missing; run "npm run build" first`);
  if (process.getuid?.() !== 0) throw new Error('the benchmark runs debootstrap and buildah (vfs, chroot isolation): run it as root');
}

/** Copies dist/ to .bench/dist and checks that the copy loads (a rebuild may be under way). */
async function snapshotDist() {
  const to = dirname(CLI);
  for (let attempt = 1; ; attempt++) {
    rmSync(to, { recursive: true, force: true });
    try {
      cpSync(DIST, to, { recursive: true });
      const r = await run(process.execPath, [CLI, '--help'], { allowFail: true });
      if (r.code === 0) return;
    } catch {
      /* dist/ changed under the copy */
    }
    if (attempt === 5) throw new Error(`could not take a working snapshot of ${DIST}; run "npm run build"`);
    await new Promise((r) => setTimeout(r, 2000));
  }
}

async function machineInfo() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const mem = /^MemTotal:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  const first = async (cmd, args) => (await run(cmd, args, { allowFail: true })).stdout.split('\n')[0].trim();
  const gitHead = await first('git', ['-C', ROOT, 'rev-parse', 'HEAD']);
  const dirty = (await run('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src', 'dist'], { allowFail: true })).stdout.trim() !== '';
  return {
    date: new Date().toISOString(),
    loadavgAtStart: loadavg(),
    nproc: availableParallelism(),
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown',
    memoryBytes: mem ? Number(mem[1]) * 1024 : totalmem(),
    kernel: release(),
    node: process.version,
    buildah: await first('buildah', ['--version']),
    registry: await first('docker-registry', ['--version']),
    gzip: await first('gzip', ['--version']),
    tar: await first('tar', ['--version']),
    debianMirror: debianMirror(),
    git: { head: gitHead, srcOrDistDirty: dirty },
    distSource: DIST,
    distBuilt: statSync(join(DIST, 'cli.js')).mtime.toISOString(),
    distCliSha256: createHash('sha256').update(readFileSync(CLI)).digest('hex'),
  };
}

// ---------------------------------------------------------------------------------------------
// One registry per cold round (only the base in it); S2 and S3 reuse the last one.

let reg;
let base;

async function freshRegistry() {
  if (reg) await reg.stop();
  reg = await startRegistry(join(BENCH, 'registry'));
  await run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${base}:base`, `docker://${reg.direct}/bench/base:${SUITE}`], {
    log: join(LOGS, 'registry.log'),
  });
  return reg;
}

/** State left by the last cold round: what S2 and S3 start from. */
let warm;

function baseRef() {
  return `${reg.host}/bench/base:${SUITE}`;
}

/** Runs fn with the proxy counters and the registry's storage measured around it. */
async function withRegistryStats(fn) {
  const before = await reg.storageBytes();
  reg.reset();
  const r = await fn();
  const c = reg.snapshot();
  const after = await reg.storageBytes();
  return { ...r, uploaded: c.uploaded, downloaded: c.downloaded, requests: c.requests, registryGrowth: after - before };
}

async function ours(ctx, runId, cacheDir, logFile, buildFile = 'oci-build.yml', env = {}) {
  return await withRegistryStats(async () => {
    const r = await measured(
      process.execPath,
      [
        CLI,
        'build',
        '--config',
        join(ctx, buildFile),
        '--push',
        '--tag',
        'bench',
        '--cache-dir',
        cacheDir,
        '--gzip-level',
        String(GZIP_LEVEL),
      ],
      {
        env: { ...process.env, REGISTRY: reg.host, RUN: runId, ...env },
        log: logFile,
      },
    );
    const m = /push: \d+ image\(s\): (\d+) blobs uploaded \(([^)]+)\), (\d+) mounted, (\d+) already present/.exec(r.stderr);
    return {
      ms: r.ms,
      rssKiB: r.rssKiB,
      self: m ? { blobsUploaded: Number(m[1]), bytesUploaded: parseBytes(m[2]), mounted: Number(m[3]), present: Number(m[4]) } : undefined,
    };
  });
}

/** buildah: one `bud` per image (a --target each for the matrix), then one `push` per image. */
async function buildah(ctx, runId, logFile, { containerfile = 'Containerfile', images = VARIANTS, targets = true, env = {} } = {}) {
  return await withRegistryStats(async () => {
    let ms = 0;
    let rssKiB = 0;
    const steps = [];
    for (const v of images) {
      const r = await measured(
        'buildah',
        [
          ...BUILDAH,
          'bud',
          '--isolation',
          'chroot',
          '--layers',
          '--tls-verify=false',
          '--build-arg',
          `BASE=${baseRef()}`,
          ...(targets ? ['--target', v] : []),
          '-t',
          `localhost/bench/${v}`,
          '-f',
          join(ctx, containerfile),
          ctx,
        ],
        { log: logFile, env: { ...process.env, ...env } },
      );
      ms += r.ms;
      rssKiB = Math.max(rssKiB, r.rssKiB);
      steps.push({ step: `bud ${v}`, ms: r.ms, rssKiB: r.rssKiB });
    }
    for (const v of images) {
      const r = await measured(
        'buildah',
        [...BUILDAH, 'push', '--tls-verify=false', `localhost/bench/${v}`, `docker://${reg.host}/bench/buildah-${runId}-${v}:bench`],
        { log: logFile },
      );
      ms += r.ms;
      rssKiB = Math.max(rssKiB, r.rssKiB);
      steps.push({ step: `push ${v}`, ms: r.ms, rssKiB: r.rssKiB });
    }
    return { ms, rssKiB, steps };
  });
}

/**
 * Before each cold run (S1, S5; not timed): sync, drop the page, dentry and buffer caches, then
 * read the inputs back in (build context, the registry's blobs, both tools' programs), as on a
 * CI runner where the checkout and the build that made the binaries have just written them.
 * This keeps one tool's clean-up from taxing the other's run: ext4 will not reuse an inode
 * freed in the last 30 s whose inode-table block is still cached, and checks every such
 * candidate, so creating a tree of n files right after m were deleted in the same block group
 * costs O(n*m) in the kernel (measured here: extracting the Debian base went from 0.9 s to
 * 5.7 s over three back-to-back rounds). Dropping the buffer cache ends that state.
 */
async function settle(ctx) {
  await run('sync', []);
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3\n');
  } catch (e) {
    log(`could not drop caches (${e.message}); cold runs may inherit the previous run's state`);
  }
  const buildahBin = (await run('sh', ['-c', 'command -v buildah'], { allowFail: true })).stdout.trim();
  const inputs = [ctx, reg.data, join(BENCH, 'dist'), process.execPath, buildahBin].filter(Boolean);
  await run('sh', ['-c', 'find "$@" -type f -print0 | xargs -0 cat > /dev/null', 'warm', ...inputs], { allowFail: true });
}

async function buildahClean() {
  await run('buildah', [...BUILDAH, 'rm', '-a'], { allowFail: true });
  await run('buildah', [...BUILDAH, 'rmi', '-af'], { allowFail: true });
}

function newCacheDir(name) {
  const d = join(BENCH, 'cache', name);
  rmSync(d, { recursive: true, force: true });
  return d;
}

// ---------------------------------------------------------------------------------------------

const results = {};

function record(id, description, notes) {
  results[id] = { description, notes, tools: {} };
  return results[id];
}

function summarize(runs) {
  const pick = (f) => median(runs.map(f));
  return {
    ms: pick((r) => r.ms),
    minMs: Math.min(...runs.map((r) => r.ms)),
    maxMs: Math.max(...runs.map((r) => r.ms)),
    rssKiB: pick((r) => r.rssKiB),
    cpuMs: pick((r) => r.cpuMs),
    uploaded: pick((r) => r.uploaded),
    downloaded: pick((r) => r.downloaded),
    registryGrowth: pick((r) => r.registryGrowth),
    selfReportedUpload: pick((r) => r.self?.bytesUploaded ?? NaN),
    outputBytes: pick((r) => r.outputBytes ?? NaN),
    // buildah: time in bud and in push processes.
    ...(runs.some((r) => r.steps)
      ? {
          budMs: pick((r) => (r.steps ?? []).filter((x) => x.step.startsWith('bud')).reduce((a, x) => a + x.ms, 0)),
          pushMs: pick((r) => (r.steps ?? []).filter((x) => x.step.startsWith('push')).reduce((a, x) => a + x.ms, 0)),
        }
      : {}),
  };
}

/** Alternates the tools round by round (the first goes second next round); round 0 is the warm-up. */
async function alternate(id, tools, before) {
  const res = results[id];
  for (const t of Object.keys(tools)) res.tools[t] = { runs: [], warmup: undefined };
  const names = Object.keys(tools);
  for (let i = 0; i < WARMUP + RUNS; i++) {
    const round = await before?.(i);
    const order = i % 2 === 0 ? names : [...names].reverse();
    for (const t of order) {
      const load1 = loadavg()[0];
      const r = { ...(await tools[t](i, round)), load1 };
      const label = i < WARMUP ? 'warm-up' : `run ${i - WARMUP + 1}/${RUNS}`;
      log(
        `${id} ${t} ${label}: ${fmtMs(r.ms)}, peak RSS ${fmtBytes(r.rssKiB * 1024)}${r.uploaded !== undefined ? `, uploaded ${fmtBytes(r.uploaded)}` : ''} (load ${load1.toFixed(1)})`,
      );
      if (i < WARMUP) res.tools[t].warmup = r;
      else res.tools[t].runs.push(r);
    }
  }
  for (const t of names) res.tools[t].median = summarize(res.tools[t].runs);
  ratios(res);
}

async function coldRound(ctx, i, tag, { keepWarm = false } = {}) {
  await freshRegistry();
  const runId = `${tag}r${i}`;
  const cacheDir = newCacheDir(`${tag}-${i}`);
  if (!keepWarm) warm = { runId, cacheDir };
  return { runId, cacheDir };
}

async function s1(ctx) {
  record(
    'S1',
    'cold: three variants (app; app + scenarios; base + tool + env) on a Debian base, empty caches, registry holding only the base',
    [
      'ours: new --cache-dir; buildah: rm -a, rmi -af in its own storage root (vfs), so the base is pulled again',
      'a fresh registry per round (new port) with only the base; target repositories are new',
      'buildah time = 3 x bud (--target per variant, --layers) + 3 x push, run one after the other',
      floorNote(S1_LAYERS),
    ],
  );
  await alternate(
    'S1',
    {
      ours: async (i, r) => {
        await settle(ctx);
        return ours(ctx, r.runId, r.cacheDir, join(LOGS, `S1-ours-${i}.log`));
      },
      buildah: async (i, r) => {
        await buildahClean();
        await settle(ctx);
        return buildah(ctx, r.runId, join(LOGS, `S1-buildah-${i}.log`));
      },
      floor: async (i, r) => {
        await settle(ctx);
        return floorRun(h, ctx, S1_LAYERS, r.runId, join(LOGS, `S1-floor-${i}.log`));
      },
    },
    async (i) => {
      if (i > 0) rmSync(join(BENCH, 'cache', `s1-${i - 1}`), { recursive: true, force: true });
      return coldRound(ctx, i, 's1');
    },
  );
  floorRatio(results.S1);
}

/** S2 and S3 start from a warm state: the last S1 round, or one untimed cold round. */
async function ensureWarm(ctx) {
  if (warm) return;
  log('preparing a warm state (one untimed cold round)');
  const r = await coldRound(ctx, 0, 'prep');
  await buildahClean();
  await ours(ctx, r.runId, r.cacheDir, join(LOGS, 'prep-ours.log'));
  await buildah(ctx, r.runId, join(LOGS, 'prep-buildah.log'));
}

async function s2(ctx) {
  await ensureWarm(ctx);
  record('S2', 'no-op rebuild: S1 again with nothing changed (same cache dir, same storage, same target repositories)', []);
  await alternate('S2', {
    ours: async (i) => ours(ctx, warm.runId, warm.cacheDir, join(LOGS, `S2-ours-${i}.log`)),
    buildah: async (i) => buildah(ctx, warm.runId, join(LOGS, `S2-buildah-${i}.log`)),
  });
}

async function s3(ctx) {
  await ensureWarm(ctx);
  record('S3', `one file changed: ${EDITED_SCENARIO} edited before each round, then S2`, [
    'each round appends a new line to the same scenario file, so every round differs from the state the previous one left',
    "layer alone (the target's reference): oci-build writing just the changed layer (scenarios/ onto scratch, --no-cache, --output oci:DIR) in a new process, each round",
  ]);
  const file = join(ctx, EDITED_SCENARIO);
  const original = readFileSync(file);
  const nonce = Date.now().toString(36);
  writeFileSync(
    join(ctx, 'oci-build-layer.yml'),
    [
      '# Generated by bench/run.mjs (S3): the changed layer alone.',
      'version: 1',
      'variants:',
      '  layer:',
      '    base: scratch',
      '    steps:',
      '      - copy: scenarios/',
      '        to: /opt/app/scenarios/',
      '        owner: "1000:1000"',
      '',
    ].join('\n'),
  );
  const alone = [];
  try {
    await alternate(
      'S3',
      {
        ours: async (i) => ours(ctx, warm.runId, warm.cacheDir, join(LOGS, `S3-ours-${i}.log`)),
        buildah: async (i) => buildah(ctx, warm.runId, join(LOGS, `S3-buildah-${i}.log`)),
      },
      async (i) => {
        writeFileSync(file, Buffer.concat([original, Buffer.from(`# bench edit ${nonce}-${i}\n`)]));
        const layout = join(BENCH, 'layer-alone');
        rmSync(layout, { recursive: true, force: true });
        const r = await measured(
          process.execPath,
          [
            CLI,
            'build',
            '--config',
            join(ctx, 'oci-build-layer.yml'),
            '--output',
            `oci:${layout}`,
            '--no-cache',
            '--cache-dir',
            join(BENCH, 'cache', 'layer-alone'),
            '--gzip-level',
            String(GZIP_LEVEL),
          ],
          { log: join(LOGS, `S3-alone-${i}.log`) },
        );
        if (i >= WARMUP) alone.push({ ms: r.ms, rssKiB: r.rssKiB });
      },
    );
    results.S3.layerAlone = { runs: alone, medianMs: median(alone.map((r) => r.ms)) };
    results.S3.oursOverAlone = results.S3.tools.ours.median.ms / results.S3.layerAlone.medianMs;
  } finally {
    writeFileSync(file, original);
  }
}

async function s5(ctx) {
  const skip = (why) => {
    results.S5 = { description: 'run steps', skipped: why };
    log(`S5 skipped: ${why}`);
  };
  const schema = readFileSync(join(ROOT, 'src', 'config', 'schema.ts'), 'utf8');
  if (!/runStepSchema|\brun\s*:\s*z\./.test(schema)) return skip('needs run: steps (issue 5)');
  // The schema may be ahead of the build measured: ask that build.
  const plan = await run(process.execPath, [CLI, 'plan', '--config', join(ctx, 'oci-build-run.yml')], { allowFail: true });
  if (plan.code !== 0)
    return skip(
      `needs run: steps (issue 5): the measured build rejects them (${plan.stderr.trim().split('\n').slice(0, 2).join(' ').slice(0, 200)})`,
    );
  record(
    'S5',
    `run steps, cold: Debian base + run: apt-get install ${RUN_PACKAGES} (lists and logs cleaned in the same step) + run: useradd + copy of the 32 MiB binary, one image`,
    [
      'as S1: a fresh registry per round holding only the base, new repositories, a new --cache-dir, buildah rm -a; rmi -af',
      "apt runs in full every round for both tools (update, download, unpack, configure), through a caching HTTP proxy on 127.0.0.1 (http_proxy; buildah passes it to RUN, ours through the step env): the warm-up fills it from the Debian mirror, measured rounds are served from this machine, so the mirror's speed is not measured",
      'ours: run steps in runc where installed, else the chroot sandbox (see src/run); buildah: bud --isolation chroot',
      `per run: step (a line under the table): builds of 1 and ${PER_STEP_STEPS} trivial run: steps with our build alone, see s5PerStep`,
    ],
  );
  const proxy = await startAptProxy(join(BENCH, 'apt-cache'));
  const env = { APT_PROXY: proxy.url, http_proxy: proxy.url };
  const mirrorBytes = [];
  try {
    await alternate(
      'S5',
      {
        ours: async (i, r) => {
          await settle(ctx);
          return ours(ctx, r.runId, r.cacheDir, join(LOGS, `S5-ours-${i}.log`), 'oci-build-run.yml', { APT_PROXY: proxy.url });
        },
        buildah: async (i, r) => {
          await buildahClean();
          await settle(ctx);
          return buildah(ctx, r.runId, join(LOGS, `S5-buildah-${i}.log`), {
            containerfile: 'Containerfile.run',
            images: ['runner'],
            targets: false,
            env,
          });
        },
      },
      async (i) => {
        if (i > 0) rmSync(join(BENCH, 'cache', `s5-${i - 1}`), { recursive: true, force: true });
        mirrorBytes.push(proxy.counters.bytesFromMirror);
        return coldRound(ctx, i, 's5');
      },
    );
  } finally {
    await proxy.stop();
  }
  mirrorBytes.push(proxy.counters.bytesFromMirror);
  // What came from the mirror after the warm-up round (0 when every measured round was local).
  results.S5.mirrorBytesAfterWarmup = mirrorBytes.at(-1) - (mirrorBytes[1] ?? 0);
  log(
    `S5 apt proxy: ${proxy.counters.hits} hits, ${proxy.counters.misses} misses, ${fmtBytes(results.S5.mirrorBytesAfterWarmup)} from the mirror after the warm-up`,
  );
  await s5PerStep(ctx);
}

/**
 * What one `run:` step costs beyond its command: the sandbox (runc, or the chroot sandbox), the
 * rootfs snapshots before and after, and its layer. Builds of 1 and of PER_STEP_STEPS trivial
 * steps (each writes one small file) on the same cache directory with --no-cache (the base is
 * local, every command runs), alternating; the figure is the difference of the medians per
 * extra step, so the base's extraction and everything else that is paid once cancel out.
 */
const PER_STEP_STEPS = 21;

async function s5PerStep(ctx) {
  const file = (n) => {
    const f = join(ctx, `oci-build-steps-${n}.yml`);
    const steps = Array.from({ length: n }, (_, i) => `      - run: echo ${i + 1} > /tmp/step-${i + 1}\n`).join('');
    writeFileSync(
      f,
      `# Generated by bench/run.mjs (S5 per step). REGISTRY comes from the environment.\nversion: 1\nargs:\n  REGISTRY: 127.0.0.1:5000\nvariants:\n  steps:\n    base: \${REGISTRY}/bench/base:${SUITE}\n    image: \${REGISTRY}/bench/steps\n    steps:\n${steps}`,
    );
    return f;
  };
  const files = { 1: file(1), [PER_STEP_STEPS]: file(PER_STEP_STEPS) };
  const cacheDir = newCacheDir('s5-steps');
  const out = join(BENCH, 'out', 's5-steps');
  const ms = { 1: [], [PER_STEP_STEPS]: [] };
  // The build's own time of each step (the "run: exit 0 in" line: sandbox and snapshots, not
  // the layer): steadier than the wall-clock difference on a loaded machine.
  const inBuild = [];
  const stepTimes = (stderr) =>
    [...stderr.matchAll(/run: exit 0 in ([\d.]+) (ms|s)\b/g)].map((m) => Number(m[1]) * (m[2] === 's' ? 1000 : 1));
  for (let i = 0; i < WARMUP + RUNS; i++) {
    for (const n of i % 2 === 0 ? [1, PER_STEP_STEPS] : [PER_STEP_STEPS, 1]) {
      rmSync(out, { recursive: true, force: true });
      const args = ['build', '--config', files[n], '--no-cache', '--output', `oci:${out}`, '--cache-dir', cacheDir];
      const r = await measured(process.execPath, [CLI, ...args, '--gzip-level', String(GZIP_LEVEL)], {
        env: { ...process.env, REGISTRY: reg.host },
        log: join(LOGS, `S5-steps-${n}-${i}.log`),
      });
      log(
        `S5 per step: ${n} step(s) ${i < WARMUP ? 'warm-up' : `run ${i - WARMUP + 1}/${RUNS}`}: ${fmtMs(r.ms)} (load ${loadavg()[0].toFixed(1)})`,
      );
      if (i >= WARMUP) {
        ms[n].push(r.ms);
        if (n === PER_STEP_STEPS) inBuild.push(...stepTimes(r.stderr));
      }
    }
  }
  const one = median(ms[1]);
  const many = median(ms[PER_STEP_STEPS]);
  results.S5.perRunStep = {
    description: `one trivial run: step (sandbox + snapshots + layer): (median of ${PER_STEP_STEPS} steps - median of 1) / ${PER_STEP_STEPS - 1}, --no-cache, base local`,
    runsMs: ms,
    medianOneMs: one,
    medianManyMs: many,
    ms: (many - one) / (PER_STEP_STEPS - 1),
    inBuildMedianMs: inBuild.length ? median(inBuild) : undefined,
  };
  log(
    `S5 per run: step: ${fmtMs(results.S5.perRunStep.ms)} (1 step ${fmtMs(one)}, ${PER_STEP_STEPS} steps ${fmtMs(many)}); in the build's log: median ${inBuild.length ? fmtMs(median(inBuild)) : '-'} over ${inBuild.length} steps`,
  );
}

// ---------------------------------------------------------------------------------------------

/** What the scenario modules use (bench/lib/scenarios-*.mjs). */
const h = {
  BENCH,
  LOGS,
  CLI,
  BUILDAH,
  GZIP_LEVEL,
  WARMUP,
  RUNS,
  QUICK,
  BIG_BYTES,
  results,
  get reg() {
    return reg;
  },
  record,
  alternate,
  ours,
  buildah,
  settle,
  buildahClean,
  newCacheDir,
  coldRound,
  withRegistryStats,
};

async function main() {
  await checkTools();
  mkdirSync(BENCH, { recursive: true });
  await snapshotDist();
  // Logs are per run of the bench (debootstrap's is kept: it is made once).
  for (const f of existsSync(LOGS) ? readdirSync(LOGS) : []) if (f !== 'debootstrap.log') rmSync(join(LOGS, f), { force: true });
  mkdirSync(LOGS, { recursive: true });
  const info = await machineInfo();
  log(`machine: ${info.nproc} CPU(s) ${info.cpuModel}, ${fmtBytes(info.memoryBytes)}, node ${info.node}, ${info.buildah}`);
  const needsRegistry = ['S1', 'S1B', 'S2', 'S3', 'S5', 'S6', 'S7', 'S9'].some((s) => selected.has(s));
  let ctx;
  if (needsRegistry) {
    base = await baseLayout(BENCH);
    ctx = makeContext(BENCH);
  }
  const t0 = Date.now();
  try {
    if (selected.has('S1')) await s1(ctx);
    if (selected.has('S2')) await s2(ctx);
    if (selected.has('S3')) await s3(ctx);
    if (selected.has('S4')) await s4(h);
    if (selected.has('S5')) await s5(ctx);
    if (selected.has('S6')) await s6(h);
    // After S2 and S3: S1b's cold rounds must not be what they start from.
    if (selected.has('S1B')) await s1b(h);
    if (selected.has('S8')) await s8(h);
    // Its cold rounds replace the registry too (after S2, S3 and S1B, before S9).
    if (selected.has('S7')) await s7(h);
    // Last: its cold rounds replace the registry S2 and S3 work in.
    if (selected.has('S9')) await s9(h, ctx);
  } finally {
    if (reg) await reg.stop();
    if (needsRegistry) await buildahClean();
    rmSync(join(BENCH, 'cache'), { recursive: true, force: true });
  }
  const out = {
    machine: info,
    options: { quick: QUICK, runs: RUNS, warmup: WARMUP, scenarios: [...selected], gzipLevel: GZIP_LEVEL, bigTreeBytes: BIG_BYTES },
    durationMs: Date.now() - t0,
    loadavgAtEnd: loadavg(),
    measurement: {
      wallTime: 'monotonic clock around each process in the bench (buildah: sum of its bud and push processes, one per image each)',
      peakRss: `${TIME_BIN} -f %M (ru_maxrss in KiB of the process and its waited-for descendants); buildah: max over its processes`,
      uploaded: 'request-body bytes through a counting HTTP proxy in front of docker-registry (both tools use the proxy)',
      downloaded: 'response-body bytes through the same proxy (base image pulls, HEAD/GET of manifests)',
      selfReportedUpload: 'ours only: the "push: ... blobs uploaded (B)" log line (rounded by our byte formatter)',
      registryGrowth: 'du -sb of the registry data directory after minus before',
    },
    scenarios: results,
  };
  mkdirSync(RESULTS, { recursive: true });
  const file = join(RESULTS, QUICK ? 'latest-quick.json' : 'latest.json');
  // A run of some scenarios keeps the others from the previous results, marked as such.
  if (existsSync(file)) {
    try {
      const prev = JSON.parse(readFileSync(file, 'utf8'));
      for (const [id, sc] of Object.entries(prev.scenarios ?? {})) {
        if (selected.has(id) || results[id] || selected.has(PART_OF[id])) continue;
        results[id] = {
          ...sc,
          carriedOver: sc.carriedOver ?? {
            date: prev.machine?.date,
            git: prev.machine?.git,
            distCliSha256: prev.machine?.distCliSha256,
            distSource: prev.machine?.distSource,
          },
        };
      }
    } catch {
      /* unreadable: replaced */
    }
  }
  out.targets = targets(results);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(out, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
  const text = report(results, info, { quick: QUICK, runs: RUNS, warmup: WARMUP });
  process.stdout.write(`\n${text}\n\nresults: ${file}\n`);
}

/** --report: the table of an earlier run, medians recomputed from its runs. */
function reprint(file) {
  const prev = JSON.parse(readFileSync(file, 'utf8'));
  for (const [id, s] of Object.entries(prev.scenarios)) {
    results[id] = s;
    if (s.skipped) continue;
    for (const t of Object.values(s.tools))
      t.median = { ...t.median, ...summarize(t.runs), outputBytes: t.median?.outputBytes ?? summarize(t.runs).outputBytes };
    ratios(s);
  }
  const o = prev.options;
  process.stdout.write(`${report(results, prev.machine, { quick: o.quick, runs: o.runs, warmup: o.warmup })}\n`);
}

process.on('SIGINT', async () => {
  if (reg) await reg.stop().catch(() => {});
  process.exit(130);
});
if (opt.report) {
  reprint(resolve(opt.report));
  process.exit(0);
}
main().catch(async (err) => {
  if (reg) await reg.stop().catch(() => {});
  process.stderr.write(`bench: ${err.stack ?? err}\n`);
  process.exit(1);
});
