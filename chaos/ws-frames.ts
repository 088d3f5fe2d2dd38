/**
 * A passive reader of one direction of a WebSocket byte stream (RFC 6455 §5): the chaos proxy forwards the
 * bytes untouched and feeds a copy here to learn which messages went by. It reassembles fragmented messages
 * and unmasks client frames; it never writes, answers pings or checks the protocol beyond what it needs.
 * Compressed frames (permessage-deflate) are not read: the proxy keeps that extension from being negotiated.
 */

export const OPCODE = { text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

/** One whole message (data frames reassembled) or control frame, as it went by. */
export interface WsMessage {
  readonly opcode: number;
  readonly payload: Buffer;
  /** The payload as UTF-8 for text frames, else null. */
  readonly text: string | null;
}

export class FrameReader {
  #buffer: Buffer = Buffer.alloc(0);
  #fragments: Buffer[] = [];
  #fragmentOpcode = 0;
  /** Set once the stream is unreadable (a compressed frame, a bad length): nothing more is reported. */
  #broken: string | null = null;

  get broken(): string | null {
    return this.#broken;
  }

  /** Adds bytes of the stream; returns the messages they completed, in order. */
  push(chunk: Buffer): WsMessage[] {
    if (this.#broken !== null) return [];
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const out: WsMessage[] = [];
    for (;;) {
      const frame = this.#nextFrame();
      if (frame === null) break;
      const { fin, opcode, payload } = frame;
      if (opcode >= 0x8) {
        out.push(message(opcode, payload));
      } else if (opcode === 0x0) {
        this.#fragments.push(payload);
        if (fin) {
          out.push(message(this.#fragmentOpcode, Buffer.concat(this.#fragments)));
          this.#fragments = [];
        }
      } else if (fin) {
        out.push(message(opcode, payload));
      } else {
        this.#fragmentOpcode = opcode;
        this.#fragments = [payload];
      }
    }
    return out;
  }

  #nextFrame(): { fin: boolean; opcode: number; payload: Buffer } | null {
    const b = this.#buffer;
    if (b.length < 2) return null;
    const b0 = b[0] as number;
    const b1 = b[1] as number;
    if ((b0 & 0x70) !== 0) {
      this.#broken = "a frame with RSV bits set (an extension such as permessage-deflate)";
      return null;
    }
    let offset = 2;
    let length = b1 & 0x7f;
    if (length === 126) {
      if (b.length < 4) return null;
      length = b.readUInt16BE(2);
      offset = 4;
    } else if (length === 127) {
      if (b.length < 10) return null;
      const big = b.readBigUInt64BE(2);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) {
        this.#broken = "a frame longer than 2^53 bytes";
        return null;
      }
      length = Number(big);
      offset = 10;
    }
    const masked = (b1 & 0x80) !== 0;
    const maskAt = offset;
    if (masked) offset += 4;
    if (b.length < offset + length) return null;
    const payload = Buffer.from(b.subarray(offset, offset + length));
    if (masked) {
      for (let i = 0; i < payload.length; i++) {
        payload[i] = (payload[i] as number) ^ (b[maskAt + (i % 4)] as number);
      }
    }
    this.#buffer = b.subarray(offset + length);
    return { fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, payload };
  }
}

function message(opcode: number, payload: Buffer): WsMessage {
  return { opcode, payload, text: opcode === OPCODE.text ? payload.toString("utf8") : null };
}
