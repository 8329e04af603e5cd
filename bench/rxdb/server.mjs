// The JavaScript reference of docs/benchmarks.md: what a JavaScript team
// would run instead of roomsync, rxdb-server's replication endpoint, on
// RxDB's free in-memory storage (the durable Node.js storages are RxDB
// Premium). One collection = one room: rxdb-server has no rooms.
//
//   node bench/rxdb/server.mjs --port 8095      # or PORT=8095
//
// Serves POST /messages/0/push and GET /messages/0/pull?lwt=&id=&limit=
// (rxdb-server's URL is <endpoint name>/<schema version>), and GET /healthz.
// Prints one "rxdb-server ready <url>" line on stdout when listening.
import express from 'express';
import { createRxDatabase } from 'rxdb/plugins/core';
import { getRxStorageMemory } from 'rxdb/plugins/storage-memory';
import { createRxServer } from 'rxdb-server/plugins/server';
import { RxServerAdapterExpress } from 'rxdb-server/plugins/adapter-express';

function arg(name, fallback) {
  const i = process.argv.indexOf('--' + name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const host = arg('host', process.env.HOST || '127.0.0.1');
const port = parseInt(arg('port', process.env.PORT || '8095'), 10);

// The shape roomsync-bench pushes (bench/workload.cc ChatDocument): the
// server treats everything but the id as opaque, as roomsync does.
const messageSchema = {
  version: 0,
  primaryKey: 'id',
  type: 'object',
  properties: {
    id: { type: 'string', maxLength: 100 },
    timestamp: { type: 'number' },
    iv: { type: 'string' },
    ciphertext: { type: 'string' },
    sent_us: { type: 'number' },
  },
  required: ['id', 'timestamp', 'iv', 'ciphertext'],
};

const database = await createRxDatabase({
  name: 'roomsyncbench',
  storage: getRxStorageMemory(),
  multiInstance: false,
});
await database.addCollections({ messages: { schema: messageSchema } });

// The express adapter's own create() is express() + express.json() with
// body-parser's 100 kB default, which a 500-document seeding push (~200 kB)
// exceeds; the same app with a larger limit, as a team seeding would do.
const app = express();
app.use(express.json({ limit: '64mb' }));
app.get('/healthz', (_req, res) => res.send('ok'));

const server = await createRxServer({
  database,
  adapter: RxServerAdapterExpress,
  serverApp: app,
  hostname: host,
  port,
});
const endpoint = server.addReplicationEndpoint({
  name: 'messages',
  collection: database.messages,
});
await server.start();
console.log(`rxdb-server ready http://${host}:${port}/${endpoint.urlPath}`);

async function stop() {
  await database.destroy();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
