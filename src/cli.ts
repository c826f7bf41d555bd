#!/usr/bin/env node
// The entry point. Node keeps the compiled code of mailcerts and its packages on disk (in the
// system's temporary directory), so that each later start skips compiling it: about 100 ms of
// every `run --once` and daemon start. Where nothing can be written, Node just compiles as before.
import { enableCompileCache } from 'node:module';

enableCompileCache?.();
await import('./main.js');
