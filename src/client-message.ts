// What a client may read of a server-side failure: never a server path. Model files are named relative to the
// models folder (e.g. "annotator/hed/ControlNetHED.onnx"); any other server folder (the data folder, the
// install folder, the working directory, home, the temp folder) is replaced by "<server>". Every message that
// leaves the server (an HTTP error body, a job's failure as fetch and the webhook show it, meta notes) passes
// through `clientMessage`; the places that build messages name files relative to the models folder already,
// and this is the net under them.
import { homedir, tmpdir } from 'node:os';
import { join, resolve, sep } from 'node:path';

interface Root {
  path: string;
  /** What the root is replaced with: "" for the models folder (names become relative), else "<server>". */
  label: string;
}

const roots: Root[] = [];

/**
 * Registers a server folder whose absolute path must never reach a client. The models folder is registered
 * with `relative: true`: "<modelsDir>/lora/x.safetensors" becomes "lora/x.safetensors".
 */
export function registerServerPath(path: string, opts: { relative?: boolean } = {}): void {
  const abs = resolve(path);
  if (abs === sep || roots.some((r) => r.path === abs)) return;
  roots.push({ path: abs, label: opts.relative ? '' : '<server>' });
  // Longest first, so the models folder wins over the data folder that holds it.
  roots.sort((a, b) => b.path.length - a.path.length);
}

/** A path relative to the models folder, for messages ("annotator/hed/ControlNetHED.onnx"). */
export function modelsRelative(...parts: string[]): string {
  return join(...parts).split(sep).join('/');
}

registerServerPath(join(import.meta.dirname, '..')); // the install folder
registerServerPath(process.cwd());
registerServerPath(homedir());
registerServerPath(tmpdir());

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The message with every registered server folder taken out (models folder → relative names). */
export function clientMessage(message: string): string {
  let out = message;
  for (const r of roots) {
    // "<root>/rest" → "rest" (models folder) or "<server>/rest"; the bare root → "the models folder" / "<server>".
    out = out.replace(new RegExp(`(?<![\\w./-])${escapeRegExp(r.path)}(?:${escapeRegExp(sep)}|(?![\\w.-]))`, 'g'), (m) =>
      m.endsWith(sep) ? (r.label === '' ? '' : `${r.label}/`) : r.label === '' ? 'the models folder' : r.label);
  }
  return out;
}
