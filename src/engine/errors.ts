// Errors the engine raises on purpose, with a code the API maps to an HTTP status. They cross the worker-thread
// boundary as plain objects, so they carry only data.

export type EngineErrorCode =
  | 'model_missing' // 422: a model file is not installed (names it)
  | 'bad_input' // 400: the options break a rule only the engine can check (names the field)
  | 'bad_model_file' // 422: a model file the user installed cannot be used (names it, relative to the models folder)
  | 'cancelled'
  | 'internal';

export class EngineError extends Error {
  constructor(readonly code: EngineErrorCode, message: string, readonly field?: string) {
    super(message);
    this.name = 'EngineError';
  }

  toJSON(): { code: EngineErrorCode; message: string; field?: string } {
    return { code: this.code, message: this.message, field: this.field };
  }

  static from(x: unknown): EngineError {
    if (x instanceof EngineError) return x;
    const o = x as { code?: EngineErrorCode; message?: string; field?: string };
    if (o && typeof o === 'object' && typeof o.code === 'string' && typeof o.message === 'string') return new EngineError(o.code, o.message, o.field);
    return new EngineError('internal', x instanceof Error ? x.message : String(x));
  }
}

/** `path` is relative to the models folder (store.ts userPath): messages never show a server path. */
export const modelMissing = (what: string, path: string): EngineError =>
  new EngineError('model_missing', `${what} is not installed (expected ${path} in the models folder)`, what);

/**
 * A user's model file that cannot be used (unsupported format or variant, a refused pickle, wrong shapes, missing
 * keys). `file` is relative to the models folder; `reason` must already be free of server paths.
 */
export const badModelFile = (field: string, file: string, reason: string): EngineError =>
  new EngineError('bad_model_file', `${field}: the model file ${file} cannot be used: ${reason}`, field);

/** Status of each error kind in the hosted API's responses. */
export const HTTP_STATUS: Record<EngineErrorCode, number> = { model_missing: 422, bad_model_file: 422, bad_input: 400, cancelled: 500, internal: 500 };
