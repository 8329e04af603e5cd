// The demo's service worker: keeps the app shell (this page, its scripts,
// the package and TinyBase) so that a reload without a network still opens
// the chat, which then renders the room from IndexedDB.
//
// Network first: online, every file comes from the server as without a
// worker (so a new version shows at once); offline, or with the server
// down, from the copy of the last successful load. The API (/v1/, /api/,
// health and metrics) is never touched: replication has its own retries.

const CACHE = 'roomsync-demo-shell-v1';
const API = /^\/(v1|api)\/|^\/(healthz|readyz|metrics)$/;

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin || API.test(url.pathname)) return;
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      try {
        const response = await fetch(request);
        if (response.ok) await cache.put(request, response.clone());
        return response;
      } catch (error) {
        const cached = await cache.match(request, { ignoreSearch: request.mode === 'navigate' });
        if (cached) return cached;
        throw error;
      }
    })(),
  );
});
