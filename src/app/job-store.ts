/**
 * The embedded job store: job definitions, remotes, sources and run logs in one SQLite file
 * (better-sqlite3) under the data directory. Definitions are stored as validated JSON documents;
 * every document read back is validated again by its caller's schema. Writes are transactions;
 * the file is in WAL mode so a crash never leaves it half-written.
 */
import Database from 'better-sqlite3';
import { mkdirSync, chmodSync } from 'node:fs';
import { dirname } from 'node:path';
import type { RunLog, RunStatus } from '../jobs/index.ts';

export interface ApiTokenRecord {
  /** SHA-256 (hex) of the token: the token itself is never stored. */
  readonly tokenSha256: string;
  readonly label: string;
  readonly userName: string;
  readonly createdMs: number;
}

export type DocumentKind = 'job' | 'remote' | 'source';

export interface RunSummary {
  readonly runId: string;
  readonly jobId: string;
  readonly scheduleId: string | undefined;
  readonly startedMs: number;
  readonly endedMs: number | undefined;
  readonly status: RunStatus;
}

const SCHEMA_VERSION = 1;

export class JobStore {
  readonly #db: Database.Database;

  private constructor(db: Database.Database) {
    this.#db = db;
  }

  /** Opens (creating if needed) the store at `path`; ':memory:' for tests. */
  static open(path: string): JobStore {
    if (path !== ':memory:') {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    }
    const db = new Database(path);
    if (path !== ':memory:') chmodSync(path, 0o600);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS documents (
        kind TEXT NOT NULL, id TEXT NOT NULL, json TEXT NOT NULL, updated_ms INTEGER NOT NULL,
        PRIMARY KEY (kind, id));
      CREATE TABLE IF NOT EXISTS runs (
        run_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, schedule_id TEXT,
        started_ms INTEGER NOT NULL, ended_ms INTEGER, status TEXT NOT NULL, log_json TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS runs_by_job ON runs (job_id, started_ms);
      CREATE TABLE IF NOT EXISTS users (
        name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, updated_ms INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS api_tokens (
        token_sha256 TEXT PRIMARY KEY, label TEXT NOT NULL, user_name TEXT NOT NULL,
        created_ms INTEGER NOT NULL);
    `);
    db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run(
      'schemaVersion',
      String(SCHEMA_VERSION),
    );
    return new JobStore(db);
  }

  close(): void {
    this.#db.close();
  }

  putDocument(kind: DocumentKind, id: string, value: unknown, nowMs = Date.now()): void {
    this.#db
      .prepare(
        'INSERT INTO documents (kind, id, json, updated_ms) VALUES (?, ?, ?, ?) ' +
          'ON CONFLICT (kind, id) DO UPDATE SET json = excluded.json, updated_ms = excluded.updated_ms',
      )
      .run(kind, id, JSON.stringify(value), nowMs);
  }

  getDocument(kind: DocumentKind, id: string): unknown {
    const row = this.#db
      .prepare('SELECT json FROM documents WHERE kind = ? AND id = ?')
      .get(kind, id) as { json: string } | undefined;
    return row === undefined ? undefined : (JSON.parse(row.json) as unknown);
  }

  listDocuments(kind: DocumentKind): unknown[] {
    const rows = this.#db
      .prepare('SELECT json FROM documents WHERE kind = ? ORDER BY id')
      .all(kind) as {
      json: string;
    }[];
    return rows.map((row) => JSON.parse(row.json) as unknown);
  }

  deleteDocument(kind: DocumentKind, id: string): boolean {
    return (
      this.#db.prepare('DELETE FROM documents WHERE kind = ? AND id = ?').run(kind, id).changes > 0
    );
  }

  /** Inserts or replaces a run log (called at start, on progress milestones and at the end). */
  saveRun(log: RunLog): void {
    this.#db
      .prepare(
        'INSERT INTO runs (run_id, job_id, schedule_id, started_ms, ended_ms, status, log_json) VALUES (?, ?, ?, ?, ?, ?, ?) ' +
          'ON CONFLICT (run_id) DO UPDATE SET ended_ms = excluded.ended_ms, status = excluded.status, log_json = excluded.log_json',
      )
      .run(
        log.runId,
        log.jobId,
        log.scheduleId ?? null,
        log.startedMs,
        log.endedMs ?? null,
        log.status,
        JSON.stringify(log),
      );
  }

  getRun(runId: string): RunLog | undefined {
    const row = this.#db.prepare('SELECT log_json FROM runs WHERE run_id = ?').get(runId) as
      { log_json: string } | undefined;
    return row === undefined ? undefined : (JSON.parse(row.log_json) as RunLog);
  }

  listRuns(options: { jobId?: string; limit?: number } = {}): RunSummary[] {
    const limit = options.limit ?? 100;
    const rows = (
      options.jobId === undefined
        ? this.#db.prepare('SELECT * FROM runs ORDER BY started_ms DESC LIMIT ?').all(limit)
        : this.#db
            .prepare('SELECT * FROM runs WHERE job_id = ? ORDER BY started_ms DESC LIMIT ?')
            .all(options.jobId, limit)
    ) as {
      run_id: string;
      job_id: string;
      schedule_id: string | null;
      started_ms: number;
      ended_ms: number | null;
      status: RunStatus;
    }[];
    return rows.map((row) => ({
      runId: row.run_id,
      jobId: row.job_id,
      scheduleId: row.schedule_id ?? undefined,
      startedMs: row.started_ms,
      endedMs: row.ended_ms ?? undefined,
      status: row.status,
    }));
  }

  /**
   * Marks every run still 'running' as 'interrupted' (the service stopped during it) and returns
   * their ids; called at start-up.
   */
  markInterruptedRuns(nowMs = Date.now()): string[] {
    const ids: string[] = [];
    const tx = this.#db.transaction(() => {
      const rows = this.#db.prepare("SELECT run_id FROM runs WHERE status = 'running'").all() as {
        run_id: string;
      }[];
      for (const { run_id } of rows) {
        const log = this.getRun(run_id);
        if (log === undefined) continue;
        log.status = 'interrupted';
        log.endedMs = nowMs;
        log.warnings.push('the run was interrupted: vmdelta stopped while it was running');
        this.saveRun(log);
        ids.push(run_id);
      }
    });
    tx();
    return ids;
  }

  // ---- users and API tokens (the service's authentication) --------------------------------

  /** Creates or replaces a user with a password hash (see src/server/auth/password-hash.ts). */
  setUserPasswordHash(name: string, passwordHash: string, nowMs = Date.now()): void {
    this.#db
      .prepare(
        'INSERT INTO users (name, password_hash, updated_ms) VALUES (?, ?, ?) ' +
          'ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash, updated_ms = excluded.updated_ms',
      )
      .run(name, passwordHash, nowMs);
  }

  getUserPasswordHash(name: string): string | undefined {
    const row = this.#db.prepare('SELECT password_hash FROM users WHERE name = ?').get(name) as
      { password_hash: string } | undefined;
    return row?.password_hash;
  }

  countUsers(): number {
    return (this.#db.prepare('SELECT COUNT(*) AS n FROM users').get() as { n: number }).n;
  }

  addApiToken(record: ApiTokenRecord): void {
    this.#db
      .prepare(
        'INSERT INTO api_tokens (token_sha256, label, user_name, created_ms) VALUES (?, ?, ?, ?)',
      )
      .run(record.tokenSha256, record.label, record.userName, record.createdMs);
  }

  findApiToken(tokenSha256: string): ApiTokenRecord | undefined {
    const row = this.#db
      .prepare('SELECT label, user_name, created_ms FROM api_tokens WHERE token_sha256 = ?')
      .get(tokenSha256) as { label: string; user_name: string; created_ms: number } | undefined;
    return row === undefined
      ? undefined
      : { tokenSha256, label: row.label, userName: row.user_name, createdMs: row.created_ms };
  }

  deleteApiTokens(label: string): number {
    return this.#db.prepare('DELETE FROM api_tokens WHERE label = ?').run(label).changes;
  }
}
