/**
 * The application: configuration (file + job store), opened remotes and sources, and the
 * use-case functions the CLI and the server share (run a job, list backups, restore, copy,
 * verify, apply retention). Secrets stay inside: listings go through `redactRemote`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import {
  nullSink,
  silentLogger,
  systemClock,
  type Clock,
  type EventSink,
  type Logger,
} from '../core/index.ts';
import type { Hypervisor, OpenNbdDisk } from '../hypervisor/index.ts';
import type { RepositoryConfig } from '../repository/index.ts';
import {
  JobError,
  parseJobDefinition,
  runBackup,
  type JobDefinition,
  type JobEvent,
  type RemoteTarget,
  type RunLog,
} from '../jobs/index.ts';
import { AppError } from './errors.ts';
import {
  parseConfigFile,
  remoteSchema,
  sourceSchema,
  type ConfigFile,
  type RemoteConfig,
  type SourceConfig,
} from './config-schema.ts';
import { JobStore } from './job-store.ts';
import { openRemote, openSource } from './registry.ts';

export interface AppOptions {
  /** Folder of the job store and scratch files (default: VMDELTA_DATA_DIR, /var/lib/vmdelta as root, ~/.vmdelta). */
  readonly dataDir?: string;
  /** Configuration file (default: <dataDir>/config.json if it exists). */
  readonly configFile?: string;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Replaces the NBD client (tests). */
  readonly openDisk?: OpenNbdDisk;
}

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env['VMDELTA_DATA_DIR'];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  return process.getuid?.() === 0 ? '/var/lib/vmdelta' : join(homedir(), '.vmdelta');
}

export class App {
  readonly dataDir: string;
  readonly store: JobStore;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly #file: ConfigFile;
  readonly #openDisk: OpenNbdDisk | undefined;
  readonly #remotes = new Map<string, Promise<RemoteTarget>>();
  readonly #sources = new Map<string, Hypervisor>();
  readonly #running = new Map<string, AbortController>();

  private constructor(dataDir: string, store: JobStore, file: ConfigFile, options: AppOptions) {
    this.dataDir = dataDir;
    this.store = store;
    this.#file = file;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.#openDisk = options.openDisk;
  }

  static open(options: AppOptions = {}): App {
    const dataDir = options.dataDir ?? defaultDataDir();
    const configFile = options.configFile ?? join(dataDir, 'config.json');
    let file: ConfigFile = { remotes: [], sources: [], jobs: [] };
    if (options.configFile !== undefined || existsSync(configFile)) {
      let raw: unknown;
      try {
        raw = JSON.parse(readFileSync(configFile, 'utf8'));
      } catch (error) {
        throw new AppError('APP_CONFIG_INVALID', `${configFile}: ${(error as Error).message}`, {
          cause: error,
        });
      }
      file = parseConfigFile(raw, configFile);
    }
    return new App(dataDir, JobStore.open(join(dataDir, 'vmdelta.db')), file, options);
  }

  async close(): Promise<void> {
    for (const controller of this.#running.values()) controller.abort();
    for (const source of this.#sources.values()) await source.close();
    for (const remote of this.#remotes.values()) {
      const opened = await remote.catch(() => undefined);
      await opened?.repository.close(); // stops its block workers
      await opened?.repository.store.close();
    }
    this.store.close();
  }

  // ---- declarations: the config file, overridden by the job store on the same id ------------

  #merged<T extends { id: string }>(
    fromFile: readonly T[],
    kind: 'job' | 'remote' | 'source',
    parse: (v: unknown) => T,
  ): T[] {
    const byId = new Map(fromFile.map((item) => [item.id, item]));
    for (const doc of this.store.listDocuments(kind)) {
      const item = parse(doc);
      byId.set(item.id, item);
    }
    return [...byId.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  remotes(): RemoteConfig[] {
    return this.#merged(this.#file.remotes, 'remote', (v) => remoteSchema.parse(v));
  }

  sources(): SourceConfig[] {
    return this.#merged(this.#file.sources, 'source', (v) => sourceSchema.parse(v));
  }

  jobs(): JobDefinition[] {
    return this.#merged(this.#file.jobs, 'job', parseJobDefinition);
  }

  job(jobId: string): JobDefinition {
    const job = this.jobs().find((j) => j.id === jobId);
    if (job === undefined) throw new AppError('APP_CONFIG_INVALID', `no job ${jobId}`);
    return job;
  }

  saveRemote(remote: unknown): RemoteConfig {
    const parsed = remoteSchema.parse(remote);
    this.store.putDocument('remote', parsed.id, parsed, this.clock.nowMs());
    this.#remotes.delete(parsed.id);
    return parsed;
  }

  saveSource(source: unknown): SourceConfig {
    const parsed = sourceSchema.parse(source);
    this.store.putDocument('source', parsed.id, parsed, this.clock.nowMs());
    this.#sources.delete(parsed.id);
    return parsed;
  }

  saveJob(job: unknown): JobDefinition {
    const parsed = parseJobDefinition(job);
    if (!this.sources().some((s) => s.id === parsed.source))
      throw new AppError('APP_SOURCE_NOT_FOUND', `no source ${parsed.source}`);
    for (const remote of parsed.remotes) {
      if (!this.remotes().some((r) => r.id === remote))
        throw new AppError('APP_REMOTE_NOT_FOUND', `no remote ${remote}`);
    }
    this.store.putDocument('job', parsed.id, parsed, this.clock.nowMs());
    return parsed;
  }

  // ---- opened objects ---------------------------------------------------------------------

  /**
   * The remote's repository, opened once. A remote that holds no repository yet is initialised,
   * with the parameters of `options.initLike` when given (a copy target takes its source's block
   * size, hash and compression, so seeding works whatever the source was created with).
   */
  remote(remoteId: string, options: { initLike?: RepositoryConfig } = {}): Promise<RemoteTarget> {
    let opened = this.#remotes.get(remoteId);
    if (opened === undefined) {
      const config = this.remotes().find((r) => r.id === remoteId);
      if (config === undefined)
        return Promise.reject(new AppError('APP_REMOTE_NOT_FOUND', `no remote ${remoteId}`));
      opened = openRemote(config, {
        clock: this.clock,
        ...(options.initLike === undefined ? {} : { initLike: options.initLike }),
      });
      opened.catch(() => this.#remotes.delete(remoteId));
      this.#remotes.set(remoteId, opened);
    }
    return opened;
  }

  source(sourceId: string): Hypervisor {
    let source = this.#sources.get(sourceId);
    if (source === undefined) {
      const config = this.sources().find((s) => s.id === sourceId);
      if (config === undefined) throw new AppError('APP_SOURCE_NOT_FOUND', `no source ${sourceId}`);
      source = openSource(config, {
        dataDir: this.dataDir,
        logger: this.logger,
        clock: this.clock,
        ...(this.#openDisk === undefined ? {} : { openDisk: this.#openDisk }),
      });
      this.#sources.set(sourceId, source);
    }
    return source;
  }

  // ---- use cases ---------------------------------------------------------------------------

  isRunning(jobId: string): boolean {
    return this.#running.has(jobId);
  }

  /** Cancels the running run of a job; false if none runs. */
  cancel(jobId: string): boolean {
    const controller = this.#running.get(jobId);
    controller?.abort();
    return controller !== undefined;
  }

  async runJob(
    jobId: string,
    options: {
      scheduleId?: string;
      forceFull?: boolean;
      trigger?: 'schedule' | 'manual';
      events?: EventSink<JobEvent>;
      /** The run id to use (the server chooses it to answer "run now" at once). */
      runId?: string;
    } = {},
  ): Promise<RunLog> {
    const job = this.job(jobId);
    if (this.#running.has(jobId)) {
      throw new JobError('JOB_ALREADY_RUNNING', `job ${jobId} is already running`);
    }
    const controller = new AbortController();
    this.#running.set(jobId, controller);
    try {
      const remotes: RemoteTarget[] = [];
      const warnings: string[] = [];
      for (const remoteId of job.remotes) {
        try {
          remotes.push(await this.remote(remoteId));
        } catch (error) {
          warnings.push(`remote ${remoteId} dropped: ${(error as Error).message}`);
        }
      }
      const log = await runBackup({
        job,
        ...(options.scheduleId === undefined ? {} : { scheduleId: options.scheduleId }),
        trigger: options.trigger ?? 'manual',
        ...(options.forceFull === undefined ? {} : { forceFull: options.forceFull }),
        ...(options.runId === undefined ? {} : { runId: options.runId }),
        hypervisor: this.source(job.source),
        remotes,
        clock: this.clock,
        events: options.events ?? nullSink(),
        save: (l) => this.store.saveRun(l),
        signal: controller.signal,
      });
      if (warnings.length > 0) {
        log.warnings.push(...warnings);
        this.store.saveRun(log);
      }
      return log;
    } finally {
      this.#running.delete(jobId);
    }
  }
}
