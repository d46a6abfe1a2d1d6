// REST calls: JSON in and out, the bearer token, and the error envelope as an exception.

/** An error answer: `code` from the envelope (or `network`), `fields` for validation. */
export class ApiError extends Error {
  constructor(status, code, message, fields) {
    super(message);
    this.status = status;
    this.code = code;
    this.fields = fields || {};
  }
}

/** Calls `path` with an optional JSON `body`; resolves to the parsed answer (null for 204). */
export async function call(path, { method = 'GET', body, token } = {}) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'network', 'The server cannot be reached.');
  }
  if (response.status === 204) return null;
  const json = await response.json().catch(() => null);
  if (!response.ok) {
    const e = (json && json.error) || {};
    throw new ApiError(response.status, e.code || 'http_' + response.status,
      e.message || response.statusText, e.fields);
  }
  return json;
}

export const register = (name, email, password) =>
  call('/api/auth/register', { method: 'POST', body: { name, email, password } });
export const login = (email, password) =>
  call('/api/auth/login', { method: 'POST', body: { email, password } });
export const logout = (token) => call('/api/auth/logout', { method: 'POST', token });
export const me = (token) => call('/api/auth/me', { token });
export const contacts = (token) => call('/api/contact/contacts', { token });
export const addContact = (token, email) =>
  call('/api/contact/add-contact', { method: 'POST', body: { email }, token });
export const conversations = (token) => call('/api/conversations', { token });
/** The newest page of the 1:1 history with `userId` (its answer names the conversation). */
export const directHistory = (token, userId) =>
  call(`/api/messages/${encodeURIComponent(userId)}?limit=50`, { token });
/** The page of a conversation before seq `before`. */
export const olderMessages = (token, conversationId, before) =>
  call(`/api/conversations/${encodeURIComponent(conversationId)}/messages?before=${before}&limit=50`, { token });
