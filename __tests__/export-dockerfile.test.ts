import { describe, it, expect } from 'vitest';
import { parseBuildFileText } from '../src/config/load.js';
import { exportDockerfile, ExportError } from '../src/export/dockerfile.js';

/** Issue 15: the Dockerfile export, instruction by instruction (the buildah builds are in example-robot and export-habitat). */

async function exported(yaml: string, baseUser = { user: '', workdir: '' }) {
  const bf = await parseBuildFileText(yaml, '/ctx/oci-build.yml', '/ctx');
  const asked: string[] = [];
  const x = await exportDockerfile(bf.variants, {
    buildFile: 'oci-build.yml',
    baseConfig: async (ref) => {
      asked.push(ref);
      return baseUser;
    },
  });
  return { ...x, asked };
}

describe('oci-build dockerfile', () => {
  it('keeps a multi-line script and its env exactly, in JSON, without an ENV that would outlive the step', async () => {
    const x = await exported(`version: 1
variants:
  a:
    base: busybox
    steps:
      - run: |
          echo "it's $HOME"
          if true; then echo yes; fi
        env: { MODE: "it's" }
        shell: [/bin/bash, -c]
      - run: [/bin/echo, hi]
        env: { X: "1" }
      - run: echo plain
`);
    const runs = x.text.split('\n').filter((l) => l.startsWith('RUN '));
    expect(runs).toEqual([
      `RUN ${JSON.stringify(['/bin/bash', '-c', `export MODE='it'\\''s'\necho "it's $HOME"\nif true; then echo yes; fi\n`])}`,
      `RUN ${JSON.stringify(['/bin/sh', '-c', `export X='1'; exec "$@"`, 'sh', '/bin/echo', 'hi'])}`,
      'RUN echo plain',
    ]);
    expect(x.text).not.toContain('ENV MODE');
    expect(x.asked).toEqual([]);
  });

  it('writes the config, quoting what Dockerfile expansion would change, and file: contents as context files', async () => {
    const x = await exported(`version: 1
variants:
  a:
    base: scratch
    steps:
      - file: /etc/motd
        content: "hello\\n"
        mode: "0600"
        owner: "1:2"
    env: { GREETING: "hi $USER there" }
    entrypoint: [/bin/app]
    cmd: [serve]
    user: "1000"
    workdir: /srv
    labels: { org.example.x: "a b" }
    expose: [8080, "53/udp"]
    volumes: [/data]
    stop-signal: SIGINT
`);
    expect(x.files).toEqual([{ path: '.oci-build/export/a/step-1', content: 'hello\n' }]);
    expect(x.text).toContain(
      'FROM scratch AS a\nENV GREETING="hi \\$USER there"\nCOPY --chown=1:2 --chmod=0600 .oci-build/export/a/step-1 /etc/motd\n',
    );
    expect(x.text).toContain(
      'USER 1000\nWORKDIR /srv\nLABEL org.example.x="a b"\nEXPOSE 8080/tcp 53/udp\nVOLUME ["/data"]\nSTOPSIGNAL SIGINT\nENTRYPOINT ["/bin/app"]\nCMD ["serve"]\n',
    );
  });

  it("puts the starting user and directory back after a step's own, reading the base's config only then", async () => {
    const x = await exported(
      `version: 1
variants:
  a:
    stage: true
    base: busybox
    steps:
      - run: id
        user: app
        workdir: /home/app
      - run: id
  b:
    from: a
    steps:
      - run: id
        user: app
`,
      { user: 'nobody', workdir: '/w' },
    );
    expect(x.asked).toEqual(['busybox']);
    expect(x.text).toContain('FROM busybox AS a\nUSER app\nWORKDIR /home/app\nRUN id\nUSER nobody\nWORKDIR /w\nRUN id\n');
    expect(x.text).toContain('FROM a AS b\nUSER app\nRUN id\nUSER nobody\n');
    expect(x.stages).toEqual(['a', 'b']);
  });

  it('refuses what a Dockerfile cannot say, naming the file and line', async () => {
    const annotated = exported(`version: 1
variants:
  a:
    base: scratch
    annotations: { org.example.tier: base }
`);
    await expect(annotated).rejects.toThrow(ExportError);
    await expect(annotated).rejects.toThrow(/oci-build\.yml:3: variant a: annotations \(org\.example\.tier\) are manifest annotations/);
  });
});
