/**
 * Turns unsigned attestations into signed ones where the job may sign: each statement (the SBOM
 * wrapped in one) goes through Sigstore and the bundle replaces the document as the referrer.
 * Without an OIDC token (no `id-token: write`), or when GitHub refuses the upload (no
 * `attestations: write`), the attestations stay unsigned and one notice says which permissions.
 */
import type { Logger } from '../log.js';
import { PREDICATE_TYPE_ANNOTATION } from './artifact.js';
import type { SubjectAttestations } from './attest.js';
import { statement, type Statement } from './provenance.js';
import {
  BUNDLE_PREDICATE_ANNOTATION,
  oidcAvailable,
  signStatement,
  SIGNING_PERMISSIONS_NOTICE,
  uploadBundle,
  type SigningSetup,
} from './sign.js';

export type { SigningSetup };

export const CYCLONEDX_PREDICATE = 'https://cyclonedx.org/bom';

function statementOf(sa: SubjectAttestations, a: SubjectAttestations['attestations'][number], name: string): Statement {
  if (a.kind === 'provenance') return JSON.parse(a.bytes.toString('utf8')) as Statement;
  return statement(
    [{ name, digest: sa.subject.digest }],
    CYCLONEDX_PREDICATE,
    JSON.parse(a.bytes.toString('utf8')) as Record<string, unknown>,
  );
}

/**
 * A signer for one run: the first refusal (no OIDC token, or GitHub saying no) gives the one
 * notice and leaves everything after it unsigned, instead of failing every attestation the same way.
 */
export function runSigner(
  s: SigningSetup & { subjectName?: (variant: string) => string },
  env: Record<string, string | undefined>,
  logger: Logger,
): (list: SubjectAttestations[]) => Promise<void> {
  let off = false;
  const stop = (why?: string) => {
    if (!off) logger.warn(`${SIGNING_PERMISSIONS_NOTICE}${why ? ` (${why})` : ''}`);
    off = true;
  };
  if (!oidcAvailable(env)) stop();
  let uploadRefused = false;
  // The bundle referrer is attached either way; a refused upload (no `attestations: write`) says so once.
  const publisher = (bundle: Buffer) => async () => {
    if (uploadRefused) return;
    try {
      await uploadBundle(JSON.parse(bundle.toString('utf8')) as Parameters<typeof uploadBundle>[0], s.token);
    } catch (e) {
      uploadRefused = true;
      logger.warn(
        `the signed attestations are attached to the images but could not be stored in the repository's attestations (${(e as Error).message}): give the job the \`id-token: write\` and \`attestations: write\` permissions`,
      );
    }
  };
  return async (list) => {
    for (const sa of list) {
      for (const [i, a] of sa.attestations.entries()) {
        if (off) return;
        const st = statementOf(sa, a, s.subjectName?.(sa.variant) ?? sa.variant);
        let signed: Awaited<ReturnType<typeof signStatement>>;
        try {
          // Signed now, stored in the repository's attestations once the image is pushed (publish).
          signed = await signStatement(st, { ...s, upload: false });
        } catch (e) {
          stop(`signing failed: ${(e as Error).message}`);
          return;
        }
        sa.attestations[i] = {
          kind: a.kind,
          artifactType: signed.mediaType,
          mediaType: signed.mediaType,
          bytes: signed.bundle,
          annotations: {
            [BUNDLE_PREDICATE_ANNOTATION]: st.predicateType,
            ...(a.annotations?.[PREDICATE_TYPE_ANNOTATION] ? { [PREDICATE_TYPE_ANNOTATION]: st.predicateType } : {}),
          },
          ...(s.upload ? { publish: publisher(signed.bundle) } : {}),
        };
      }
    }
  };
}
