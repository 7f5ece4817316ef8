/**
 * Fault matrix: each row pushes a small multi-blob image (two base layers fetched from another
 * "registry", three local layers, config, manifest, two tags) with RegistryPublisher THROUGH a
 * fault-injecting proxy in front of the real registry (token auth), then checks the outcome
 * straight against the registry with skopeo: either every tag serves the new manifest, or the
 * push failed cleanly (no tag created or moved) with an error that says what failed and what
 * was already uploaded.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import type { BuiltImage } from '../src/image/image.js';
import { PublishError, RegistryPublisher, type PublishStats } from '../src/output/publisher.js';
import { RegistryClient, type RepoRef } from '../src/registry/client.js';
import { credentialsFrom } from '../src/registry/credentials.js';
import { startBlobHost, startFaultProxy, type FaultProxy, type ProxyRecord, type Rule } from './helpers/fault-proxy.js';
import {
  bindTargets,
  captureLogger,
  imageOf,
  pushDirect,
  randomLayer,
  storeFor,
  tagDigest,
  variantOf,
  type TestLayer,
} from './helpers/publish-fixture.js';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { startTokenServer, type TokenServer } from './helpers/token-server.js';

const USER = 'ci-bot';
const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;
const CREDS = { username: USER, password: PASSWORD };
const RETRY = { retries: 3, baseDelayMs: 25, maxDelayMs: 250, maxElapsedMs: 15_000 };
const TIMEOUT_MS = 1500;
const TAGS = ['v1', 'v2'];

let work: string;
let ts: TokenServer;
let reg: TestRegistry;
let proxy: FaultProxy;
let baseProxy: FaultProxy;
let blobHost: Awaited<ReturnType<typeof startBlobHost>>;
/** In front of blobHost: faults at the storage a blob GET is redirected to. */
let storageProxy: FaultProxy;
let direct: RegistryClient;
const logs: string[] = [];
const errorMessages: string[] = [];

// The image: base layers B1, B2 (in base/img, reached through baseProxy as another registry),
// local layers L1..L3 and a config.
let B1!: TestLayer, B2!: TestLayer, L1!: TestLayer, L2!: TestLayer, L3!: TestLayer;
let layers: TestLayer[];
let image: BuiltImage;
let P1: TestLayer;
let previous: BuiltImage;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'oci-build-faults-'));
  ts = await startTokenServer({ users: { [USER]: PASSWORD } });
  reg = await startRegistry({ authYaml: ts.authYaml });
  proxy = await startFaultProxy(reg.host);
  baseProxy = await startFaultProxy(reg.host);
  blobHost = await startBlobHost(join(reg.dir, 'data'));
  storageProxy = await startFaultProxy(new URL(blobHost.url).host);
  direct = new RegistryClient({
    retry: RETRY,
    logger: captureLogger(logs),
    credentials: credentialsFrom({ explicit: { [reg.host]: CREDS }, dockerConfigPath: null }),
  });
  const baseRepo: RepoRef = { registry: baseProxy.host, repository: 'base/img' };
  B1 = randomLayer(256 * 1024, { kind: 'remote', repo: baseRepo });
  B2 = randomLayer(48 * 1024, { kind: 'remote', repo: baseRepo });
  L1 = randomLayer(512 * 1024);
  L2 = randomLayer(160 * 1024);
  L3 = randomLayer(24 * 1024);
  layers = [B1, B2, L1, L2, L3];
  image = imageOf(layers, 'matrix');
  const baseImage = imageOf([B1, B2], 'base');
  await pushDirect(direct, { registry: reg.host, repository: 'base/img' }, baseImage, [B1, B2], ['latest']);
  P1 = randomLayer(8 * 1024);
  previous = imageOf([P1], 'previous');
});

afterAll(async () => {
  await direct?.close();
  await storageProxy?.close();
  await blobHost?.close();
  await baseProxy?.close();
  await proxy?.close();
  await reg?.stop();
  await ts?.close();
  rmSync(work, { recursive: true, force: true });
});

// --- Running one publish through the proxies -------------------------------------------------

interface PublishRun {
  repo: RepoRef;
  error?: unknown;
  stats: PublishStats;
  elapsedMs: number;
  /** Requests the target proxy saw during the run. */
  target: ProxyRecord[];
  /** Requests the base proxy saw. */
  base: ProxyRecord[];
}

function newClient(): RegistryClient {
  return new RegistryClient({
    retry: RETRY,
    headersTimeoutMs: TIMEOUT_MS,
    bodyTimeoutMs: TIMEOUT_MS,
    logger: captureLogger(logs),
    credentials: credentialsFrom({ explicit: { [proxy.host]: CREDS, [baseProxy.host]: CREDS }, dockerConfigPath: null }),
  });
}

async function publishThroughProxy(repository: string): Promise<PublishRun> {
  const client = newClient();
  const store = await storeFor(image, layers, work);
  const publisher = new RegistryPublisher(client, captureLogger(logs));
  const repo = { registry: proxy.host, repository };
  const t0 = Date.now();
  const firstTarget = proxy.requests.length;
  const firstBase = baseProxy.requests.length;
  let error: unknown;
  try {
    await publisher.publish(bindTargets([{ variant: variantOf(image), repo, tags: TAGS }], store, client));
  } catch (e) {
    error = e;
    errorMessages.push(e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e));
  } finally {
    await client.close();
  }
  return {
    repo,
    error,
    stats: { ...publisher.stats },
    elapsedMs: Date.now() - t0,
    target: proxy.requests.slice(firstTarget),
    base: baseProxy.requests.slice(firstBase),
  };
}

async function tagsNow(repository: string): Promise<(Digest | undefined)[]> {
  return await Promise.all(TAGS.map((t) => tagDigest(reg.host, repository, t, CREDS)));
}

// --- Request selectors ------------------------------------------------------------------------

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const commitOf = (d: Digest) => new RegExp(`/blobs/uploads/[^?]*\\?.*digest=${esc(encodeURIComponent(d))}`);
const blobPath = (d: Digest) => new RegExp(`/blobs/${esc(d)}(\\?|$)`);
/** Requests that carried credentials (leaves out the anonymous first contact answered with 401). */
const is = (r: ProxyRecord, method: string, path: RegExp) => r.auth && r.method === method && path.test(r.path);
const count = (rs: ProxyRecord[], method: string, path: RegExp) => rs.filter((r) => is(r, method, path)).length;
const MANIFEST_BY_DIGEST = /\/manifests\/sha256:[a-f0-9]{64}$/;
const UPLOAD_START = /\/blobs\/uploads\/$/;
const PATCH = /\/blobs\/uploads\/[^/?]+/;
const patchBytes = (rs: ProxyRecord[]) => rs.filter((r) => r.method === 'PATCH').reduce((n, r) => n + r.requestBytes, 0);
const allBlobBytes = () => layers.reduce((n, l) => n + l.bytes.length, 0) + image.configBytes.length;

// --- The matrix -------------------------------------------------------------------------------

interface Row {
  name: string;
  /** The fault, in words (the printed matrix). */
  fault: string;
  expect: 'ok' | 'fail';
  /** Rules for the target proxy and the base proxy. */
  target?: () => Rule[];
  base?: () => Rule[];
  /** Rules for the storage host blob GETs may be redirected to. */
  storage?: () => Rule[];
  /** Tag the repository with an older image first (a failure must leave it in place). */
  previous?: boolean;
  /** For failures: what the error message must say. */
  error?: () => RegExp[];
  check?: (run: PublishRun) => void | Promise<void>;
}

const rows: Row[] = [
  {
    name: 'baseline',
    fault: 'none',
    expect: 'ok',
    previous: true,
    check: (r) => {
      expect(patchBytes(r.target)).toBe(allBlobBytes());
      expect(r.stats).toMatchObject({ blobsUploaded: 6, manifestsPushed: 1, tagsWritten: 2 });
    },
  },
  {
    name: '503 once on upload POST',
    fault: 'POST /blobs/uploads/ -> 503 (1x)',
    expect: 'ok',
    target: () => [{ method: 'POST', path: UPLOAD_START, fault: { kind: 'status', status: 503 } }],
    check: (r) => expect(count(r.target, 'POST', UPLOAD_START)).toBe(7),
  },
  {
    name: '502 twice on blob HEAD',
    fault: 'HEAD /blobs/<L1> -> 502 (2x)',
    expect: 'ok',
    target: () => [{ method: 'HEAD', path: blobPath(L1.layer.descriptor.digest), count: 2, fault: { kind: 'status', status: 502 } }],
    check: (r) => expect(count(r.target, 'HEAD', blobPath(L1.layer.descriptor.digest))).toBe(3),
  },
  {
    name: '503 once on manifest PUT',
    fault: 'PUT /manifests/<digest> -> 503 (1x)',
    expect: 'ok',
    previous: true,
    target: () => [{ method: 'PUT', path: MANIFEST_BY_DIGEST, fault: { kind: 'status', status: 503 } }],
    check: (r) => expect(count(r.target, 'PUT', MANIFEST_BY_DIGEST)).toBe(2),
  },
  {
    name: '500 beyond the retry budget',
    fault: 'PUT commit of L2 -> 500 (always)',
    expect: 'fail',
    previous: true,
    target: () => [{ method: 'PUT', path: commitOf(L2.layer.descriptor.digest), count: Infinity, fault: { kind: 'status', status: 500 } }],
    error: () => [
      /push failed while uploading blobs/,
      /500 UNKNOWN/,
      new RegExp(`digest=${esc(encodeURIComponent(L2.layer.descriptor.digest))}`),
      /no tag was moved/,
      /already in the registry.*\d+ blobs uploaded/,
    ],
    check: (r) => {
      expect(count(r.target, 'PUT', commitOf(L2.layer.descriptor.digest))).toBe(RETRY.retries + 1);
      expect(count(r.target, 'PUT', MANIFEST_BY_DIGEST)).toBe(0);
    },
  },
  {
    name: '429 Retry-After: 1 honoured',
    fault: 'PUT /manifests/<digest> -> 429, Retry-After: 1 (1x)',
    expect: 'ok',
    target: () => [{ method: 'PUT', path: MANIFEST_BY_DIGEST, fault: { kind: 'status', status: 429, headers: { 'retry-after': '1' } } }],
    check: (r) => {
      const puts = r.target.filter((x) => is(x, 'PUT', MANIFEST_BY_DIGEST));
      expect(puts).toHaveLength(2);
      expect(puts[1]!.at - puts[0]!.at).toBeGreaterThanOrEqual(1000);
    },
  },
  {
    name: '429 without Retry-After',
    fault: 'HEAD /blobs/* -> 429 (2x)',
    expect: 'ok',
    target: () => [{ method: 'HEAD', path: /\/blobs\/sha256:/, count: 2, fault: { kind: 'status', status: 429 } }],
    check: (r) => expect(r.target.filter((x) => x.status === 429)).toHaveLength(2),
  },
  {
    name: 'Retry-After beyond the time budget',
    fault: 'PUT /manifests/<digest> -> 503, Retry-After: 3600',
    expect: 'fail',
    previous: true,
    target: () => [
      {
        method: 'PUT',
        path: MANIFEST_BY_DIGEST,
        count: Infinity,
        fault: { kind: 'status', status: 503, headers: { 'retry-after': '3600' } },
      },
    ],
    error: () => [/push failed while pushing manifests by digest/, /503 UNAVAILABLE/, /6 blobs uploaded/],
    check: (r) => {
      expect(count(r.target, 'PUT', MANIFEST_BY_DIGEST)).toBe(1);
      expect(r.elapsedMs).toBeLessThan(RETRY.maxElapsedMs);
    },
  },
  {
    name: 'reset before response on PATCH',
    fault: 'PATCH (L1) -> body read, then TCP reset',
    expect: 'ok',
    target: () => [
      { method: 'PATCH', path: PATCH, when: (h) => Number(h['content-length']) === L1.bytes.length, fault: { kind: 'reset' } },
    ],
    check: (r) => {
      const l1 = r.target.filter((x) => x.method === 'PATCH' && x.requestBytes === L1.bytes.length);
      expect(l1).toHaveLength(2); // the body was opened again and sent in full
      expect(patchBytes(r.target)).toBe(allBlobBytes() + L1.bytes.length);
    },
  },
  {
    name: 'reset mid-request on PATCH',
    fault: 'PATCH (L1) -> TCP reset after 64 KiB of the body',
    expect: 'ok',
    target: () => [
      {
        method: 'PATCH',
        path: PATCH,
        when: (h) => Number(h['content-length']) === L1.bytes.length,
        fault: { kind: 'reset', afterRequestBytes: 64 * 1024 },
      },
    ],
    check: (r) => expect(r.target.filter((x) => x.method === 'PATCH' && x.requestBytes === L1.bytes.length)).toHaveLength(1),
  },
  {
    name: 'reset mid-body on base layer GET',
    fault: 'GET base B1 -> TCP reset after 100 KiB',
    expect: 'ok',
    base: () => [{ method: 'GET', path: blobPath(B1.layer.descriptor.digest), fault: { kind: 'reset-body', afterBytes: 100 * 1024 } }],
    check: (r) => {
      // Resumed where it broke: the second request asks only for the rest.
      const gets = r.base.filter((x) => is(x, 'GET', blobPath(B1.layer.descriptor.digest)));
      expect(gets.map((g) => g.status)).toEqual([200, 206]);
      expect(gets[1]!.range).toMatch(/^bytes=\d+-$/);
      expect(Number(/\d+/.exec(gets[1]!.range!)![0])).toBeGreaterThan(0);
    },
  },
  {
    name: 'base layer GET resets every time',
    fault: 'GET base B1 -> TCP reset after 16 KiB (always)',
    expect: 'fail',
    base: () => [
      { method: 'GET', path: blobPath(B1.layer.descriptor.digest), count: Infinity, fault: { kind: 'reset-body', afterBytes: 16 * 1024 } },
    ],
    error: () => [
      /push failed while uploading blobs/,
      new RegExp(
        `GET http://127\\.0\\.0\\.1:\\d+/v2/base/img/blobs/${esc(B1.layer.descriptor.digest)} failed: (ECONNRESET|UND_ERR_SOCKET)`,
      ),
      /no tag was moved/,
    ],
    // The first GET and one resume per retry, then it gives up.
    check: (r) => expect(count(r.base, 'GET', blobPath(B1.layer.descriptor.digest))).toBe(RETRY.retries + 1),
  },
  {
    name: 'truncated base layer GET',
    fault: 'GET base B1 -> connection closed after 64 KiB',
    expect: 'ok',
    base: () => [{ method: 'GET', path: blobPath(B1.layer.descriptor.digest), fault: { kind: 'truncate', bytes: 64 * 1024 } }],
    check: (r) => {
      const gets = r.base.filter((x) => is(x, 'GET', blobPath(B1.layer.descriptor.digest)));
      expect(gets.map((g) => [g.status, g.range])).toEqual([
        [200, undefined],
        [206, `bytes=${64 * 1024}-`],
      ]);
    },
  },
  {
    name: 'headers delayed past headersTimeout',
    fault: `HEAD /blobs/<L2> -> headers after ${TIMEOUT_MS + 700} ms`,
    expect: 'ok',
    target: () => [{ method: 'HEAD', path: blobPath(L2.layer.descriptor.digest), fault: { kind: 'delay-headers', ms: TIMEOUT_MS + 700 } }],
    check: (r) => {
      expect(count(r.target, 'HEAD', blobPath(L2.layer.descriptor.digest))).toBe(2);
      expect(r.elapsedMs).toBeGreaterThanOrEqual(TIMEOUT_MS);
    },
  },
  {
    name: 'body stalled past bodyTimeout',
    fault: `GET base B1 -> body stalls ${TIMEOUT_MS + 700} ms after 32 KiB`,
    expect: 'ok',
    base: () => [
      {
        method: 'GET',
        path: blobPath(B1.layer.descriptor.digest),
        fault: { kind: 'delay-body', afterBytes: 32 * 1024, ms: TIMEOUT_MS + 700 },
      },
    ],
    check: (r) => {
      const gets = r.base.filter((x) => is(x, 'GET', blobPath(B1.layer.descriptor.digest)));
      expect(gets.map((g) => [g.status, g.range])).toEqual([
        [200, undefined],
        [206, `bytes=${32 * 1024}-`],
      ]);
    },
  },
  {
    name: 'truncated manifest GET',
    fault: 'HEAD /manifests/* without digest, length; GET -> cut after 100 B',
    expect: 'ok',
    target: () => [
      {
        method: 'HEAD',
        path: /\/manifests\//,
        count: Infinity,
        fault: { kind: 'strip-header', name: ['docker-content-digest', 'content-length'] },
      },
      { method: 'GET', path: /\/manifests\//, fault: { kind: 'truncate', bytes: 100 } },
    ],
    // The confirm step falls back to a GET (the HEAD has no digest): cut short once and
    // retried (2); then the publisher reads both tags before moving them (2 more).
    check: (r) => expect(count(r.target, 'GET', /\/manifests\//)).toBe(4),
  },
  {
    name: 'wrong digest on upload PUT',
    fault: 'PUT commit of L3 -> Docker-Content-Digest: <other>',
    expect: 'fail',
    previous: true,
    target: () => [{ method: 'PUT', path: commitOf(L3.layer.descriptor.digest), fault: { kind: 'wrong-digest' } }],
    error: () => [
      /push failed while uploading blobs/,
      /digest mismatch for blob/,
      new RegExp(esc(L3.layer.descriptor.digest)),
      /already in the registry/,
    ],
    check: (r) => expect(count(r.target, 'PUT', commitOf(L3.layer.descriptor.digest))).toBe(1),
  },
  {
    name: 'corrupted base layer body',
    fault: 'GET base B2 -> one byte flipped',
    expect: 'fail',
    base: () => [{ method: 'GET', path: blobPath(B2.layer.descriptor.digest), fault: { kind: 'corrupt-body' } }],
    error: () => [/push failed while uploading blobs/, /digest mismatch for blob/, new RegExp(esc(B2.layer.descriptor.digest))],
    check: (r) => expect(count(r.base, 'GET', blobPath(B2.layer.descriptor.digest))).toBe(1),
  },
  {
    name: '400 MANIFEST_INVALID not retried',
    fault: 'PUT /manifests/<digest> -> 400 MANIFEST_INVALID',
    expect: 'fail',
    previous: true,
    target: () => [
      {
        method: 'PUT',
        path: MANIFEST_BY_DIGEST,
        count: Infinity,
        fault: { kind: 'status', status: 400, body: { errors: [{ code: 'MANIFEST_INVALID', message: 'manifest invalid' }] } },
      },
    ],
    error: () => [/pushing manifests by digest/, /400 MANIFEST_INVALID: manifest invalid/, /no tag was moved/],
    check: (r) => expect(count(r.target, 'PUT', MANIFEST_BY_DIGEST)).toBe(1),
  },
  {
    name: '403 DENIED not retried',
    fault: 'PUT /manifests/<digest> -> 403 DENIED',
    expect: 'fail',
    target: () => [
      {
        method: 'PUT',
        path: MANIFEST_BY_DIGEST,
        count: Infinity,
        fault: {
          kind: 'status',
          status: 403,
          body: { errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }] },
        },
      },
    ],
    error: () => [/403 DENIED: requested access to the resource is denied/, /may push to matrix\//],
    check: (r) => expect(count(r.target, 'PUT', MANIFEST_BY_DIGEST)).toBe(1),
  },
  {
    name: '404 on manifest PUT not retried',
    fault: 'PUT /manifests/<digest> -> 404 NAME_UNKNOWN',
    expect: 'fail',
    previous: true,
    target: () => [
      {
        method: 'PUT',
        path: MANIFEST_BY_DIGEST,
        count: Infinity,
        fault: {
          kind: 'status',
          status: 404,
          body: { errors: [{ code: 'NAME_UNKNOWN', message: 'repository name not known to registry' }] },
        },
      },
    ],
    error: () => [/404 NAME_UNKNOWN/],
    check: (r) => expect(count(r.target, 'PUT', MANIFEST_BY_DIGEST)).toBe(1),
  },
  {
    name: 'DENIED in a 5xx not retried',
    fault: 'POST /blobs/uploads/ -> 500 with code DENIED',
    expect: 'fail',
    target: () => [
      {
        method: 'POST',
        path: UPLOAD_START,
        count: Infinity,
        fault: { kind: 'status', status: 500, body: { errors: [{ code: 'DENIED', message: 'quota exceeded' }] } },
      },
    ],
    error: () => [/500 DENIED: quota exceeded/],
    // One attempt per blob that was started before the first failure stopped the rest.
    check: (r) => expect(count(r.target, 'POST', UPLOAD_START)).toBeLessThanOrEqual(4),
  },
  {
    name: '401 even after a token refresh',
    fault: 'PUT /manifests/<digest> -> 401 (always)',
    expect: 'fail',
    target: () => [
      {
        method: 'PUT',
        path: MANIFEST_BY_DIGEST,
        count: Infinity,
        fault: {
          kind: 'status',
          status: 401,
          headers: { 'www-authenticate': `Bearer realm="${ts.realm}",service="${ts.service}",error="invalid_token"` },
          body: { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] },
        },
      },
    ],
    error: () => [/401 UNAUTHORIZED/, /credentials for 127\.0\.0\.1:\d+ were rejected/],
    check: (r) => expect(count(r.target, 'PUT', MANIFEST_BY_DIGEST)).toBe(2),
  },
  {
    name: 'blob GET redirected to another origin',
    fault: 'GET base B1, B2 -> 307 to a storage host',
    expect: 'ok',
    base: () => [{ method: 'GET', path: /\/blobs\/sha256:/, count: Infinity, fault: { kind: 'redirect', to: blobHost.url } }],
    check: (r) => {
      const seen = blobHost.seen.filter((s) => s.at >= r.base[0]!.at);
      expect(seen.map((s) => s.path).sort()).toEqual(
        [`/v2/base/img/blobs/${B1.layer.descriptor.digest}`, `/v2/base/img/blobs/${B2.layer.descriptor.digest}`].sort(),
      );
      expect(seen.every((s) => s.headers.authorization === undefined)).toBe(true);
      expect(r.base.filter((x) => x.method === 'GET').every((x) => x.status === 307 || x.status === 401)).toBe(true);
    },
  },
  {
    name: 'redirected GET reset, no Range support',
    fault: 'GET base B1 -> 307 to storage that ignores Range; reset after 100 KiB',
    expect: 'ok',
    base: () => [
      { method: 'GET', path: blobPath(B1.layer.descriptor.digest), count: Infinity, fault: { kind: 'redirect', to: storageProxy.url } },
    ],
    storage: () => [{ method: 'GET', path: blobPath(B1.layer.descriptor.digest), fault: { kind: 'reset-body', afterBytes: 100 * 1024 } }],
    check: () => {
      // The resumed request asked for the rest, got the whole blob (200) and skipped what it had.
      const gets = storageProxy.requests.filter((x) => x.method === 'GET');
      expect(gets.map((g) => g.status)).toEqual([200, 200]);
      expect(gets[0]!.range).toBeUndefined();
      expect(gets[1]!.range).toMatch(/^bytes=[1-9]\d*-$/);
      expect(gets.every((g) => !g.auth)).toBe(true);
    },
  },
  {
    name: 'registry still catching up on blobs',
    fault: 'PUT /manifests/<digest> -> 400 MANIFEST_BLOB_UNKNOWN (1x)',
    expect: 'ok',
    target: () => [
      {
        method: 'PUT',
        path: MANIFEST_BY_DIGEST,
        fault: { kind: 'status', status: 400, body: { errors: [{ code: 'MANIFEST_BLOB_UNKNOWN', message: 'blob unknown to registry' }] } },
      },
    ],
    check: (r) => {
      expect(count(r.target, 'PUT', MANIFEST_BY_DIGEST)).toBe(2);
      expect(count(r.target, 'PATCH', PATCH)).toBe(6); // all blobs were there: nothing re-sent
    },
  },
  {
    name: 'blob lost before the manifest',
    fault: 'PUT /manifests/<digest> -> 400 MANIFEST_BLOB_UNKNOWN; re-check HEAD <L3> -> 404',
    expect: 'ok',
    previous: true,
    target: () => [
      {
        method: 'PUT',
        path: MANIFEST_BY_DIGEST,
        fault: { kind: 'status', status: 400, body: { errors: [{ code: 'MANIFEST_BLOB_UNKNOWN', message: 'blob unknown to registry' }] } },
      },
      {
        method: 'HEAD',
        path: blobPath(L3.layer.descriptor.digest),
        nth: 2,
        fault: { kind: 'status', status: 404, body: { errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown' }] } },
      },
    ],
    check: (r) => {
      expect(count(r.target, 'PUT', MANIFEST_BY_DIGEST)).toBe(2);
      expect(r.target.filter((x) => x.method === 'PATCH' && x.requestBytes === L3.bytes.length)).toHaveLength(2);
      expect(r.stats.blobsUploaded).toBe(7);
    },
  },
  {
    name: 'blobs never become visible',
    fault: 'PUT /manifests/<digest> -> 400 MANIFEST_BLOB_UNKNOWN (always)',
    expect: 'fail',
    target: () => [
      {
        method: 'PUT',
        path: MANIFEST_BY_DIGEST,
        count: Infinity,
        fault: { kind: 'status', status: 400, body: { errors: [{ code: 'MANIFEST_BLOB_UNKNOWN', message: 'blob unknown to registry' }] } },
      },
    ],
    error: () => [/pushing manifests by digest/, /400 MANIFEST_BLOB_UNKNOWN: blob unknown to registry/, /no tag was moved/],
    check: (r) => expect(count(r.target, 'PUT', MANIFEST_BY_DIGEST)).toBe(3), // first try + 2 check-and-retry rounds
  },
  {
    name: 'tag PUT fails after manifests',
    fault: 'PUT /manifests/v2 -> 403 DENIED',
    expect: 'fail',
    previous: true,
    target: () => [
      {
        method: 'PUT',
        path: /\/manifests\/v2$/,
        count: Infinity,
        fault: { kind: 'status', status: 403, body: { errors: [{ code: 'DENIED', message: 'tag is immutable' }] } },
      },
    ],
    error: () => [
      /push failed while writing tags/,
      /no tag was moved \(put back to their previous image: [^)]*\/matrix\/r\d+:v1\)/,
      /tags not written: [^;]*\/matrix\/r\d+:v2/,
      /403 DENIED: tag is immutable/,
    ],
    check: (r) => expect(count(r.target, 'PUT', /\/manifests\/v2$/)).toBe(1),
  },
  {
    name: 'tag PUT response lost',
    fault: 'PUT /manifests/v1 -> stored, then TCP reset',
    expect: 'ok',
    previous: true,
    target: () => [{ method: 'PUT', path: /\/manifests\/v1$/, fault: { kind: 'reset', forward: true } }],
    check: (r) => expect(count(r.target, 'PUT', /\/manifests\/v1$/)).toBe(2),
  },
];

interface Outcome {
  row: Row;
  outcome: string;
  ms: number;
  requests: number;
  ok: boolean;
  error?: string;
}
const outcomes: Outcome[] = [];

function printMatrix(): void {
  const head = ['#', 'scenario', 'fault injected', 'expected', 'outcome', 'requests', 'time', 'pass'];
  const body = outcomes.map((o, i) => [
    String(i + 1),
    o.row.name,
    o.row.fault,
    o.row.expect === 'ok' ? 'complete push' : 'clean failure',
    o.outcome,
    String(o.requests),
    `${(o.ms / 1000).toFixed(2)} s`,
    o.ok ? 'yes' : 'NO',
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...body.map((r) => r[c]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const sep = `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`;
  const errs = outcomes.filter((o) => o.error).map((o) => `  #${outcomes.indexOf(o) + 1} ${o.error!.replace(/\n/g, '\n      ')}`);
  console.log(
    [
      '',
      'Fault matrix (real registry, token auth, through the fault proxy):',
      line(head),
      sep,
      ...body.map(line),
      '',
      'Errors reported by the failing rows:',
      ...errs,
      '',
    ].join('\n'),
  );
}

describe('fault matrix: RegistryPublisher through a fault proxy to the real registry', () => {
  afterAll(() => printMatrix());

  it.each(rows.map((r, i) => [i + 1, r.name, r] as const))('%i. %s', async (i, _name, row) => {
    const repository = `matrix/r${i}`;
    let before: (Digest | undefined)[] = [undefined, undefined];
    if (row.previous) {
      await pushDirect(direct, { registry: reg.host, repository }, previous, [P1], TAGS);
      before = [previous.manifestDescriptor.digest, previous.manifestDescriptor.digest];
    }
    for (const r of row.target?.() ?? []) proxy.add({ authorized: true, ...r });
    for (const r of row.base?.() ?? []) baseProxy.add({ authorized: true, ...r });
    for (const r of row.storage?.() ?? []) storageProxy.add(r);
    let run: PublishRun | undefined;
    let outcome = 'not run';
    try {
      run = await publishThroughProxy(repository);
      const after = await tagsNow(repository);
      const want = image.manifestDescriptor.digest;
      if (row.expect === 'ok') {
        if (run.error) throw run.error;
        expect(after).toEqual([want, want]);
        for (const l of [...layers.map((x) => x.layer.descriptor.digest), image.configDescriptor.digest]) {
          expect(await direct.blobExists({ registry: reg.host, repository }, l)).toBe(true);
        }
        outcome = `pushed; v1, v2 = ${want.slice(7, 19)}`;
      } else {
        expect(run.error).toBeInstanceOf(PublishError);
        const msg = (run.error as Error).message;
        for (const re of row.error?.() ?? []) expect(msg).toMatch(re);
        // Tags that moved before a later tag failed are put back: no tag of the run has moved.
        expect(after).toEqual(before);
        const tagState = after.map((d, k) => `${TAGS[k]}=${d === undefined ? 'absent' : d === want ? 'new' : 'previous'}`).join(', ');
        outcome = `failed (${(run.error as PublishError).phase}); ${tagState}`;
      }
      await row.check?.(run);
      outcomes.push({
        row,
        outcome,
        ms: run.elapsedMs,
        requests: run.target.length + run.base.length,
        ok: true,
        ...(run.error ? { error: (run.error as Error).message } : {}),
      });
    } catch (e) {
      outcomes.push({
        row,
        outcome: `UNEXPECTED: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 120)}`,
        ms: run?.elapsedMs ?? 0,
        requests: (run?.target.length ?? 0) + (run?.base.length ?? 0),
        ok: false,
      });
      throw e;
    } finally {
      proxy.reset();
      baseProxy.reset();
      storageProxy.reset();
    }
  });
});

describe('after faults', () => {
  it('publishing the same image again writes no manifest and no tag, and still checks every blob', async () => {
    const repository = 'matrix/again';
    const first = await publishThroughProxy(repository);
    expect(first.error).toBeUndefined();
    const again = await publishThroughProxy(repository);
    expect(again.error).toBeUndefined();
    expect(again.target.filter((r) => r.method === 'PUT' || r.method === 'POST' || r.method === 'PATCH')).toEqual([]);
    expect(again.stats).toMatchObject({ blobsUploaded: 0, blobsExisting: layers.length + 1, manifestsPushed: 0, tagsWritten: 0 });
    expect(again.stats.tagsInPlace).toBe(TAGS.length);
    expect(count(again.target, 'HEAD', MANIFEST_BY_DIGEST)).toBe(1);
    expect(await tagsNow(repository)).toEqual(TAGS.map(() => image.manifestDescriptor.digest));
  });

  it('re-running after a fault completes the job and uploads only what is missing', async () => {
    const repository = 'matrix/rerun';
    const repoDirect = { registry: reg.host, repository };
    proxy.add({
      method: 'PUT',
      path: commitOf(L2.layer.descriptor.digest),
      count: Infinity,
      authorized: true,
      fault: { kind: 'status', status: 500 },
    });
    const first = await publishThroughProxy(repository);
    expect(first.error).toBeInstanceOf(PublishError);
    expect((first.error as Error).message).toMatch(/already in the registry/);
    proxy.reset();
    const all = [
      ...layers.map((l) => ({ d: l.layer.descriptor.digest, size: l.bytes.length })),
      { d: image.configDescriptor.digest, size: image.configBytes.length },
    ];
    const missing: typeof all = [];
    for (const b of all) if (!(await direct.blobExists(repoDirect, b.d))) missing.push(b);
    expect(missing.map((m) => m.d)).toContain(L2.layer.descriptor.digest);
    expect(missing.length).toBeLessThan(all.length);

    const second = await publishThroughProxy(repository);
    expect(second.error).toBeUndefined();
    const patches = second.target.filter((r) => r.method === 'PATCH');
    expect(patches).toHaveLength(missing.length);
    expect(patchBytes(second.target)).toBe(missing.reduce((n, m) => n + m.size, 0));
    expect(second.stats.blobsUploaded).toBe(missing.length);
    expect(second.stats.blobsExisting).toBe(all.length - missing.length);
    expect(await tagsNow(repository)).toEqual([image.manifestDescriptor.digest, image.manifestDescriptor.digest]);
    console.log(
      `re-run: first run failed having uploaded ${all.length - missing.length}/${all.length} blobs; second run uploaded ${missing.length} blob(s), ${patchBytes(second.target)} bytes`,
    );
  });

  it('two concurrent publishes of the same image and tags leave a consistent registry', async () => {
    // Several rounds: the interesting interleavings (one publisher writing tags while the other
    // still commits the same blobs) do not happen every time.
    const logsBefore = logs.length;
    for (let round = 1; round <= 3; round++) {
      const repository = `matrix/concurrent${round}`;
      await pushDirect(direct, { registry: reg.host, repository }, previous, [P1], TAGS);
      // A little turbulence for both: one 503 on an upload start, one reset on a PATCH.
      proxy.add({ method: 'POST', path: UPLOAD_START, nth: 3, authorized: true, fault: { kind: 'status', status: 503 } });
      proxy.add({ method: 'PATCH', path: PATCH, nth: 4, authorized: true, fault: { kind: 'reset' } });
      const [a, b] = await Promise.all([publishThroughProxy(repository), publishThroughProxy(repository)]);
      proxy.reset();
      expect(a.error).toBeUndefined();
      expect(b.error).toBeUndefined();
      const want = image.manifestDescriptor.digest;
      expect(await tagsNow(repository)).toEqual([want, want]);
      for (const l of [...layers.map((x) => x.layer.descriptor.digest), image.configDescriptor.digest]) {
        expect(await direct.blobExists({ registry: reg.host, repository }, l)).toBe(true);
      }
      const m = await direct.getManifest({ registry: reg.host, repository }, want);
      expect(m.bytes.equals(image.manifestBytes)).toBe(true);
    }
    const repairs = logs.slice(logsBefore).filter((l) => l.includes('does not see every blob'));
    console.log(`concurrent publishes: 3 rounds consistent; manifest PUTs that needed a blob check and retry: ${repairs.length}`);
  });

  it('no password, Basic credential or token appears in any log line or error message', () => {
    expect(logs.length).toBeGreaterThan(100);
    expect(errorMessages.length).toBeGreaterThan(5);
    const secrets = [
      PASSWORD,
      Buffer.from(`${USER}:${PASSWORD}`).toString('base64'),
      'presigned-secret',
      ...ts.tokens,
      ...ts.tokens.map((t) => t.split('.')[2]!),
    ];
    expect(ts.tokens.length).toBeGreaterThan(0);
    const haystack = [...logs, ...errorMessages].join('\n');
    for (const s of secrets) expect(haystack.includes(s), `a secret leaked: ${s.slice(0, 6)}...`).toBe(false);
  });
});
