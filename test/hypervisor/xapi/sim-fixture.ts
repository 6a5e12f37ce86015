/** Starting the XAPI simulator (with or without TLS) and a client session for the XAPI tests. */
import { makePki, makeTempDir, type Pki, type TempDir } from '../../harness/index.ts';
import { XapiSimulator, type XapiSimulatorOptions } from '../../xapi-sim/index.ts';
import { MemoryLogger } from '../../../src/core/index.ts';
import {
  fingerprintOfPem,
  openXapiSession,
  type XapiSession,
  type XapiSessionOptions,
} from '../../../src/hypervisor/xapi/index.ts';
import { readFile } from 'node:fs/promises';

export interface SimFixture {
  readonly sim: XapiSimulator;
  readonly tmp: TempDir;
  readonly pki: Pki | undefined;
  readonly logger: MemoryLogger;
  /** SHA-256 fingerprint of the simulator's HTTPS certificate (TLS fixtures only). */
  readonly fingerprint: string | undefined;
  connect(overrides?: Partial<XapiSessionOptions>): Promise<XapiSession>;
  close(): Promise<void>;
}

export async function startSim(
  options: { tls?: boolean } & Partial<Omit<XapiSimulatorOptions, 'dir' | 'pki'>> = {},
): Promise<SimFixture> {
  const tmp = await makeTempDir('vmd-xapi-');
  let sim: XapiSimulator | undefined;
  try {
    const pki = options.tls === true ? await makePki(`${tmp.path}/pki`) : undefined;
    sim = await XapiSimulator.start({
      ...options,
      dir: tmp.path,
      ...(pki === undefined ? {} : { pki }),
    });
    const fingerprint =
      pki === undefined ? undefined : fingerprintOfPem(await readFile(pki.serverCertFile, 'utf8'));
    const logger = new MemoryLogger();
    const started = sim;
    const sessions: XapiSession[] = [];
    return {
      sim: started,
      tmp,
      pki,
      logger,
      fingerprint,
      connect: async (overrides = {}) => {
        const session = await openXapiSession({
          url: started.url,
          username: started.credentials.username,
          password: started.credentials.password,
          logger,
          ...(fingerprint === undefined
            ? {}
            : { trust: { kind: 'pinned', sha256Fingerprints: [fingerprint] } }),
          ...overrides,
        });
        sessions.push(session);
        return session;
      },
      close: async () => {
        for (const session of sessions) await session.close();
        await started.stop();
        await tmp.remove();
      },
    };
  } catch (error) {
    await sim?.stop();
    await tmp.remove();
    throw error;
  }
}

/** Asserts that no log record and no given text contains a secret. */
export function leakedSecrets(texts: readonly string[], secrets: readonly string[]): string[] {
  return secrets.filter((secret) => texts.some((text) => text.includes(secret)));
}
