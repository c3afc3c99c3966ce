// The REST API, as the UI calls it: the session cookie travels by itself; every change
// carries the CSRF token; errors come back as the API's error body.

let csrfToken = null;
const listeners = new Set();

export function setCsrf(token) {
  csrfToken = token;
}

/// The session's CSRF token, for a form the page posts itself (the template preview).
export function csrf() {
  return csrfToken;
}

/// Called with no argument when the session has ended (401): the app shows the login.
export function onUnauthorized(listener) {
  listeners.add(listener);
}

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || 'http_error';
    this.field = error.field || null;
    this.details = error.details || null;
  }

  /// Each invalid field and why: `details.errors` of a validation failure, else `field`.
  fieldErrors() {
    const errors = {};
    const listed = this.details && this.details.errors;
    if (Array.isArray(listed)) {
      for (const item of listed) {
        if (item && item.field) errors[item.field] = errors[item.field] ? `${errors[item.field]}; ${item.message}` : String(item.message);
      }
    }
    if (this.field && !(this.field in errors)) errors[this.field] = this.message;
    return errors;
  }
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) {
    if (value === null || value === undefined || value === '') continue;
    if (Array.isArray(value)) value.forEach((v) => search.append(name, v));
    else search.append(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

// The requests under way, on the document (`data-requests`): a page whose count is back
// to 0 has everything it asked for, which is what a test waits for before it looks for
// what should not be there.
let inflight = 0;
function track(delta) {
  inflight += delta;
  document.documentElement.dataset.requests = String(inflight);
}

export async function api(method, path, options = {}) {
  track(1);
  try {
    return await request(method, path, options);
  } finally {
    track(-1);
  }
}

async function request(method, path, { params, body, form, raw } = {}) {
  const headers = { accept: 'application/json' };
  let payload;
  if (form) {
    payload = form;
  } else if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  if (method !== 'GET' && csrfToken) headers['x-csrf-token'] = csrfToken;
  const response = await fetch(path + query(params), {
    method,
    headers,
    body: payload,
    credentials: 'same-origin',
  });
  if (raw && response.ok) return response;
  if (response.status === 204) return null;
  const type = response.headers.get('content-type') || '';
  const data = type.includes('json') ? await response.json().catch(() => null) : await response.text();
  if (!response.ok) {
    const error = new ApiError(response.status, typeof data === 'object' ? data : null);
    if (response.status === 401 && !path.endsWith('/auth/session')) listeners.forEach((l) => l());
    throw error;
  }
  return data;
}

export const get = (path, params) => api('GET', path, { params });
export const post = (path, body, params) => api('POST', path, { body, params });
export const put = (path, body, params) => api('PUT', path, { body, params });
export const patch = (path, body, params) => api('PATCH', path, { body, params });
export const del = (path, params) => api('DELETE', path, { params });

/// Uploads a file as the request body, reporting the bytes sent (fetch cannot).
export function upload(path, file, params, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path + query(params));
    xhr.setRequestHeader('content-type', file.type || 'text/csv');
    xhr.setRequestHeader('accept', 'application/json');
    if (csrfToken) xhr.setRequestHeader('x-csrf-token', csrfToken);
    xhr.upload.addEventListener('progress', (e) => { if (e.lengthComputable && onProgress) onProgress(e.loaded, e.total); });
    xhr.addEventListener('load', () => {
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch { data = null; }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(new ApiError(xhr.status, data));
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, null)));
    xhr.send(file);
  });
}
