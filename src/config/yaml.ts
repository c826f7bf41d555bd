// The YAML parser behind its own module, imported only for a YAML config file. A static import
// here (not import('yaml') from load.ts) keeps the named export in the image's bundle, where a
// dynamic import of the CommonJS package yields only its default export.
export { parseDocument } from 'yaml';
