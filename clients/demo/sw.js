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

// The page names the files it loaded before this worker controlled it
// (sw-register.js); keep each one that is not cached yet. Same origin, never
// the API, at most a few hundred: a message cannot make the worker fetch
// anything else.
self.addEventListener('message', (event) => {
  const urls = Array.isArray(event.data?.urls) ? event.data.urls.slice(0, 500) : [];
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      for (const path of urls) {
        if (typeof path !== 'string') continue;
        const url = new URL(path, self.location.origin);
        if (url.origin !== self.location.origin || API.test(url.pathname)) continue;
        if (await cache.match(url.href)) continue;
        try {
          const response = await fetch(url.href);
          if (response.ok) await cache.put(url.href, response);
        } catch {
          // offline already: the next load that reaches the server keeps it
        }
      }
    })(),
  );
});

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
        // ignoreVary: the copy kept for the page (sw-register.js) was fetched
        // without the Origin header that a module script's request carries.
        const cached = await cache.match(request, { ignoreSearch: request.mode === 'navigate', ignoreVary: true });
        if (cached) return cached;
        throw error;
      }
    })(),
  );
});
