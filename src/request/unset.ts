// The one rule for "unset" that every optional request field follows: clients of the hosted API send JSON
// null, the string "null" (any case, surrounding spaces allowed) or "" for a field they do not set. Every
// optional field of every endpoint body goes through `unsetToUndefined` first, so the rule lives here only.

/** True for the three spellings of "not set": null (and undefined), "null" (trimmed, any case) and "" (or blanks). */
export function isUnset(v: unknown): boolean {
  if (v === null || v === undefined) return true;
  if (typeof v !== 'string') return false;
  const s = v.trim();
  return s === '' || s.toLowerCase() === 'null';
}

/** z.preprocess step: an unset value becomes undefined (so the field's default applies); anything else is kept. */
export function unsetToUndefined(v: unknown): unknown {
  return isUnset(v) ? undefined : v;
}
