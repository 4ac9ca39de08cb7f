// The login form: POST /api/login, then the console page.
const form = document.getElementById("login");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.getElementById("login-error");
  error.textContent = "";
  const body = {name: form.name.value.trim(), password: form.password.value};
  const answer = await fetch("/api/login", {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify(body), credentials: "same-origin",
  });
  if (answer.ok) {
    window.location.assign("/");
    return;
  }
  const detail = (await answer.json().catch(() => ({}))).detail;
  error.textContent = answer.status === 401
    ? "Nama atau kata sandi salah / Wrong name or password"
    : `${answer.status}: ${typeof detail === "string" ? detail : "error"}`;
});
