import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadDockerfile, type LoadedDockerfile } from '../src/dockerfile/index.js';
import { ConfigError, type RunStep, type VariantSpec } from '../src/config/model.js';
import type { ContainerConfig } from '../src/oci/types.js';

/** Dockerfile semantics into the build model: stages, args, env, settings, errors (no registry). */

const dirs: string[] = [];
const loaded: LoadedDockerfile[] = [];
afterEach(async () => {
  for (const l of loaded.splice(0)) await l.dispose();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const amd64 = { os: 'linux', architecture: 'amd64' };
const configs: Record<string, ContainerConfig> = {
  'example/base': { Env: ['PATH=/usr/bin:/bin', 'BASE_ENV=b'], WorkingDir: '/base', User: 'builder' },
};

async function load(
  dockerfile: string,
  files: Record<string, string> = {},
  opts: { args?: Record<string, string>; target?: string } = {},
): Promise<LoadedDockerfile & { v: (name: string) => VariantSpec }> {
  const dir = mkdtempSync(join(tmpdir(), 'oci-build-dfconv-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'Dockerfile'), dockerfile);
  for (const [p, c] of Object.entries(files)) {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    writeFileSync(join(dir, p), c);
  }
  const l = await loadDockerfile({
    file: join(dir, 'Dockerfile'),
    context: dir,
    buildArgs: opts.args ?? {},
    ...(opts.target ? { target: opts.target } : {}),
    platforms: [amd64],
    buildPlatform: amd64,
    imageConfig: async (ref) => configs[ref],
  });
  loaded.push(l);
  return { ...l, v: (name) => l.buildFile.variants.find((x) => x.name === name)! };
}

async function problems(dockerfile: string, files: Record<string, string> = {}): Promise<string[]> {
  try {
    await load(dockerfile, files);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems.map((p) => `${p.line}:${p.column} ${p.message}`);
    throw e;
  }
  throw new Error('expected the Dockerfile to be rejected');
}

describe('Dockerfile to variants', () => {
  it('makes one variant per needed stage: the target ships, the others are stages chained with from:', async () => {
    const l = await load(
      [
        'FROM example/base AS Build',
        'RUN make',
        'FROM example/base AS unused',
        'COPY missing-file /x', // never read: nothing needs this stage
        'FROM build',
        'COPY --from=BUILD /out /app/',
        'COPY --from=other/image:1 /bin/tool /bin/',
      ].join('\n'),
    );
    expect(l.buildFile.variants.map((v) => [v.name, v.stage, v.from ?? v.base])).toEqual([
      ['build', true, 'example/base'],
      ['stage-2', false, 'build'],
      ['image-other-image-1', true, 'other/image:1'],
    ]);
    expect(l.target).toBe('stage-2');
    expect(l.v('stage-2').steps.map((s) => s.kind === 'copy' && s.from)).toEqual(['build', 'image-other-image-1']);
  });

  it('selects a target case-insensitively and builds only what it needs', async () => {
    const l = await load('FROM example/base AS a\nFROM a AS B\nFROM b AS c\nCOPY nothing /', {}, { target: 'b' });
    expect(l.buildFile.variants.map((v) => v.name)).toEqual(['a', 'b']);
  });

  it('scopes ARGs: global ones only in FROM unless redeclared, --build-arg overrides, RUN sees them, the config does not', async () => {
    const l = await load(
      [
        'ARG TAG=1',
        'ARG IMG=example/base',
        'FROM ${IMG}',
        'ARG TAG',
        'ARG OWN=own',
        'ARG OVER=default',
        'ARG TARGETARCH',
        'RUN echo',
        'ENV OWN=env-wins',
        'RUN echo',
      ].join('\n'),
      {},
      { args: { OVER: 'cli' } },
    );
    const v = l.v('stage-0');
    const [r1, r2] = v.steps as RunStep[];
    expect(r1!.env).toEqual({ TAG: '1', OWN: 'own', OVER: 'cli', TARGETARCH: 'amd64' });
    expect(r2!.env).toEqual({ TAG: '1', OVER: 'cli', TARGETARCH: 'amd64', OWN: 'env-wins' });
    expect(r1!.ownEnv).toBe(true);
    // History in Docker's form: args with values, then the command as run.
    expect(r1!.createdBy).toBe('RUN |4 TAG=1 OWN=own OVER=cli TARGETARCH=amd64 /bin/sh -c echo # buildkit');
    expect(r2!.createdBy).toBe('RUN |3 TAG=1 OVER=cli TARGETARCH=amd64 /bin/sh -c echo # buildkit');
    expect(v.env).toEqual({ OWN: 'env-wins' });
  });

  it("expands ENV with the base image's environment, keeps ENV positional for RUN, inherits stage state", async () => {
    const l = await load(
      [
        'FROM example/base AS one',
        'ENV PATH=$PATH:/opt/bin A=$BASE_ENV',
        'RUN first',
        'ENV LATER=1',
        'WORKDIR sub',
        'USER app',
        'FROM one',
        'RUN second',
        'COPY f rel/',
      ].join('\n'),
      { f: 'x' },
    );
    const one = l.v('one');
    expect(one.env).toEqual({ PATH: '/usr/bin:/bin:/opt/bin', A: 'b', LATER: '1' });
    expect((one.steps[0] as RunStep).env).toEqual({ PATH: '/usr/bin:/bin:/opt/bin', A: 'b' });
    expect(one.steps[1]).toMatchObject({ kind: 'dir', path: '/base/sub', owner: 'builder' });
    expect(l.v('stage-1').steps[0]).toMatchObject({ kind: 'run', workdir: '/base/sub', user: 'app', env: {} });
    expect(l.v('stage-1').steps[1]).toMatchObject({
      kind: 'copy',
      to: '/base/sub/rel/',
      dockerRules: true,
      createdBy: 'COPY f rel/ # buildkit',
    });
    expect(one.steps[1]!.createdBy).toBe('WORKDIR /base/sub');
  });

  it('turns settings into the config: ENTRYPOINT/CMD forms with SHELL, EXPOSE, VOLUME, LABEL, MAINTAINER, STOPSIGNAL', async () => {
    const l = await load(
      [
        'FROM scratch',
        'SHELL ["/bin/bash", "-c"]',
        'CMD run $X',
        'ENTRYPOINT ["/e"]',
        'EXPOSE 80 53/udp 10-11',
        'VOLUME /a ["/b"]',
        'VOLUME ["/c", "/d"]',
        'LABEL "k 1"=v k2=$UNSET',
        'MAINTAINER me',
        'STOPSIGNAL SIGINT',
      ].join('\n'),
    );
    const v = l.v('stage-0');
    expect(v).toMatchObject({
      base: 'scratch',
      cmd: ['/bin/bash', '-c', 'run $X'],
      entrypoint: ['/e'],
      expose: ['80/tcp', '53/udp', '10/tcp', '11/tcp'],
      volumes: ['/a', '[/b]', '/c', '/d'],
      labels: { 'k 1': 'v', k2: '' },
      author: 'me',
      stopSignal: 'SIGINT',
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' },
    });
  });

  it('heredocs: COPY <<EOF makes file steps (expanded unless quoted), RUN <<EOF runs the body', async () => {
    const l = await load(
      'FROM scratch\nARG N=world\nCOPY <<A <<"B" /etc/\nhello $N\nA\nraw $N\nB\nRUN <<EOF\necho $N\nEOF\nRUN cat <<X > /f\n$N\nX\n',
    );
    const s = l.v('stage-0').steps;
    expect(s.slice(0, 2)).toMatchObject([
      { kind: 'file', path: '/etc/A', content: 'hello world\n' },
      { kind: 'file', path: '/etc/B', content: 'raw $N\n' },
    ]);
    expect((s[2] as RunStep).command).toBe('echo $N\n');
    expect((s[3] as RunStep).command).toBe('cat <<X > /f\n$N\nX\n');
  });

  it('applies .dockerignore to the context before copy sources are resolved', async () => {
    const l = await load('FROM scratch\nCOPY . /ctx/\n', {
      '.dockerignore': 'secret\n*.log\n!keep.log\n',
      secret: 's',
      'a.log': 'l',
      'keep.log': 'k',
      f: 'f',
    });
    expect(l.context).not.toBe(l.buildFile.file.replace(/\/Dockerfile$/, ''));
    expect(existsSync(join(l.context, 'secret'))).toBe(false);
    expect(existsSync(join(l.context, 'a.log'))).toBe(false);
    expect(existsSync(join(l.context, 'keep.log'))).toBe(true);
    await l.dispose();
    expect(existsSync(l.context)).toBe(false);
  });

  it('reports every unsupported or wrong instruction at once, with line and column, before any work', async () => {
    const got = await problems(
      [
        'FROM scratch',
        'HEALTHCHECK --interval=soon CMD true',
        'RUN --mount=type=cache,target=/c,sharing=never make',
        '  ADD http://127.0.0.1:1/x /x',
        'COPY missing /m',
        'ONBUILD FROM x',
        'COPY a b /notadir',
        'ENV X=${Y:?required}',
        'FROM scratch AS bad name',
      ].join('\n'),
    );
    expect(got).toEqual([
      expect.stringMatching(/^9:1 FROM: FROM takes an image/),
      expect.stringMatching(/^2:1 HEALTHCHECK: --interval=soon is not a duration/),
      expect.stringMatching(/^3:1 RUN: --mount=type=cache,target=\/c,sharing=never: sharing must be shared, private or locked/),
      expect.stringMatching(/^4:3 ADD: downloading http:\/\/127.0.0.1:1\/x failed/),
      expect.stringMatching(/^5:1 COPY: copy source "missing" does not exist/),
      expect.stringMatching(/^6:1 ONBUILD: invalid trigger "FROM x"/),
      expect.stringMatching(/^7:1 COPY: with more than one source the destination must be a directory/),
      expect.stringMatching(/^8:1 ENV: Y: required/),
    ]);
  });

  it('HEALTHCHECK into the config; ONBUILD stored, run by the child stage only, and removed from its config', async () => {
    const l = await load(
      [
        'FROM scratch AS parent',
        'HEALTHCHECK --interval=1m30s --retries=3 CMD ["/bin/check", "-q"]',
        'ONBUILD ENV FROM_TRIGGER=1',
        'ONBUILD COPY f /f',
        'FROM parent AS child',
        'HEALTHCHECK NONE',
        'FROM child',
        'HEALTHCHECK CMD check $X',
      ].join('\n'),
      { f: 'x' },
    );
    expect(l.v('parent')).toMatchObject({
      healthcheck: { Test: ['CMD', '/bin/check', '-q'], Interval: 90e9, Retries: 3 },
      onBuild: ['ENV FROM_TRIGGER=1', 'COPY f /f'],
      env: { PATH: expect.any(String) },
    });
    expect(l.v('parent').steps).toEqual([]);
    expect(l.v('child')).toMatchObject({ healthcheck: { Test: ['NONE'] }, onBuild: [], env: { FROM_TRIGGER: '1' } });
    expect(l.v('child').steps).toMatchObject([{ kind: 'copy', to: '/f', pos: { line: 5, column: 1 } }]);
    const grandchild = l.v('stage-2');
    expect(grandchild).toMatchObject({ healthcheck: { Test: ['CMD-SHELL', 'check $X'] }, env: {}, steps: [] });
    expect(grandchild.onBuild).toBeUndefined();
  });

  it('ADD <url> downloads before any work (named after the URL, mode 0600), checks --checksum, never unpacks', async () => {
    const body = Buffer.from('payload\n');
    const srv = createServer((_req, res) => {
      res.end(body);
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(srv.address() as { port: number }).port}`;
    try {
      const sum = `sha256:${createHash('sha256').update(body).digest('hex')}`;
      const l = await load(`FROM scratch\nADD --checksum=${sum} ${url}/dir/tool.tgz /opt/\n`);
      const step = l.v('stage-0').steps[0]!;
      expect(step).toMatchObject({ kind: 'copy', to: '/opt/', sources: [{ pattern: `${url}/dir/tool.tgz` }] });
      expect(step.kind === 'copy' && step.extract).toBeFalsy();
      const file = step.kind === 'copy' ? step.sources[0]!.matches[0]! : '';
      expect(file.endsWith('/tool.tgz')).toBe(true);
      expect(readFileSync(file)).toEqual(body);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const bad = await problems(`FROM scratch\nADD --checksum=sha256:${'0'.repeat(64)} ${url}/x /x\n`);
      expect(bad).toEqual([expect.stringMatching(new RegExp(`^2:1 ADD: ${url}/x has ${sum}, not the --checksum`))]);
    } finally {
      srv.close();
    }
  });

  it('rejects an unknown target and a stage cycle', async () => {
    await expect(load('FROM scratch AS a', {}, { target: 'nope' })).rejects.toThrow(
      /target stage "nope" is not in the Dockerfile.*stages: a/s,
    );
    const got = await problems('FROM scratch AS a\nCOPY --from=b / /\nFROM scratch AS b\nCOPY --from=a / /\n');
    expect(got.join('\n')).toMatch(/depends on itself/);
  });
});
