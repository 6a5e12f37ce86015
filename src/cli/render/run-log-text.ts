/**
 * Text rendering of a run log for people: one line per run, machine, disk and remote, with the
 * key-or-delta reason spelled out and "Transfer data using NBD" when NBD carried the data (the
 * line Xen Orchestra users look for), or the fallback and why.
 */
import { formatBytes, formatDurationMs, formatRate } from '../../core/index.ts';
import type { DiskLog, MachineLog, RemoteWriteLog, RunLog } from '../../jobs/index.ts';

const keyReasonText: Readonly<Record<string, string>> = {
  FORCED: 'a key backup was forced',
  NO_BASE: 'the remote holds no earlier backup of this disk',
  SIZE_CHANGED: 'the disk size changed',
  KEY_INTERVAL: 'the key backup interval was reached',
};

export function formatTimestamp(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');
}

function transportLine(disk: DiskLog): string {
  const t = disk.transport;
  if (t.type === 'nbd') {
    const details = [`${t.connections} connection${t.connections === 1 ? '' : 's'}`];
    if (t.tls) details.push('TLS');
    return `Transfer data using NBD (${details.join(', ')})`;
  }
  return `Transfer data using the ${t.format} export stream`;
}

function remoteLine(remote: RemoteWriteLog): string {
  let what: string;
  if (remote.kind === 'key') {
    const why =
      remote.reason === undefined ? '' : ` (${keyReasonText[remote.reason] ?? remote.reason})`;
    what = `key${why}`;
  } else if (remote.method === 'hash-compare') {
    what =
      remote.reason === 'FULL_READ_FOR_ANOTHER_REMOTE'
        ? 'delta by block hashes (the whole disk was read once for a remote that needed a key)'
        : `delta by block hashes (no usable change tracker: ${remote.reason ?? 'unknown'})`;
  } else {
    what = 'delta';
  }
  const result =
    remote.status === 'success'
      ? `${remote.blocksWritten} blocks, ${formatBytes(remote.bytesWritten)} written`
      : `FAILED ${remote.error?.code ?? ''} ${remote.error?.message ?? ''}`.trimEnd();
  return `→ ${remote.remoteId}: ${what}, ${result}`;
}

function diskLines(disk: DiskLog): string[] {
  const lines = [
    `Disk ${disk.name} (${formatBytes(disk.sizeBytes)}): read ${disk.read === 'delta' ? 'changed blocks' : 'whole disk'} — ${transportLine(disk)}, change tracker: ${disk.changeTracker}`,
    `  read ${formatBytes(disk.bytesRead)} in ${disk.blocksRead} blocks, ${disk.blocksChanged} changed, ${formatDurationMs(disk.durationMs)} (${formatRate(disk.bytesRead, disk.durationMs)})`,
  ];
  for (const fallback of disk.fallbacks)
    lines.push(`  fallback: ${fallback.from} → ${fallback.to}: ${fallback.reason}`);
  for (const remote of disk.remotes) lines.push(`  ${remoteLine(remote)}`);
  return lines;
}

function machineLines(machine: MachineLog): string[] {
  const phases = Object.entries(machine.phases)
    .filter((entry): entry is [string, number] => typeof entry[1] === 'number')
    .map(([phase, ms]) => `${phase.replace(/Ms$/, '')} ${formatDurationMs(ms)}`);
  const lines = [
    `Machine ${machine.name} (${machine.machineId}): ${machine.status}${phases.length > 0 ? ` · ${phases.join(' · ')}` : ''}`,
  ];
  if (machine.error !== undefined)
    lines.push(`  error ${machine.error.code}: ${machine.error.message}`);
  for (const disk of machine.disks) lines.push(...diskLines(disk).map((line) => `  ${line}`));
  for (const r of machine.retention) {
    if (r.merged > 0 || r.removed > 0)
      lines.push(
        `  retention on ${r.remoteId}: ${r.merged} merged into the key, ${r.removed} removed`,
      );
  }
  for (const warning of machine.warnings) lines.push(`  warning: ${warning}`);
  return lines;
}

export function formatRunLogText(log: RunLog): string {
  const duration =
    log.endedMs === undefined ? 'running' : formatDurationMs(log.endedMs - log.startedMs);
  const lines = [
    `Run ${log.runId} of job "${log.jobName}" (${log.jobId})${log.scheduleId === undefined ? '' : `, schedule ${log.scheduleId}`}: ${log.status.toUpperCase()}`,
    `  started ${formatTimestamp(log.startedMs)}, ${duration}, ${log.trigger}${log.forceFull ? ', key backup forced' : ''}`,
  ];
  if (log.error !== undefined) lines.push(`  error ${log.error.code}: ${log.error.message}`);
  for (const machine of log.machines)
    lines.push(...machineLines(machine).map((line) => `  ${line}`));
  for (const warning of log.warnings) lines.push(`  warning: ${warning}`);
  return `${lines.join('\n')}\n`;
}
