/**
 * Test-harness tool lookup. A test that needs a missing tool fails with a message saying which
 * Debian package to install (`.ci/run` installs them all); it never skips.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

const packages: Record<string, string> = {
  'qemu-img': 'qemu-utils',
  'qemu-io': 'qemu-utils',
  'qemu-nbd': 'qemu-utils',
  'qemu-storage-daemon': 'qemu-system-common',
  nbdkit: 'nbdkit',
  nbdinfo: 'libnbd-bin',
  nbdcopy: 'libnbd-bin',
  certtool: 'gnutls-bin',
  vhdiinfo: 'libvhdi-utils',
  'swift-proxy-server': 'swift-proxy',
  memcached: 'memcached',
  chromium: 'chromium',
};

export function findTool(name: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

/** The absolute path of `name`, or an Error naming the package to install. */
export function requireTool(name: string): string {
  const found = findTool(name);
  if (found === undefined) {
    const pkg = packages[name];
    throw new Error(
      `test tool '${name}' is missing${pkg === undefined ? '' : ` (apt-get install ${pkg})`}; run .ci/run to install every test dependency`,
    );
  }
  return found;
}
