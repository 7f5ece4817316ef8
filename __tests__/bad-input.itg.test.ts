import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, rmSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushBusyboxBase, type BaseImages } from './helpers/base-image.js';
import { startEvilRegistry, manifestServer, sha, type EvilRegistry } from './helpers/evil-registry.js';
import { cli } from './helpers/cli.js';

/**
 * Issue 4's corpus of bad input: every case must fail with a message that names the input
 * (file and line, field, reference or host) and says how to fix it, and push nothing.
 */

let reg: TestRegistry;
let base: BaseImages;
let damaged: TestRegistry;
let damagedBase: BaseImages;
const evil: EvilRegistry[] = [];
let root: string;

interface Case {
  name: string;
  /** The build file; ${REG} is the real registry, ${BASE} a good base, ${DIR} the context. */
  yaml?: string;
  files?: Record<string, string>;
  setup?: (dir: string) => void | Promise<void>;
  args?: string[];
  env?: Record<string, string>;
  code: number;
  expect: (string | RegExp)[];
}

const good = (extra = '', step = '') => `version: 1
variants:
  app:
    image: \${REG}/bad/app
    base: \${BASE}
    steps:
      - copy: app.txt
        to: /app.txt${step}
${extra}`;

const cases: Case[] = [
  // The build file (more in config-invalid.test.ts; these go through the CLI end to end).
  {
    name: 'malformed YAML',
    yaml: 'version: 1\nvariants:\n  app: [unclosed\n',
    code: 2,
    expect: [/oci-build\.yml:\d+:\d+/, /flow sequence|unclosed|Missing|expected/i],
  },
  { name: 'tab indentation', yaml: 'version: 1\nvariants:\n\tapp: {}\n', code: 2, expect: [/oci-build\.yml:3:\d+/] },
  { name: 'unknown top-level key', yaml: good('defualts: {}\n'), code: 2, expect: [/oci-build\.yml:\d+:\d+: defualts/, /defaults/] },
  {
    name: 'unknown variant key, suggested',
    yaml: good('    entrypont: [/x]\n'),
    code: 2,
    expect: [/variants\.app\.entrypont/, /entrypoint/],
  },
  { name: 'unknown step key', yaml: good('', '\n        chmod: "0755"'), code: 2, expect: [/steps\[0\]\.chmod/, /mode/] },
  {
    name: 'steps is not a list',
    yaml: 'version: 1\nvariants:\n  app:\n    base: scratch\n    steps: copy app.txt\n',
    code: 2,
    expect: [/variants\.app\.steps/, /list of steps/],
  },
  {
    name: 'wrong version',
    yaml: 'version: 2\nvariants:\n  app: { base: scratch }\n',
    code: 2,
    expect: [/oci-build\.yml:1:\d+: version/, /version: 1/],
  },
  { name: 'non-octal mode', yaml: good('', '\n        mode: "0999"'), code: 2, expect: [/steps\[0\]\.mode/, /octal/] },
  { name: 'absurd mode', yaml: good('', '\n        mode: 999999'), code: 2, expect: [/steps\[0\]\.mode/] },
  { name: 'bad owner', yaml: good('', '\n        owner: "root:"'), code: 2, expect: [/steps\[0\]\.owner/] },
  {
    name: 'owner name not in the base image',
    yaml: good('', '\n        owner: ghost'),
    code: 1,
    expect: [/ghost/, /\/etc\/passwd/, /numeric/],
  },
  { name: 'missing source', yaml: good().replace('app.txt', 'nope.txt'), code: 2, expect: [/steps\[0\]\.copy/, /nope\.txt/] },
  {
    name: 'glob matching nothing',
    yaml: good().replace('copy: app.txt', 'copy: "*.bin"').replace('to: /app.txt', 'to: /opt/'),
    code: 2,
    expect: [/steps\[0\]\.copy/, /\*\.bin/, /match/i],
  },
  {
    name: 'source escaping with ..',
    yaml: good().replace('app.txt', '../outside.txt'),
    code: 2,
    expect: [/steps\[0\]\.copy/, /outside the build context|\.\./],
  },
  {
    name: 'source symlink escaping',
    yaml: good().replace('app.txt', 'link.txt'),
    setup: (d) => symlinkSync('/etc/hostname', join(d, 'link.txt')),
    code: 2,
    expect: [/steps\[0\]\.copy/, /link\.txt/, /outside/],
  },
  {
    name: 'symlink inside a copied directory escaping',
    yaml: good().replace('copy: app.txt', 'copy: tree').replace('to: /app.txt', 'to: /tree'),
    setup: (d) => {
      mkdirSync(join(d, 'tree'));
      symlinkSync('/etc/passwd', join(d, 'tree', 'pw'));
    },
    code: 2,
    expect: [/tree\/pw -> \/etc\/passwd/, /outside the build context/],
  },
  // A FIFO is the same bad input whether it is named or found in a copied directory: exit 2 both times.
  {
    name: 'FIFO as a source',
    yaml: good().replace('app.txt', 'pipe'),
    setup: (d) => {
      execFileSync('mkfifo', [join(d, 'pipe')]);
    },
    code: 2,
    expect: [/steps\[0\]\.copy/, /"pipe" is not a regular file, directory or symlink/],
  },
  {
    name: 'FIFO inside a copied directory',
    yaml: good().replace('copy: app.txt', 'copy: d').replace('to: /app.txt', 'to: /d'),
    setup: (d) => {
      mkdirSync(join(d, 'd'));
      execFileSync('mkfifo', [join(d, 'd', 'pipe')]);
    },
    code: 2,
    expect: [/oci-build\.yml:\d+: d\/pipe \(in the copied directory d\) is a special file/, /remove it from the copy/],
  },
  {
    name: 'absolute source',
    yaml: good().replace('copy: app.txt', 'copy: /etc/hostname'),
    code: 2,
    expect: [/steps\[0\]\.copy/, /relative|absolute/],
  },
  { name: 'relative destination', yaml: good().replace('to: /app.txt', 'to: app.txt'), code: 2, expect: [/steps\[0\]\.to/, /absolute/] },
  { name: 'unknown from', yaml: 'version: 1\nvariants:\n  app:\n    from: ghost\n', code: 2, expect: [/variants\.app\.from/, /ghost/] },
  {
    name: 'from cycle',
    yaml: 'version: 1\nvariants:\n  a: { from: b }\n  b: { from: a }\n',
    code: 2,
    expect: [/cycle/, /a -> b -> a|b -> a -> b/],
  },
  {
    name: 'both base and from',
    yaml: 'version: 1\nvariants:\n  a: { base: scratch }\n  b: { base: scratch, from: a }\n',
    code: 2,
    expect: [/variants\.b/, /both base and from/],
  },
  {
    name: 'uppercase image name',
    yaml: good().replace('${REG}/bad/app', '${REG}/bad/App'),
    code: 2,
    expect: [/variants\.app\.image/, /lowercase/],
  },
  {
    name: 'image with a tag',
    yaml: good().replace('${REG}/bad/app', '${REG}/bad/app:v1'),
    code: 2,
    expect: [/variants\.app\.image/, /without a tag/],
  },
  {
    name: 'invalid base reference',
    yaml: good().replace('${BASE}', 'docker.io/library/UBUNTU:'),
    code: 2,
    expect: [/variants\.app\.base/],
  },
  {
    name: 'bad platform in the build file',
    yaml: good('    platforms: [linux]\n'),
    code: 2,
    expect: [/variants\.app\.platforms\[0\]/, /os\/arch/],
  },
  { name: 'absurd port', yaml: good('    expose: [70000]\n'), code: 2, expect: [/variants\.app\.expose\[0\]/] },
  { name: 'unknown ${VAR}', yaml: good().replace('/app.txt\n', '/${NOPE}.txt\n'), code: 2, expect: [/NOPE/, /args/] },
  {
    name: 'bad variant name',
    yaml: 'version: 1\nvariants:\n  App_: { base: scratch }\n',
    code: 2,
    expect: [/variants\.App_/, /lowercase/],
  },
  { name: 'no variants', yaml: 'version: 1\nvariants: {}\n', code: 2, expect: [/variants/] },
  {
    name: 'bad tag rule in the build file',
    yaml: good('    tags: ["type=bogus"]\n'),
    code: 2,
    expect: [/variants\.app\.tags\[0\]/, /bogus/],
  },
  // Inputs.
  { name: 'bad tag rule input', yaml: good(), args: ['--tag', 'type=semver,pattern={{nope}}'], code: 2, expect: [/tags/, /nope/] },
  { name: 'bad platform input', yaml: good(), args: ['--platform', 'linux'], code: 2, expect: [/platforms/, /os\/arch/] },
  {
    name: 'bad output',
    yaml: good(),
    args: ['--output', 'tarball:/tmp/x'],
    code: 2,
    expect: [/invalid output "tarball:\/tmp\/x"/, /oci:DIR/],
  },
  { name: 'bad gzip level', yaml: good(), args: ['--gzip-level', '12'], code: 2, expect: [/--gzip-level must be 0-9/] },
  { name: 'unknown variant selected', yaml: good(), args: ['--variant', 'ghost'], code: 2, expect: [/ghost/, /app/] },
  {
    name: 'push without an image',
    yaml: good().replace('    image: ${REG}/bad/app\n', ''),
    code: 2,
    expect: [/variants\.app\.image/, /no image to push to/, /defaults\.image/],
  },
  { name: 'bad SOURCE_DATE_EPOCH', yaml: good(), env: { SOURCE_DATE_EPOCH: 'yesterday' }, code: 2, expect: [/SOURCE_DATE_EPOCH/] },
  // Registries and base images.
  {
    name: 'unreachable base registry',
    yaml: good().replace('${BASE}', '127.0.0.1:1/base/x:1'),
    code: 1,
    expect: [/127\.0\.0\.1:1/, /refused|connect/i],
  },
  {
    name: 'base tag that does not exist',
    yaml: good().replace('${BASE}', '${REG}/base/busybox:nope'),
    code: 1,
    expect: [/base\/busybox/, /nope/, /MANIFEST_UNKNOWN|not found|404/],
  },
  {
    name: 'base index without the platform',
    yaml: good('    platforms: [linux/s390x]\n').replace('${BASE}', '${REG}/base/busybox:oci-index'),
    code: 1,
    expect: [/no manifest for linux\/s390x/, /linux\/amd64/],
  },
  {
    name: 'host answering HTML',
    yaml: good().replace('${BASE}', '${HTML}/base/x:1'),
    code: 1,
    expect: [/does not look like a registry|HTML/i],
  },
  {
    name: 'registry answering garbage JSON',
    yaml: good().replace('${BASE}', '${GARBAGE}/base/x:1'),
    code: 1,
    expect: [/base\/x/, /JSON|manifest/i],
  },
  { name: 'manifest over 4 MiB', yaml: good().replace('${BASE}', '${HUGE}/base/x:1'), code: 1, expect: [/4 MiB|larger than/i] },
  {
    name: 'unsupported manifest media type',
    yaml: good().replace('${BASE}', '${SCHEMA1}/base/x:1'),
    code: 1,
    expect: [/unsupported/i, /schema 2|OCI/],
  },
  {
    name: 'unsupported layer media type',
    yaml: good().replace('${BASE}', '${FOREIGN}/base/x:1'),
    code: 1,
    expect: [/unsupported media type "application\/vnd\.example\.layer"/],
  },
  {
    name: 'base with a missing blob',
    yaml: good().replace('${BASE}', '${DAMAGED_MISSING}'),
    code: 1,
    expect: [/sha256:[0-9a-f]{64}/, /BLOB_UNKNOWN|not found|404|missing/i],
  },
  {
    name: 'base with a corrupt blob (digest mismatch)',
    yaml: good().replace('${BASE}', '${DAMAGED_CORRUPT}'),
    code: 1,
    expect: [/digest/i, /mismatch|expected/i],
  },
  {
    name: 'single-platform base of another platform',
    yaml: good('    platforms: [linux/arm64]\n'),
    code: 1,
    expect: [/is linux\/amd64, not linux\/arm64/],
  },
  {
    name: 'push target unreachable',
    yaml: good().replace('${REG}/bad/app', '127.0.0.1:1/bad/app'),
    code: 1,
    expect: [/127\.0\.0\.1:1/, /no tag was moved/],
  },
];

beforeAll(async () => {
  reg = await startRegistry();
  base = await pushBusyboxBase(reg.host);
  // A separate registry whose storage the test damages.
  damaged = await startRegistry();
  damagedBase = await pushBusyboxBase(damaged.host, 'base/damaged');
  root = mkdtempSync(join(tmpdir(), 'oci-build-bad-'));
  const html = await startEvilRegistry((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><html><body>Welcome to nginx!</body></html>');
  });
  const garbage = await startEvilRegistry(manifestServer('{"schemaVersion": 2, "config": ', 'application/vnd.oci.image.manifest.v1+json'));
  const huge = await startEvilRegistry(
    manifestServer(JSON.stringify({ schemaVersion: 2, pad: 'x'.repeat(5 << 20) }), 'application/vnd.oci.image.manifest.v1+json'),
  );
  const schema1 = await startEvilRegistry(
    manifestServer(
      JSON.stringify({ schemaVersion: 1, name: 'base/x', tag: '1', fsLayers: [] }),
      'application/vnd.docker.distribution.manifest.v1+prettyjws',
    ),
  );
  const config = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha('layer')] } });
  const foreign = await startEvilRegistry(
    manifestServer(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
        layers: [{ mediaType: 'application/vnd.example.layer', digest: sha('layer'), size: 5 }],
      }),
      'application/vnd.oci.image.manifest.v1+json',
      { [sha(config)]: config },
    ),
  );
  evil.push(html, garbage, huge, schema1, foreign);
  vars.HTML = html.host;
  vars.GARBAGE = garbage.host;
  vars.HUGE = huge.host;
  vars.SCHEMA1 = schema1.host;
  vars.FOREIGN = foreign.host;
  // Damage the second registry: one copy of the base loses its layer blob, another gets a corrupt one.
  const blobData = (digest: string) =>
    join(damaged.dir, 'data/docker/registry/v2/blobs/sha256', digest.slice(7, 9), digest.slice(7), 'data');
  const manifest = JSON.parse(
    await (
      await fetch(`${damaged.url}/v2/base/damaged/manifests/single`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })
    ).text(),
  );
  const layer = manifest.layers[0].digest as string;
  const bytes = readFileSync(blobData(layer));
  const mid = bytes.length >> 1;
  bytes[mid] = bytes[mid]! ^ 0xff;
  writeFileSync(blobData(layer), bytes);
  vars.DAMAGED_CORRUPT = damagedBase.single;
  // For the missing case, push a second base (different content, so its own blobs) and delete one.
  const other = await pushBusyboxBase(damaged.host, 'base/missing');
  const m2 = JSON.parse(
    await (
      await fetch(`${damaged.url}/v2/base/missing/manifests/single`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })
    ).text(),
  );
  if (m2.config.digest !== manifest.config.digest) rmSync(blobData(m2.config.digest));
  else rmSync(blobData(layer));
  vars.DAMAGED_MISSING = other.single;
  vars.REG = reg.host;
  vars.BASE = base.single;
}, 300_000);

const vars: Record<string, string> = {};

afterAll(async () => {
  for (const e of evil) await e.close();
  await reg?.stop();
  await damaged?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe(`bad input corpus (${cases.length} cases)`, () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const dir = mkdtempSync(join(root, 'case-'));
    writeFileSync(join(dir, 'app.txt'), 'app\n');
    writeFileSync(join(root, 'outside.txt'), 'outside\n');
    for (const [f, content] of Object.entries(c.files ?? {})) writeFileSync(join(dir, f), content);
    await c.setup?.(dir);
    const yaml = (c.yaml ?? good()).replace(
      /\$\{(REG|BASE|HTML|GARBAGE|HUGE|SCHEMA1|FOREIGN|DAMAGED_MISSING|DAMAGED_CORRUPT)\}/g,
      (_m, k: string) => vars[k] ?? '',
    );
    writeFileSync(join(dir, 'oci-build.yml'), yaml);
    const r = await cli(
      ['build', '--config', join(dir, 'oci-build.yml'), '--push', '--tag', 'v1', '--cache-dir', join(dir, 'cache'), ...(c.args ?? [])],
      { env: { ...process.env, ...(c.env ?? {}), HOME: dir } },
    );
    expect(r.code, r.stderr).toBe(c.code);
    for (const e of c.expect) expect(r.stderr).toMatch(e);
    expect(r.stderr).not.toMatch(/\n\s+at .*\(.*\.js:\d+:\d+\)/); // a message, not a stack trace
    // Nothing was pushed: the registry holds only the base images.
    const catalog = (await (await fetch(`${reg.url}/v2/_catalog`)).json()) as { repositories: string[] };
    expect(catalog.repositories.filter((x) => !x.startsWith('base/'))).toEqual([]);
    expect(existsSync(join(dir, 'digests.json'))).toBe(false);
  });
});
