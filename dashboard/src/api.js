// The API client: same origin, bearer token on every call (a 401 refreshes it and retries once),
// 400 field errors kept as a list.
let tokenProvider = async () => null;

export function setTokenProvider(fn) {
  tokenProvider = fn;
}

export class ApiError extends Error {
  constructor(status, payload) {
    super(payload?.message || (payload?.errors || []).map((e) => `${e.field}: ${e.message}`).join('; ') || `HTTP ${status}`);
    this.status = status;
    this.payload = payload || {};
    this.errors = payload?.errors || [];
  }
}

export async function api(method, path, body) {
  try {
    return await call(method, path, body, await tokenProvider(false));
  } catch (err) {
    // A refused token (expired, or revoked and re-issued): refresh it and try once more.
    if (!(err instanceof ApiError) || err.status !== 401) throw err;
    return call(method, path, body, await tokenProvider(true));
  }
}

async function call(method, path, body, token) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, { message: `the API is unreachable (${err.message})` });
  }
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    payload = { message: `HTTP ${response.status} (no JSON body)` };
  }
  if (response.status === 404 && payload?.error === 'not_found' && !payload.message?.includes('does not exist')) {
    payload.message = `${method} ${path} is not available on this API`;
  }
  if (!response.ok) throw new ApiError(response.status, payload);
  return payload;
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body ?? {});
export const del = (path) => api('DELETE', path);
