#!/usr/bin/env node
// gzip level study: compressed size against time for levels 1, 6 and 9 with node's zlib
// (what the layer writer uses), on the 32 MiB binary and on the big tree as one tar stream.
//
//   node bench/gzip-levels.mjs [--quick] [--levels 1,6,9] [--repeat N]
// Writes bench/results/gzip-levels.json (quick: gzip-levels-quick.json).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createGzip, gzip as gzipCb } from 'node:zlib';
import { promisify } from 'node:util';
import { APP_SIZE, makeBigTree } from './lib/fixtures.mjs';
import { binaryLike } from './lib/gen.mjs';
import { fmtBytes, fmtMs, log, median, table } from './lib/util.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BENCH = join(ROOT, '.bench');
const gzip = promisify(gzipCb);

const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    levels: { type: 'string', default: '1,6,9' },
    repeat: { type: 'string' },
  },
  strict: true,
});
const QUICK = opt.quick;
const LEVELS = opt.levels.split(',').map(Number);
const REPEAT = opt.repeat ? Number(opt.repeat) : QUICK ? 1 : 3;
const BIG_BYTES = QUICK ? 64 << 20 : 1 << 30;

function counter() {
  let bytes = 0;
  const w = new Writable({
    write(chunk, _e, cb) {
      bytes += chunk.length;
      cb();
    },
  });
  return {
    w,
    get bytes() {
      return bytes;
    },
  };
}

/** GNU tar of the tree piped through node's gzip at `level` (null: tar only), counted. */
async function tarGzip(ctx, level) {
  const t0 = process.hrtime.bigint();
  const tar = spawn('tar', ['-C', ctx, '-cf', '-', 'tree'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const input = counter();
  const out = counter();
  const exited = new Promise((res, rej) => tar.on('close', (c) => (c === 0 ? res() : rej(new Error(`tar exited ${c}`)))));
  const tap = new (await import('node:stream')).Transform({
    transform(c, _e, cb) {
      input.w.write(c);
      cb(null, c);
    },
  });
  if (level === null) await pipeline(tar.stdout, tap, out.w);
  else await pipeline(tar.stdout, tap, createGzip({ level }), out.w);
  await exited;
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, input: counterBytes(input), output: out.bytes };
}
function counterBytes(c) {
  return c.bytes;
}

async function main() {
  mkdirSync(BENCH, { recursive: true });
  const appFile = join(BENCH, 'ctx', 'bin', 'app');
  const app = existsSync(appFile) && readFileSync(appFile).length === APP_SIZE ? readFileSync(appFile) : binaryLike('app', APP_SIZE);
  const big = makeBigTree(BENCH, BIG_BYTES);
  const rows = [];
  log(`binary: ${fmtBytes(app.length)}, ${REPEAT} run(s) per level`);
  for (const level of LEVELS) {
    const times = [];
    let size = 0;
    for (let i = 0; i < REPEAT; i++) {
      const t0 = process.hrtime.bigint();
      const z = await gzip(app, { level });
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      size = z.length;
    }
    rows.push({ input: 'binary', inputBytes: app.length, level, bytes: size, ms: median(times), runs: times });
    log(`binary level ${level}: ${fmtBytes(size)} in ${fmtMs(median(times))}`);
  }
  log(`tree: ${fmtBytes(big.bytes)} in ${big.files} files; tar to warm the page cache`);
  const base = await tarGzip(big.ctx, null);
  rows.push({ input: 'tree (tar only)', inputBytes: base.input, level: null, bytes: base.input, ms: base.ms, runs: [base.ms] });
  for (const level of LEVELS) {
    const times = [];
    let r;
    for (let i = 0; i < (QUICK ? 1 : Math.min(REPEAT, 2)); i++) {
      r = await tarGzip(big.ctx, level);
      times.push(r.ms);
    }
    rows.push({ input: 'tree', inputBytes: r.input, level, bytes: r.output, ms: median(times), runs: times });
    log(`tree level ${level}: ${fmtBytes(r.output)} in ${fmtMs(median(times))}`);
  }
  const ref = (input) => rows.find((r) => r.input === input && r.level === 6);
  const printable = [['input', 'level', 'in', 'out', 'ratio', 'time', 'MiB/s in', 'size vs 6', 'time vs 6']];
  for (const r of rows) {
    const six = ref(r.input);
    r.ratio = r.bytes / r.inputBytes;
    r.mibPerS = r.inputBytes / (1 << 20) / (r.ms / 1000);
    if (six && r.level !== null) {
      r.sizeVs6 = r.bytes / six.bytes;
      r.timeVs6 = r.ms / six.ms;
    }
    printable.push([
      r.input,
      r.level ?? '-',
      fmtBytes(r.inputBytes),
      fmtBytes(r.bytes),
      r.ratio.toFixed(3),
      fmtMs(r.ms),
      r.mibPerS.toFixed(1),
      r.sizeVs6 ? `${((r.sizeVs6 - 1) * 100).toFixed(1)}%` : '',
      r.timeVs6 ? `${r.timeVs6.toFixed(2)}x` : '',
    ]);
  }
  const cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim();
  const out = {
    machine: {
      date: new Date().toISOString(),
      nproc: availableParallelism(),
      cpuModel: cpu,
      node: process.version,
      zlib: process.versions.zlib,
      loadavg: loadavg(),
    },
    options: { quick: QUICK, levels: LEVELS, repeat: REPEAT, tree: { bytes: big.bytes, files: big.files } },
    method:
      'node zlib (createGzip / gzip, default memLevel and window, one stream, libuv threadpool); binary: in memory, median of runs; tree: GNU tar -cf - piped through createGzip, page cache warm',
    results: rows,
  };
  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, QUICK ? 'gzip-levels-quick.json' : 'gzip-levels.json');
  writeFileSync(`${file}.tmp`, `${JSON.stringify(out, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
  process.stdout.write(
    `\ngzip levels (node ${process.version}, zlib ${process.versions.zlib}, ${cpu}, ${availableParallelism()} CPUs)\n\n${table(printable)}\n\nresults: ${file}\n`,
  );
}

main().catch((e) => {
  process.stderr.write(`gzip-levels: ${e.stack ?? e}\n`);
  process.exit(1);
});
