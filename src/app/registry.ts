/**
 * The composition root's registries: from configuration to opened objects. A remote becomes an
 * ObjectStore (with its retry/limit wrappers) holding a Repository (opened if it exists, e.g.
 * seeded by copying files with another tool, else initialised); a source becomes a Hypervisor
 * with the real NBD client wired in.
 */
import { join } from 'node:path';
import type { Clock, Logger } from '../core/index.ts';
import { openNbdDisk, openNbdSink } from '../disk/index.ts';
import type { NbdTlsOptions } from '../nbd/index.ts';
import { readFileSync } from 'node:fs';
import {
  LazyXapiHypervisor,
  QemuHypervisor,
  type Hypervisor,
  type OpenNbdDisk,
  type OpenNbdSink,
  type QemuNbdServerConfig,
} from '../hypervisor/index.ts';
import { Repository, RepositoryError, type RepositoryConfig } from '../repository/index.ts';
import { openStore } from '../storage/index.ts';
import type { RemoteTarget } from '../jobs/index.ts';
import type { RemoteConfig, SourceConfig } from './config-schema.ts';

type QemuSourceConfig = Extract<SourceConfig, { type: 'qemu' }>;
type XapiSourceConfig = Extract<SourceConfig, { type: 'xapi' }>;

/** A XAPI source: logs in on first use; the password stays inside the session. */
function openXapiSource(source: XapiSourceConfig, options: { logger?: Logger }): Hypervisor {
  const tls = source.tls;
  return new LazyXapiHypervisor(
    {
      url: source.url,
      username: source.username,
      password: source.password,
      ...(tls === undefined
        ? {}
        : {
            trust:
              tls.kind === 'pinned'
                ? { kind: 'pinned', sha256Fingerprints: tls.sha256Fingerprints }
                : {
                    kind: 'ca',
                    ...(tls.caFile === undefined
                      ? {}
                      : { caPem: readFileSync(tls.caFile, 'utf8') }),
                  },
          }),
      ...(options.logger === undefined ? {} : { logger: options.logger }),
    },
    {
      displayName: source.name ?? `XAPI ${new URL(source.url).host}`,
      ...(source.preferNbd === undefined ? {} : { preferNbd: source.preferNbd }),
      ...(source.backupNetwork === undefined ? {} : { backupNetwork: source.backupNetwork }),
      ...(source.enableNbd === undefined ? {} : { enableNbd: source.enableNbd }),
      ...(source.purgeSnapshotData === undefined
        ? {}
        : { purgeSnapshotData: source.purgeSnapshotData }),
    },
  );
}

/** The NBD client as the hypervisor layer's injected dependency. */
export const realOpenNbdDisk: OpenNbdDisk = (options) =>
  openNbdDisk({
    uri: options.uri,
    blockSizeBytes: options.blockSizeBytes,
    mode: options.mode,
    ...(options.connections === undefined ? {} : { connections: options.connections }),
    ...(options.tls === undefined ? {} : { tls: options.tls as NbdTlsOptions }),
    ...(options.maxInFlightBytes === undefined
      ? {}
      : { maxInFlightBytes: options.maxInFlightBytes }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });

/** The writable NBD client, for restores through a writable export. */
export const realOpenNbdSink: OpenNbdSink = (options) =>
  openNbdSink({
    uri: options.uri,
    ...(options.connections === undefined ? {} : { connections: options.connections }),
    ...(options.tls === undefined ? {} : { tls: options.tls as NbdTlsOptions }),
    ...(options.maxInFlightBytes === undefined
      ? {}
      : { maxInFlightBytes: options.maxInFlightBytes }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });

export async function openRemote(
  remote: RemoteConfig,
  options: { clock?: Clock; initLike?: RepositoryConfig } = {},
): Promise<RemoteTarget> {
  const store = await openStore(
    remote.store,
    options.clock === undefined ? {} : { clock: options.clock },
  );
  try {
    const repository = await Repository.open(
      store,
      options.clock === undefined ? {} : { clock: options.clock },
    );
    return { id: remote.id, repository };
  } catch (error) {
    if (!(error instanceof RepositoryError && error.code === 'REPO_NOT_INITIALIZED')) {
      await store.close();
      throw error;
    }
  }
  // The remote's own settings first; a copy target takes the rest from its source.
  const like = options.initLike;
  const blockSizeBytes = remote.blockSizeBytes ?? like?.blockSizeBytes;
  const compression = remote.compression ?? like?.compression;
  const repository = await Repository.init(store, {
    ...(blockSizeBytes === undefined ? {} : { blockSizeBytes }),
    ...(compression === undefined ? {} : { compression }),
    ...(like === undefined ? {} : { hash: like.hash }),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  });
  return { id: remote.id, repository };
}

function toNbdServer(
  server: NonNullable<QemuSourceConfig['machines'][number]['nbdServer']>,
): QemuNbdServerConfig {
  if (server.transport === 'unix') return server;
  return {
    transport: 'tcp',
    host: server.host,
    port: server.port,
    ...(server.tlsCredsDir === undefined ? {} : { tlsCredsDir: server.tlsCredsDir }),
    ...(server.verifyPeer === undefined ? {} : { verifyPeer: server.verifyPeer }),
  };
}

export function openSource(
  source: SourceConfig,
  options: { dataDir: string; logger?: Logger; clock?: Clock; openDisk?: OpenNbdDisk },
): Hypervisor {
  if (source.type === 'xapi') return openXapiSource(source, options);
  return new QemuHypervisor({
    scratchDir: source.scratchDir ?? join(options.dataDir, 'scratch', source.id),
    openDisk: options.openDisk ?? realOpenNbdDisk,
    openSink: realOpenNbdSink,
    machines: source.machines.map((machine) => ({
      id: machine.id,
      ...(machine.label === undefined ? {} : { label: machine.label }),
      ...(machine.qmpSocket === undefined ? {} : { qmp: { socketPath: machine.qmpSocket } }),
      ...(machine.images === undefined ? {} : { images: machine.images }),
      ...(machine.nbdServer === undefined ? {} : { nbdServer: toNbdServer(machine.nbdServer) }),
    })),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  });
}
