/**
 * The configuration file (JSON) that declares remotes, hypervisor sources and jobs. It is the way
 * to declare them for scripts and the demo; the job store holds the same documents for the CLI
 * and the server. Validated with zod; unknown fields are refused; errors name the field.
 */
import { z } from 'zod';
import { storeConfigSchema } from '../storage/index.ts';
import { formatZodIssues, jobDefinitionSchema } from '../jobs/index.ts';
import { compressionSchema } from '../repository/index.ts';
import { AppError } from './errors.ts';

const idSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" and "-" only');

export const remoteSchema = z.strictObject({
  id: idSchema,
  name: z.string().max(200).optional(),
  store: storeConfigSchema,
  /** Repository block size used when the remote is initialised (default 2 MiB). */
  blockSizeBytes: z
    .int()
    .min(4096)
    .max(64 * 1024 * 1024)
    .optional(),
  /** Block compression used when the remote is initialised (default zstd level −1). */
  compression: compressionSchema.optional(),
});

const qemuImageSchema = z.strictObject({
  id: idSchema,
  path: z.string().min(1),
  format: z.enum(['qcow2', 'raw']),
});

const qemuMachineSchema = z.strictObject({
  id: idSchema,
  label: z.string().max(200).optional(),
  /** A running machine: the QMP unix socket of qemu-system or qemu-storage-daemon. */
  qmpSocket: z.string().min(1).optional(),
  /** A stopped machine: its disk images. */
  images: z.array(qemuImageSchema).optional(),
  /**
   * Where the machine's point-in-time exports are served: its existing NBD server (unix socket,
   * or TCP with TLS credentials), or by default a unix socket vmdelta starts in the scratch folder.
   */
  nbdServer: z
    .discriminatedUnion('transport', [
      z.strictObject({ transport: z.literal('unix'), socketPath: z.string().min(1) }),
      z.strictObject({
        transport: z.literal('tcp'),
        host: z.string().min(1),
        port: z.int().min(1).max(65535),
        tlsCredsDir: z.string().optional(),
        verifyPeer: z.boolean().optional(),
      }),
    ])
    .optional(),
});

export const sourceSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('qemu'),
    id: idSchema,
    name: z.string().max(200).optional(),
    /** Folder for fleecing overlays and export sockets (default: <dataDir>/scratch/<id>). */
    scratchDir: z.string().optional(),
    machines: z.array(qemuMachineSchema).min(1),
  }),
  z.strictObject({
    type: z.literal('xapi'),
    id: idSchema,
    name: z.string().max(200).optional(),
    /** Pool master (or any member: HOST_IS_SLAVE is followed), e.g. https://xcp-master. */
    url: z.url({ protocol: /^https?$/ }),
    username: z.string().min(1),
    /** Secret: never printed (redactSource). */
    password: z.string().min(1),
    /** Trust for the host certificate: pinned SHA-256 fingerprints, or a CA (system store by default). */
    tls: z
      .discriminatedUnion('kind', [
        z.strictObject({
          kind: z.literal('pinned'),
          sha256Fingerprints: z.array(z.string().min(1)).min(1),
        }),
        z.strictObject({ kind: z.literal('ca'), caFile: z.string().min(1).optional() }),
      ])
      .optional(),
    /** Default for jobs that do not say: read disks over NBD where the pool offers it. */
    preferNbd: z.boolean().optional(),
    /** Network (uuid or name) whose addresses NBD must use (Xen Orchestra's backupNetwork). */
    backupNetwork: z.string().min(1).optional(),
    /** Give the backup network the `nbd` purpose (TLS) if it has none. */
    enableNbd: z.boolean().optional(),
    /** Keep only CBT metadata of exported snapshots (Xen Orchestra's cbtDestroySnapshotData). */
    purgeSnapshotData: z.boolean().optional(),
  }),
]);

export const configFileSchema = z.strictObject({
  remotes: z.array(remoteSchema).default([]),
  sources: z.array(sourceSchema).default([]),
  jobs: z.array(jobDefinitionSchema).default([]),
});

export type RemoteConfig = z.infer<typeof remoteSchema>;
export type SourceConfig = z.infer<typeof sourceSchema>;
export type ConfigFile = z.infer<typeof configFileSchema>;

export function parseConfigFile(value: unknown, origin = 'configuration'): ConfigFile {
  const result = configFileSchema.safeParse(value);
  if (!result.success) {
    throw new AppError('APP_CONFIG_INVALID', `${origin}: ${formatZodIssues(result.error)}`);
  }
  const config = result.data;
  const remoteIds = new Set(config.remotes.map((r) => r.id));
  const sourceIds = new Set(config.sources.map((s) => s.id));
  for (const job of config.jobs) {
    for (const remote of job.remotes) {
      if (!remoteIds.has(remote))
        throw new AppError(
          'APP_CONFIG_INVALID',
          `${origin}: job ${job.id} names unknown remote ${remote}`,
        );
    }
    if (!sourceIds.has(job.source))
      throw new AppError(
        'APP_CONFIG_INVALID',
        `${origin}: job ${job.id} names unknown source ${job.source}`,
      );
  }
  return config;
}

/** A source for display: without its password. */
export function redactSource(source: SourceConfig): SourceConfig {
  return source.type === 'xapi' ? { ...source, password: '********' } : source;
}

/** A remote for display: the store config without secrets. */
export function redactRemote(remote: RemoteConfig): RemoteConfig {
  if (remote.store.type !== 's3') return remote;
  const { secretAccessKey, ...store } = remote.store;
  return {
    ...remote,
    store: secretAccessKey === undefined ? store : { ...store, secretAccessKey: '********' },
  };
}
