/* global window, HTMLInputElement, HTMLSelectElement, HTMLFormElement */
/**
 * The Remotes view: remotes (local folder or S3, secrets shown redacted), test the connection,
 * show usage, and add a remote (tested before it is saved).
 */
import { api } from './api.js';
import { badge, formatBytes, h, replace } from './dom.js';

/**
 * @typedef {{ type: string; path?: string; endpoint?: string; bucket?: string; region?: string; prefix?: string }} Store
 * @typedef {{ id: string; name?: string; store: Store }} Remote
 */

/** @param {Store} store */
function where(store) {
  if (store.type === 'local') return `folder ${store.path ?? ''}`;
  if (store.type === 's3')
    return `S3 ${store.endpoint ?? ''} bucket ${store.bucket ?? ''}${store.prefix === undefined ? '' : `/${store.prefix}`}`;
  return store.type;
}

/** @param {unknown} answer */
function testText(answer) {
  const a =
    /** @type {{ ok: boolean; roundTripMs?: number; conditionalPut?: boolean; error?: { code: string; message: string } }} */ (
      answer
    );
  return a.ok
    ? h(
        'span',
        {},
        badge('success'),
        ` reachable, ${a.roundTripMs ?? 0} ms round trip${a.conditionalPut === true ? ', atomic put-if-absent' : ''}`,
      )
    : h('span', { class: 'error' }, `${a.error?.code ?? ''}: ${a.error?.message ?? ''}`);
}

/** @param {HTMLElement} main */
export async function renderRemotes(main) {
  const remotes = /** @type {Remote[]} */ (await api('GET', '/api/remotes'));
  replace(
    main,
    h('h2', {}, 'Remotes'),
    h(
      'table',
      { id: 'remotes-table' },
      h(
        'tr',
        {},
        ['Remote', 'Where', 'Connection', 'Usage'].map((t) => h('th', {}, t)),
      ),
      remotes.map((r) => {
        const status = h('span', { class: 'test-result' });
        const usage = h('span', { class: 'usage' });
        return h(
          'tr',
          { 'data-remote': r.id },
          h('td', {}, h('strong', {}, r.name ?? r.id), h('br'), h('small', {}, r.id)),
          h('td', {}, where(r.store)),
          h(
            'td',
            {},
            h(
              'button',
              {
                class: 'secondary',
                onclick: () => {
                  replace(status, 'testing…');
                  api('POST', `/api/remotes/${encodeURIComponent(r.id)}/test`).then(
                    (a) => replace(status, testText(a)),
                    (/** @type {unknown} */ e) =>
                      replace(status, h('span', { class: 'error' }, String(e))),
                  );
                },
              },
              'Test',
            ),
            ' ',
            status,
          ),
          h(
            'td',
            {},
            h(
              'button',
              {
                class: 'secondary',
                onclick: () => {
                  replace(usage, 'counting…');
                  api('GET', `/api/remotes/${encodeURIComponent(r.id)}/usage`).then(
                    (a) => {
                      const u =
                        /** @type {{ objects: number; bytes: number; restorePoints: number }} */ (
                          a
                        );
                      replace(
                        usage,
                        `${formatBytes(u.bytes)} in ${u.objects} objects, ${u.restorePoints} restore points`,
                      );
                    },
                    (/** @type {unknown} */ e) =>
                      replace(usage, h('span', { class: 'error' }, String(e))),
                  );
                },
              },
              'Usage',
            ),
            ' ',
            usage,
          ),
        );
      }),
    ),
    remoteForm(),
  );
  return undefined;
}

function remoteForm() {
  const message = h('p', { id: 'remote-message' });
  const type = h(
    'select',
    { name: 'type' },
    h('option', { value: 'local' }, 'Local folder'),
    h('option', { value: 's3' }, 'S3 (AWS, MinIO, Ceph, Swift…)'),
  );
  const localFields = h(
    'div',
    { class: 'grid' },
    h('label', {}, 'Folder', h('input', { name: 'path', placeholder: '/srv/backups' })),
  );
  const s3Fields = h(
    'div',
    { class: 'grid', hidden: true },
    h(
      'label',
      {},
      'Endpoint',
      h('input', { name: 'endpoint', placeholder: 'https://s3.example.com' }),
    ),
    h('label', {}, 'Region', h('input', { name: 'region', value: 'us-east-1' })),
    h('label', {}, 'Bucket', h('input', { name: 'bucket' })),
    h(
      'label',
      {},
      'Prefix',
      h('input', { name: 'prefix' }),
      h('small', {}, 'optional folder inside the bucket'),
    ),
    h('label', {}, 'Access key id', h('input', { name: 'accessKeyId' })),
    h(
      'label',
      {},
      'Secret access key',
      h('input', { name: 'secretAccessKey', type: 'password', autocomplete: 'off' }),
      h('small', {}, 'stored on the server, never shown again'),
    ),
    h(
      'label',
      { class: 'inline' },
      h('input', { name: 'forcePathStyle', type: 'checkbox', checked: true }),
      'path-style URLs (MinIO, Ceph, Swift)',
    ),
  );
  type.addEventListener('change', () => {
    const isS3 = type instanceof HTMLSelectElement && type.value === 's3';
    localFields.hidden = isS3;
    s3Fields.hidden = !isS3;
  });
  const form = h(
    'form',
    { class: 'card', id: 'remote-form' },
    h('h3', {}, 'Add a remote'),
    h(
      'div',
      { class: 'grid' },
      h('label', {}, 'Id', h('input', { name: 'id', required: true })),
      h('label', {}, 'Name', h('input', { name: 'name' })),
      h('label', {}, 'Type', type),
    ),
    localFields,
    s3Fields,
    message,
    h(
      'div',
      { class: 'row' },
      h('button', { type: 'button', class: 'secondary', id: 'test-remote' }, 'Test'),
      h('button', { type: 'submit' }, 'Save'),
    ),
  );
  const read = () => {
    /** @param {string} name */
    const value = (name) => {
      const e = form instanceof HTMLFormElement ? form.elements.namedItem(name) : null;
      if (e instanceof HTMLInputElement) return e.type === 'checkbox' ? e.checked : e.value;
      return e instanceof HTMLSelectElement ? e.value : '';
    };
    /** @param {string} name */
    const text = (name) => {
      const v = value(name);
      return typeof v === 'string' && v !== '' ? v : undefined;
    };
    const store =
      value('type') === 's3'
        ? {
            type: 's3',
            endpoint: text('endpoint'),
            region: text('region'),
            bucket: text('bucket'),
            prefix: text('prefix'),
            accessKeyId: text('accessKeyId'),
            secretAccessKey: text('secretAccessKey'),
            forcePathStyle: value('forcePathStyle') === true,
          }
        : { type: 'local', path: text('path') };
    return { id: text('id') ?? '', name: text('name'), store };
  };
  /** @param {unknown} error */
  const fail = (error) =>
    replace(
      message,
      h('span', { class: 'error' }, error instanceof Error ? error.message : String(error)),
    );
  form.querySelector('#test-remote')?.addEventListener('click', () => {
    replace(message, 'testing…');
    api('POST', '/api/remotes-test', read()).then((a) => replace(message, testText(a)), fail);
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const remote = read();
    api('PUT', `/api/remotes/${encodeURIComponent(remote.id)}`, remote).then(() => {
      window.location.reload();
    }, fail);
  });
  return form;
}
