#!/usr/bin/env node
// Installed entry point: runs the compiled CLI (built by `npm run build`, which `npm ci` runs via
// prepare). From a checkout, `npm run cli --` runs the TypeScript source directly.
import { runCli } from '../dist/src/cli/main.js';

runCli();
