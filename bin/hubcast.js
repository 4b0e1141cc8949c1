#!/usr/bin/env node
// Installed entry point: runs the compiled CLI (npm run build). From a checkout use `npm run cli --`.
import { main } from '../dist/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`hubcast: ${err?.message ?? err}\n`);
    process.exitCode = 1;
  },
);
