import { createRequire as __ociCreateRequire } from 'node:module';
const require = __ociCreateRequire(import.meta.url);
import {
  context,
  getOctokit
} from "./chunk-DCY7KIVY.js";
import "./chunk-PCYRYIDL.js";
import "./chunk-Z3NNVBL6.js";
export {
  context,
  getOctokit
};
