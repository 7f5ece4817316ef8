import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dropInPipeline, dropInWanted, isBuildxOutputs, readBuildPushInputs } from '../src/github/build-push-inputs.js';

/** build-push-action's inputs as the drop-in mode reads them (the action's end-to-end test is action-build-push.itg). */

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const ws = () => {
  const d = mkdtempSync(join(tmpdir(), 'oci-build-bpi-'));
  dirs.push(d);
  return d;
};
const getter = (v: Record<string, string>) => (name: string) => v[name] ?? '';

describe('build-push-action inputs', () => {
  it('applies with file or context, or with a Dockerfile and no build file', () => {
    const w = ws();
    expect(dropInWanted(getter({}), w)).toBe(false);
    writeFileSync(join(w, 'Dockerfile'), 'FROM scratch\n');
    expect(dropInWanted(getter({}), w)).toBe(true);
    expect(dropInWanted(getter({ config: 'oci-build.yml' }), w)).toBe(true);
    writeFileSync(join(w, 'oci-build.yml'), 'version: 1\n');
    expect(dropInWanted(getter({}), w)).toBe(false);
    expect(dropInWanted(getter({ context: '.' }), w)).toBe(true);
    expect(dropInWanted(getter({ config: 'other.yml' }), w)).toBe(false);
  });

  it('reads paths, args, tags, outputs and push as build-push-action means them', () => {
    const w = ws();
    const d = readBuildPushInputs(
      getter({
        context: 'app',
        'build-args': 'A=1\nB=two=2',
        tags: 'ghcr.io/acme/app:1.0\nghcr.io/acme/app:latest\ntype=sha',
        labels: 'l=v',
        annotations: 'manifest:a=b\nc=d',
        outputs: 'type=docker,dest=/tmp/x.tar\ntype=oci,dest=/tmp/y.tar\ntype=registry',
      }),
      w,
      {},
    );
    expect(d.context).toBe(join(w, 'app'));
    expect(d.file).toBe(join(w, 'app', 'Dockerfile'));
    expect(d.buildArgs).toEqual({ A: '1', B: 'two=2' });
    expect(d.refs).toEqual(['ghcr.io/acme/app:1.0', 'ghcr.io/acme/app:latest']);
    expect(d.tagRules).toEqual(['type=sha']);
    expect(d.annotations).toEqual({ a: 'b', c: 'd' });
    expect(d.outputs).toEqual([
      { kind: 'docker-archive', path: '/tmp/x.tar' },
      { kind: 'oci-archive', path: '/tmp/y.tar' },
    ]);
    // type=registry pushes; without it and without push, build-push-action does not.
    expect(d.push).toBe('true');
    expect(readBuildPushInputs(getter({ file: 'x/Containerfile' }), w, {}).push).toBe('false');
    expect(readBuildPushInputs(getter({ file: 'x/Containerfile' }), w, {}).file).toBe(join(w, 'x', 'Containerfile'));
    expect(readBuildPushInputs(getter({ outputs: 'type=image,push=true' }), w, {}).push).toBe('true');
    expect(readBuildPushInputs(getter({ push: 'false', outputs: 'type=registry' }), w, {}).push).toBe('false');
    expect(() => readBuildPushInputs(getter({ outputs: 'type=local,dest=out' }), w, {})).toThrow(
      /type=local,dest=out" is not supported here/,
    );
    expect(isBuildxOutputs('type=registry')).toBe(true);
    expect(isBuildxOutputs('oci:out/layout')).toBe(false);
  });

  it('warns once per daemon-only input, saying what to use instead', () => {
    const d = readBuildPushInputs(getter({ load: 'true', 'cache-to': 'type=gha,mode=max', ssh: 'default', pull: 'false' }), ws(), {});
    expect(d.warnings).toEqual([
      expect.stringMatching(/^input load is ignored: .*type=docker,dest=/),
      expect.stringMatching(/^input cache-to is ignored: .*Actions cache/),
      expect.stringMatching(/^input ssh is ignored: .*secrets/),
    ]);
  });

  it('full references become the image and raw tags; rules stay rules; one repository only', () => {
    const w = ws();
    const base = { outputs: [], cache: true };
    const d = readBuildPushInputs(getter({ tags: 'reg.example/acme/app:1.0,type=ref,event=branch' }), w, {});
    // A comma inside a rule keeps the line whole only with newlines: build-push-action's list rule.
    const byLine = readBuildPushInputs(getter({ tags: 'reg.example/acme/app:1.0\ntype=ref,event=branch' }), w, {});
    expect(d.refs).toEqual(['reg.example/acme/app:1.0']);
    const o = dropInPipeline(base, byLine, { repository: 'Acme/Coop' });
    expect(o.dockerfile.image).toBe('reg.example/acme/app');
    expect(o.tags).toEqual(['type=ref,event=branch', 'type=raw,value=1.0']);
    expect(dropInPipeline(base, readBuildPushInputs(getter({}), w, {}), { repository: 'Acme/Coop' }).dockerfile.image).toBe(
      'ghcr.io/acme/coop',
    );
    const two = readBuildPushInputs(getter({ tags: 'a.example/x:1\nb.example/y:2' }), w, {});
    expect(() => dropInPipeline(base, two, { repository: 'Acme/Coop' })).toThrow(/several repositories/);
    expect(dropInPipeline(base, readBuildPushInputs(getter({ 'no-cache': 'true' }), w, {}), { repository: 'a/b' }).cache).toBe(false);
  });
});
