// The login page: posts the credential, then goes where the user was headed.
const form = document.getElementById("login-form");
const error = document.getElementById("login-error");

function destination() {
  const next = new URLSearchParams(location.search).get("next") || "/";
  // Resolved the way the browser will resolve it, and kept only when it is
  // of this very origin: a check of its first characters misses "/\\host"
  // and "/<tab>/host", which browsers read as another host.
  try {
    const url = new URL(next, location.origin);
    if (url.origin === location.origin) return url.pathname + url.search + url.hash;
  } catch {
    // not a URL at all
  }
  return "/";
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.hidden = true;
  const button = document.getElementById("login-button");
  button.disabled = true;
  try {
    const response = await fetch("/api/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        username: document.getElementById("username").value,
        password: document.getElementById("password").value,
      }),
    });
    if (response.ok) {
      location.assign(destination());
      return;
    }
    let message = `Login failed (${response.status})`;
    try {
      message = (await response.json()).error || message;
    } catch {
      // not JSON: keep the status
    }
    if (response.status === 429) {
      const wait = response.headers.get("Retry-After");
      if (wait) message += ` Try again in ${wait} s.`;
    }
    error.textContent = message;
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
});
