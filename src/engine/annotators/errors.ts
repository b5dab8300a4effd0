// The typed failure the API maps to a 422: an auto_hint annotator needs a model file that is not installed.
import type { ControlNetType } from '../pipeline/types.ts';

export class AnnotatorMissingError extends Error {
  override readonly name = 'AnnotatorMissingError';
  /**
   * @param file the missing file relative to the models folder (annotator/<name>/<file>); never a server path
   * @param source where the file comes from (a hub repository and file, or the export step)
   */
  constructor(readonly type: ControlNetType, readonly file: string, readonly source = '') {
    super(`auto_hint for ${type} needs the annotator model file ${file} in the models folder, which is not installed${source ? `; get it from ${source}` : ''}`);
  }
}
