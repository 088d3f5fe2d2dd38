/**
 * A command started in its own process group, so that `edgelock run` can stop everything it started (the
 * command, its children, their children) and not only the process it spawned: a lost lock must stop the
 * whole job. Node-only (POSIX process groups); the library never imports it.
 */
import { type ChildProcess, spawn } from "node:child_process";

/** How a command ended: its exit code, or the signal that killed it, or why it could not start. */
export interface CommandExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: (Error & { code?: string }) | undefined;
}

/** How often `stop` looks whether the group is empty. */
const POLL_MS = 100;
/** After SIGKILL, how long to wait for the kernel to remove the group before moving on. */
const KILL_WAIT_MS = 2_000;

export class ProcessGroup {
  readonly #child: ChildProcess;
  /** Settles once the command itself has exited (the rest of its group may still run). */
  readonly exited: Promise<CommandExit>;
  #stopping: Promise<void> | null = null;

  /** Starts `file args` as the leader of a new process group (and session), with inherited stdio. */
  constructor(file: string, args: readonly string[], env: NodeJS.ProcessEnv) {
    // detached: setsid(), so the command leads a new process group whose id is its pid.
    this.#child = spawn(file, args, { stdio: "inherit", detached: true, env });
    this.exited = new Promise((resolve) => {
      this.#child.once("error", (error) => resolve({ code: null, signal: null, error }));
      this.#child.once("exit", (code, signal) => resolve({ code, signal }));
    });
  }

  /** The group's id (the command's pid), or undefined when the command could not start. */
  get pgid(): number | undefined {
    return this.#child.pid;
  }

  /** Sends `signal` to every process in the group; false when none is left. */
  signal(signal: NodeJS.Signals | 0): boolean {
    const pgid = this.pgid;
    if (pgid === undefined) return false;
    try {
      process.kill(-pgid, signal);
      return true;
    } catch {
      return false; // ESRCH: the group is empty
    }
  }

  /** Whether any process of the group is still there. */
  get alive(): boolean {
    return this.signal(0);
  }

  /**
   * Stops the whole group: `signal` (SIGTERM) now, SIGKILL to whatever is left after `graceMs`; resolves
   * once the group is gone. Calling it again joins the first stop.
   */
  stop(graceMs: number, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    this.#stopping ??= this.#stop(graceMs, signal);
    return this.#stopping;
  }

  /** Last resort for a process that is exiting anyway (synchronous, for `process.on("exit")`). */
  kill(): void {
    this.signal("SIGKILL");
  }

  async #stop(graceMs: number, signal: NodeJS.Signals): Promise<void> {
    if (!this.signal(signal)) return;
    if (await this.#until(() => !this.alive, graceMs)) return;
    this.signal("SIGKILL");
    // A member that is already a zombie (its parent gone, not yet reaped) still counts; don't wait forever.
    await this.#until(() => !this.alive, KILL_WAIT_MS);
  }

  async #until(done: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, Math.min(POLL_MS, deadline - Date.now())));
    }
    return true;
  }
}
