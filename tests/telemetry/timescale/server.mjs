// PostgreSQL 17 + TimescaleDB 2.23 (PGlite, WASM) over TCP, for the TimescaleDB test tier.
// Usage: node server.mjs <node_modules folder> <port>   (the repo's .pglite/node_modules)
// Prints "listening <port>" once it accepts connections; stops on SIGTERM/SIGINT.
// One in-memory database and one backend session: clients are served one at a time.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [modules, portArg] = process.argv.slice(2);
const load = (file) => import(pathToFileURL(join(modules, "@electric-sql", file)).href);
const { PGlite } = await load("pglite/dist/index.js");
const { timescaledb } = await load("pglite/dist/timescaledb/index.js");
const { PGLiteSocketServer } = await load("pglite-socket/dist/index.js");

const port = Number(portArg ?? 0);
const db = await PGlite.create({ extensions: { timescaledb } });
const server = new PGLiteSocketServer({ db, port, host: "127.0.0.1" });
server.addEventListener("listening", (event) => console.log(`listening ${event.detail.port}`));
await server.start();

async function stop() {
  await server.stop();
  await db.close();
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
