/**
 * Node APIs the e2e tests use, beyond those client/src/node-shim.d.ts declares for the CLI. Type-only;
 * the repo has no @types/node. Delete both files if @types/node becomes a devDependency.
 */
declare module "node:fs/promises" {
  function mkdtemp(prefix: string): Promise<string>;
  function rm(path: string, options?: { recursive?: boolean; force?: boolean }): Promise<void>;
  function readFile(path: string, encoding: "utf8"): Promise<string>;
  function writeFile(path: string, data: string): Promise<void>;
}

declare module "node:net" {
  interface Server {
    listen(port: number, host: string, callback: () => void): this;
    address(): { port: number } | string | null;
    close(callback?: (error?: Error) => void): this;
    on(event: "error", listener: (error: Error) => void): this;
  }
  function createServer(): Server;
}

declare module "node:path" {
  function join(...parts: string[]): string;
}

declare module "node:url" {
  function fileURLToPath(url: string | URL): string;
}

interface ImportMeta {
  readonly url: string;
}
