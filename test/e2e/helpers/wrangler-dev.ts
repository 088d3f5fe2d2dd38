/**
 * The e2e tests' server: scripts/local-server.ts on the local path the Vitest project picks (E2E_SERVER:
 * `direct`, what `npm start` serves, or `wrangler-dev`), so every e2e test runs against both. Auth is off
 * unless a test passes its own vars. Not a launcher of its own: chaos and bench start servers the same way.
 */
import { afterAll, beforeAll } from "vitest";
import { freePort, type LocalPath, parseLocalPath, startLocalServer } from "../../../scripts/local-server.ts";

export { freePort };

export interface DevServer {
  url: string;
  /** Pass it back as `persistDir` to restart on the same state. */
  persistDir: string;
  /** The server's process, which leads its own process group. */
  pid: number;
  stop(): Promise<void>;
}

export interface DevServerOptions {
  persistDir?: string;
  port?: number;
  vars?: Record<string, string>;
}

/** The local path of this run: the `E2E_SERVER` env var set per project in test/e2e/vitest.config.ts. */
export function serverPath(): LocalPath {
  return parseLocalPath(process.env.E2E_SERVER ?? "direct", "E2E_SERVER");
}

export async function startServer(opts: DevServerOptions = {}): Promise<DevServer> {
  const server = await startLocalServer({
    path: serverPath(),
    vars: { EDGELOCK_INSECURE_NO_AUTH: "true", ...opts.vars },
    ...(opts.persistDir !== undefined ? { persistTo: opts.persistDir } : {}),
    ...(opts.port !== undefined ? { port: opts.port } : {}),
  });
  return { url: server.url, persistDir: server.persistTo, pid: server.pid, stop: server.stop };
}

/**
 * A server for the tests of one file: started before them, stopped after them. Read `.url` inside tests.
 */
export function useServer(opts: DevServerOptions = {}): DevServer {
  let server: DevServer | undefined;
  beforeAll(async () => {
    server = await startServer(opts);
  });
  afterAll(async () => {
    await server?.stop();
  });
  const started = (): DevServer => {
    if (server === undefined) throw new Error("the file's server is not started yet (use it inside a test)");
    return server;
  };
  return {
    get url() {
      return started().url;
    },
    get persistDir() {
      return started().persistDir;
    },
    get pid() {
      return started().pid;
    },
    stop: () => started().stop(),
  };
}

/** The name tests have imported since the e2e suite ran on `wrangler dev` only; same as startServer. */
export const startWranglerDev = startServer;
