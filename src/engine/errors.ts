// Errors the engine raises on purpose, with a code the API maps to an HTTP status. They cross the worker-thread
// boundary as plain objects, so they carry only data.

export type EngineErrorCode =
  | 'model_missing' // 422: a model file is not installed (names it)
  | 'model_invalid' // 422: a model file is installed but cannot be used (names it, says what was found)
  | 'bad_input' // 400: the options break a rule only the engine can check (names the field)
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

/** `expected` names the file relative to the models folder ("controlnet/canny", "annotator/hed/x.onnx"). */
export const modelMissing = (what: string, expected: string): EngineError =>
  new EngineError('model_missing', `${what} is not installed (expected ${expected} in the models folder)`, what);

/** A model file that is there but cannot be used; `file` is relative to the models folder. */
export const modelInvalid = (what: string, file: string, why: string): EngineError =>
  new EngineError('model_invalid', `${what} (${file}) cannot be used: ${why}`, what);
