// The typed failure the API maps to a 422: an auto_hint annotator needs a model file that is not installed.
import type { ControlNetType } from '../pipeline/types.ts';

export class AnnotatorMissingError extends Error {
  override readonly name = 'AnnotatorMissingError';
  /** `file` is relative to the models folder (annotator/<name>/<file>): it is shown to clients. */
  constructor(readonly type: ControlNetType, readonly file: string) {
    super(`auto_hint for "${type}" needs the annotator model file ${file}, which is not installed (controlnet models pull annotator/${type})`);
  }
}
