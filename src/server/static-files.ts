/**
 * The web page's static files (web/): plain browser ES modules, HTML and CSS served as they are,
 * no build step. Only the login page and the stylesheet are public; the rest needs a session,
 * and `/` without one redirects to the login page.
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sendJson } from './http/router.ts';

export const defaultWebDir = fileURLToPath(new URL('../../web/', import.meta.url));

const PUBLIC_FILES = new Set(['/login.html', '/login.js', '/style.css', '/favicon.svg']);

const contentTypes: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json; charset=utf-8',
};

const securityHeaders = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
};

export async function serveStatic(
  req: IncomingMessage,
  res: ServerResponse,
  webDir: string,
  user: string | undefined,
): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendJson(res, 405, { error: { code: 'METHOD_NOT_ALLOWED', message: 'GET only' } });
    return;
  }
  let path = new URL(req.url ?? '/', 'http://localhost').pathname;
  if (path === '/') path = '/index.html';
  const isPublic = PUBLIC_FILES.has(path);
  if (!isPublic && user === undefined) {
    if (path === '/index.html') {
      res.writeHead(302, { location: '/login.html', 'cache-control': 'no-store' });
      res.end();
    } else {
      sendJson(res, 401, { error: { code: 'UNAUTHORIZED', message: 'log in first' } });
    }
    return;
  }
  const relative = normalize(path).replace(/^(\.\.[/\\])+/, '');
  const type = contentTypes[extname(relative)];
  if (relative.includes('..') || type === undefined) {
    sendJson(res, 404, { error: { code: 'NOT_FOUND', message: 'no such page' } });
    return;
  }
  let body: Buffer;
  try {
    body = await readFile(join(webDir, relative));
  } catch {
    sendJson(res, 404, { error: { code: 'NOT_FOUND', message: 'no such page' } });
    return;
  }
  res.writeHead(200, { 'content-type': type, 'cache-control': 'no-cache', ...securityHeaders });
  res.end(req.method === 'HEAD' ? undefined : body);
}
