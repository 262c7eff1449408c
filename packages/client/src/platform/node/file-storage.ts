/**
 * Node's variant of `#platform/file-storage`: the real file-backed queue storage. Node-only modules
 * (`node:*`, native drivers) are reached only through `#platform/…`, so a browser bundle never sees them.
 */
export { FileStorage } from '../../storage/file.ts';
