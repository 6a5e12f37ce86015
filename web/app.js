/* global document, window, HTMLElement */
/**
 * The web page's entry: a hash router over four views (Backup, Runs, Restore, Remotes), each a
 * plain ES module rendering into <main>. No framework and no build step: the browser loads these
 * files as they are (docs/design.md §8).
 */
import { api } from './api.js';
import { renderBackup } from './backup-view.js';
import { renderRemotes } from './remotes-view.js';
import { renderRestore } from './restore-view.js';
import { renderRuns } from './runs-view.js';

/** @typedef {(main: HTMLElement, args: string[]) => Promise<(() => void) | undefined>} View */

/** @type {Record<string, View>} */
const views = {
  backup: renderBackup,
  runs: renderRuns,
  restore: renderRestore,
  remotes: renderRemotes,
};

/** @type {(() => void) | undefined} */
let leave;

async function route() {
  const main = document.getElementById('view');
  if (!(main instanceof HTMLElement)) return;
  const [name = 'backup', ...args] = window.location.hash.replace(/^#\/?/, '').split('/');
  const view = views[name] ?? renderBackup;
  for (const link of document.querySelectorAll('nav a')) {
    link.classList.toggle('active', link.getAttribute('data-view') === name);
  }
  leave?.();
  leave = undefined;
  main.replaceChildren();
  try {
    leave = await view(main, args.map(decodeURIComponent));
  } catch (error) {
    main.textContent = `Error: ${error instanceof Error ? error.message : String(error)}`;
  }
}

window.addEventListener('hashchange', () => void route());
document.getElementById('logout')?.addEventListener('click', () => {
  void api('POST', '/api/logout').finally(() => {
    window.location.assign('/login.html');
  });
});
void api('GET', '/api/me').then((me) => {
  const user = document.getElementById('user');
  if (user !== null) user.textContent = /** @type {{ user: string }} */ (me).user;
});
void route();
