// Preloaded (node --import) into a process running the bundled action: answers the requests to
// GitHub's Sigstore instance (Fulcio, timestamp authority) with @sigstore/mock's stand-ins, in
// that process, and writes the trust root made of the stand-ins' keys to $SIGSTORE_MOCK_TRUST so
// the test can verify the bundles. Every other host (the registry, the OIDC and API stand-ins on
// loopback) is reached as usual.
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import nock from 'nock';
import { fulcioHandler, initializeCA, initializeCTLog, initializeTSA, tsaHandler } from '@sigstore/mock';

const FULCIO = 'https://fulcio.githubapp.com';
const TSA = 'https://timestamp.githubapp.com';
const b64 = (b) => Buffer.from(b).toString('base64');

function intercept(base, h) {
  nock(base)
    .persist()
    .post(h.path)
    .reply(async (_uri, body) => {
      const r = await h.fn(typeof body === 'string' ? body : JSON.stringify(body));
      return [r.statusCode, r.response, { 'Content-Type': r.contentType ?? 'text/plain' }];
    });
}

const keys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const ctlog = await initializeCTLog(keys);
const ca = await initializeCA(keys, ctlog);
// A whole second (see attest-sign.test.ts: asn1js writes ".12Z" for 120 ms, which verifiers refuse).
const tsa = await initializeTSA(keys, new Date(Math.ceil(Date.now() / 1000) * 1000 + 60_000));
intercept(FULCIO, fulcioHandler(ca, { strict: true }));
intercept(TSA, tsaHandler(tsa, { strict: true }));
const validFor = { start: '2000-01-01T00:00:00Z' };
writeFileSync(
  process.env.SIGSTORE_MOCK_TRUST,
  JSON.stringify({
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
        publicKey: { rawBytes: b64(ctlog.publicKey), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor },
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
