/**
 * The lock contract (test/contract/lock-contract.ts) through the client library, whose requests reach the
 * real Worker in workerd through its `fetch` option; refusals are the typed errors' codes.
 */
import { clientSubject } from "../contract/client-subject.ts";
import { describeLockContract } from "../contract/lock-contract.ts";

describeLockContract("the client library", () => clientSubject("contract-default-holder"));
