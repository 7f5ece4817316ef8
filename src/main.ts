// Entry point of the action (dist/index.js). All logic lives in action.ts and the pipeline.
import './runtime.js';
import { run } from './action.js';

await run();
