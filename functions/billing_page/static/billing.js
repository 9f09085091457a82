// The customer's billing page. Plain JavaScript, no dependencies; everything it shows comes from
// the API's own JSON routes on this origin, called with the user's token.
//
// Sign-in: the token arrives in the URL fragment (/billing#token=<jwt>), which no server ever
// receives; it is moved to sessionStorage and removed from the address bar before anything else.
// Money: amounts arrive as decimal strings of micro-units (1 USD = 1,000,000) and are only ever
// handled as strings and BigInt, never as floating-point numbers.
"use strict";

(function () {
  const TOKEN_KEY = "billing.token";
  const HISTORY_PAGE = 20;
  const CHART_PAGE = 100; // the history route's maximum page
  const CHART_MAX_PAGES = 20; // at most 2,000 charges drawn per period
  const MICRO = 1000000n;
  const QUOTAS = [
    { key: "tokens", name: "Tokens", unit: "tokens" },
    { key: "runs", name: "Runs", unit: "runs" },
    { key: "seats", name: "Seats", unit: "seats" },
  ];
  const ENTRY_LABELS = {
    deposit: "Deposit", reserve: "Hold", finalize: "Charge", release: "Released hold",
    expire: "Expired hold", refund: "Refund", adjustment: "Adjustment", revenue_share: "Revenue share",
    commons_contribution: "Commons contribution", shadow_reserve: "Hold (shadow)",
    shadow_finalize: "Charge (shadow)", shadow_release: "Released hold (shadow)",
    shadow_expire: "Expired hold (shadow)",
  };
  const STATUS_LABELS = { trial: "Trial", active: "Active", past_due: "Past due", canceled: "Canceled" };
  const SVG_NS = "http://www.w3.org/2000/svg";

  // ---- money and numbers: strings and BigInt only ---------------------------------------------

  function groupDigits(digits) {
    return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  function toMicro(value) {
    const text = String(value).trim();
    if (!/^-?\d+$/.test(text)) throw new Error("not an amount of micro-units");
    return BigInt(text);
  }

  // "1234567890" micro-units -> "$1,234.56789": at least the cents, and every further digit
  // that is not zero (an amount is shown exactly, never rounded). `signed` adds "+" to credits.
  function microToDollars(value, signed) {
    let micro = typeof value === "bigint" ? value : toMicro(value);
    const negative = micro < 0n;
    if (negative) micro = -micro;
    const whole = (micro / MICRO).toString();
    let fraction = (micro % MICRO).toString().padStart(6, "0").replace(/0+$/, "");
    if (fraction.length < 2) fraction = fraction.padEnd(2, "0");
    const sign = negative ? "\u2212" : signed && micro > 0n ? "+" : "";
    return sign + "$" + groupDigits(whole) + "." + fraction;
  }

  // The same text as microToDollars, with the digits past the cents in a span of their own (shown
  // smaller): exact, and still read as dollars and cents at a glance.
  function money(value, signed, attrs) {
    const text = microToDollars(value, signed);
    const cut = text.indexOf(".") + 3;
    const node = el("span", Object.assign({ className: "money" }, attrs || {}), text.slice(0, cut));
    if (text.length > cut) node.append(el("span", { className: "subcent", text: text.slice(cut) }));
    return node;
  }

  // What a person types ("25", "1,000.5", "$10.00") -> micro-units as a BigInt, or an error.
  function dollarsToMicro(text) {
    const cleaned = String(text).trim().replace(/^\$/, "").replace(/,/g, "").trim();
    if (!cleaned) return { error: "Enter an amount in dollars, for example 25.00." };
    const match = /^(\d{1,9})(?:\.(\d{0,6}))?$/.exec(cleaned);
    if (!match) return { error: "Enter the amount as dollars and cents, for example 25.00." };
    const fraction = (match[2] || "").padEnd(6, "0");
    if (!/^\d\d0000$/.test(fraction)) return { error: "Use whole cents: at most two digits after the point." };
    return { micro: BigInt(match[1]) * MICRO + BigInt(fraction) };
  }

  function centsToDollars(cents) {
    return microToDollars(BigInt(String(cents)) * 10000n);
  }

  function formatCount(value) {
    const text = typeof value === "bigint" ? value.toString() : String(Math.trunc(Number(value)));
    return text.startsWith("-") ? "\u2212" + groupDigits(text.slice(1)) : groupDigits(text);
  }

  // Whole percent rounded down, as the API computes it; may exceed 100.
  function percentOf(used, limit) {
    const u = BigInt(Math.trunc(Number(used)));
    const l = BigInt(Math.trunc(Number(limit)));
    if (l <= 0n) return 100; // a quota of 0: the limit is reached before any use
    return Number((u * 100n) / l);
  }

  function levelOf(percent) {
    if (percent >= 100) return "red";
    if (percent >= 80) return "yellow";
    return "green";
  }

  // ---- dates (UTC) ----------------------------------------------------------------------------

  function parseTime(iso) {
    // The API writes microseconds; keep milliseconds for Date.
    return new Date(String(iso).replace(/(\.\d{3})\d+/, "$1"));
  }

  const DAY_MS = 86400000;
  const fmtDate = new Intl.DateTimeFormat("en-US", { timeZone: "UTC", month: "short", day: "numeric", year: "numeric" });
  const fmtShort = new Intl.DateTimeFormat("en-US", { timeZone: "UTC", month: "short", day: "numeric" });
  const fmtMonth = new Intl.DateTimeFormat("en-US", { timeZone: "UTC", month: "long", year: "numeric" });
  const fmtStamp = new Intl.DateTimeFormat("en-US", {
    timeZone: "UTC", month: "short", day: "numeric", year: "numeric", hour: "2-digit", minute: "2-digit",
    hourCycle: "h23",
  });

  // ---- the token ------------------------------------------------------------------------------

  let memoryToken = null; // when sessionStorage is unavailable (some private modes)

  function storeToken(token) {
    memoryToken = token;
    try { window.sessionStorage.setItem(TOKEN_KEY, token); } catch (_) { /* memory only */ }
  }

  function readToken() {
    try { return window.sessionStorage.getItem(TOKEN_KEY) || memoryToken; } catch (_) { return memoryToken; }
  }

  function forgetToken() {
    memoryToken = null;
    try { window.sessionStorage.removeItem(TOKEN_KEY); } catch (_) { /* nothing stored */ }
  }

  // Take `token` out of the fragment and out of the address bar (and its history entry).
  function takeTokenFromFragment() {
    const hash = window.location.hash.replace(/^#/, "");
    if (!hash) return null;
    const params = new URLSearchParams(hash);
    if (!params.has("token")) return null;
    const token = (params.get("token") || "").trim();
    params.delete("token");
    const rest = params.toString();
    const clean = window.location.pathname + window.location.search + (rest ? "#" + rest : "");
    window.history.replaceState(window.history.state, "", clean);
    return token || null;
  }

  // The token's subject, for display only until the API has answered (the API verifies it).
  function subjectOf(token) {
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const claims = JSON.parse(window.atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
      return typeof claims.sub === "string" ? claims.sub : null;
    } catch (_) {
      return null;
    }
  }

  // ---- the API --------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message, retryAfter) {
      super(message || code);
      this.status = status;
      this.code = code;
      this.retryAfter = retryAfter;
    }
  }

  let generation = 0; // bumped at every sign-in/out: answers for an older session are dropped
  let sessionEnded = false;

  async function api(path, options) {
    const opts = options || {};
    const token = readToken();
    // Signed out meanwhile (a chart still paging, a refresh in flight): ask nothing more of the API.
    if (!token && !opts.public) throw new ApiError(0, "SIGNED_OUT", "");
    const url = new URL(path, document.baseURI);
    for (const [name, value] of Object.entries(opts.query || {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
    }
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(url, {
        method: opts.method || "GET", headers, credentials: "omit", cache: "no-store",
        body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
      });
    } catch (_) {
      throw new ApiError(0, "NETWORK", "");
    }
    let payload = null;
    try {
      const text = await response.text();
      payload = text ? JSON.parse(text) : null;
    } catch (_) {
      payload = null;
    }
    if (response.ok && payload !== null) return payload;
    const error = (payload && payload.error) || {};
    const failure = new ApiError(response.status, error.code || "HTTP_" + response.status,
      typeof error.message === "string" ? error.message : "", response.headers.get("Retry-After"));
    if (response.status === 401 || (response.status === 403 && failure.code === "WRONG_AUDIENCE")) {
      endSession(failure);
    }
    throw failure;
  }

  // The API's messages are lower-case phrases: "the org's billing is canceled" -> "The org's ... canceled".
  function phrase(text, capital) {
    const trimmed = String(text || "").trim().replace(/\.+$/, "");
    return capital ? trimmed.charAt(0).toUpperCase() + trimmed.slice(1) : trimmed;
  }

  // A sentence for a person: never a stack trace, never a raw body.
  function describe(error) {
    if (!(error instanceof ApiError)) return "Something went wrong on this page. Reload it to try again.";
    const status = error.status;
    if (status === 0) return "Could not reach the billing service. Check your connection and try again.";
    if (status === 401) return "Your session has ended. Sign in again.";
    if (status === 402) {
      return "Payment required: " + (phrase(error.message) || "your credit or your plan's quota is used up") + ".";
    }
    if (status === 403) return "Your sign-in does not allow this (" + error.code + ").";
    if (status === 404) return "Not found (" + error.code + ").";
    if (status === 429) {
      const wait = parseInt(error.retryAfter || "", 10);
      return "Too many requests right now. " + (wait > 0 ? "Try again in " + wait + " s." : "Try again in a moment.");
    }
    if (status >= 500) {
      return "The billing service is having trouble (HTTP " + status + "). Try again in a moment.";
    }
    return (phrase(error.message, true) || "The request was refused") + " (" + error.code + ").";
  }

  // ---- DOM helpers ----------------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "className") node.className = value;
      else if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // A card's loading / error line, with a retry button for errors.
  function setState(stateId, kind, text, retry) {
    const state = $(stateId);
    state.replaceChildren();
    state.className = "state" + (kind ? " state-" + kind : "");
    if (!kind) return;
    state.append(el("span", { text }));
    if (kind === "error" && retry) {
      const button = el("button", { type: "button", className: "secondary small-button", text: "Try again" });
      button.addEventListener("click", retry);
      state.append(" ", button);
    }
  }

  function busy(cardId, isBusy) {
    const card = $(cardId);
    if (card) card.setAttribute("aria-busy", isBusy ? "true" : "false");
  }

  // Run one section's request: its loading state, its error state, answers of a past session dropped.
  async function section(name, load, render) {
    const mine = generation;
    const stateId = name + "-state";
    busy(name + "-card", true);
    setState(stateId, "loading", "Loading\u2026");
    try {
      const result = await load();
      if (mine !== generation) return;
      setState(stateId, null);
      render(result);
    } catch (error) {
      if (mine !== generation || sessionEnded) return;
      setState(stateId, "error", describe(error), () => section(name, load, render));
    } finally {
      if (mine === generation) busy(name + "-card", false);
    }
  }

  // ---- session states -------------------------------------------------------------------------

  function showSignIn(title, text, kind) {
    generation += 1;
    $("dashboard").hidden = true;
    $("who").hidden = true;
    const panel = $("session");
    panel.hidden = false;
    panel.dataset.state = kind;
    $("session-title").textContent = title;
    $("session-text").textContent = text;
    $("token-input").value = "";
    $("token-error").hidden = true;
    document.title = title + " \u2013 Billing";
  }

  function endSession(error) {
    if (sessionEnded) return;
    sessionEnded = true;
    forgetToken();
    if (error.code === "TOKEN_EXPIRED") {
      showSignIn("Your session has expired",
        "For your security, billing links stop working after a while. Open a fresh billing link from your " +
        "account, or paste a new access token.", "expired");
    } else if (error.status === 403) {
      showSignIn("This token is not for the billing page",
        "It belongs to another kind of caller. Sign in with your own access token.", "invalid");
    } else {
      showSignIn("This sign-in is not valid",
        "The access token was refused. Open a fresh billing link from your account, or paste a new access token.",
        "invalid");
    }
    $("session-title").focus();
  }

  function signOut() {
    forgetToken();
    showSignIn("Signed out", "You are signed out. Open your billing link again, or paste an access token.",
      "signed-out");
  }

  function start(token) {
    generation += 1;
    sessionEnded = false;
    $("session").hidden = true;
    $("dashboard").hidden = false;
    $("who").hidden = false;
    $("account-id").textContent = subjectOf(token) || "\u2026";
    document.title = "Billing";
    $("topup-result").replaceChildren();
    topupError(null);
    loadAll();
  }

  // ---- plan, usage and the quota alert --------------------------------------------------------

  let plansPromise = null;

  function loadPlans() {
    if (!plansPromise) {
      plansPromise = api("api/v1/billing/plans", { public: true }).catch((error) => { plansPromise = null; throw error; });
    }
    return plansPromise;
  }

  function renderSummary(result) {
    const summary = result.summary;
    const plans = result.plans;
    $("plan-body").hidden = false;
    $("account-id").textContent = summary.orgId;
    const plan = plans ? (plans.plans || []).find((p) => p.slug === summary.planSlug) : null;
    $("plan-name").textContent = summary.planName || (plan && plan.name) || summary.planSlug;
    $("plan-price").textContent = plan ? centsToDollars(plan.priceMonthlyCents) + " / month" : "";
    const status = $("plan-status");
    status.hidden = false;
    status.dataset.status = summary.billingStatus;
    status.textContent = STATUS_LABELS[summary.billingStatus] || summary.billingStatus;

    const start = parseTime(summary.periodStart);
    const end = parseTime(summary.periodEnd);
    const last = new Date(end.getTime() - 1);
    $("plan-period").textContent = "Current period: " + fmtShort.format(start) + " \u2013 " + fmtDate.format(last) +
      " (UTC). Usage resets " + fmtDate.format(end) + ".";
    const trial = $("plan-trial");
    trial.hidden = !(summary.billingStatus === "trial" && summary.trialEndsAt);
    if (!trial.hidden) trial.textContent = "Trial ends " + fmtDate.format(parseTime(summary.trialEndsAt)) + ".";

    const usage = $("usage");
    usage.replaceChildren();
    const reached = [];
    for (const quota of QUOTAS) {
      const used = summary.usage[quota.key] || 0;
      const limit = summary.limits[quota.key] || 0;
      const fromApi = summary.percentUsed ? summary.percentUsed[quota.key] : null;
      const percent = Number.isInteger(fromApi) ? fromApi : percentOf(used, limit);
      const level = levelOf(percent);
      if (percent >= 100) reached.push({ quota, used, limit, percent });
      usage.append(usageRow(quota, used, limit, percent, level));
    }
    $("usage-note").textContent = (summary.enforcement === "soft"
      ? "Usage past a limit is allowed and billed as overage."
      : "Usage past a limit is refused.") + " Tokens and runs count per period; seats are your current members.";
    renderAlert(reached, summary, end);
  }

  function usageRow(quota, used, limit, percent, level) {
    const figures = limit > 0
      ? formatCount(used) + " of " + formatCount(limit)
      : formatCount(used) + " (not included in your plan)";
    let note;
    if (limit <= 0) note = "Not included";
    else if (used > limit) note = "Over the limit by " + formatCount(BigInt(used) - BigInt(limit));
    else if (used === limit) note = "Limit reached";
    else note = formatCount(BigInt(limit) - BigInt(used)) + " left";
    const bar = el("div", {
      className: "bar", role: "progressbar", "aria-label": quota.name + " used this period",
      "aria-valuemin": 0, "aria-valuemax": Math.max(100, percent), "aria-valuenow": percent,
      "aria-valuetext": percent + " %: " + figures + " " + quota.unit, "data-level": level,
      "data-quota": quota.key,
    });
    const fill = el("div", { className: "bar-fill" });
    fill.style.width = Math.min(100, percent) + "%";
    bar.append(fill);
    return el("div", { className: "quota", "data-quota": quota.key },
      el("div", { className: "quota-head" },
        el("span", { className: "quota-name", text: quota.name }),
        el("span", { className: "quota-figures num" }, figures, " ",
          el("strong", { className: "quota-percent", "data-level": level, text: percent + " %" }))),
      bar,
      el("p", { className: "quota-note small", "data-level": level, text: note }));
  }

  function renderAlert(reached, summary, periodEnd) {
    const slot = $("quota-alert-slot");
    slot.replaceChildren();
    if (!reached.length) return;
    const names = reached.map((r) => r.quota.name.toLowerCase());
    const list = names.length > 1 ? names.slice(0, -1).join(", ") + " and " + names[names.length - 1] : names[0];
    const over = reached.some((r) => r.percent > 100);
    // Tokens and runs count per period; seats are the current member count and do not reset.
    const monthly = reached.some((r) => r.quota.key !== "seats");
    const consequence = summary.enforcement === "soft"
      ? "Usage past the limit is billed as overage."
      : "Further use of " + list + " is refused until you upgrade" +
        (monthly ? " or the period resets on " + fmtDate.format(periodEnd) : "") + ".";
    const cta = el("a", { className: "alert-cta", href: "#plans", text: "Upgrade your plan" });
    cta.addEventListener("click", (event) => {
      event.preventDefault();
      const target = $("plans");
      target.scrollIntoView({ behavior: "smooth", block: "start" });
      target.focus({ preventScroll: true });
    });
    slot.append(el("div", { className: "alert", id: "quota-alert", role: "alert" },
      el("div", { className: "alert-text" },
        el("strong", { text: (over ? "Over your plan's limit for " : "You have reached your plan's limit for ") +
          list + "." }),
        " ", consequence),
      cta));
  }

  function renderPlans({ plans, summary }) {
    const list = $("plan-list");
    list.replaceChildren();
    const current = summary ? summary.planSlug : null;
    for (const plan of plans.plans || []) {
      const isCurrent = plan.slug === current;
      const limits = plan.limits || {};
      list.append(el("li", { className: "plan-item" + (isCurrent ? " current" : ""), "data-plan": plan.slug },
        el("div", { className: "plan-item-head" },
          el("strong", { text: plan.name }),
          isCurrent ? el("span", { className: "badge badge-current", text: "Current plan" }) : null),
        el("p", { className: "plan-item-price num", text: centsToDollars(plan.priceMonthlyCents) + " / month" }),
        el("p", { className: "muted small", text: formatCount(limits.tokens || 0) + " tokens and " +
          formatCount(limits.runs || 0) + " runs a month \u00b7 " + formatCount(limits.seats || 0) + " seats" })));
    }
  }

  // ---- balance --------------------------------------------------------------------------------

  function renderBalance(balance) {
    $("balance-body").hidden = false;
    $("account-id").textContent = balance.accountId;
    const total = toMicro(balance.totalAvailableMicro);
    const totalNode = $("balance-total");
    totalNode.replaceChildren(money(total));
    totalNode.classList.toggle("negative", total < 0n);
    const rows = $("pool-rows");
    rows.replaceChildren();
    const pools = balance.pools || [];
    for (const pool of pools) {
      const available = toMicro(pool.availableMicro);
      rows.append(el("tr", { "data-pool": pool.poolId },
        el("th", { scope: "row", text: pool.poolId }),
        el("td", { className: "num" + (available < 0n ? " negative" : "") }, money(available)),
        el("td", { className: "num" }, money(pool.reservedMicro)),
        el("td", { className: "num" }, money(pool.consumedMicro))));
    }
    if (!pools.length) {
      rows.append(el("tr", {}, el("td", { colspan: 4, className: "muted", text: "No credit yet: add some below." })));
    }
    const debt = pools.reduce((sum, p) => sum + (p.debtMicro ? toMicro(p.debtMicro) : 0n), 0n);
    $("balance-note").textContent = debt > 0n
      ? "You owe " + microToDollars(debt) + ": it is settled first from your next top-up."
      : "Reserved credit is held for work in progress and returns when the work costs less.";
  }

  // ---- history --------------------------------------------------------------------------------

  const activity = { cursor: null, count: 0, type: "", request: 0 };

  function signedAmount(entry) {
    const amount = toMicro(entry.amountMicro);
    const type = entry.entryType;
    const direction = entry.metadata && entry.metadata.direction;
    if (type === "deposit" || (type === "adjustment" && direction === "credit")) {
      return { amount, signed: true, kind: "credit" };
    }
    if (type === "finalize" || type === "refund" || (type === "adjustment" && direction === "debit")) {
      return { amount: -amount, signed: false, kind: "debit" };
    }
    return { amount, signed: false, kind: "neutral" }; // holds and their release move no money
  }

  function historyRow(entry) {
    const amount = signedAmount(entry);
    const when = parseTime(entry.createdAt);
    return el("tr", { "data-entry-type": entry.entryType, tabindex: -1 },
      el("td", { className: "nowrap" }, el("time", { datetime: entry.createdAt, text: fmtStamp.format(when) })),
      el("td", {},
        el("span", { className: "entry-type", text: ENTRY_LABELS[entry.entryType] || entry.entryType }),
        entry.description && entry.description !== entry.entryType
          ? el("span", { className: "entry-description", text: entry.description }) : null),
      el("td", { className: "col-pool", text: entry.poolId }),
      el("td", { className: "num amount", "data-kind": amount.kind }, money(amount.amount, amount.signed)));
  }

  async function loadHistory(reset) {
    const mine = generation;
    const request = ++activity.request;
    const more = $("history-more");
    if (reset) {
      activity.cursor = null;
      activity.count = 0;
      $("history-rows").replaceChildren();
      $("history-count").textContent = "";
      more.hidden = true;
    }
    busy("history-card", true);
    more.disabled = true;
    setState("history-state", "loading", reset ? "Loading activity\u2026" : "Loading more\u2026");
    try {
      const page = await api("api/billing/history", {
        query: { limit: HISTORY_PAGE, entryType: activity.type, cursor: reset ? null : activity.cursor },
      });
      if (mine !== generation || request !== activity.request) return;
      setState("history-state", null);
      const rows = $("history-rows");
      const firstNew = page.entries.length ? historyRow(page.entries[0]) : null;
      page.entries.forEach((entry, index) => rows.append(index === 0 ? firstNew : historyRow(entry)));
      activity.count += page.entries.length;
      activity.cursor = page.pagination.nextCursor;
      more.hidden = !(page.pagination.hasMore && activity.cursor);
      if (!activity.count) {
        setState("history-state", "empty", activity.type ? "No activity of this kind yet." : "No activity yet.");
      }
      $("history-count").textContent = activity.count
        ? "Showing " + formatCount(activity.count) + (activity.count === 1 ? " entry" : " entries") +
          (more.hidden ? "" : ", newest first")
        : "";
      if (!reset && firstNew && document.activeElement === more) firstNew.focus();
    } catch (error) {
      if (mine !== generation || request !== activity.request || sessionEnded) return;
      setState("history-state", "error", describe(error), () => loadHistory(reset));
    } finally {
      if (mine === generation) {
        more.disabled = false;
        busy("history-card", false);
      }
    }
  }

  // ---- the daily spend chart ------------------------------------------------------------------

  let chartData = null;

  // Every charge (finalize entry) of the current period, newest first, one page after another.
  async function loadCharges(periodStart) {
    const charges = [];
    let cursor = null;
    for (let page = 0; page < CHART_MAX_PAGES; page += 1) {
      const answer = await api("api/billing/history", { query: { entryType: "finalize", limit: CHART_PAGE, cursor } });
      for (const entry of answer.entries) {
        if (entry.createdAt < periodStart) return { charges, complete: true };
        charges.push(entry);
      }
      cursor = answer.pagination.nextCursor;
      if (!answer.pagination.hasMore || !cursor) return { charges, complete: true };
    }
    return { charges, complete: false };
  }

  function dailyTotals(summary, charges) {
    const start = parseTime(summary.periodStart).getTime();
    const end = parseTime(summary.periodEnd).getTime();
    const days = [];
    const index = new Map();
    for (let t = start; t < end; t += DAY_MS) {
      const key = new Date(t).toISOString().slice(0, 10);
      index.set(key, days.length);
      days.push({ key, date: new Date(t), micro: 0n, count: 0 });
    }
    for (const entry of charges) {
      const i = index.get(String(entry.createdAt).slice(0, 10));
      if (i === undefined) continue;
      days[i].micro += toMicro(entry.amountMicro);
      days[i].count += 1;
    }
    return days;
  }

  // The smallest of 1, 2, 5 x 10^k micro-units at or above `max`: round axis labels.
  function niceCeiling(max) {
    let step = 10000n; // one cent
    for (;;) {
      for (const factor of [1n, 2n, 5n]) {
        if (step * factor >= max) return step * factor;
      }
      step *= 10n;
    }
  }

  function renderChart() {
    if (!chartData) return;
    const { days, complete, month } = chartData;
    const holder = $("chart");
    const width = Math.max(260, Math.floor(holder.clientWidth || 560));
    const narrow = width < 420;
    const height = narrow ? 180 : 210;
    const pad = { top: 14, right: 8, bottom: 26, left: narrow ? 52 : 62 };
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    const max = days.reduce((m, d) => (d.micro > m ? d.micro : m), 0n);
    const total = days.reduce((s, d) => s + d.micro, 0n);
    const charges = days.reduce((s, d) => s + d.count, 0);
    const top = max > 0n ? niceCeiling(max) : 1000000n;
    const today = new Date().toISOString().slice(0, 10);
    const busiest = days.reduce((b, d) => (d.micro > b.micro ? d : b), days[0]);

    const chart = svg("svg", {
      width, height, viewBox: "0 0 " + width + " " + height, role: "img",
      "aria-labelledby": "chart-title chart-desc", class: "chart-svg",
    });
    chart.append(svg("title", { id: "chart-title" }, "Daily spend, " + month));
    chart.append(svg("desc", { id: "chart-desc" }, max > 0n
      ? "Total " + microToDollars(total) + " in " + formatCount(charges) + " charges; the highest day was " +
        fmtShort.format(busiest.date) + " with " + microToDollars(busiest.micro) + "."
      : "No charges yet this period."));

    for (const fraction of [0n, 1n, 2n]) {
      const value = (top * fraction) / 2n;
      const y = pad.top + plotH - (plotH * Number(fraction)) / 2;
      chart.append(svg("line", { x1: pad.left, x2: width - pad.right, y1: y, y2: y, class: "grid-line" }));
      chart.append(svg("text", { x: pad.left - 6, y: y + 4, "text-anchor": "end", class: "axis-label" },
        microToDollars(value)));
    }

    const slot = plotW / days.length;
    const barW = Math.max(2, slot * 0.7);
    days.forEach((day, i) => {
      const x = pad.left + i * slot + (slot - barW) / 2;
      if (day.micro > 0n) {
        // Geometry only: the height in thousandths of the axis, from BigInt arithmetic.
        const h = Math.max(1, (plotH * Number((day.micro * 1000n) / top)) / 1000);
        const bar = svg("rect", {
          x: x.toFixed(2), y: (pad.top + plotH - h).toFixed(2), width: barW.toFixed(2), height: h.toFixed(2),
          rx: 1.5, class: "chart-bar" + (day.key === today ? " today" : ""), "data-date": day.key,
          "data-amount-micro": day.micro.toString(),
        });
        bar.append(svg("title", {}, fmtShort.format(day.date) + ": " + microToDollars(day.micro) + " (" +
          day.count + (day.count === 1 ? " charge)" : " charges)")));
        chart.append(bar);
      }
      const dayOfMonth = day.date.getUTCDate();
      const labelled = dayOfMonth === 1 || (narrow ? dayOfMonth % 10 === 0 : dayOfMonth % 5 === 0);
      if (labelled) {
        chart.append(svg("text", {
          x: (pad.left + i * slot + slot / 2).toFixed(2), y: height - 8, "text-anchor": "middle",
          class: "axis-label" + (day.key === today ? " today" : ""),
        }, String(dayOfMonth)));
      }
    });
    chart.append(svg("line", {
      x1: pad.left, x2: width - pad.right, y1: pad.top + plotH, y2: pad.top + plotH, class: "axis-line",
    }));
    if (max === 0n) {
      chart.append(svg("text", {
        x: pad.left + plotW / 2, y: pad.top + plotH / 2, "text-anchor": "middle", class: "chart-empty",
      }, "No charges yet this period"));
    }
    holder.replaceChildren(chart);
    $("chart-summary").textContent = "Total this period: " + microToDollars(total) + " in " + formatCount(charges) +
      (charges === 1 ? " charge" : " charges") + (complete ? "." : " (the most recent " +
      formatCount(CHART_PAGE * CHART_MAX_PAGES) + " charges only).");
  }

  // ---- top-up ---------------------------------------------------------------------------------

  function safeLink(url) {
    try {
      const parsed = new URL(url);
      return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
    } catch (_) {
      return null;
    }
  }

  function topupError(text) {
    const node = $("topup-error");
    node.textContent = text || "";
    node.hidden = !text;
    $("topup-amount").setAttribute("aria-invalid", text ? "true" : "false");
  }

  async function submitTopup(event) {
    event.preventDefault();
    const parsed = dollarsToMicro($("topup-amount").value);
    if (parsed.error) return topupError(parsed.error);
    if (parsed.micro < MICRO) return topupError("The smallest top-up is $1.00.");
    topupError(null);
    const provider = $("topup-provider").value;
    const button = $("topup-submit");
    const mine = generation;
    button.disabled = true;
    button.textContent = "Starting\u2026";
    const result = $("topup-result");
    result.replaceChildren();
    try {
      const order = await api("api/billing/topups", {
        method: "POST", body: { amountMicro: parsed.micro.toString(), provider },
      });
      if (mine !== generation) return;
      renderTopup(order);
      $("topup-amount").value = "";
    } catch (error) {
      if (mine !== generation || sessionEnded) return;
      topupError(describe(error));
    } finally {
      button.disabled = false;
      button.textContent = "Start top-up";
    }
  }

  function renderTopup(order) {
    const result = $("topup-result");
    const link = order.paymentUrl ? safeLink(order.paymentUrl) : null;
    const amount = microToDollars(order.amountMicro);
    const box = el("div", { className: "notice", id: "topup-order", "data-status": order.status,
      "data-order-id": order.orderId });
    if (order.status === "finished") {
      box.append(el("p", {}, el("strong", { text: "Paid: " + microToDollars(order.creditedMicro) + " added." })));
    } else if (link) {
      box.append(el("p", {}, el("strong", { text: "Top-up of " + amount + " started." }),
        " Pay with " + (order.provider === "stripe" ? "Stripe" : "NOWPayments") + " to finish it."));
      box.append(el("p", {}, el("a", { href: link, className: "button primary", id: "topup-pay", rel: "noopener noreferrer",
        text: "Continue to payment" })));
    } else {
      box.append(el("p", {}, el("strong", { text: "Top-up of " + amount + " is pending." }),
        " Credit is added once the payment provider confirms the payment."));
      if (order.message) box.append(el("p", { className: "muted small", text: phrase(order.message, true) + "." }));
    }
    box.append(el("p", { className: "muted small" }, "Order ", el("code", { text: order.orderId }),
      " \u00b7 status ", el("span", { className: "topup-status", text: order.status })));
    if (order.status !== "finished") {
      const check = el("button", { type: "button", className: "secondary small-button", text: "Check status" });
      check.addEventListener("click", () => checkTopup(order.orderId, check));
      box.append(check);
    }
    result.replaceChildren(box);
  }

  async function checkTopup(orderId, button) {
    const mine = generation;
    button.disabled = true;
    try {
      const order = await api("api/billing/topups/" + encodeURIComponent(orderId));
      if (mine !== generation) return;
      renderTopup(order);
      if (order.status === "finished") {
        section("balance", () => api("api/billing/balance"), renderBalance);
        loadHistory(true);
      }
    } catch (error) {
      if (mine !== generation || sessionEnded) return;
      button.disabled = false;
      topupError(describe(error));
    }
  }

  // ---- everything -----------------------------------------------------------------------------

  function loadAll() {
    section("balance", () => api("api/billing/balance"), renderBalance);
    loadHistory(true);
    const summary = api("api/v1/billing/org/summary");
    summary.catch(() => {}); // reported by the sections below
    section("plan", async () => {
      const [s, plans] = await Promise.all([summary, loadPlans().catch(() => null)]);
      return { summary: s, plans };
    }, renderSummary);
    section("plans", async () => {
      const [plans, s] = await Promise.all([loadPlans(), summary.catch(() => null)]);
      return { plans, summary: s };
    }, renderPlans);
    section("chart", async () => {
      const s = await summary;
      const { charges, complete } = await loadCharges(s.periodStart);
      return { s, charges, complete };
    }, ({ s, charges, complete }) => {
      $("chart-body").hidden = false;
      chartData = { days: dailyTotals(s, charges), complete, month: fmtMonth.format(parseTime(s.periodStart)) };
      renderChart();
    });
  }

  function boot() {
    const fromFragment = takeTokenFromFragment();
    if (fromFragment) storeToken(fromFragment);

    $("sign-in-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const token = $("token-input").value.trim();
      if (!/^[\w-]+\.[\w-]+\.[\w-]+$/.test(token)) {
        const error = $("token-error");
        error.textContent = "Paste the whole access token (three parts separated by dots).";
        error.hidden = false;
        $("token-input").setAttribute("aria-invalid", "true");
        return;
      }
      $("token-input").removeAttribute("aria-invalid");
      storeToken(token);
      start(token);
    });
    $("sign-out").addEventListener("click", signOut);
    $("refresh").addEventListener("click", () => { plansPromise = null; loadAll(); });
    $("topup-form").addEventListener("submit", submitTopup);
    for (const chip of document.querySelectorAll(".chip")) {
      chip.addEventListener("click", () => { $("topup-amount").value = chip.dataset.amount + ".00"; topupError(null); });
    }
    $("history-type").addEventListener("change", (event) => {
      activity.type = event.target.value;
      loadHistory(true);
    });
    $("history-more").addEventListener("click", () => loadHistory(false));
    window.addEventListener("hashchange", () => {
      const token = takeTokenFromFragment();
      if (token) { storeToken(token); start(token); }
    });
    if (window.ResizeObserver) {
      let lastWidth = 0;
      new ResizeObserver((entries) => {
        const width = Math.floor(entries[0].contentRect.width);
        if (width !== lastWidth) { lastWidth = width; renderChart(); }
      }).observe($("chart"));
    }

    const token = readToken();
    if (token) start(token);
    else showSignIn("Sign in", "Open the billing link from your account, or paste your access token below.", "signed-out");
  }

  // For the browser tests: the pure functions, exercised on values floats would get wrong.
  window.BillingPage = Object.freeze({ microToDollars, dollarsToMicro, percentOf, levelOf, niceCeiling });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
  else boot();
})();
