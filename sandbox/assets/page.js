// The payment page's states (CONTRACT §9): <main data-state> names the one shown.
// Every value from a server is set with textContent, never as HTML.
"use strict";

const main = document.getElementById("checkout");
const token = main.dataset.token;
const payApi = `/v1/pay/orders/${encodeURIComponent(token)}`;
const POLL_MS = 1000;
const $ = (id) => document.getElementById(id);
const saved = `attempt:${token}`; // kept across the card's round trip to its bank
let attempt = JSON.parse(sessionStorage.getItem(saved) || "null"); // {method, provider, phone}
let reference = new URLSearchParams(location.search).get("reference");
let retryAction = load;
let pollTimer = null;
let signedIn = false;

function show(state) {
  if (main.dataset.state === state) return;
  main.dataset.state = state;
  for (const section of document.querySelectorAll("[data-view]")) {
    section.hidden = section.dataset.view !== state;
  }
  const heading = document.querySelector(`[data-view="${state}"] h2`);
  $("announce").textContent = heading.textContent; // read out by screen readers
  heading.focus();
}

function fail(message, retry) {
  stopPolling();
  retryAction = retry;
  $("error-message").textContent = message;
  show("error");
}

async function call(path, options = {}) {
  const init = { headers: { "content-type": "application/json" }, ...options };
  if (init.body !== undefined) init.body = JSON.stringify(init.body);
  const response = await fetch(path, init);
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  return { status: response.status, ok: response.ok, body };
}

const CANCELLED = "This order was cancelled: there is nothing to pay.";

async function load() {
  show("loading");
  let answer;
  try { answer = await call(payApi); } catch (_) {
    return fail("We could not reach Cimplify. Check your connection.", load);
  }
  if (answer.status === 404) return fail("This payment link does not exist.", load);
  if (answer.status === 410) return fail("This payment link has expired: ask for a new one.", load);
  if (!answer.ok) return fail("Cimplify could not load this order just now.", load);
  const status = answer.body.status;
  if (status === "paid" && !reference) return show("already_paid");
  if (status === "cancelled") return fail(CANCELLED, load);
  const account = await linkAccount();
  signedIn = account !== null;
  if (reference || status === "processing" || status === "awaiting_authorization") {
    return startPolling();
  }
  if (account && account.methods.length) return showSavedMethods(account);
  show("auth_choice");
}

function normalPhone(typed) {
  const phone = typed.replace(/[\s().-]/g, "");
  if (phone.startsWith("0") && main.dataset.dial) return `+${main.dataset.dial}${phone.slice(1)}`;
  return phone;
}

async function pay(chosen) {
  attempt = chosen;
  sessionStorage.setItem(saved, JSON.stringify(chosen));
  const body = { method: chosen.method };
  if (chosen.method === "mobile_money") Object.assign(body, { provider: chosen.provider, phone: chosen.phone });
  let answer;
  try { answer = await call(`${payApi}/init`, { method: "POST", body }); } catch (_) {
    return fail("We could not reach Cimplify. Check your connection.", () => pay(chosen));
  }
  if (answer.status === 400) return "Check the number and the provider.";
  if (answer.status === 409) return startPolling(); // a payment is already under way: follow it
  if (answer.status === 410) return fail("This payment link has expired: ask for a new one.", load);
  if (!answer.ok) return fail("Cimplify could not start the payment.", () => pay(chosen));
  reference = answer.body.reference;
  if (answer.body.redirect_url) {
    location.assign(answer.body.redirect_url); // the provider's page, which comes back here
    return null;
  }
  startPolling();
  return null;
}

function startPolling() {
  stopPolling();
  show("processing");
  let misses = 0;
  const tick = async () => {
    let answer;
    try { answer = await call(`${payApi}/status`); } catch (_) { answer = null; }
    if (!answer || answer.status >= 500 || answer.status === 429) {
      misses += 1;
      if (misses >= 5) return fail("We lost touch with Cimplify while following your payment.", startPolling);
    } else {
      misses = 0;
      if (!answer.ok) return fail("This payment link has expired: ask for a new one.", load);
      if (follow(answer.body) === "done") return;
    }
    pollTimer = setTimeout(tick, POLL_MS);
  };
  pollTimer = setTimeout(tick, 0);
}

function stopPolling() {
  clearTimeout(pollTimer);
  pollTimer = null;
}

function follow(status) {
  reference = status.reference || reference;
  if (status.status === "paid") return done(succeed);
  if (status.status === "failed") return done(() => fail("The payment was declined. No money was taken.", retryPayment));
  if (status.status === "expired") return done(() => fail("This payment link has expired: ask for a new one.", load));
  if (status.status === "cancelled") return done(() => fail(CANCELLED, load));
  if (status.status === "awaiting_authorization") {
    $("authorize-instructions").textContent = instructions();
    show("awaiting_authorization");
  } else if (status.status === "processing") {
    show("processing");
  }
  return "going on";
}

function done(then) {
  stopPolling();
  then();
  return "done";
}

function retryPayment() {
  return attempt ? pay(attempt) : load();
}

function instructions() {
  const total = main.dataset.total;
  const method = attempt ? attempt.method : { MOMO: "mobile_money", CARD: "card" }[(reference || "").split("-")[0]] || "bank_transfer";
  if (method === "mobile_money") {
    const phone = attempt ? attempt.phone : "your phone";
    return `A prompt to pay ${total} was sent to ${phone}. Approve it with your PIN.`;
  }
  if (method === "card") return `Your bank asks you to confirm the payment of ${total}.`;
  return `Transfer ${total} to Sandbox Bank, account 0123456789, with the reference ${reference}.`;
}

async function authorize(approve) {
  const buttons = document.querySelectorAll(".sandbox-panel button");
  buttons.forEach((b) => { b.disabled = true; });
  try {
    await call(`/sandbox/checkout/${encodeURIComponent(token)}/authorize`, { method: "POST", body: { reference, approve } });
  } catch (_) { /* the polling says what happened */ }
  buttons.forEach((b) => { b.disabled = false; });
}

function succeed() {
  $("success-reference").textContent = reference || "";
  const offer = !signedIn && attempt !== null;
  $("enrol-form").hidden = !offer;
  if (offer && attempt.phone) $("enrol-phone").value = attempt.phone;
  show("success");
}

async function enrol(event) {
  event.preventDefault();
  const phone = normalPhone($("enrol-phone").value);
  const answer = await call("/sandbox/link/enrol", { method: "POST", body: { token, phone } }).catch(() => null);
  if (!answer || !answer.ok) {
    $("enrol-error").textContent = "Enter your phone number with its country code, like +233241234567.";
    return;
  }
  $("enrol-form").hidden = true;
  $("enrolled").textContent = `Enrolled: ${answer.body.phone} now pays here without the choice.`;
  $("enrolled").hidden = false;
}

async function linkAccount() {
  const answer = await call(`/sandbox/link/account?token=${encodeURIComponent(token)}`).catch(() => null);
  return answer && answer.ok ? answer.body : null;
}

function showLinkStep(form) {
  for (const id of ["link-phone-form", "link-code-form", "link-methods-form"]) $(id).hidden = id !== form;
  $("link-error").textContent = "";
  show("link_flow");
}

function showSavedMethods(account) {
  signedIn = true;
  $("link-account").textContent = `Signed in as ${account.phone}`;
  const list = $("link-methods");
  list.replaceChildren();
  account.methods.forEach((method, index) => {
    const label = document.createElement("label");
    label.className = "choice";
    const input = Object.assign(document.createElement("input"), { type: "radio", name: "saved", value: String(index), checked: index === 0 });
    label.append(input, ` ${method.label}`);
    list.append(label);
  });
  $("link-methods-form").onsubmit = (event) => {
    event.preventDefault();
    const chosen = account.methods[Number(new FormData(event.target).get("saved"))];
    pay({ method: chosen.method, provider: chosen.provider, phone: chosen.phone });
  };
  showLinkStep(account.methods.length ? "link-methods-form" : "link-phone-form");
  if (!account.methods.length) $("link-error").textContent = "No saved methods yet for this number: pay as a guest.";
}

async function sendCode(event) {
  event.preventDefault();
  const phone = normalPhone($("link-phone").value);
  const answer = await call("/sandbox/link/code", { method: "POST", body: { phone } }).catch(() => null);
  if (!answer || !answer.ok) {
    $("link-error").textContent = "Enter your phone number with its country code, like +233241234567.";
    return;
  }
  $("link-code-note").textContent = `Sandbox: the code sent to ${phone} is ${answer.body.code}.`;
  showLinkStep("link-code-form");
  $("link-code").focus();
}

async function signIn(event) {
  event.preventDefault();
  const phone = normalPhone($("link-phone").value);
  const code = $("link-code").value.trim();
  const answer = await call("/sandbox/link/sign-in", { method: "POST", body: { phone, code, token } }).catch(() => null);
  if (!answer || !answer.ok) {
    $("link-error").textContent = "That code is not right, or it has expired. Ask for a new one.";
    return;
  }
  if (!answer.body.methods.length) {
    signedIn = true;
    $("phone").value = phone;
    $("guest-error").textContent = "";
    return show("guest_flow");
  }
  showSavedMethods(answer.body);
}

function guestSubmit(event) {
  event.preventDefault();
  const data = new FormData(event.target);
  const method = data.get("method");
  if (method !== "mobile_money") return pay({ method });
  const phone = normalPhone(data.get("phone") || "");
  if (!/^\+?[0-9]{7,15}$/.test(phone)) {
    $("guest-error").textContent = "Enter the mobile money number, like 024 123 4567.";
    return $("phone").focus();
  }
  $("guest-error").textContent = "";
  pay({ method, provider: data.get("provider"), phone }).then((problem) => {
    if (problem) $("guest-error").textContent = problem;
  });
}

function chooseMethod() {
  const method = new FormData($("guest-form")).get("method");
  for (const part of document.querySelectorAll("#guest-form [data-for]")) part.hidden = part.dataset.for !== method;
}

const actions = {
  link: () => showLinkStep("link-phone-form"),
  guest: () => show("guest_flow"),
  back: () => show("auth_choice"),
  approve: () => authorize(true),
  decline: () => authorize(false),
  retry: () => retryAction(),
  "sign-out": async () => { await call("/sandbox/link/sign-out", { method: "POST", body: {} }).catch(() => null); signedIn = false; show("auth_choice"); },
};
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-action]");
  if (button) actions[button.dataset.action]();
});
if ($("guest-form")) {
  $("guest-form").addEventListener("submit", guestSubmit);
  $("guest-form").addEventListener("change", chooseMethod);
  chooseMethod();
}
$("link-phone-form").addEventListener("submit", sendCode);
$("link-code-form").addEventListener("submit", signIn);
$("enrol-form").addEventListener("submit", enrol);
load();
