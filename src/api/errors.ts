// Every failure leaves the server as {"status":"error","message","messege"} (both spellings: clients of the
// hosted API read either) with the SPEC's HTTP status.
export class ApiError extends Error {
  constructor(readonly statusCode: 400 | 401 | 404 | 413 | 422 | 429 | 500 | 503, message: string,
    readonly extra: Record<string, unknown> = {}) {
    super(message);
  }
}

export function errorBody(message: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { status: 'error', message, messege: message, ...extra };
}

