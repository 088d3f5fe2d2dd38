/**
 * The guard that keeps `edgelock run`'s command from outliving edgelock: a tiny `sh` in a session of its
 * own, reading a pipe whose only writer is this process. If edgelock dies without saying `disarm` (kill -9,
 * the OOM killer), the kernel closes the pipe, `read` returns at once, and the guard SIGKILLs the command's
 * process group. It needs no polling and cannot be fooled by a reused pid. Node-only, used by the CLI.
 */
import { type ChildProcess, spawn } from "node:child_process";

/**
 * The guard's script. It reads the group id, then waits for `disarm`; end of input instead means edgelock
 * is gone. It kills until the group is empty (a member forking at that moment is caught by the next
 * round), at most 50 rounds, since zombies nobody reaps stay members.
 */
const SCRIPT = `read -r pgid || exit 0
[ "$pgid" = disarm ] && exit 0
read -r word
[ "$word" = disarm ] && exit 0
i=0
while [ "$i" -lt 50 ] && kill -s KILL -- "-$pgid" 2>/dev/null; do i=$((i + 1)); sleep 0.1; done`;

export class Reaper {
  readonly #child: ChildProcess;
  #failure: Error | null = null;
  #disarmed = false;

  /** Starts the guard; `onFailure` hears if it cannot run (no `/bin/sh`) or dies before it is disarmed. */
  constructor(onFailure: (error: Error) => void) {
    // detached: a session of its own, so signals to edgelock's group (a terminal's ^C, kill -9 -PGID)
    // never reach it; it must outlive edgelock to do its job.
    this.#child = spawn("/bin/sh", ["-c", SCRIPT], { detached: true, stdio: ["pipe", "ignore", "ignore"] });
    // Neither the guard nor its pipe keeps edgelock running: edgelock ends it by disarming or by dying.
    this.#child.unref();
    (this.#child.stdin as { unref?: () => void } | null)?.unref?.();
    const fail = (error: Error): void => {
      if (this.#failure !== null) return;
      this.#failure = error;
      onFailure(error);
    };
    this.#child.once("error", fail);
    this.#child.once("exit", (code, signal) => {
      if (!this.#disarmed) fail(new Error(`the guard exited early (${signal ?? code})`));
    });
    this.#child.stdin?.on("error", (error) => fail(error));
  }

  /** Guards process group `pgid`: from now on, edgelock's death kills it. */
  guard(pgid: number): void {
    this.#child.stdin?.write(`${pgid}\n`);
  }

  /** The group is gone (or edgelock stops it itself): the guard exits without killing anything. */
  disarm(): void {
    if (this.#disarmed) return;
    this.#disarmed = true;
    this.#child.stdin?.end("disarm\n");
  }
}
