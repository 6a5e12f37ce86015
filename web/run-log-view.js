/**
 * A run log rendered for people: per machine and disk, what was read and how ("Transfer data
 * using NBD (N connections)" or the export stream, and every fallback with its reason), key or
 * delta per remote and why, bytes, durations, retention and warnings.
 */
import { badge, formatBytes, formatDuration, formatRate, formatTime, h } from './dom.js';

/**
 * @typedef {{ remoteId: string; kind: string; reason?: string; method?: string; status: string; bytesWritten: number; blocksWritten: number; error?: { code: string; message: string } }} RemoteWrite
 * @typedef {{ type: string; connections?: number; tls?: boolean; format?: string }} Transport
 * @typedef {{ diskId: string; name: string; sizeBytes: number; read: string; transport: Transport; changeTracker: string; bytesRead: number; blocksRead: number; blocksChanged: number; durationMs: number; remotes: RemoteWrite[]; fallbacks: { from: string; to: string; reason: string }[] }} DiskLog
 * @typedef {{ machineId: string; name: string; status: string; phases: Record<string, number>; disks: DiskLog[]; warnings: string[]; retention: { remoteId: string; merged: number; removed: number }[]; error?: { code: string; message: string } }} MachineLog
 * @typedef {{ runId: string; jobId: string; jobName: string; scheduleId?: string; trigger: string; forceFull: boolean; startedMs: number; endedMs?: number; status: string; machines: MachineLog[]; warnings: string[]; error?: { code: string; message: string } }} RunLog
 */

/** @type {Record<string, string>} */
const keyReasons = {
  FORCED: 'a key backup was forced',
  NO_BASE: 'the remote holds no earlier backup of this disk',
  SIZE_CHANGED: 'the disk size changed',
  KEY_INTERVAL: 'the key backup interval was reached',
};

/** @param {Transport} t */
export function transportText(t) {
  if (t.type === 'nbd') {
    const n = t.connections ?? 1;
    return `Transfer data using NBD (${n} connection${n === 1 ? '' : 's'}${t.tls === true ? ', TLS' : ''})`;
  }
  return `Transfer data using the ${t.format ?? ''} export stream`;
}

/** @param {RemoteWrite} r */
function remoteText(r) {
  if (r.kind === 'key')
    return `key: ${r.reason === undefined ? '' : (keyReasons[r.reason] ?? r.reason)}`;
  if (r.method === 'hash-compare')
    return `delta by block hashes (${r.reason ?? 'no usable change tracker'})`;
  return 'delta: changed blocks from the change tracker';
}

/** @param {DiskLog} disk */
function diskRow(disk) {
  return h(
    'tr',
    { class: 'disk-log', 'data-disk': disk.diskId },
    h('td', {}, h('strong', {}, disk.name), h('br'), h('small', {}, formatBytes(disk.sizeBytes))),
    h(
      'td',
      {},
      h('div', { class: 'transport' }, transportText(disk.transport)),
      h(
        'small',
        {},
        `read ${disk.read === 'delta' ? 'changed blocks' : 'whole disk'}, change tracker: ${disk.changeTracker}`,
      ),
      disk.fallbacks.map((f) =>
        h('div', { class: 'error' }, `fallback ${f.from} → ${f.to}: ${f.reason}`),
      ),
    ),
    h(
      'td',
      {},
      `${formatBytes(disk.bytesRead)} in ${disk.blocksRead} blocks, ${disk.blocksChanged} changed`,
      h('br'),
      h(
        'small',
        {},
        `${formatDuration(disk.durationMs)} · ${formatRate(disk.bytesRead, disk.durationMs)}`,
      ),
    ),
    h(
      'td',
      {},
      disk.remotes.map((r) =>
        h(
          'div',
          { class: 'remote-write' },
          badge(r.kind),
          ` ${r.remoteId}: ${remoteText(r)} · `,
          r.status === 'success'
            ? `${formatBytes(r.bytesWritten)} written`
            : h(
                'span',
                { class: 'error' },
                `FAILED ${r.error?.code ?? ''} ${r.error?.message ?? ''}`,
              ),
        ),
      ),
    ),
  );
}

/** @param {RunLog} log */
export function renderRunLog(log) {
  return h(
    'div',
    { class: 'card' },
    h(
      'div',
      { class: 'row' },
      badge(log.status),
      h('strong', {}, log.jobName),
      `started ${formatTime(log.startedMs)}`,
      log.endedMs === undefined ? '' : `· ${formatDuration(log.endedMs - log.startedMs)}`,
      `· ${log.trigger}${log.scheduleId === undefined ? '' : ` (${log.scheduleId})`}`,
      log.forceFull ? '· key backup forced' : '',
    ),
    log.error === undefined
      ? null
      : h('p', { class: 'error' }, `${log.error.code}: ${log.error.message}`),
    log.machines.map((m) =>
      h(
        'div',
        { class: 'machine-log' },
        h(
          'h3',
          {},
          `${m.name} (${m.machineId}) `,
          badge(m.status),
          h(
            'small',
            {},
            ' ',
            Object.entries(m.phases)
              .map(([phase, ms]) => `${phase.replace(/Ms$/, '')} ${formatDuration(ms)}`)
              .join(' · '),
          ),
        ),
        m.error === undefined
          ? null
          : h('p', { class: 'error' }, `${m.error.code}: ${m.error.message}`),
        h(
          'table',
          {},
          h(
            'tr',
            {},
            ['Disk', 'Read', 'Data', 'Written'].map((t) => h('th', {}, t)),
          ),
          m.disks.map(diskRow),
        ),
        m.retention
          .filter((r) => r.merged > 0 || r.removed > 0)
          .map((r) =>
            h(
              'p',
              {},
              `retention on ${r.remoteId}: ${r.merged} merged into the key, ${r.removed} removed`,
            ),
          ),
        m.warnings.map((w) => h('p', { class: 'error' }, `warning: ${w}`)),
      ),
    ),
    log.warnings.map((w) => h('p', { class: 'error' }, `warning: ${w}`)),
  );
}
