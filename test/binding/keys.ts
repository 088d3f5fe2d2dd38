/** The API keys of the binding tests: edgelock knows their hashes (vitest.config.ts); the caller holds them. */
export const BINDING_KEYS = {
  /** The caller Worker's key: write, for `bound:` locks. */
  write: "elk_binding_test_write_key_0000000000000000",
  /** A read-only key for the same locks. */
  read: "elk_binding_test_read_key_00000000000000000",
} as const;
