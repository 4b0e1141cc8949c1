import type { IncomingMessage } from 'node:http';
import { readUpgradeCredentials, type UpgradeCredentials } from '../auth/credentials.ts';

/** Kept for importers: the parser itself lives in auth/credentials.ts (one parser for every entrance). */
export { SUBPROTOCOL } from '../auth/credentials.ts';
export type Credentials = UpgradeCredentials;

/** The consumer's credentials on an upgrade request (see `readUpgradeCredentials`). */
export function readCredentials(req: IncomingMessage, query: URLSearchParams): Credentials {
  return readUpgradeCredentials(req.headers, query);
}
