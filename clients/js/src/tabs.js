// The tabs of one origin share a room: one of them, the leader, holds the
// SSE stream and pushes and pulls; every tab's store transactions reach the
// others through a BroadcastChannel, so all stores hold the same rows.
//
// Leadership is a Web Lock (navigator.locks): the browser grants it to one
// tab, and when that tab closes or crashes, to the next waiting tab at
// once. A follower's writes reach the leader as store changes (row and
// outbox entry together); they are also in IndexedDB, so a new leader
// finds every unacknowledged write even if the old one died mid-push.

export class TabCoordinator {
  /**
   * @param {string} name lock and channel name
   * @param {{enabled: boolean, store: object, isLocalOnly: () => boolean,
   *          onLeader: () => void, onStatus: (status: object) => void,
   *          onRemoteChanges?: (changes: object) => void}} options
   */
  constructor(name, { enabled, store, isLocalOnly, onLeader, onStatus, onRemoteChanges }) {
    this.name = name;
    this.enabled = enabled && !!globalThis.navigator?.locks && typeof globalThis.BroadcastChannel === 'function';
    this.store = store;
    this.isLocalOnly = isLocalOnly;
    this.onLeader = onLeader;
    this.onStatus = onStatus;
    this.onRemoteChanges = onRemoteChanges;
    this.applyingRemote = false;
    this.release = null;
    this.abort = new AbortController();
  }

  start() {
    if (!this.enabled) {
      this.onLeader(); // alone: this tab replicates
      return;
    }
    this.channel = new BroadcastChannel(this.name);
    this.channel.onmessage = (event) => this.#onMessage(event.data);
    this.listenerId = this.store.addDidFinishTransactionListener(() => {
      if (this.applyingRemote || this.isLocalOnly()) return;
      const changes = this.store.getTransactionChanges();
      const [tables, values] = changes;
      if (Object.keys(tables).length || Object.keys(values).length) this.channel.postMessage({ t: 'changes', changes });
    });
    navigator.locks
      .request(`${this.name}:leader`, { signal: this.abort.signal }, () => {
        if (this.abort.signal.aborted) return undefined;
        this.onLeader();
        return new Promise((resolve) => (this.release = resolve));
      })
      .catch(() => {}); // aborted on close while waiting
  }

  /** The leader tells followers what it sees of the network. */
  shareStatus(status) {
    this.channel?.postMessage({ t: 'status', status: { ...status } });
  }

  #onMessage(message) {
    if (message?.t === 'changes') {
      this.applyingRemote = true;
      try {
        this.store.applyChanges(message.changes);
      } finally {
        this.applyingRemote = false;
      }
      this.onRemoteChanges?.(message.changes);
    } else if (message?.t === 'status') {
      this.onStatus(message.status);
    }
  }

  close() {
    this.abort.abort();
    this.release?.();
    if (this.listenerId !== undefined) this.store.delListener(this.listenerId);
    this.channel?.close();
  }
}
