import { describe, it, expect } from 'vitest';
import { provenanceStatement, IN_TOTO_STATEMENT, SLSA_PROVENANCE_V1, type ProvenanceInputs } from '../src/attest/provenance.js';
import { sha256, type Digest } from '../src/oci/digest.js';
import type { Step } from '../src/config/model.js';

const pos = { file: 'oci-build.yml', line: 1, column: 1 };
const SECRET = 'tok-9f8e7d6c5b4a';
const steps: Step[] = [
  {
    kind: 'run',
    command: `curl -H "Authorization: Bearer ${SECRET}" https://example.test/x`,
    env: { TOKEN: SECRET, N: '1' },
    network: true,
    pos,
  },
  { kind: 'file', path: '/etc/app.conf', content: `token = ${SECRET}\n`, pos },
  { kind: 'copy', sources: [{ pattern: 'bin/app', matches: ['bin/app'], isGlob: false }], to: '/usr/local/bin/', mode: 0o755, pos },
];
const base = `sha256:${'b'.repeat(64)}` as Digest;
const image = `sha256:${'c'.repeat(64)}` as Digest;

function inputs(mode: 'min' | 'max', extra: Partial<ProvenanceInputs> = {}): ProvenanceInputs {
  return {
    mode,
    buildFile: { path: 'oci-build.yml', digest: sha256('version: 1\n'), content: `version: 1\nargs: { TOKEN: ${SECRET} }\n` },
    source: { uri: 'https://github.com/acme/app', commit: 'a'.repeat(40), ref: 'refs/heads/main' },
    workflow: {
      serverUrl: 'https://github.com',
      repository: 'acme/app',
      runId: '42',
      runAttempt: '2',
      workflowRef: 'acme/app/.github/workflows/images.yml@refs/heads/main',
      eventName: 'push',
      job: 'build',
    },
    builder: { id: 'https://github.com/org/oci-build-action@v1', version: '0.1.0' },
    bases: [{ ref: 'docker.io/library/debian:bookworm', digest: base, platform: 'linux/amd64' }],
    args: { TOKEN: SECRET, APP: 'app' },
    fromEnvironment: ['TOKEN'],
    variants: [{ name: 'app', platform: 'linux/amd64', steps }],
    ...extra,
  };
}

describe('SLSA v1 provenance', () => {
  it('names the build file, source, workflow run, builder, bases, args and resolved steps', () => {
    const { statement: st, mediaType } = provenanceStatement([{ name: 'ghcr.io/acme/app', digest: image }], inputs('min'));
    expect(mediaType).toBe('application/vnd.in-toto+json');
    expect(st._type).toBe(IN_TOTO_STATEMENT);
    expect(st.predicateType).toBe(SLSA_PROVENANCE_V1);
    expect(st.subject).toEqual([{ name: 'ghcr.io/acme/app', digest: { sha256: 'c'.repeat(64) } }]);
    const p = st.predicate as { buildDefinition: Record<string, any>; runDetails: Record<string, any> };
    expect(p.buildDefinition.externalParameters.buildFile).toEqual({
      path: 'oci-build.yml',
      digest: { sha256: sha256('version: 1\n').slice(7) },
    });
    expect(p.buildDefinition.externalParameters.args).toEqual(['APP', 'TOKEN']);
    expect(p.buildDefinition.resolvedDependencies).toEqual([
      { uri: 'git+https://github.com/acme/app@refs/heads/main', digest: { gitCommit: 'a'.repeat(40) } },
      { uri: 'oci://docker.io/library/debian:bookworm', digest: { sha256: 'b'.repeat(64) }, annotations: { platform: 'linux/amd64' } },
    ]);
    expect(p.runDetails.builder).toEqual({ id: 'https://github.com/org/oci-build-action@v1', version: { 'oci-build-action': '0.1.0' } });
    expect(p.runDetails.metadata).toEqual({ invocationId: 'https://github.com/acme/app/actions/runs/42/attempts/2' });
    const recorded = p.buildDefinition.externalParameters.variants[0].steps;
    expect(recorded[0].run).toBe('curl -H "Authorization: Bearer ${TOKEN}" https://example.test/x');
    expect(recorded[1]).toEqual({ file: '/etc/app.conf', contentDigest: sha256(`token = ${SECRET}\n`) });
    expect(recorded[2]).toEqual({ copy: ['bin/app'], to: '/usr/local/bin/', mode: '0755' });
  });

  it('never carries an arg value outside max mode; max mode records the values and the build file', () => {
    const min = provenanceStatement([{ name: 'x', digest: image }], inputs('min')).bytes.toString('utf8');
    expect(min).not.toContain(SECRET);
    const max = provenanceStatement([{ name: 'x', digest: image }], inputs('max'));
    expect(max.bytes.toString('utf8')).toContain(SECRET);
    const ext = (max.statement.predicate as any).buildDefinition.externalParameters;
    expect(ext.args).toEqual({ APP: 'app', TOKEN: SECRET });
    expect(ext.buildFile.content).toContain('args:');
  });

  it('is deterministic and carries times only when given (no SOURCE_DATE_EPOCH)', () => {
    const a = provenanceStatement([{ name: 'x', digest: image }], inputs('min')).bytes;
    const b = provenanceStatement([{ name: 'x', digest: image }], inputs('min')).bytes;
    expect(a.equals(b)).toBe(true);
    expect(a.toString()).not.toMatch(/startedOn|finishedOn|\d{4}-\d\d-\d\dT/);
    const timed = provenanceStatement(
      [{ name: 'x', digest: image }],
      inputs('min', { startedOn: new Date(0), finishedOn: new Date(1000) }),
    ).statement;
    expect((timed.predicate as any).runDetails.metadata).toMatchObject({
      startedOn: '1970-01-01T00:00:00.000Z',
      finishedOn: '1970-01-01T00:00:01.000Z',
    });
  });

  it('off the Actions runtime: no invocation id, the local facts only', () => {
    const st = provenanceStatement([{ name: 'x', digest: image }], inputs('min', { workflow: undefined, source: undefined })).statement;
    const p = st.predicate as any;
    expect(p.runDetails.metadata).toEqual({});
    expect(p.buildDefinition.resolvedDependencies.map((d: { uri: string }) => d.uri)).toEqual(['oci://docker.io/library/debian:bookworm']);
  });
});
