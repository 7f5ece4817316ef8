/**
 * SLSA v1 build provenance as an in-toto v1 statement, from plain inputs (the caller collects the
 * facts: build file, source, workflow run, bases, args, resolved steps). Deterministic: the same
 * inputs give the same bytes; times appear only when the caller passes them (the pipeline never
 * does, so rebuilding the same inputs gives the same attestation digests).
 *
 * Secrets: outside `max` mode no build-arg value is recorded, and the value of every arg the
 * environment set (where a secret would come from) is put back as `${NAME}` wherever it made its
 * way into a step (args are substituted at load time). Values written in the build file itself are
 * left: they are in the repository anyway, and rewriting short ones would garble unrelated text.
 */
import { digestHex, jsonBytes, type Digest } from '../oci/digest.js';
import type { Step } from '../config/model.js';
import { sha256 } from '../oci/digest.js';

export const IN_TOTO_STATEMENT = 'https://in-toto.io/Statement/v1';
export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';
export const IN_TOTO_JSON = 'application/vnd.in-toto+json';
/** What our externalParameters mean; versioned so a consumer can tell layouts apart. */
export const BUILD_TYPE = 'https://github.com/org/oci-build-action/build-types/oci-build/v1';

export type ProvenanceMode = 'min' | 'max';

export interface ProvenanceSubject {
  name: string;
  digest: Digest;
}

export interface ProvenanceInputs {
  mode: ProvenanceMode;
  /** The build file as named on the command line / in the action's input, its digest, and (max) its text. */
  buildFile: { path: string; digest: Digest; content?: string };
  /** The repository and commit built (GitHub: server/owner/repo and GITHUB_SHA). */
  source?: { uri: string; commit: string; ref?: string };
  /** The workflow run, on the Actions runtime. */
  workflow?: {
    serverUrl: string;
    repository: string;
    runId: string;
    runAttempt?: string;
    workflowRef?: string;
    eventName?: string;
    job?: string;
  };
  builder: { id: string; version: string };
  /** Base images by reference as written and the digest they resolved to. */
  bases: { ref: string; digest: Digest; platform?: string }[];
  args: Record<string, string>;
  /** Names of the args whose value came from the environment (possibly a secret). */
  fromEnvironment?: string[];
  /** `dockerfile`: a build-file variant made from a Dockerfile (its path and digest). */
  variants: { name: string; platform: string; steps: Step[]; dockerfile?: { path: string; digest: Digest } }[];
  startedOn?: Date;
  finishedOn?: Date;
}

export interface Statement {
  _type: string;
  subject: { name: string; digest: { sha256: string } }[];
  predicateType: string;
  predicate: Record<string, unknown>;
}

/** Replaces each arg value found in s by ${NAME}; longer values first so one inside another does not win. */
function redactor(args: Record<string, string>, fromEnvironment: string[], mode: ProvenanceMode): (s: string) => string {
  if (mode === 'max') return (s) => s;
  const values = Object.entries(args)
    .filter(([k, v]) => fromEnvironment.includes(k) && v.length > 0)
    .sort((a, b) => b[1].length - a[1].length);
  return (s) => values.reduce((acc, [name, value]) => acc.split(value).join(`\${${name}}`), s);
}

/** A step as recorded: what it does, never where in the YAML it was. */
function describeStep(step: Step, mode: ProvenanceMode, redact: (s: string) => string): Record<string, unknown> {
  switch (step.kind) {
    case 'run':
      return {
        run: Array.isArray(step.command) ? step.command.map(redact) : redact(step.command),
        ...(step.shell ? { shell: step.shell } : {}),
        ...(Object.keys(step.env).length ? { env: Object.fromEntries(Object.entries(step.env).map(([k, v]) => [k, redact(v)])) } : {}),
        ...(step.user ? { user: step.user } : {}),
        ...(step.workdir ? { workdir: step.workdir } : {}),
        network: step.network,
      };
    case 'copy':
      return {
        copy: step.sources.map((s) => redact(s.pattern)),
        to: redact(step.to),
        ...(step.from ? { from: step.from } : {}),
        ...(step.mode !== undefined ? { mode: step.mode.toString(8).padStart(4, '0') } : {}),
        ...(step.owner ? { owner: step.owner } : {}),
      };
    case 'file':
      // The content's digest always (it pins the layer); the text itself only in max mode.
      return {
        file: redact(step.path),
        contentDigest: sha256(step.content),
        ...(mode === 'max' ? { content: step.content } : {}),
        ...(step.mode !== undefined ? { mode: step.mode.toString(8).padStart(4, '0') } : {}),
        ...(step.owner ? { owner: step.owner } : {}),
      };
    case 'dir':
      // A Dockerfile's WORKDIR: the directory and its owner.
      return { dir: redact(step.path), ...(step.owner ? { owner: step.owner } : {}) };
  }
}

/** The SLSA v1 provenance predicate (buildDefinition + runDetails). */
export function provenancePredicate(inp: ProvenanceInputs): Record<string, unknown> {
  const redact = redactor(inp.args, inp.fromEnvironment ?? [], inp.mode);
  const names = Object.keys(inp.args).sort();
  const externalParameters: Record<string, unknown> = {
    buildFile: {
      path: inp.buildFile.path,
      digest: { sha256: digestHex(inp.buildFile.digest) },
      ...(inp.mode === 'max' && inp.buildFile.content !== undefined ? { content: inp.buildFile.content } : {}),
    },
    // Names only, unless max: a value may come from a secret through the environment.
    args: inp.mode === 'max' ? Object.fromEntries(names.map((n) => [n, inp.args[n]!])) : names,
    variants: inp.variants.map((v) => ({
      name: v.name,
      platform: v.platform,
      ...(v.dockerfile ? { dockerfile: { path: v.dockerfile.path, digest: { sha256: digestHex(v.dockerfile.digest) } } } : {}),
      steps: v.steps.map((s) => describeStep(s, inp.mode, redact)),
    })),
    ...(inp.source ? { source: { uri: inp.source.uri, ...(inp.source.ref ? { ref: inp.source.ref } : {}) } } : {}),
    ...(inp.workflow?.workflowRef
      ? { workflow: { ref: inp.workflow.workflowRef, repository: `${inp.workflow.serverUrl}/${inp.workflow.repository}` } }
      : {}),
  };
  const resolvedDependencies = [
    ...(inp.source
      ? [{ uri: `git+${inp.source.uri}${inp.source.ref ? `@${inp.source.ref}` : ''}`, digest: { gitCommit: inp.source.commit } }]
      : []),
    ...inp.bases.map((b) => ({
      uri: `oci://${b.ref}`,
      digest: { sha256: digestHex(b.digest) },
      ...(b.platform ? { annotations: { platform: b.platform } } : {}),
    })),
  ];
  const w = inp.workflow;
  const metadata: Record<string, unknown> = {
    ...(w ? { invocationId: `${w.serverUrl}/${w.repository}/actions/runs/${w.runId}/attempts/${w.runAttempt ?? '1'}` } : {}),
    ...(inp.startedOn ? { startedOn: inp.startedOn.toISOString() } : {}),
    ...(inp.finishedOn ? { finishedOn: inp.finishedOn.toISOString() } : {}),
  };
  return {
    buildDefinition: {
      buildType: BUILD_TYPE,
      externalParameters,
      internalParameters: { mode: inp.mode, ...(w ? { github: { eventName: w.eventName ?? '', job: w.job ?? '' } } : {}) },
      resolvedDependencies,
    },
    runDetails: {
      builder: { id: inp.builder.id, version: { 'oci-build-action': inp.builder.version } },
      metadata,
    },
  };
}

export function statement(subjects: ProvenanceSubject[], predicateType: string, predicate: Record<string, unknown>): Statement {
  return {
    _type: IN_TOTO_STATEMENT,
    subject: subjects.map((s) => ({ name: s.name, digest: { sha256: digestHex(s.digest) } })),
    predicateType,
    predicate,
  };
}

/** The provenance statement's bytes for these subjects. */
export function provenanceStatement(
  subjects: ProvenanceSubject[],
  inp: ProvenanceInputs,
): { mediaType: string; bytes: Buffer; statement: Statement } {
  const st = statement(subjects, SLSA_PROVENANCE_V1, provenancePredicate(inp));
  return { mediaType: IN_TOTO_JSON, bytes: jsonBytes(st), statement: st };
}
