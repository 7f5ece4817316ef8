import { createRequire as __ociCreateRequire } from 'node:module';
const require = __ociCreateRequire(import.meta.url);
import {
  context,
  getOctokit
} from "./chunk-XKI46IYZ.js";
import "./chunk-4UTCHKPP.js";
import "./chunk-Z3NNVBL6.js";
export {
  context,
  getOctokit
};
