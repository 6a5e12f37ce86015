/**
 * The Runs view: live progress of queued and running runs (per machine and disk: phase, bytes,
 * rate), updated by server-sent events, the recent runs, and one run's log: key or delta per disk
 * and remote and why, "Transfer data using NBD" or the fallback and its reason, sizes, durations
 * and warnings, plus the same log as text.
 */
import { api, apiText, onLiveEvent } from './api.js';
import { badge, formatBytes, formatDuration, formatRate, formatTime, h, replace } from './dom.js';
import { renderRunLog } from './run-log-view.js';

/**
 * @typedef {{ diskId: string; bytesRead: number; blocksRead: number; blocksTotal: number; elapsedMs: number }} LiveDisk
 * @typedef {{ machineId: string; phase: string; status?: string; disks: Record<string, LiveDisk> }} LiveMachine
 * @typedef {{ runId: string; jobId: string; state: string; machines: Record<string, LiveMachine>; warnings: string[] }} LiveRun
 * @typedef {{ runId: string; jobId: string; scheduleId?: string; startedMs: number; endedMs?: number; status: string }} RunSummary
 */

/** @param {LiveRun} run */
function liveCard(run) {
  const machines = Object.values(run.machines);
  return h(
    'div',
    { class: 'card live-run', 'data-run': run.runId },
    h(
      'div',
      { class: 'row' },
      h('strong', {}, run.jobId),
      badge(run.state),
      h('a', { href: `#/runs/${encodeURIComponent(run.runId)}` }, run.runId),
      h(
        'button',
        {
          class: 'secondary cancel-run',
          title:
            'stop this run; a machine being backed up is rolled back, nothing half-written stays',
          onclick: () =>
            void api('POST', `/api/runs/${encodeURIComponent(run.runId)}/cancel`).catch(
              () => undefined,
            ),
        },
        'Cancel',
      ),
    ),
    machines.length === 0 ? h('p', { class: 'muted' }, 'waiting for a free slot…') : null,
    machines.map((m) =>
      h(
        'div',
        { class: 'machine', 'data-machine': m.machineId },
        h(
          'div',
          { class: 'row' },
          h('strong', {}, m.machineId),
          'phase:',
          h('span', { class: 'phase' }, m.phase),
          m.status === undefined ? null : badge(m.status),
        ),
        h(
          'table',
          {},
          Object.values(m.disks).map((d) =>
            h(
              'tr',
              { class: 'disk-progress', 'data-disk': d.diskId },
              h('td', {}, d.diskId),
              h('td', {}, h('progress', { max: Math.max(1, d.blocksTotal), value: d.blocksRead })),
              h('td', {}, `${d.blocksRead} / ${d.blocksTotal} blocks`),
              h('td', {}, formatBytes(d.bytesRead)),
              h('td', {}, formatRate(d.bytesRead, d.elapsedMs)),
            ),
          ),
        ),
      ),
    ),
    run.warnings.map((w) => h('p', { class: 'error' }, `warning: ${w}`)),
  );
}

/**
 * Applies a live event to the runs being shown; returns true when a run finished.
 * @param {Map<string, LiveRun>} live
 * @param {{ type: string; data: Record<string, unknown> }} event
 */
function applyEvent(live, event) {
  const d = event.data;
  const runId = String(d['runId']);
  if (event.type === 'run-queued') {
    live.set(runId, {
      runId,
      jobId: String(d['jobId']),
      state: 'queued',
      machines: {},
      warnings: [],
    });
    return false;
  }
  const run = live.get(runId);
  if (run === undefined) return event.type === 'run-finished';
  /** @param {unknown} id */
  const machine = (id) => {
    const key = String(id);
    run.machines[key] ??= { machineId: key, phase: 'waiting', disks: {} };
    return run.machines[key];
  };
  if (event.type === 'run-started') {
    run.state = 'running';
    for (const id of /** @type {string[]} */ (d['machineIds'])) machine(id);
  } else if (event.type === 'machine-phase') machine(d['machineId']).phase = String(d['phase']);
  else if (event.type === 'machine-finished') {
    const m = machine(d['machineId']);
    m.status = String(d['status']);
    m.phase = 'done';
  } else if (event.type === 'disk-progress') {
    const diskId = String(d['diskId']);
    machine(d['machineId']).disks[diskId] = {
      diskId,
      bytesRead: Number(d['bytesRead']),
      blocksRead: Number(d['blocksRead']),
      blocksTotal: Number(d['blocksTotal']),
      elapsedMs: Number(d['elapsedMs']),
    };
  } else if (event.type === 'warning') run.warnings.push(String(d['message']));
  else if (event.type === 'run-finished') {
    live.delete(runId);
    return true;
  }
  return false;
}

/**
 * @param {HTMLElement} main
 * @param {string[]} args
 */
export async function renderRuns(main, args) {
  if (args[0] !== undefined) return renderRunDetail(main, args[0]);
  const liveBox = h('div', { id: 'live-runs' });
  const listBox = h('div', { id: 'run-list' });
  /** @type {Map<string, LiveRun>} */
  const live = new Map();
  const drawLive = () =>
    replace(
      liveBox,
      live.size === 0
        ? h('p', { class: 'muted' }, 'Nothing running.')
        : [...live.values()].map(liveCard),
    );
  const loadList = async () => {
    const answer = /** @type {{ runs: RunSummary[]; live: LiveRun[] }} */ (
      await api('GET', '/api/runs?limit=50')
    );
    live.clear();
    for (const run of answer.live) live.set(run.runId, run);
    drawLive();
    replace(
      listBox,
      h(
        'table',
        {},
        h(
          'tr',
          {},
          ['Started', 'Job', 'Schedule', 'Status', 'Duration'].map((t) => h('th', {}, t)),
        ),
        answer.runs.map((r) =>
          h(
            'tr',
            { class: 'run', 'data-run': r.runId },
            h(
              'td',
              {},
              h('a', { href: `#/runs/${encodeURIComponent(r.runId)}` }, formatTime(r.startedMs)),
            ),
            h('td', {}, r.jobId),
            h('td', {}, r.scheduleId ?? 'manual'),
            h('td', {}, badge(r.status)),
            h('td', {}, r.endedMs === undefined ? '—' : formatDuration(r.endedMs - r.startedMs)),
          ),
        ),
      ),
    );
  };
  replace(main, h('h2', {}, 'Running'), liveBox, h('h2', {}, 'Recent runs'), listBox);
  const stop = onLiveEvent((event) => {
    if (applyEvent(live, event) || event.type === 'run-skipped') void loadList();
    else drawLive();
  });
  await loadList();
  return stop;
}

/**
 * @param {HTMLElement} main
 * @param {string} runId
 */
async function renderRunDetail(main, runId) {
  const progressBox = h('div', { id: 'run-progress' });
  const logBox = h('div', { id: 'run-log' });
  /** @type {Map<string, LiveRun>} */
  const live = new Map();
  let finished = false;
  const load = async () => {
    const answer =
      /** @type {{ log: import('./run-log-view.js').RunLog | null; live: LiveRun | null }} */ (
        await api('GET', `/api/runs/${encodeURIComponent(runId)}`)
      );
    if (answer.live !== null) {
      live.set(runId, answer.live);
      replace(progressBox, liveCard(answer.live));
      replace(logBox);
      return;
    }
    finished = true;
    replace(progressBox);
    if (answer.log !== null) {
      const text = await apiText(`/api/runs/${encodeURIComponent(runId)}/log.txt`);
      replace(
        logBox,
        renderRunLog(answer.log),
        h('h3', {}, 'Log as text'),
        h('pre', { id: 'log-text' }, text),
      );
    }
  };
  replace(main, h('h2', {}, `Run ${runId}`), progressBox, logBox);
  const stop = onLiveEvent((event) => {
    if (event.data['runId'] !== runId || finished) return;
    if (applyEvent(live, event)) void load();
    else {
      const run = live.get(runId);
      if (run !== undefined) replace(progressBox, liveCard(run));
    }
  });
  await load();
  return stop;
}
