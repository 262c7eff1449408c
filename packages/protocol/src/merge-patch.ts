/**
 * JSON Merge Patch (RFC 7396), the one rule the server applies to `patch` mutations and the SDK to
 * its optimistic state: objects merge key by key, `null` removes a key, anything else replaces.
 * No TypeBox here: the SDK's bundle imports this module.
 */

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return patch;
  const result: Record<string, unknown> = isPlainObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = applyMergePatch(result[key], value);
  }
  return result;
}
