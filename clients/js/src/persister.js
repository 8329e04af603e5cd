// A TinyBase persister that keeps a room's store in IndexedDB with every
// row sealed under the device key (layer 2), so the database holds no
// plaintext. Built on TinyBase's custom-persister API: the stock IndexedDB
// persister writes cells as they are.
//
// Saves are incremental (only the rows a transaction changed are sealed and
// written), rows the caller marks transient (scroll-back history) are never
// written, and a full disk (QuotaExceededError) calls `onQuotaExceeded`
// (the room prunes harder) and rewrites the room on the next save instead
// of losing the write.

import { createCustomPersister } from 'tinybase/persisters';
import { seal, unseal } from './crypto.js';

const VALUES_TABLE = '';
const VALUES_ROW = 'values';
const where = (room, table, rowId) => JSON.stringify([room, table, rowId]);

export const isQuotaError = (error) =>
  error?.name === 'QuotaExceededError' || error?.code === 22 || /quota/i.test(String(error?.message));

/**
 * @param {import('tinybase/store').Store} store
 * @param {{db: object, room: string, deviceKey: CryptoKey,
 *          isTransient?: (table: string, row: object) => boolean,
 *          onQuotaExceeded?: (error: Error) => void,
 *          onError?: (error: Error) => void}} options
 */
export function createSealedPersister(store, { db, room, deviceKey, isTransient = () => false, onQuotaExceeded, onError }) {
  // Keys this persister has written, so a deleted table can be deleted
  // record by record, and a transient row that was once stored is removed.
  const persisted = new Set();
  const keyOf = (table, rowId) => `${table}\u0000${rowId}`;
  let skipNextFullSave = false;
  let needFullSave = false;
  let quotaFailures = 0;
  let persister;

  const getPersisted = async () => {
    const records = await db.readRoom(room);
    const tables = {};
    let values = {};
    persisted.clear();
    await Promise.all(
      records.map(async ([table, rowId, record]) => {
        let value;
        try {
          value = await unseal(deviceKey, where(room, table, rowId), record);
        } catch (error) {
          onError?.(error); // a record we cannot open is dropped, never shown
          return;
        }
        persisted.add(keyOf(table, rowId));
        if (table === VALUES_TABLE) values = value;
        else (tables[table] ??= {})[rowId] = value;
      }),
    );
    skipNextFullSave = true; // startAutoSave's first save would rewrite what we just read
    return records.length ? [tables, values] : undefined;
  };

  const sealRow = async (table, rowId, value) => [table, rowId, await seal(deviceKey, where(room, table, rowId), value)];

  const fullWrite = async () => {
    const rows = [];
    for (const table of store.getTableIds()) {
      for (const rowId of store.getRowIds(table)) {
        const row = store.getRow(table, rowId);
        if (!isTransient(table, row)) rows.push(sealRow(table, rowId, row));
      }
    }
    rows.push(sealRow(VALUES_TABLE, VALUES_ROW, store.getValues()));
    const puts = await Promise.all(rows);
    await db.writeRoom(room, puts, [], true);
    persisted.clear();
    for (const [table, rowId] of puts) persisted.add(keyOf(table, rowId));
  };

  const incrementalWrite = async (changes) => {
    const [changedTables, changedValues] = changes;
    const puts = [];
    const deletes = [];
    for (const [table, rows] of Object.entries(changedTables)) {
      const rowIds = rows ? Object.keys(rows) : [...persisted].filter((k) => k.startsWith(`${table}\u0000`)).map((k) => k.slice(table.length + 1));
      for (const rowId of rowIds) {
        const row = store.hasRow(table, rowId) ? store.getRow(table, rowId) : undefined;
        if (row && !isTransient(table, row)) puts.push(sealRow(table, rowId, row));
        else if (persisted.has(keyOf(table, rowId))) deletes.push([table, rowId]);
      }
    }
    if (Object.keys(changedValues).length) puts.push(sealRow(VALUES_TABLE, VALUES_ROW, store.getValues()));
    if (!puts.length && !deletes.length) return;
    const sealed = await Promise.all(puts);
    await db.writeRoom(room, sealed, deletes);
    for (const [table, rowId] of deletes) persisted.delete(keyOf(table, rowId));
    for (const [table, rowId] of sealed) persisted.add(keyOf(table, rowId));
  };

  const setPersisted = async (_getContent, changes) => {
    try {
      if (!changes || needFullSave) {
        if (!changes && skipNextFullSave) {
          skipNextFullSave = false;
          return;
        }
        needFullSave = false;
        await fullWrite();
      } else {
        await incrementalWrite(changes);
      }
      quotaFailures = 0;
    } catch (error) {
      if (isQuotaError(error) && onQuotaExceeded && ++quotaFailures <= 8) {
        // What failed is still in memory: prune, then rewrite everything
        // (after this save: the persister runs saves one at a time).
        needFullSave = true;
        onQuotaExceeded(error);
        queueMicrotask(() => persister.save());
      } else {
        onError?.(error);
      }
    }
  };

  // Other tabs reach this store through BroadcastChannel, not storage
  // events, so there is nothing to listen to here.
  persister = createCustomPersister(store, getPersisted, setPersisted, () => null, () => {}, onError);
  return persister;
}
