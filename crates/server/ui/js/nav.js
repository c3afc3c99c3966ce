// Moving between pages, for pages to call without importing the shell.

export function go(path) {
  if (location.hash === `#${path}`) refresh();
  else location.hash = `#${path}`;
}

/// Renders the current page again (after a change it shows).
export function refresh() {
  window.dispatchEvent(new Event('ee-refresh'));
}
