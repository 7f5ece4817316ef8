import type { RepoRef } from '../registry/client.js';
import type { RegistryPublisher, PublishStats, PublishTarget } from './publisher.js';
import type { Sink, SinkImage } from './sink.js';

/** The registry as a sink: every variant to its repository, then its tags (src/output/publisher.ts). */
export class RegistrySink implements Sink {
  readonly description = 'registry';
  /** What the push did, once write() has returned. */
  stats?: PublishStats;

  /**
   * `distribute`: one job of a distributed build: a multi-platform variant's manifests go up by
   * digest only; the merge job makes its index and tags.
   */
  constructor(
    private readonly publisher: RegistryPublisher,
    private readonly opts: { distribute?: boolean; beforeTags?: (targets: PublishTarget[]) => Promise<void> } = {},
  ) {}

  async write(images: SinkImage[]): Promise<void> {
    const targets = images.map((i): PublishTarget => {
      if (!i.repo) throw new Error(`variant ${i.variant.variant} has no image to push to`);
      const repo: RepoRef = i.repo;
      const v = i.variant;
      if (this.opts.distribute && v.index) {
        const first = v.images[0]!;
        return { variant: { ...v, index: undefined, tagged: first.manifestDescriptor, taggedBytes: first.manifestBytes }, repo, tags: [] };
      }
      return { variant: v, repo, tags: i.tags };
    });
    const beforeTags = this.opts.beforeTags;
    this.stats = await this.publisher.publish(targets, beforeTags ? { beforeTags: () => beforeTags(targets) } : {});
  }
}
