import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import nock from 'nock';
import { fulcioHandler, initializeCA, initializeCTLog, initializeTSA, tsaHandler, type HandlerFn } from '@sigstore/mock';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { bundleFromJSON } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { provenanceStatement } from '../src/attest/provenance.js';
import { oidcAvailable, signStatement } from '../src/attest/sign.js';
import { runSigner } from '../src/attest/sign-all.js';
import type { SubjectAttestations } from '../src/attest/attest.js';
import type { Logger } from '../src/log.js';
import { sha256, type Digest } from '../src/oci/digest.js';

/**
 * Signing through @actions/attest against local stand-ins: Fulcio and a timestamp authority from
 * @sigstore/mock, intercepted in-process at the URLs of GitHub's Sigstore instance (the one private
 * repositories use: Fulcio plus RFC 3161 timestamps, no Rekor), and an OIDC token endpoint on
 * loopback as the Actions runtime provides one. The bundle is verified with @sigstore/verify
 * against a trust root made of the stand-ins' keys.
 */

const FULCIO = 'https://fulcio.githubapp.com';
const TSA = 'https://timestamp.githubapp.com';
const image = sha256('an image manifest') as Digest;
let oidc: Server;
let trust: ReturnType<typeof toTrustMaterial>;
const saved = { ...process.env };

const b64 = (b: ArrayBufferView | Buffer) => Buffer.from(b as Uint8Array).toString('base64');
const b64url = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');

/** nock's reply callback for one of the mock's handlers; persisted, so it answers every call. */
function intercept(base: string, h: { path: string; fn: HandlerFn }): void {
  nock(base)
    .persist()
    .post(h.path)
    .reply(async (_uri, body) => {
      const r = await h.fn(typeof body === 'string' ? body : JSON.stringify(body));
      return [r.statusCode, r.response, { 'Content-Type': r.contentType ?? 'text/plain' }];
    });
}

beforeAll(async () => {
  const keys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const ctlog = await initializeCTLog(keys);
  const ca = await initializeCA(keys, ctlog);
  // The mock TSA stamps with its clock; asn1js drops trailing zeros of the milliseconds
  // (".12Z"), which @sigstore/core's parser refuses as "invalid time" in one run of ten. A whole
  // second, inside the validity (10 minutes from issue) of the certificates issued below, avoids it.
  const tsa = await initializeTSA(keys, new Date(Math.ceil(Date.now() / 1000) * 1000 + 60_000));
  intercept(FULCIO, fulcioHandler(ca, { strict: true }));
  intercept(TSA, tsaHandler(tsa, { strict: true }));
  const validFor = { start: '2000-01-01T00:00:00Z' };
  const key = (raw: Buffer) => ({ rawBytes: b64(raw), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor });
  trust = toTrustMaterial(
    TrustedRoot.fromJSON({
      mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
      tlogs: [],
      certificateAuthorities: [
        {
          subject: { organization: 'mock', commonName: 'mock' },
          uri: FULCIO,
          certChain: { certificates: [{ rawBytes: b64(ca.rootCertificate) }] },
          validFor,
        },
      ],
      ctlogs: [
        {
          baseUrl: 'https://ctfe.sigstore.dev',
          hashAlgorithm: 'SHA2_256',
          publicKey: key(ctlog.publicKey),
          logId: { keyId: b64(ctlog.logID) },
        },
      ],
      timestampAuthorities: [
        {
          subject: { organization: 'mock', commonName: 'mock-tsa' },
          uri: TSA,
          certChain: { certificates: [{ rawBytes: b64(tsa.intCertificate) }, { rawBytes: b64(tsa.rootCertificate) }] },
          validFor,
        },
      ],
    }),
  );
  // The Actions runtime's OIDC endpoint: a JWT for the workflow, with the audience asked for.
  oidc = createServer((req, res) => {
    const aud = new URL(req.url ?? '/', 'http://x').searchParams.get('audience') ?? '';
    const now = Math.floor(Date.now() / 1000);
    const jwt = [
      b64url({ alg: 'RS256', typ: 'JWT' }),
      b64url({
        iss: 'https://token.actions.githubusercontent.com',
        sub: 'repo:acme/app:ref:refs/heads/main',
        aud,
        iat: now,
        exp: now + 300,
      }),
      'c2ln',
    ].join('.');
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ value: jwt }));
  });
  await new Promise<void>((r) => oidc.listen(0, '127.0.0.1', () => r()));
  const port = (oidc.address() as { port: number }).port;
  process.env.ACTIONS_ID_TOKEN_REQUEST_URL = `http://127.0.0.1:${port}/token?api-version=2.0`;
  process.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN = 'request-token';
  process.env.GITHUB_SERVER_URL = 'https://github.com';
});

afterAll(async () => {
  nock.cleanAll();
  process.env = saved;
  await new Promise<void>((r) => oidc?.close(() => r()));
});

describe('signing provenance as a GitHub artifact attestation', () => {
  const st = provenanceStatement([{ name: 'ghcr.io/acme/app', digest: image }], {
    mode: 'min',
    buildFile: { path: 'oci-build.yml', digest: sha256('version: 1\n') },
    builder: { id: 'test', version: '0' },
    bases: [],
    args: {},
    variants: [],
  }).statement;

  it('gives a Sigstore bundle that verifies against the trust root, over our statement and digests', async () => {
    expect(oidcAvailable(process.env)).toBe(true);
    const signed = await signStatement(st, { token: 'gh-token', sigstore: 'github', upload: false });
    expect(signed.mediaType).toMatch(/^application\/vnd\.dev\.sigstore\.bundle\.v0\.3\+json/);
    const json = JSON.parse(signed.bundle.toString('utf8'));
    const signer = new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 1, timestampThreshold: 1 }).verify(
      toSignedEntity(bundleFromJSON(json)),
    );
    expect(signer.identity?.subjectAlternativeName).toBeTruthy();
    const payload = JSON.parse(Buffer.from(json.dsseEnvelope.payload, 'base64').toString('utf8'));
    expect(json.dsseEnvelope.payloadType).toBe('application/vnd.in-toto+json');
    expect(payload.subject).toEqual([{ name: 'ghcr.io/acme/app', digest: { sha256: image.slice(7) } }]);
    expect(payload.predicateType).toBe('https://slsa.dev/provenance/v1');
    expect(payload.predicate).toEqual(st.predicate);
  });

  it('a bundle whose statement was altered does not verify (the check can fail)', async () => {
    const json = JSON.parse((await signStatement(st, { token: 'gh-token', sigstore: 'github', upload: false })).bundle.toString('utf8'));
    const forged = { ...st, subject: [{ name: 'ghcr.io/acme/app', digest: { sha256: 'f'.repeat(64) } }] };
    json.dsseEnvelope.payload = Buffer.from(JSON.stringify(forged)).toString('base64');
    expect(() =>
      new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 1, timestampThreshold: 1 }).verify(toSignedEntity(bundleFromJSON(json))),
    ).toThrow(/signature/);
  });
});

describe('signing the attestations of a build', () => {
  const CDX = 'application/vnd.cyclonedx+json';
  const subject = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: image, size: 100 };
  const unsigned = (): SubjectAttestations[] => {
    const prov = provenanceStatement([{ name: 'ghcr.io/acme/app', digest: image }], {
      mode: 'min',
      buildFile: { path: 'oci-build.yml', digest: sha256('v') },
      builder: { id: 'test', version: '0' },
      bases: [],
      args: {},
      variants: [],
    });
    return [
      {
        variant: 'app',
        subject,
        attestations: [
          { kind: 'provenance', artifactType: prov.mediaType, mediaType: prov.mediaType, bytes: prov.bytes },
          {
            kind: 'sbom',
            artifactType: CDX,
            mediaType: CDX,
            bytes: Buffer.from(JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.6', version: 1 })),
          },
        ],
      },
    ];
  };
  const logger = (warnings: string[]): Logger => ({
    info: () => {},
    debug: () => {},
    warn: (m) => {
      warnings.push(m);
    },
    group: async (_n, fn) => await fn(),
  });

  it('replaces each document by its bundle; the SBOM is signed as a CycloneDX statement about the image', async () => {
    const list = unsigned();
    const warnings: string[] = [];
    await runSigner(
      { token: 't', sigstore: 'github', upload: false, subjectName: () => 'ghcr.io/acme/app' },
      process.env,
      logger(warnings),
    )(list);
    expect(warnings).toEqual([]);
    const types: string[] = [];
    for (const a of list[0]!.attestations) {
      expect(a.artifactType).toMatch(/^application\/vnd\.dev\.sigstore\.bundle\.v0\.3\+json/);
      const json = JSON.parse(a.bytes.toString('utf8'));
      new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 1, timestampThreshold: 1 }).verify(toSignedEntity(bundleFromJSON(json)));
      const payload = JSON.parse(Buffer.from(json.dsseEnvelope.payload, 'base64').toString('utf8'));
      expect(payload.subject[0].digest.sha256).toBe(image.slice(7));
      expect(a.annotations?.['dev.sigstore.bundle.predicateType']).toBe(payload.predicateType);
      types.push(payload.predicateType);
    }
    expect(types).toEqual(['https://slsa.dev/provenance/v1', 'https://cyclonedx.org/bom']);
  });

  it('without id-token: write: one notice naming both permissions, the attestations stay unsigned', async () => {
    const env = { ...process.env, ACTIONS_ID_TOKEN_REQUEST_URL: undefined };
    const warnings: string[] = [];
    const sign = runSigner({ token: 't', sigstore: 'github', upload: false }, env, logger(warnings));
    const a = unsigned();
    const b = unsigned();
    const before = a[0]!.attestations.map((x) => x.bytes.toString());
    await sign(a);
    await sign(b);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('id-token: write');
    expect(warnings[0]).toContain('attestations: write');
    expect(a[0]!.attestations.map((x) => x.bytes.toString())).toEqual(before);
    expect(a[0]!.attestations.map((x) => x.artifactType)).toEqual(['application/vnd.in-toto+json', CDX]);
  });
});

describe("storing the bundles in the repository's attestations", () => {
  let api: Server;
  let status = 201;
  const received: { path: string; auth: string; body: { bundle: unknown } }[] = [];
  const logger = (warnings: string[]): Logger => ({
    info: () => {},
    debug: () => {},
    warn: (m) => {
      warnings.push(m);
    },
    group: async (_n, fn) => await fn(),
  });
  const statementList = (): SubjectAttestations[] => {
    const prov = provenanceStatement([{ name: 'ghcr.io/acme/app', digest: image }], {
      mode: 'min',
      buildFile: { path: 'oci-build.yml', digest: sha256('w') },
      builder: { id: 'test', version: '0' },
      bases: [],
      args: {},
      variants: [],
    });
    return [
      {
        variant: 'app',
        subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: image, size: 1 },
        attestations: [{ kind: 'provenance', artifactType: prov.mediaType, mediaType: prov.mediaType, bytes: prov.bytes }],
      },
    ];
  };
  beforeAll(async () => {
    // The GitHub REST API's attestations endpoint, as a loopback stand-in.
    api = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
      });
      req.on('end', () => {
        received.push({ path: req.url ?? '', auth: req.headers.authorization ?? '', body: JSON.parse(body || '{}') });
        res
          .writeHead(status, { 'content-type': 'application/json' })
          .end(JSON.stringify(status === 201 ? { id: 7 } : { message: 'Resource not accessible by integration' }));
      });
    });
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', () => r()));
    process.env.GITHUB_API_URL = `http://127.0.0.1:${(api.address() as { port: number }).port}`;
    process.env.GITHUB_REPOSITORY = 'acme/app';
  });
  afterAll(async () => {
    await new Promise<void>((r) => api?.close(() => r()));
  });

  it('uploads each bundle only when published (after the push), with the token', async () => {
    const list = statementList();
    const warnings: string[] = [];
    await runSigner({ token: 'gh-token', sigstore: 'github', upload: true }, process.env, logger(warnings))(list);
    expect(received).toHaveLength(0); // signing alone stores nothing
    await list[0]!.attestations[0]!.publish!();
    expect(warnings).toEqual([]);
    expect(received).toHaveLength(1);
    expect(received[0]!.path).toBe('/repos/acme/app/attestations');
    expect(received[0]!.auth).toMatch(/gh-token/);
    expect(received[0]!.body.bundle).toEqual(JSON.parse(list[0]!.attestations[0]!.bytes.toString('utf8')));
  });

  it('without attestations: write: one notice naming both permissions; the push goes on', async () => {
    status = 403;
    const list = [...statementList(), ...statementList()];
    const warnings: string[] = [];
    await runSigner({ token: 'gh-token', sigstore: 'github', upload: true }, process.env, logger(warnings))(list);
    for (const sa of list) for (const a of sa.attestations) await a.publish!();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/id-token: write.*attestations: write/);
    expect(list[0]!.attestations[0]!.artifactType).toMatch(/sigstore\.bundle/); // still signed and attached
  });
});
