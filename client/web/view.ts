/** The page's DOM: elements by id, text only (never HTML), and the error box. */

export function element<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`The page has no #${id}.`);
  return found as T;
}

export function setText(id: string, text: string): void {
  element(id).textContent = text;
}

export function setShown(id: string, shown: boolean): void {
  element(id).hidden = !shown;
}

/** Shows an error as the API (or msal) gave it: a code, a message, and the request id when there is one. */
export function showError(error: unknown): void {
  const { code, message, requestId } = describeError(error);
  setText('error-code', code);
  setText('error-message', message);
  setText('error-request-id', requestId ?? '');
  setShown('error-request', requestId !== undefined);
  setShown('error', true);
}

export function clearError(): void {
  setShown('error', false);
}

function describeError(error: unknown): { code: string; message: string; requestId: string | undefined } {
  if (typeof error !== 'object' || error === null) return { code: 'error', message: String(error), requestId: undefined };
  const record = error as Record<string, unknown>;
  // ServiceError and the refresher's errors have `code`; msal's have `errorCode`.
  const code =
    typeof record['code'] === 'string' ? record['code'] : typeof record['errorCode'] === 'string' ? record['errorCode'] : 'error';
  const message = typeof record['message'] === 'string' ? record['message'] : 'No message.';
  const requestId = typeof record['requestId'] === 'string' ? record['requestId'] : undefined;
  return { code, message, requestId };
}

/** A button that runs `action` once at a time: disabled while it runs, and any failure handed to `onError`. */
export function onClick(id: string, action: () => Promise<void>, onError: (error: unknown) => void = showError): void {
  const button = element<HTMLButtonElement>(id);
  button.addEventListener('click', () => {
    button.disabled = true;
    clearError();
    action()
      .catch(onError)
      .finally(() => {
        button.disabled = false;
      });
  });
}

/** `1:02:03` or `4:05`: hours only when there are some. */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = String(total % 60).padStart(2, '0');
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, '0')}:${seconds}` : `${minutes}:${seconds}`;
}
