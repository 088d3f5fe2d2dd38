/**
 * The few Node APIs the CLI (and the e2e tests) use, declared here because the repo has no @types/node
 * and the package takes no dependencies. Type-only: nothing is emitted. Delete this file if @types/node
 * becomes a devDependency; the declarations follow its names so code will not change.
 */
declare module "node:child_process" {
  interface SpawnOptions {
    stdio?: "inherit" | "pipe" | "ignore" | ("inherit" | "pipe" | "ignore" | number)[];
    env?: Record<string, string | undefined>;
    cwd?: string;
    detached?: boolean;
  }
  interface Readable {
    on(event: "data", listener: (chunk: Uint8Array) => void): this;
    setEncoding(encoding: "utf8"): this;
  }
  interface ChildProcess {
    readonly pid: number | undefined;
    readonly exitCode: number | null;
    readonly signalCode: string | null;
    readonly stdout: Readable | null;
    readonly stderr: Readable | null;
    kill(signal?: string): boolean;
    on(event: "exit", listener: (code: number | null, signal: string | null) => void): this;
    on(event: "error", listener: (error: Error & { code?: string }) => void): this;
    once(event: "exit", listener: (code: number | null, signal: string | null) => void): this;
  }
  function spawn(command: string, args: readonly string[], options?: SpawnOptions): ChildProcess;
}

declare module "node:util" {
  interface ParseArgsOptionConfig {
    type: "string" | "boolean";
    short?: string;
    multiple?: boolean;
    default?: string | boolean;
  }
  interface ParseArgsConfig {
    args?: string[];
    options?: Record<string, ParseArgsOptionConfig>;
    strict?: boolean;
    allowPositionals?: boolean;
  }
  function parseArgs(config: ParseArgsConfig): {
    values: Record<string, string | boolean | undefined>;
    positionals: string[];
  };
}

declare module "node:os" {
  function hostname(): string;
  function tmpdir(): string;
  const constants: { signals: Record<string, number> };
}

interface NodeProcess {
  readonly argv: string[];
  readonly env: Record<string, string | undefined>;
  readonly pid: number;
  readonly execPath: string;
  exitCode: number | undefined;
  readonly stdout: { write(text: string): boolean };
  readonly stderr: { write(text: string): boolean };
  on(event: "SIGINT" | "SIGTERM" | "SIGHUP", listener: () => void): this;
  off(event: "SIGINT" | "SIGTERM" | "SIGHUP", listener: () => void): this;
  kill(pid: number, signal?: string | number): boolean;
  exit(code?: number): never;
  cwd(): string;
}

declare var process: NodeProcess;
