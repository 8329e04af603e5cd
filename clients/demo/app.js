// The roomsync demo chat: a small Workers-Chat-like page on @roomsync/client.
//
// The message list is rendered from room.store (TinyBase listeners), never
// from the network: a write shows at once as pending, a reload shows the
// cached room before any answer, and replication runs in the background.
// `?localFirst=false` switches to the "before" path (openFallbackRoom) with
// the same UI. Message text only ever reaches the DOM as textContent.
//
// URL: /#room=NAME[&max=N][&stale=MS]  (N: maxMessages, the newest messages
// kept locally; MS: streamStaleMs, how long a silent stream may stay open)
// Test hook: window.__roomsync = { room, mode, conflicts, errors, ... }

import {
  PasswordRequiredError,
  WrongPasswordError,
  openFallbackRoom,
  openRoom,
  shouldEnableLocalFirst,
} from '@roomsync/client';

// User Timing marks (DevTools' Performance panel, and the benchmark):
// module evaluated, room opened, first render of the room done.
performance.mark('demo:start');

const COLLECTION = 'messages';
const PAGE = 50;
const ROOM_NAME = /^[A-Za-z0-9._~-]{1,128}$/;
const NAME_KEY = 'roomsync.demo.name';

const $ = (id) => document.getElementById(id);
const el = (tag, className, text) => {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
};
const randomHex = (bytes) =>
  Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, '0')).join('');

const hook = {
  room: null,
  mode: null, // 'local-first' | 'fallback'
  phase: 'start', // 'join' | 'password' | 'opening' | 'chat' | 'error'
  conflicts: [],
  errors: [],
  loadOlder: () => loadOlder(),
};
window.__roomsync = hook;

// ---- URL and settings ---------------------------------------------------

function hashParams() {
  return new URLSearchParams(location.hash.replace(/^#/, ''));
}

function userName() {
  let name = localStorage.getItem(NAME_KEY);
  if (!name) {
    name = `guest-${randomHex(2)}`;
    localStorage.setItem(NAME_KEY, name);
  }
  return name;
}

function show(section) {
  for (const id of ['join', 'password', 'opening', 'chat']) $(id).hidden = id !== section;
  hook.phase = section;
}

function showError(node, text) {
  node.textContent = text;
  node.hidden = !text;
}

function toast(text, kind = 'info') {
  const node = el('div', `toast ${kind}`, text);
  $('toasts').append(node);
  setTimeout(() => node.remove(), 6000);
}

// ---- opening a room -----------------------------------------------------

const params = hashParams();
const roomName = params.get('room');
const maxParam = Number(params.get('max'));
const maxMessages = Number.isInteger(maxParam) && maxParam > 0 ? maxParam : undefined;
const staleParam = Number(params.get('stale'));
const streamStaleMs = Number.isInteger(staleParam) && staleParam > 0 ? staleParam : undefined;
const localFirst = shouldEnableLocalFirst(userName(), {
  percent: 100, // the demo defaults to local-first; ?localFirst=false is the before path
  urlFlag: new URL(location.href).searchParams.get('localFirst'),
});
hook.mode = localFirst ? 'local-first' : 'fallback';
$('mode').textContent = localFirst ? '' : 'before: no local store, polling';
$('mode').hidden = localFirst;

// Any change of the room in the URL reopens the page from scratch.
window.addEventListener('hashchange', () => location.reload());

$('join-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const name = $('join-room').value.trim();
  if (!ROOM_NAME.test(name) || name === '.' || name === '..') {
    showError($('join-error'), 'A room name is 1 to 128 letters, digits or . _ ~ -');
    return;
  }
  location.hash = `room=${encodeURIComponent(name)}`;
});

$('create-private').addEventListener('click', () => {
  location.hash = `room=${randomHex(32)}`;
});

$('leave').addEventListener('click', (event) => {
  event.preventDefault();
  location.hash = '';
});

$('copy-link').addEventListener('click', () => {
  navigator.clipboard?.writeText(location.href).then(
    () => toast('Link copied. Share the password separately.'),
    () => toast(location.href),
  );
});

let pendingPassword = null; // resolves the password form

$('password-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const value = $('password-input').value;
  if (value && pendingPassword) pendingPassword(value);
});

function askPassword(message) {
  show('password');
  $('password-room').textContent = roomName.length > 24 ? `${roomName.slice(0, 12)}…` : roomName;
  showError($('password-error'), message ?? '');
  $('password-submit').disabled = false;
  $('password-input').value = '';
  $('password-input').focus();
  return new Promise((resolve) => {
    pendingPassword = (password) => {
      pendingPassword = null;
      $('password-submit').disabled = true;
      showError($('password-error'), 'Opening…');
      resolve(password);
    };
  });
}

function open(password) {
  const options = { room: roomName, maxMessages, streamStaleMs, onConflict: undefined };
  if (password) options.password = password;
  return localFirst ? openRoom(options) : openFallbackRoom(options);
}

async function openWithPassword() {
  // The package remembers the key after the first open: try without.
  let message;
  if (localFirst) {
    try {
      return await open();
    } catch (error) {
      if (!(error instanceof PasswordRequiredError)) throw error;
    }
  }
  for (;;) {
    const password = await askPassword(message);
    try {
      return await open(password);
    } catch (error) {
      if (error instanceof WrongPasswordError || error?.name === 'WrongPasswordError') {
        message = 'Wrong password: this room was created with another one.';
        continue;
      }
      throw error;
    }
  }
}

async function start() {
  if (!roomName) {
    show('join');
    $('join-room').focus();
    return;
  }
  if (!ROOM_NAME.test(roomName)) {
    show('join');
    showError($('join-error'), `“${roomName}” is not a room name.`);
    return;
  }
  $('room-title').textContent = roomName.length > 24 ? `${roomName.slice(0, 12)}…${roomName.slice(-6)}` : roomName;
  $('room-title').title = roomName;
  let room;
  try {
    room = await openWithPassword();
    performance.mark('demo:room-opened');
  } catch (error) {
    show('opening');
    hook.phase = 'error';
    hook.errors.push(String(error?.message ?? error));
    const offline = error?.name === 'ApiError' && error.status === 0;
    $('opening-text').textContent = offline
      ? 'Could not reach the server to open this room (it is not cached on this device yet).'
      : `Could not open the room: ${error?.message ?? error}`;
    $('opening-retry').hidden = false;
    return;
  }
  enterRoom(room);
}

$('opening-retry').addEventListener('click', () => location.reload());

// ---- the room -----------------------------------------------------------

let room = null;
let editing = null; // id of the message being edited
let me = userName();

function enterRoom(opened) {
  room = opened;
  hook.room = room;
  show('chat');
  $('name').value = me;
  $('text').focus();
  room.store.addTableListener(COLLECTION, scheduleRender);
  room.on('status', renderStatus);
  room.on('conflict', (event) => {
    hook.conflicts.push(event);
    if (event.collection !== COLLECTION) return;
    const theirs = event.server?.text;
    toast(
      theirs === undefined
        ? 'Your edit crossed a delete on another device: the message is gone.'
        : `Your edit crossed another one: kept “${theirs}”.`,
      'conflict',
    );
  });
  room.on('error', (error) => hook.errors.push(String(error?.message ?? error)));
  window.addEventListener('online', () => renderStatus(room.status));
  window.addEventListener('offline', () => renderStatus(room.status));
  renderStatus(room.status);
  render();
  scrollToBottom();
  performance.mark('demo:rendered');
}

$('name').addEventListener('change', () => {
  const value = $('name').value.trim();
  if (!value) {
    $('name').value = me;
    return;
  }
  me = value;
  localStorage.setItem(NAME_KEY, me);
  scheduleRender();
});

$('composer').addEventListener('submit', (event) => {
  event.preventDefault();
  const text = $('text').value;
  if (!room || !text.trim()) return;
  let id;
  let fields;
  if (editing && room.store.hasRow(COLLECTION, editing)) {
    const row = room.store.getRow(COLLECTION, editing);
    id = editing;
    fields = { name: row.name ?? me, text, created: row.created ?? row._ts ?? Date.now() };
  } else {
    id = randomHex(16);
    fields = { name: me, text, created: Date.now() };
  }
  stopEditing();
  $('text').value = '';
  stickToBottom = true;
  write(() => room.put(COLLECTION, id, fields));
});

$('cancel-edit').addEventListener('click', () => {
  stopEditing();
  $('text').value = '';
});

// The local-first room writes synchronously; the fallback's put awaits the
// server and throws when it cannot reach it.
function write(fn) {
  try {
    const result = fn();
    if (result && typeof result.then === 'function') {
      result.catch((error) => {
        hook.errors.push(String(error?.message ?? error));
        toast(`Not sent: ${error?.message ?? error}`, 'error');
      });
    }
  } catch (error) {
    hook.errors.push(String(error?.message ?? error));
    toast(`Not sent: ${error?.message ?? error}`, 'error');
  }
}

function startEditing(id) {
  const row = room.store.getRow(COLLECTION, id);
  editing = id;
  $('editing').hidden = false;
  $('send').textContent = 'Save';
  $('text').value = row.text ?? '';
  $('text').focus();
}

function stopEditing() {
  editing = null;
  $('editing').hidden = true;
  $('send').textContent = 'Send';
}

function renderStatus(status) {
  const badge = $('badge');
  badge.hidden = false;
  const online = status.online && navigator.onLine !== false;
  const parts = [online ? 'online' : 'offline'];
  if (status.pending) parts.push(`${status.pending} pending`);
  if (status.failed) parts.push(`${status.failed} failed`);
  badge.textContent = parts.join(' · ');
  badge.dataset.online = String(online);
  badge.classList.toggle('offline', !online);
  badge.title = [
    status.leader ? 'this tab replicates' : 'another tab replicates',
    status.streaming ? 'live' : 'not streaming',
    status.lastError ? `last error: ${status.lastError}` : '',
    status.keyChanged ? 'the room key changed: reopen with the new password' : '',
  ]
    .filter(Boolean)
    .join('; ');
  if (status.keyChanged) badge.textContent += ' · key changed';
}

// ---- the message list, from the store -----------------------------------

const items = new Map(); // id → {li, sig}
let renderQueued = false;
let stickToBottom = true;

function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  queueMicrotask(() => {
    renderQueued = false;
    render();
  });
}

// One formatter for every row: toLocaleTimeString builds a new one per call,
// which was most of the time a 1,000-message room took to render.
const TIME_FORMAT = new Intl.DateTimeFormat([], { hour: '2-digit', minute: '2-digit' });

const orderOf = (row) => (typeof row.created === 'number' ? row.created : row._ts ?? 0);

function render() {
  if (!room) return;
  const scroller = $('scroller');
  const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
  const firstBefore = $('messages').firstElementChild;
  const heightBefore = scroller.scrollHeight;
  const table = room.store.getTable(COLLECTION);
  const ids = Object.keys(table).sort((a, b) => orderOf(table[a]) - orderOf(table[b]) || (a < b ? -1 : a > b ? 1 : 0));
  const list = $('messages');
  for (const [id, item] of items) {
    if (!(id in table)) {
      item.li.remove();
      items.delete(id);
      if (editing === id) stopEditing();
    }
  }
  let previous = null;
  for (const id of ids) {
    const row = table[id];
    let item = items.get(id);
    if (!item) {
      item = { li: el('li'), sig: '' };
      item.li.dataset.id = id;
      items.set(id, item);
    }
    const own = row.name === me;
    const sig = JSON.stringify([row.name, row.text, row.created, row._ts, row._state, row._tampered, row._history, own]);
    if (sig !== item.sig) {
      item.sig = sig;
      fillMessage(item.li, id, row, own);
    }
    const expected = previous ? previous.nextSibling : list.firstChild;
    if (expected !== item.li) list.insertBefore(item.li, expected);
    previous = item.li;
  }
  $('load-older').hidden = !localFirst;
  // Older messages added above: keep what the reader was looking at in place.
  if (firstBefore && list.firstElementChild !== firstBefore && !atBottom) {
    scroller.scrollTop += scroller.scrollHeight - heightBefore;
  } else if (atBottom || stickToBottom) {
    scrollToBottom();
  }
  stickToBottom = false;
}

function fillMessage(li, id, row, own) {
  li.className = 'message';
  li.dataset.state = row._state ?? '';
  li.classList.toggle('own', own);
  li.classList.toggle('history', row._history === true);
  li.classList.toggle('tampered', row._tampered === true);
  const head = el('div', 'head');
  const created = orderOf(row);
  head.append(el('span', 'name', row._tampered ? '?' : String(row.name ?? 'anonymous')));
  const time = el('time', 'time', created ? TIME_FORMAT.format(created) : '');
  if (created) time.dateTime = new Date(created).toISOString();
  head.append(time);
  head.append(stateMark(row));
  const body = row._tampered
    ? el('p', 'text', 'This message failed authentication: the server changed or moved it. Its text is not shown.')
    : el('p', 'text', String(row.text ?? ''));
  li.replaceChildren(head, body);
  if (row._tampered) return;
  const actions = el('div', 'actions');
  if (row._state === 'failed') {
    const retry = el('button', 'retry', 'retry');
    retry.type = 'button';
    retry.addEventListener('click', () => room.retry?.(COLLECTION, id));
    actions.append(retry);
  }
  if (own && !row._history) {
    const edit = el('button', 'edit', 'edit');
    edit.type = 'button';
    edit.addEventListener('click', () => startEditing(id));
    const del = el('button', 'delete', 'delete');
    del.type = 'button';
    del.addEventListener('click', () => write(() => room.remove(COLLECTION, id)));
    actions.append(edit, del);
  }
  if (actions.childElementCount) li.append(actions);
}

function stateMark(row) {
  if (row._tampered) return el('span', 'mark tampered', '⚠ tampered');
  if (row._state === 'pending') return el('span', 'mark pending', '… pending');
  if (row._state === 'failed') return el('span', 'mark failed', '✗ failed');
  if (row._history) return el('span', 'mark synced history', '✓ from history');
  return el('span', 'mark synced', '✓');
}

function scrollToBottom() {
  const scroller = $('scroller');
  scroller.scrollTop = scroller.scrollHeight;
}

// ---- scroll-back --------------------------------------------------------

let loadingOlder = null;

function loadOlder() {
  if (!room) return Promise.resolve(0);
  if (loadingOlder) return loadingOlder;
  const button = $('load-older');
  button.disabled = true;
  button.textContent = 'Loading…';
  loadingOlder = room
    .loadOlder(COLLECTION, PAGE)
    .then((added) => {
      button.textContent = added > 0 ? 'Load older messages' : 'No older messages';
      return added;
    })
    .catch((error) => {
      hook.errors.push(String(error?.message ?? error));
      button.textContent = 'Could not load older messages: retry';
      return 0;
    })
    .finally(() => {
      button.disabled = false;
      loadingOlder = null;
    });
  return loadingOlder;
}

$('load-older').addEventListener('click', () => loadOlder());
$('scroller').addEventListener('scroll', () => {
  if ($('scroller').scrollTop === 0 && localFirst && room) loadOlder();
});

start();
