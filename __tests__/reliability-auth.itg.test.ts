/**
 * Registry authentication end to end against the real registry: the Docker token flow (our token
 * server, RS256 JWTs the registry verifies against its rootcertbundle) and htpasswd Basic auth.
 * Requests go through a (fault-free, recording) proxy so the tests can see what each request
 * carried. Ends with a scan of every log line and error message for secrets.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import type { BuiltImage } from '../src/image/image.js';
import { PublishError, RegistryPublisher, type PublishTarget } from '../src/output/publisher.js';
import { RegistryClient, type RepoRef } from '../src/registry/client.js';
import { credentialsFrom, type Credentials } from '../src/registry/credentials.js';
import { RegistryError } from '../src/registry/errors.js';
import { startBlobHost, startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import {
  bindTargets,
  captureLogger,
  imageOf,
  randomLayer,
  storeFor,
  tagDigest,
  variantOf,
  type TestLayer,
} from './helpers/publish-fixture.js';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { startTokenServer, type TokenServer } from './helpers/token-server.js';

const secret = () => `pw-${randomBytes(12).toString('hex')}`;
const ALICE: Credentials = { username: 'alice', password: secret() };
const READER: Credentials = { username: 'reader', password: secret() };
const BOB: Credentials = { username: 'bob', password: secret() };
const WRONG = `wrong-${randomBytes(8).toString('hex')}`;
const RETRY = { retries: 3, baseDelayMs: 20, maxDelayMs: 200, maxElapsedMs: 15_000 };

const logs: string[] = [];
const errorMessages: string[] = [];
const clients: RegistryClient[] = [];
let work: string;

function client(creds: Record<string, Credentials>, extra: ConstructorParameters<typeof RegistryClient>[0] = {}): RegistryClient {
  const c = new RegistryClient({
    retry: RETRY,
    logger: captureLogger(logs),
    credentials: credentialsFrom({ explicit: creds, dockerConfigPath: null }),
    ...extra,
  });
  clients.push(c);
  return c;
}

async function failure(p: Promise<unknown>): Promise<Error> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  if (!(e instanceof Error)) throw new Error('expected a failure');
  errorMessages.push(`${e.message}\n${e.stack ?? ''}\n${e.cause instanceof Error ? e.cause.message : ''}`);
  return e;
}

async function collect(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function publish(c: RegistryClient, targets: PublishTarget[], layers: TestLayer[]): Promise<void> {
  const store = await storeFor(targets[0]!.variant.images[0]!, layers, work);
  for (const t of targets.slice(1)) for (const img of t.variant.images) await store.putBytes(img.configDescriptor.digest, img.configBytes);
  await new RegistryPublisher(c, captureLogger(logs)).publish(bindTargets(targets, store, c));
}

const basic = (c: Credentials) => `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'oci-build-auth-'));
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  rmSync(work, { recursive: true, force: true });
});

describe('token auth (real registry, RS256 JWTs from our token server)', () => {
  let ts: TokenServer;
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let repo: RepoRef;
  let layers: TestLayer[];
  let image: BuiltImage;

  beforeAll(async () => {
    ts = await startTokenServer({
      users: { [ALICE.username]: ALICE.password, [READER.username]: READER.password },
      // reader may only pull; alice may do anything but touch team/locked.
      access: (user, _type, name, requested) =>
        user === 'reader' ? requested.filter((a) => a === 'pull') : user === 'alice' && name !== 'team/locked' ? requested : [],
    });
    reg = await startRegistry({ authYaml: ts.authYaml });
    proxy = await startFaultProxy(reg.host);
    repo = { registry: proxy.host, repository: 'team/app' };
    layers = [randomLayer(300 * 1024), randomLayer(40 * 1024), randomLayer(5 * 1024)];
    image = imageOf(layers, 'auth');
  });
  afterAll(async () => {
    await proxy?.close();
    await reg?.stop();
    await ts?.close();
  });

  it('pushes blobs, manifest and tag and pulls them back, with one token per scope set, reused', async () => {
    ts.reset();
    proxy.reset();
    const c = client({ [proxy.host]: ALICE });
    await publish(c, [{ variant: variantOf(image), repo, tags: ['v1'] }], layers);
    // Pull everything back through the client.
    const m = await c.getManifest(repo, 'v1');
    expect(m.digest).toBe(image.manifestDescriptor.digest);
    expect(m.bytes.equals(image.manifestBytes)).toBe(true);
    for (const l of layers)
      expect((await collect(await c.getBlob(repo, l.layer.descriptor.digest, l.bytes.length))).equals(l.bytes)).toBe(true);

    // Two tokens for the whole push and pull: pull (first contact), then pull,push (its
    // actions cover every later pull too).
    expect(ts.requests.map((r) => r.scopes)).toEqual([['repository:team/app:pull'], ['repository:team/app:pull,push']]);
    expect(ts.requests.every((r) => r.user === 'alice' && r.authenticated && r.status === 200)).toBe(true);
    // And the tag, straight from the registry with skopeo (which asks for its own token).
    expect(await tagDigest(reg.host, 'team/app', 'v1', ALICE)).toBe(image.manifestDescriptor.digest);
    ts.requests.splice(2);
    expect(c.tokenRequests).toBe(2);
    // Anonymous only until the first challenge: the first, concurrent existence checks (the
    // blobs' and, since the publisher checks which manifests are already held, the manifest's).
    const anon = proxy.requests.filter((r) => !r.auth);
    expect(anon.length).toBeGreaterThanOrEqual(1);
    expect(anon.length).toBeLessThanOrEqual(5);
    expect(anon.every((r) => r.method === 'HEAD' && r.status === 401)).toBe(true);
    expect(proxy.requests.filter((r) => r.status === 401)).toEqual(anon);
    expect(proxy.requests.length).toBeGreaterThan(15);

    // Another repository is another scope: one more token, then reused.
    await failure(c.getManifest({ registry: proxy.host, repository: 'team/other' }, 'v1'));
    await failure(c.getManifest({ registry: proxy.host, repository: 'team/other' }, 'v2'));
    expect(ts.requests.slice(2).map((r) => r.scopes)).toEqual([['repository:team/other:pull']]);
    // Parallel requests for a new scope share one token request.
    ts.reset();
    const third = { registry: proxy.host, repository: 'team/third' };
    await Promise.all(layers.map((l) => c.blobExists(third, l.layer.descriptor.digest)));
    expect(ts.requests).toHaveLength(1);
  });

  it('asks for pull on the source and pull,push on the target in ONE token request to mount', async () => {
    const c = client({ [proxy.host]: ALICE });
    ts.reset();
    proxy.reset();
    const target = { registry: proxy.host, repository: 'team/copy' };
    const digest = layers[0]!.layer.descriptor.digest;
    expect(await c.mountBlob(target, digest, 'team/app')).toBe(true);
    expect(ts.requests).toHaveLength(1);
    expect([...ts.requests[0]!.scopes].sort()).toEqual(['repository:team/app:pull', 'repository:team/copy:pull,push']);
    expect(ts.requests[0]!.granted).toEqual(
      expect.arrayContaining([
        { type: 'repository', name: 'team/app', actions: ['pull'] },
        { type: 'repository', name: 'team/copy', actions: ['pull', 'push'] },
      ]),
    );
    const mounts = proxy.requests.filter((r) => r.method === 'POST' && r.path.includes('mount='));
    expect(mounts.map((r) => r.status)).toEqual([401, 201]);
    expect(await c.blobExists(target, digest)).toBe(true);
    expect(ts.requests).toHaveLength(1); // pull,push on team/copy covers the check

    // The publisher mounts a blob it knows another repository of the registry holds.
    ts.reset();
    proxy.reset();
    const remote = { kind: 'remote' as const, repo };
    const based = [{ ...layers[1]!, layer: { ...layers[1]!.layer, source: remote } }, randomLayer(2048)];
    const img2 = imageOf(based, 'mounted');
    const c2 = client({ [proxy.host]: ALICE });
    const store = await storeFor(img2, based, work);
    const pub = new RegistryPublisher(c2, captureLogger(logs));
    await pub.publish(
      bindTargets([{ variant: variantOf(img2), repo: { registry: proxy.host, repository: 'team/derived' }, tags: ['v1'] }], store, c2),
    );
    expect(pub.stats).toMatchObject({ blobsMounted: 1, blobsUploaded: 2 });
    expect(ts.requests.some((r) => [...r.scopes].sort().join(' ') === 'repository:team/app:pull repository:team/derived:pull,push')).toBe(
      true,
    );
    expect(proxy.requests.some((r) => r.method === 'GET' && r.path.includes('/blobs/'))).toBe(false); // never downloaded
  });

  it('uploads instead when the token does not grant pull on the mount source', async () => {
    const c = client({ [proxy.host]: ALICE });
    ts.reset();
    proxy.reset();
    const target = { registry: proxy.host, repository: 'team/copy2' };
    const l = layers[2]!;
    // alice has no access at all to team/locked: the registry answers the mount with 401
    // (insufficient scope). That is a refused mount, not a failed push.
    expect(await c.mountBlob(target, l.layer.descriptor.digest, 'team/locked')).toBe(false);
    // One token asked for both scopes; it grants only the target; the mount is not retried.
    expect(ts.requests).toHaveLength(1);
    expect([...ts.requests[0]!.scopes].sort()).toEqual(['repository:team/copy2:pull,push', 'repository:team/locked:pull']);
    expect(ts.requests[0]!.granted).toEqual([{ type: 'repository', name: 'team/copy2', actions: ['pull', 'push'] }]);
    expect(proxy.requests.map((r) => `${r.method} ${r.auth ? 'auth' : 'anon'} ${r.status}`)).toEqual(['POST anon 401', 'POST auth 401']);
    await c.uploadBlob(target, l.layer.descriptor.digest, l.bytes.length, () => Readable.from([l.bytes]));
    expect(await c.blobExists(target, l.layer.descriptor.digest)).toBe(true);
  });

  it('refreshes the token on a 401 when it expires in the middle of a slow upload', async () => {
    // The registry stops accepting each token 2 s after issuance, but the token server tells
    // the client 60 s: only the registry's 401 reveals the expiry.
    ts.setLifetime({ expiresIn: 60, validFor: 2 });
    try {
      const c = client({ [proxy.host]: ALICE });
      ts.reset();
      proxy.reset();
      const blob = randomBytes(12 * 32 * 1024);
      const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}` as Digest;
      let opens = 0;
      const slow = () => {
        opens++;
        let i = 0;
        // 12 chunks, 250 ms apart: the PATCH takes ~3 s, so the PUT after it carries a dead token.
        return new Readable({
          read() {
            if (i >= 12) {
              this.push(null);
              return;
            }
            const chunk = blob.subarray(i * 32 * 1024, ++i * 32 * 1024);
            setTimeout(() => this.push(chunk), 250);
          },
        });
      };
      const slowRepo = { registry: proxy.host, repository: 'team/slow' };
      const t0 = Date.now();
      await c.uploadBlob(slowRepo, digest, blob.length, slow);
      expect(Date.now() - t0).toBeGreaterThan(2500);
      expect(opens).toBe(1); // the PATCH was accepted: only the short PUT was repeated
      const ops = proxy.requests.map((r) => `${r.method} ${r.status}`);
      expect(ops).toEqual(['POST 401', 'POST 202', 'PATCH 202', 'PUT 401', 'PUT 201']);
      expect(ts.requests).toHaveLength(2);
      expect(c.tokenRequests).toBe(2);
      const wwwAuth = proxy.requests[3]!;
      expect(wwwAuth.auth).toBe(true);
      // The blob is there, complete.
      expect((await collect(await c.getBlob(slowRepo, digest, blob.length))).equals(blob)).toBe(true);
    } finally {
      ts.setLifetime({ expiresIn: 300, validFor: 300 });
    }
  });

  it('renews up front, without a 401, a token whose expires_in has passed', async () => {
    ts.setLifetime({ expiresIn: 2, validFor: 2 });
    try {
      const c = client({ [proxy.host]: ALICE });
      ts.reset();
      const d = layers[0]!.layer.descriptor.digest;
      expect(await c.blobExists(repo, d)).toBe(true);
      expect(await c.blobExists(repo, d)).toBe(true);
      expect(ts.requests).toHaveLength(1);
      await new Promise((r) => setTimeout(r, 2100));
      proxy.reset();
      expect(await c.blobExists(repo, d)).toBe(true);
      expect(ts.requests).toHaveLength(2);
      expect(proxy.requests.map((r) => r.status)).toEqual([200]);
    } finally {
      ts.setLifetime({ expiresIn: 300, validFor: 300 });
    }
  });

  it('a wrong password is a clear error, not retried, and not echoed', async () => {
    const c = client({ [proxy.host]: { username: 'alice', password: WRONG } });
    ts.reset();
    const e = await failure(c.getManifest(repo, 'v1'));
    expect(e).toBeInstanceOf(RegistryError);
    expect((e as RegistryError).status).toBe(401);
    expect((e as RegistryError).temporary).toBe(false);
    expect(e.message).toMatch(/the token server rejected the credentials for 127\.0\.0\.1:\d+/);
    expect(e.message).toMatch(/incorrect username or password/);
    expect(e.message).not.toContain(WRONG);
    expect(ts.requests).toHaveLength(1);
    expect(ts.requests[0]!).toMatchObject({ user: 'alice', authenticated: false, status: 401 });

    // Through the publisher: the error says what failed, nothing was uploaded, no tag moved.
    ts.reset();
    const pe = await failure(
      publish(c, [{ variant: variantOf(image), repo: { registry: proxy.host, repository: 'team/wrong' }, tags: ['v1'] }], layers),
    );
    expect(pe).toBeInstanceOf(PublishError);
    expect(pe.message).toMatch(/push failed while uploading blobs: .*401.*token server rejected the credentials/s);
    expect(pe.message).toMatch(/no tag was moved; .*0 blobs uploaded/);
    expect(ts.requests.length).toBeLessThanOrEqual(2); // one per distinct scope set at most, never retried

    // Without credentials: the token server wants them.
    const anon = client({});
    const ae = await failure(anon.getManifest(repo, 'v1'));
    expect(ae.message).toMatch(/the token server requires credentials for 127\.0\.0\.1:\d+; none are configured/);
  });

  it('a user without push access gets a clear, non-retried 401', async () => {
    const c = client({ [proxy.host]: READER });
    ts.reset();
    proxy.reset();
    const d = layers[0]!.layer.descriptor.digest;
    expect(await c.blobExists(repo, d)).toBe(true); // pull works
    const e = await failure(
      c.uploadBlob({ registry: proxy.host, repository: 'team/app' }, d, layers[0]!.bytes.length, () => Readable.from([layers[0]!.bytes])),
    );
    expect((e as RegistryError).status).toBe(401);
    expect(e.message).toMatch(/the credentials for 127\.0\.0\.1:\d+ do not grant repository:team\/app:pull,push/);
    // Anonymous HEAD, HEAD with a pull token; POST with the token for pull,push (which grants
    // only pull), POST with one fresh token after the 401: no more.
    expect(proxy.requests.map((r) => `${r.method} ${r.status}`)).toEqual(['HEAD 401', 'HEAD 200', 'POST 401', 'POST 401']);
    expect(ts.requests.map((r) => r.scopes.join(' '))).toEqual([
      'repository:team/app:pull',
      'repository:team/app:pull,push',
      'repository:team/app:pull,push',
    ]);
    expect(
      ts.requests.every((r) => JSON.stringify(r.granted) === JSON.stringify([{ type: 'repository', name: 'team/app', actions: ['pull'] }])),
    ).toBe(true);
  });
});

describe('htpasswd Basic auth (real registry)', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;

  beforeAll(async () => {
    const htpasswd = join(work, 'htpasswd');
    writeFileSync(htpasswd, execFileSync('htpasswd', ['-Bbn', BOB.username, BOB.password], { encoding: 'utf8' }));
    reg = await startRegistry({ authYaml: `  htpasswd:\n    realm: basic-realm\n    path: ${htpasswd}` });
    proxy = await startFaultProxy(reg.host);
  });
  afterAll(async () => {
    await proxy?.close();
    await reg?.stop();
  });

  it('publishes with tags and pulls back; Basic credentials on every request after the challenge', async () => {
    const layers = [randomLayer(200 * 1024), randomLayer(3000)];
    const image = imageOf(layers, 'basic');
    const repo = { registry: proxy.host, repository: 'private/app' };
    const c = client({ [proxy.host]: BOB });
    await publish(c, [{ variant: variantOf(image), repo, tags: ['v1', 'stable'] }], layers);
    expect(await tagDigest(reg.host, 'private/app', 'v1', BOB)).toBe(image.manifestDescriptor.digest);
    expect(await tagDigest(reg.host, 'private/app', 'stable', BOB)).toBe(image.manifestDescriptor.digest);
    expect((await c.getManifest(repo, 'stable')).bytes.equals(image.manifestBytes)).toBe(true);
    expect((await collect(await c.getBlob(repo, layers[0]!.layer.descriptor.digest))).equals(layers[0]!.bytes)).toBe(true);
    const anon = proxy.requests.filter((r) => !r.auth);
    expect(anon.length).toBeLessThanOrEqual(4); // the first, concurrent contacts only
    expect(proxy.requests.filter((r) => r.auth).every((r) => r.authorization === basic(BOB))).toBe(true);
  });

  it('a wrong password fails once with a clear 401, not retried', async () => {
    const c = client({ [proxy.host]: { username: BOB.username, password: WRONG } });
    proxy.reset();
    const e = await failure(c.getManifest({ registry: proxy.host, repository: 'private/app' }, 'v1'));
    expect((e as RegistryError).status).toBe(401);
    expect(e.message).toMatch(/credentials for 127\.0\.0\.1:\d+ were rejected/);
    expect(e.message).not.toContain(WRONG);
    expect(proxy.requests.map((r) => `${r.auth ? 'auth' : 'anon'} ${r.status}`)).toEqual(['anon 401', 'auth 401']);
  });

  it('never sends the Basic credentials to the origin a blob GET is redirected to', async () => {
    const blobHost = await startBlobHost(join(reg.dir, 'data'));
    try {
      const layer = randomLayer(64 * 1024);
      const repo = { registry: proxy.host, repository: 'private/redirect' };
      const c = client({ [proxy.host]: BOB });
      await c.uploadBlob(repo, layer.layer.descriptor.digest, layer.bytes.length, () => Readable.from([layer.bytes]));
      proxy.add({
        method: 'GET',
        path: /\/blobs\/sha256:/,
        authorized: true,
        count: Infinity,
        fault: { kind: 'redirect', to: blobHost.url },
      });
      expect((await collect(await c.getBlob(repo, layer.layer.descriptor.digest, layer.bytes.length))).equals(layer.bytes)).toBe(true);
      expect(blobHost.seen).toHaveLength(1);
      expect(blobHost.seen[0]!.headers.authorization).toBeUndefined();
      expect(JSON.stringify(blobHost.seen[0]!.headers)).not.toContain(BOB.password);
    } finally {
      proxy.reset();
      await blobHost.close();
    }
  });
});

describe('credentials stay with their registry', () => {
  it('two registries with different credentials: each only ever sees its own', async () => {
    const ts = await startTokenServer({ users: { [ALICE.username]: ALICE.password } });
    const regA = await startRegistry({ authYaml: ts.authYaml });
    const htpasswd = join(work, 'htpasswd-b');
    writeFileSync(htpasswd, execFileSync('htpasswd', ['-Bbn', BOB.username, BOB.password], { encoding: 'utf8' }));
    const regB = await startRegistry({ authYaml: `  htpasswd:\n    realm: b\n    path: ${htpasswd}` });
    const proxyA = await startFaultProxy(regA.host);
    const proxyB = await startFaultProxy(regB.host);
    try {
      const c = client({ [proxyA.host]: ALICE, [proxyB.host]: BOB });
      // An image on A...
      const baseLayers = [randomLayer(100 * 1024), randomLayer(7000)];
      const base = imageOf(baseLayers, 'a-base');
      await publish(c, [{ variant: variantOf(base), repo: { registry: proxyA.host, repository: 'org/base' }, tags: ['v1'] }], baseLayers);
      // ...whose layers a build on B reuses (downloaded from A with A's token, uploaded to B with
      // B's password), published to both registries in one go.
      const fromA = baseLayers.map((l) => ({
        ...l,
        layer: { ...l.layer, source: { kind: 'remote' as const, repo: { registry: proxyA.host, repository: 'org/base' } } },
      }));
      const own = randomLayer(30 * 1024);
      const derived = imageOf([...fromA, own], 'derived');
      const store = await storeFor(derived, [...fromA, own], work);
      await new RegistryPublisher(c, captureLogger(logs)).publish(
        bindTargets(
          [
            { variant: variantOf(derived), repo: { registry: proxyB.host, repository: 'org/app' }, tags: ['v1'] },
            { variant: variantOf(derived), repo: { registry: proxyA.host, repository: 'org/app' }, tags: ['v1'] },
          ],
          store,
          c,
        ),
      );
      expect(await tagDigest(regB.host, 'org/app', 'v1', BOB)).toBe(derived.manifestDescriptor.digest);
      expect(await tagDigest(regA.host, 'org/app', 'v1', ALICE)).toBe(derived.manifestDescriptor.digest);
      expect(proxyA.requests.some((r) => r.method === 'GET' && r.path.includes('/org/base/blobs/'))).toBe(true);

      // A saw only Bearer tokens its own token server issued; B saw only bob's Basic credentials.
      const tokens = new Set(ts.tokens.map((t) => `Bearer ${t}`));
      const authA = proxyA.requests.filter((r) => r.auth).map((r) => r.authorization!);
      const authB = proxyB.requests.filter((r) => r.auth).map((r) => r.authorization!);
      expect(authA.length).toBeGreaterThan(5);
      expect(authB.length).toBeGreaterThan(5);
      expect(authA.every((a) => tokens.has(a))).toBe(true);
      expect(authB.every((a) => a === basic(BOB))).toBe(true);
      // The token server only ever got alice.
      expect(ts.requests.every((r) => r.user === 'alice')).toBe(true);
      const everythingA = JSON.stringify([proxyA.requests, ts.requests]);
      const everythingB = JSON.stringify(proxyB.requests);
      expect(everythingA).not.toContain(BOB.password);
      expect(everythingA).not.toContain(basic(BOB).slice(6));
      expect(everythingB).not.toContain(ALICE.password);
      expect(everythingB).not.toContain(basic(ALICE).slice(6));
      for (const t of ts.tokens) expect(everythingB).not.toContain(t.split('.')[2]!);
    } finally {
      await proxyA.close();
      await proxyB.close();
      await regA.stop();
      await regB.stop();
      await ts.close();
    }
  });
});

describe('secrets', () => {
  it('no password, Basic credential or token appears in any log line or error message', () => {
    expect(logs.filter((l) => l.startsWith('debug:')).length).toBeGreaterThan(50);
    expect(errorMessages.length).toBeGreaterThanOrEqual(5);
    const haystack = [...logs, ...errorMessages].join('\n');
    const secrets = [ALICE, READER, BOB].flatMap((c) => [c.password, basic(c).slice(6)]);
    secrets.push(WRONG, Buffer.from(`alice:${WRONG}`).toString('base64'), Buffer.from(`bob:${WRONG}`).toString('base64'));
    for (const s of secrets) expect(haystack.includes(s), `secret leaked: ${s.slice(0, 6)}...`).toBe(false);
    // Tokens: every issued JWT (its signature is the secret part), as logged or in errors.
    expect(haystack).not.toMatch(/eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+/);
    expect(haystack).not.toMatch(/Bearer [\w-]{20,}/);
  });
});
