// wabill's web console: the pages, the sign-in, the calculator and its chart. No library, no
// build step: this file is served as it is, from the binary. Amounts are the service's exact
// decimal strings; sums shown are exact too (BigInt, 10^-9 units, as the rating core's).
"use strict";

(function () {
  const KEY_STORE = "wabill.key";
  const CATEGORIES = ["marketing", "utility", "authentication", "service"];
  const $ = (id) => document.getElementById(id);

  // ---- exact decimals ----------------------------------------------------------------------
  const SCALE = 1000000000n;
  function toNanos(s) {
    const m = /^(-?)(\d+)(?:\.(\d{1,9}))?$/.exec(s);
    if (!m) throw new Error("not an exact decimal: " + s);
    const n = BigInt(m[2]) * SCALE + BigInt((m[3] || "").padEnd(9, "0"));
    return m[1] ? -n : n;
  }
  function fromNanos(n) {
    const neg = n < 0n;
    if (neg) n = -n;
    const whole = n / SCALE;
    let frac = (n % SCALE).toString().padStart(9, "0").replace(/0+$/, "");
    return (neg ? "-" : "") + whole.toString() + (frac ? "." + frac : "");
  }

  // ---- the API -----------------------------------------------------------------------------
  function key() {
    return sessionStorage.getItem(KEY_STORE);
  }
  // A keyed request: the key of this browser session, never stored beyond it.
  async function api(path, options) {
    const o = Object.assign({ headers: {} }, options || {});
    const k = key();
    if (k) o.headers.Authorization = "Bearer " + k;
    return fetch(path, o);
  }
  async function problemText(resp) {
    try {
      const v = await resp.json();
      if (v && v.error) return v.error.message + " (" + v.error.code + ")";
    } catch (_) { /* not JSON */ }
    return "HTTP " + resp.status;
  }

  // ---- pages -------------------------------------------------------------------------------
  // Each page: its section id, whether it needs a key, and what runs when it is shown. The
  // keyed pages are listed here with keyed: true and a link in the bar (.nav-keyed); the
  // router shows them only once signed in. Their state is in the fragment's query, as the
  // calculator's; the key never is.
  const PAGES = {
    calculator: { section: "page-calculator", keyed: false, show: showCalculator },
    usage: { section: "page-usage", keyed: true, show: showUsage },
    charges: { section: "page-charges", keyed: true, show: showCharges },
  };

  function route() {
    const hash = location.hash || "#/calculator";
    const m = /^#\/([a-z-]+)(?:\?(.*))?$/.exec(hash);
    let name = m && PAGES[m[1]] ? m[1] : "calculator";
    if (PAGES[name].keyed && !key()) name = "calculator";
    for (const [n, p] of Object.entries(PAGES)) {
      $(p.section).hidden = n !== name;
    }
    for (const a of document.querySelectorAll("#nav a")) {
      if (a.dataset.page === name) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    PAGES[name].show(new URLSearchParams(m && m[2] ? m[2] : ""));
  }

  // ---- sign-in -----------------------------------------------------------------------------
  function showSignedIn() {
    const k = key();
    $("signin").hidden = !!k;
    $("signedin").hidden = !k;
    for (const li of document.querySelectorAll(".nav-keyed")) li.hidden = !k;
    $("signedin-who").textContent = k ? "Signed in, key …" + k.slice(-4) : "";
  }
  async function signIn(ev) {
    ev.preventDefault();
    const k = $("signin-key").value.trim();
    if (!k) return;
    // Any valid key may read a page of charges (its own WABAs'); 401 is a wrong key.
    const resp = await fetch("/v1/charges?limit=1", { headers: { Authorization: "Bearer " + k } });
    if (resp.status === 401) {
      $("signin-status").textContent = "That key was refused: " + (await problemText(resp));
      return;
    }
    sessionStorage.setItem(KEY_STORE, k);
    $("signin-key").value = "";
    $("signin-status").textContent = "Signed in for this browser session.";
    showSignedIn();
  }
  function signOut() {
    sessionStorage.removeItem(KEY_STORE);
    // Nothing read with the key stays on the page.
    for (const id of ["usage-days", "charges-rows", "charges-count", "c-csv-done", "usage-status",
      "charges-status", "usage-budget"]) $(id).textContent = "";
    $("usage-result").hidden = true;
    $("c-more").hidden = true;
    chargesNext = null;
    $("signin-status").textContent = "Signed out.";
    showSignedIn();
    route();
  }

  // ---- the calculator ----------------------------------------------------------------------
  let options = null; // GET /v1/estimate

  async function loadOptions() {
    if (options) return options;
    const resp = await fetch("/v1/estimate");
    if (resp.status === 404) {
      options = { off: true };
    } else if (!resp.ok) {
      throw new Error(await problemText(resp));
    } else {
      options = await resp.json();
    }
    return options;
  }

  function option(value, text, selected) {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = text;
    if (selected) o.selected = true;
    return o;
  }

  let lineCount = 0;
  function addLine(line) {
    const l = line || { kind: "m", name: "", category: "marketing", messages: "" };
    const n = ++lineCount;
    const tr = document.createElement("tr");
    tr.className = "line";
    const kind = document.createElement("select");
    kind.className = "l-kind";
    kind.setAttribute("aria-label", "Line " + n + ": market or country");
    kind.append(option("m", "Market", l.kind === "m"), option("c", "Country (ISO code)", l.kind === "c"));
    const name = document.createElement("input");
    name.className = "l-name";
    name.value = l.name;
    name.spellcheck = false;
    name.setAttribute("aria-label", "Line " + n + ": market name or country code");
    const setList = () => {
      if (kind.value === "m") name.setAttribute("list", "markets");
      else name.removeAttribute("list");
      name.placeholder = kind.value === "m" ? "Brazil" : "BR";
    };
    kind.addEventListener("change", setList);
    setList();
    const cat = document.createElement("select");
    cat.className = "l-category";
    cat.setAttribute("aria-label", "Line " + n + ": category");
    for (const c of CATEGORIES) cat.append(option(c, c, c === l.category));
    const msgs = document.createElement("input");
    msgs.className = "l-messages";
    msgs.type = "number";
    msgs.min = "0";
    msgs.step = "1";
    msgs.inputMode = "numeric";
    msgs.value = l.messages;
    msgs.setAttribute("aria-label", "Line " + n + ": messages a month");
    const rm = document.createElement("button");
    rm.type = "button";
    rm.className = "l-remove";
    rm.textContent = "Remove";
    rm.setAttribute("aria-label", "Remove line " + n);
    rm.addEventListener("click", () => {
      tr.remove();
      const first = document.querySelector("#lines input");
      if (first) first.focus();
      else $("add-line").focus();
    });
    for (const el of [[kind, name], [cat], [msgs], [rm]]) {
      const td = document.createElement("td");
      td.append(...el);
      tr.append(td);
    }
    $("lines").append(tr);
    return tr;
  }

  function currentMonth() {
    const d = new Date();
    return d.getUTCFullYear() + "-" + String(d.getUTCMonth() + 1).padStart(2, "0");
  }

  // The form's state <-> the URL's (so that an estimate is shared by its link).
  function readForm() {
    const lines = [];
    for (const tr of document.querySelectorAll("#lines tr")) {
      lines.push({
        kind: tr.querySelector(".l-kind").value,
        name: tr.querySelector(".l-name").value.trim(),
        category: tr.querySelector(".l-category").value,
        messages: tr.querySelector(".l-messages").value.trim(),
      });
    }
    return {
      month: $("f-month").value,
      currency: $("f-currency").value,
      timezone: $("f-timezone").value.trim() || "UTC",
      phones: $("f-phones").value.trim() || "1",
      primary: $("f-primary").value.trim().toUpperCase(),
      authintl: $("f-authintl").checked,
      uiw: $("f-uiw").value.trim() || "0",
      eps: $("f-eps").value.trim() || "0",
      compare: $("f-compare").checked,
      lines: lines,
    };
  }

  function stateToQuery(s) {
    const q = new URLSearchParams();
    q.set("month", s.month);
    q.set("currency", s.currency);
    q.set("tz", s.timezone);
    q.set("phones", s.phones);
    if (s.primary) q.set("primary", s.primary);
    if (s.authintl) q.set("authintl", "1");
    q.set("uiw", s.uiw);
    q.set("eps", s.eps);
    q.set("compare", s.compare ? "1" : "0");
    for (const l of s.lines) q.append("line", [l.kind, l.category, l.messages, l.name].join(","));
    return q.toString();
  }

  function fillForm(q) {
    $("f-month").value = q.get("month") || currentMonth();
    const cur = q.get("currency") || "USD";
    if ([...$("f-currency").options].some((o) => o.value === cur)) $("f-currency").value = cur;
    $("f-timezone").value = q.get("tz") || "UTC";
    $("f-phones").value = q.get("phones") || "1";
    $("f-primary").value = q.get("primary") || "";
    $("f-authintl").checked = q.get("authintl") === "1";
    $("f-uiw").value = q.get("uiw") || "0";
    $("f-eps").value = q.get("eps") || "0";
    $("f-compare").checked = q.get("compare") !== "0";
    $("lines").textContent = "";
    lineCount = 0;
    const lines = q.getAll("line");
    for (const text of lines) {
      const parts = text.split(",");
      if (parts.length < 4) continue;
      addLine({
        kind: parts[0] === "c" ? "c" : "m",
        category: CATEGORIES.includes(parts[1]) ? parts[1] : "marketing",
        messages: parts[2],
        name: parts.slice(3).join(","),
      });
    }
    if (!lines.length) addLine({ kind: "m", name: "Brazil", category: "marketing", messages: "10000" });
    return lines.length > 0;
  }

  // The request of `POST /v1/estimate` (the options of `wabill estimate`), or why not.
  function toRequest(s) {
    const share = (what, v) => {
      if (!/^\d{1,4}(\.\d{1,9})?$/.test(v)) throw new Error(what + ": a percentage such as 40 or 12.5");
      return v + "%";
    };
    if (!/^\d{4}-\d{2}$/.test(s.month)) throw new Error("Month: choose a month");
    if (!/^[1-9]\d*$/.test(s.phones)) throw new Error("Phone numbers: a whole number from 1");
    const req = {
      month: s.month,
      currency: s.currency,
      timezone: s.timezone,
      phones: Number(s.phones),
      utility_in_window: share("Utility inside a window", s.uiw),
      entry_point_share: share("Entry point share", s.eps),
      compare: s.compare,
      traffic: [],
    };
    if (s.primary) req.primary_country = s.primary;
    if (s.authintl) req.auth_international = true;
    s.lines.forEach((l, i) => {
      if (!l.name) throw new Error("Line " + (i + 1) + ": name a market or a country");
      if (!/^\d+$/.test(l.messages)) throw new Error("Line " + (i + 1) + ": messages, a whole number");
      const line = { category: l.category, messages: Number(l.messages) };
      if (l.kind === "c") line.country = l.name.toUpperCase();
      else line.market = l.name;
      req.traffic.push(line);
    });
    return req;
  }

  async function estimate() {
    const status = $("calc-status");
    const s = readForm();
    let req;
    try {
      req = toRequest(s);
    } catch (e) {
      status.textContent = e.message;
      return;
    }
    const query = stateToQuery(s);
    history.replaceState(null, "", "#/calculator?" + query);
    $("share").href = "#/calculator?" + query;
    $("share").hidden = false;
    status.textContent = "Estimating…";
    $("estimate").disabled = true;
    try {
      const resp = await fetch("/v1/estimate", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(req),
      });
      if (!resp.ok) {
        status.textContent = "Not estimated: " + (await problemText(resp));
        $("result").hidden = true;
        return;
      }
      render(await resp.json());
      status.textContent = "Estimated.";
    } catch (e) {
      status.textContent = "Not estimated: " + e.message;
    } finally {
      $("estimate").disabled = false;
    }
  }

  function cell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    tr.append(td);
  }

  function byCategory(report) {
    const sums = {};
    for (const c of CATEGORIES) sums[c] = 0n;
    for (const r of report.rows) sums[r.category] = (sums[r.category] || 0n) + toNanos(r.amount);
    return sums;
  }

  function render(v) {
    const e = v.estimate;
    const total = e.totals[0] || { amount: "0", currency: e.currency };
    $("result-month").textContent = e.month;
    $("total-amount").textContent = total.amount;
    $("total-currency").textContent = total.currency;
    $("result-era").textContent = "(pricing era: " + e.era + ")";
    const rows = $("rows");
    rows.textContent = "";
    for (const r of e.rows) {
      const tr = document.createElement("tr");
      cell(tr, r.market);
      cell(tr, r.category);
      cell(tr, String(r.messages), "num");
      cell(tr, String(r.charged), "num");
      cell(tr, String(r.free_customer_service), "num");
      cell(tr, String(r.free_entry_point), "num");
      cell(tr, r.rates.map((p) => (p.tier ? p.rate + " @" + p.tier : p.rate)).join(" ") || "–");
      cell(tr, r.amount, "num");
      rows.append(tr);
    }
    const c = v.compare;
    $("compare-line").hidden = !c;
    $("chart-box").hidden = !c;
    if (c) {
      const ct = c.totals[0] || { amount: "0", currency: c.currency };
      $("compare-month").textContent = c.month + ", " + c.era;
      $("compare-amount").textContent = ct.amount;
      $("compare-currency").textContent = ct.currency;
      const ch = (v.change || [])[0];
      $("change-amount").textContent = ch ? (ch.amount.startsWith("-") ? "" : "+") + ch.amount + " " + ch.currency : "0";
      chart($("chart"), [
        { label: e.month + " (" + e.era + ")", cls: "s-now", sums: byCategory(e) },
        { label: c.month + " (" + c.era + ")", cls: "s-before", sums: byCategory(c) },
      ], total.currency);
    }
    $("result").hidden = false;
  }

  // ---- the chart: grouped bars per category, drawn as SVG ----------------------------------
  const SVG = "http://www.w3.org/2000/svg";
  function svg(name, attrs, text) {
    const el = document.createElementNS(SVG, name);
    for (const [k, val] of Object.entries(attrs || {})) el.setAttribute(k, String(val));
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function chart(box, series, currency) {
    const W = 640, H = 300, left = 64, right = 12, top = 16, bottom = 64;
    const plotW = W - left - right, plotH = H - top - bottom;
    let max = 0n;
    for (const s of series) for (const c of CATEGORIES) if (s.sums[c] > max) max = s.sums[c];
    // A round top for the axis: 1, 2 or 5 times a power of ten, in whole currency units or finer.
    const maxUnits = Number(max) / 1e9;
    let step = 1e-3;
    while (step * 5 < maxUnits) step *= 10;
    const top5 = [1, 2, 5, 10].map((f) => f * step).find((t) => t * 1 >= maxUnits) || step * 10;
    const axisMax = maxUnits === 0 ? 1 : top5;
    const y = (units) => top + plotH - (units / axisMax) * plotH;
    const root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", class: "chart",
      "aria-labelledby": "chart-title chart-desc" });
    root.append(svg("title", { id: "chart-title" }, "Cost per category, " + currency));
    const desc = series.map((s) => s.label + ": " + CATEGORIES.map((c) => c + " " + fromNanos(s.sums[c])).join(", ")).join("; ");
    root.append(svg("desc", { id: "chart-desc" }, desc));
    for (let i = 0; i <= 4; i++) {
      const v = (axisMax * i) / 4;
      const yy = y(v);
      root.append(svg("line", { x1: left, x2: W - right, y1: yy, y2: yy, class: "grid" }));
      root.append(svg("text", { x: left - 6, y: yy + 4, class: "tick", "text-anchor": "end" },
        Number(v.toPrecision(6)).toString()));
    }
    const groupW = plotW / CATEGORIES.length;
    const barW = Math.min(48, (groupW - 16) / series.length);
    CATEGORIES.forEach((c, gi) => {
      const gx = left + gi * groupW + (groupW - barW * series.length) / 2;
      series.forEach((s, si) => {
        const units = Number(s.sums[c]) / 1e9;
        const yy = y(units);
        const bar = svg("rect", { x: gx + si * barW, y: yy, width: barW - 4,
          height: Math.max(0, top + plotH - yy), class: "bar " + s.cls });
        bar.append(svg("title", {}, s.label + ", " + c + ": " + fromNanos(s.sums[c]) + " " + currency));
        root.append(bar);
      });
      root.append(svg("text", { x: left + gi * groupW + groupW / 2, y: top + plotH + 18,
        class: "label", "text-anchor": "middle" }, c));
    });
    root.append(svg("line", { x1: left, x2: W - right, y1: top + plotH, y2: top + plotH, class: "axis" }));
    series.forEach((s, si) => {
      const lx = left + si * 260;
      root.append(svg("rect", { x: lx, y: H - 22, width: 14, height: 14, class: "bar " + s.cls }));
      root.append(svg("text", { x: lx + 20, y: H - 10, class: "legend" }, s.label));
    });
    box.textContent = "";
    box.append(root);
  }

  let calculatorReady = false;
  async function showCalculator(q) {
    const status = $("calc-status");
    let o;
    try {
      o = await loadOptions();
    } catch (e) {
      status.textContent = "The calculator cannot load: " + e.message;
      return;
    }
    if (o.off) {
      $("calc-off").hidden = false;
      $("calc").hidden = true;
      return;
    }
    if (!calculatorReady) {
      calculatorReady = true;
      const cur = $("f-currency");
      for (const c of o.currencies) cur.append(option(c, c, c === "USD"));
      const list = $("markets");
      for (const m of o.markets) list.append(option(m, m));
    }
    const shared = fillForm(q);
    if (shared) estimate();
  }

  // ---- the usage dashboard -----------------------------------------------------------------
  // GET /v1/usage of one WABA and month, DAILY buckets aligned in UTC, broken down by one
  // dimension; per day the cost (exact, summed as BigInt) and the volume, stacked.
  const BY = {
    category: { dimension: "PRICING_CATEGORY", field: "pricing_category" },
    country: { dimension: "COUNTRY", field: "country" },
    phone: { dimension: "PHONE", field: "phone_number" },
  };

  function monthBounds(month) {
    const [y, m] = month.split("-").map(Number);
    return [Date.UTC(y, m - 1, 1) / 1000, Date.UTC(y, m, 1) / 1000];
  }
  function isoDay(seconds) {
    return new Date(seconds * 1000).toISOString().slice(0, 10);
  }

  function showUsage(q) {
    $("u-waba").value = q.get("waba") || $("u-waba").value;
    $("u-month").value = q.get("month") || $("u-month").value || currentMonth();
    const by = q.get("by");
    if (by && BY[by]) $("u-by").value = by;
    $("u-tenant").value = q.get("tenant") || "";
    if ($("u-waba").value.trim()) loadUsage();
  }

  function usageSubmit(ev) {
    ev.preventDefault();
    const q = new URLSearchParams();
    q.set("waba", $("u-waba").value.trim());
    q.set("month", $("u-month").value);
    q.set("by", $("u-by").value);
    if ($("u-tenant").value.trim()) q.set("tenant", $("u-tenant").value.trim());
    history.replaceState(null, "", "#/usage?" + q.toString());
    loadUsage();
  }

  async function loadUsage() {
    const status = $("usage-status");
    const waba = $("u-waba").value.trim();
    const month = $("u-month").value;
    const by = BY[$("u-by").value];
    if (!waba) return void (status.textContent = "WABA: name one of your WABAs");
    if (!/^\d{4}-\d{2}$/.test(month)) return void (status.textContent = "Month: choose a month");
    const [start, end] = monthBounds(month);
    const query = new URLSearchParams({ waba: waba, start: String(start), end: String(end),
      granularity: "DAILY", dimensions: by.dimension });
    status.textContent = "Loading…";
    const resp = await api("/v1/usage?" + query.toString());
    if (!resp.ok) {
      $("usage-result").hidden = true;
      status.textContent = "Not shown: " + (await problemText(resp));
      return;
    }
    const body = await resp.json();
    const set = (body.data || [])[0] || { currency: "", data_points: [] };
    // Every day of the month, in order; the series in the order of their first appearance.
    const days = [];
    for (let t = start; t < end; t += 86400) days.push(isoDay(t));
    const names = [];
    const cost = {}, volume = {};
    for (const d of days) { cost[d] = {}; volume[d] = {}; }
    for (const p of set.data_points) {
      const d = isoDay(p.start);
      const name = p[by.field] || "(none)";
      if (!names.includes(name)) names.push(name);
      if (!cost[d]) { cost[d] = {}; volume[d] = {}; }
      cost[d][name] = (cost[d][name] || 0n) + toNanos(p.cost);
      volume[d][name] = (volume[d][name] || 0) + p.volume;
    }
    let totalCost = 0n, totalVolume = 0;
    const rows = $("usage-days");
    rows.textContent = "";
    for (const d of days) {
      const c = Object.values(cost[d]).reduce((a, b) => a + b, 0n);
      const v = Object.values(volume[d]).reduce((a, b) => a + b, 0);
      totalCost += c;
      totalVolume += v;
      if (!Object.keys(volume[d]).length) continue;
      const tr = document.createElement("tr");
      tr.dataset.day = d;
      cell(tr, d, "u-day");
      cell(tr, String(v), "num u-volume");
      cell(tr, fromNanos(c), "num u-cost");
      rows.append(tr);
    }
    $("usage-total-cost").textContent = fromNanos(totalCost);
    $("usage-currency").textContent = set.currency;
    $("usage-total-volume").textContent = String(totalVolume);
    stacked($("usage-cost-chart"), days, names, (d, n) => Number(cost[d][n] || 0n) / 1e9,
      (d, n) => fromNanos(cost[d][n] || 0n) + " " + set.currency, "Cost per day, " + set.currency);
    stacked($("usage-volume-chart"), days, names, (d, n) => volume[d][n] || 0,
      (d, n) => String(volume[d][n] || 0) + " messages", "Messages per day");
    $("usage-result").hidden = false;
    status.textContent = set.data_points.length ? "Shown." : "No delivered messages in that month.";
    budget(month, totalCost, set.currency);
  }

  // The tenant's included budget of the month (its draft or finalized invoice), when the key
  // may read that tenant; otherwise the reason, and the usage alone.
  async function budget(month, used, currency) {
    const p = $("usage-budget");
    const tenant = $("u-tenant").value.trim();
    p.hidden = !tenant;
    if (!tenant) return;
    const resp = await api("/v1/tenants/" + encodeURIComponent(tenant) + "/invoices/" + month);
    if (!resp.ok) {
      p.textContent = "Tenant " + tenant + ": " + (await problemText(resp));
      return;
    }
    const inv = await resp.json();
    const b = inv.budget;
    if (!b) {
      p.textContent = "Tenant " + tenant + " has no included budget this month.";
      return;
    }
    const cur = inv.currency || "";
    p.textContent = "Tenant " + tenant + " (all its WABAs): " + b.used + " " + cur + " used of " +
      b.included + " " + cur + " included this month" +
      (toNanos(b.overage) > 0n ? ", " + b.overage + " " + cur + " above it" : "") +
      "; this WABA: " + fromNanos(used) + " " + currency + ".";
  }

  // A stacked bar chart of `days` x `names`, drawn as SVG; value(d, n) is a Number for the
  // geometry only, label(d, n) the exact figure of each bar's title.
  function stacked(box, days, names, value, label, title) {
    const W = 720, H = 300, left = 64, right = 12, top = 16, bottom = 56;
    const plotW = W - left - right, plotH = H - top - bottom;
    let max = 0;
    for (const d of days) max = Math.max(max, names.reduce((a, n) => a + value(d, n), 0));
    let step = 1e-3;
    while (step * 5 < max) step *= 10;
    const axisMax = max === 0 ? 1 : [1, 2, 5, 10].map((f) => f * step).find((t) => t >= max);
    const h = (v) => (v / axisMax) * plotH;
    const root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", class: "chart" });
    root.append(svg("title", {}, title));
    for (let i = 0; i <= 4; i++) {
      const v = (axisMax * i) / 4;
      const yy = top + plotH - h(v);
      root.append(svg("line", { x1: left, x2: W - right, y1: yy, y2: yy, class: "grid" }));
      root.append(svg("text", { x: left - 6, y: yy + 4, class: "tick", "text-anchor": "end" },
        Number(v.toPrecision(6)).toString()));
    }
    const slot = plotW / days.length;
    days.forEach((d, i) => {
      let base = top + plotH;
      names.forEach((n, si) => {
        const v = value(d, n);
        if (!v) return;
        const bh = h(v);
        base -= bh;
        const bar = svg("rect", { x: left + i * slot + 1, y: base, width: Math.max(1, slot - 2),
          height: bh, class: "bar s" + (si % 8) });
        bar.append(svg("title", {}, d + ", " + n + ": " + label(d, n)));
        root.append(bar);
      });
      if (i % 5 === 0) root.append(svg("text", { x: left + i * slot + slot / 2, y: top + plotH + 16,
        class: "label", "text-anchor": "middle" }, d.slice(8)));
    });
    root.append(svg("line", { x1: left, x2: W - right, y1: top + plotH, y2: top + plotH, class: "axis" }));
    names.slice(0, 8).forEach((n, si) => {
      const lx = left + (si % 4) * 165, ly = H - 26 + Math.floor(si / 4) * 14;
      root.append(svg("rect", { x: lx, y: ly - 10, width: 10, height: 10, class: "bar s" + si }));
      root.append(svg("text", { x: lx + 14, y: ly, class: "legend" }, n));
    });
    box.textContent = "";
    box.append(root);
  }

  // ---- the charges explorer ----------------------------------------------------------------
  // GET /v1/charges with the page's filters, a page at a time (`next`); every line explained.
  const PAGE_ROWS = 500;
  let chargesNext = null;

  function chargesQuery() {
    const q = new URLSearchParams();
    for (const [id, name] of [["c-waba", "waba"], ["c-from", "from"], ["c-to", "to"]]) {
      const v = $(id).value.trim();
      if (v) q.set(name, v);
    }
    return q;
  }

  function showCharges(q) {
    for (const [id, name] of [["c-waba", "waba"], ["c-from", "from"], ["c-to", "to"]]) {
      $(id).value = q.get(name) || "";
    }
    loadCharges(false);
  }

  function explain(c) {
    const why = {
      regular: "charged at the market's rate for its category",
      free_customer_service: "free: inside the user's customer service window",
      free_entry_point: "free: inside a free entry point window",
      free_tier: "free: within the month's free allowance (docs/rules.md)",
      undelivered: "not charged: no delivery yet (re-rated when one comes)",
    }[c.type] || c.type;
    const parts = [why];
    if (c.tier) parts.push("volume tier " + c.tier);
    if (c.rate) parts.push(c.rate + " " + c.currency + " a message");
    if (c.conversation_id) parts.push("conversation " + c.conversation_id);
    if (c.pricing_model && c.pricing_model !== "PMP") parts.push("pricing model " + c.pricing_model);
    return parts.join("; ");
  }

  async function loadCharges(more) {
    const status = $("charges-status");
    const q = chargesQuery();
    if (!more) {
      history.replaceState(null, "", "#/charges" + (q.toString() ? "?" + q.toString() : ""));
      $("charges-rows").textContent = "";
      chargesNext = null;
    } else if (chargesNext) {
      q.set("after", chargesNext);
    }
    q.set("limit", String(PAGE_ROWS));
    status.textContent = "Loading…";
    const resp = await api("/v1/charges?" + q.toString());
    if (!resp.ok) {
      status.textContent = "Not shown: " + (await problemText(resp));
      return;
    }
    const body = await resp.json();
    const rows = $("charges-rows");
    for (const c of body.charges) {
      const tr = document.createElement("tr");
      cell(tr, c.billed_at || "–");
      cell(tr, c.waba, "c-waba");
      cell(tr, c.id);
      cell(tr, c.country || "–");
      cell(tr, c.category);
      cell(tr, c.type);
      cell(tr, c.tier || "–");
      cell(tr, c.rate || "–", "num");
      cell(tr, c.amount + " " + c.currency, "num");
      cell(tr, explain(c));
      rows.append(tr);
    }
    chargesNext = body.next || null;
    $("c-more").hidden = !chargesNext;
    const n = rows.children.length;
    $("charges-count").textContent = "(" + n + (chargesNext ? ", more to load)" : ", all)");
    status.textContent = n + " lines shown" + (chargesNext ? "; more with Next page." : ".");
  }

  // Every row as CSV: the streamed download, fetched with the key in its header and handed to
  // the browser as a Blob (the key is never in a URL).
  async function downloadCsv() {
    const status = $("charges-status");
    const q = chargesQuery();
    q.set("format", "csv");
    status.textContent = "Downloading…";
    const resp = await api("/v1/charges?" + q.toString());
    if (!resp.ok) {
      status.textContent = "Not downloaded: " + (await problemText(resp));
      return;
    }
    const blob = await resp.blob();
    const text = await blob.text();
    const lines = text.split("\n").filter((l) => l.length).length;
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = "charges.csv";
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60000);
    $("c-csv-done").textContent = "charges.csv: " + Math.max(0, lines - 1) + " rows, " + blob.size + " bytes";
    status.textContent = "Downloaded charges.csv.";
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("signin").addEventListener("submit", signIn);
    $("signout").addEventListener("click", signOut);
    $("add-line").addEventListener("click", () => addLine().querySelector("input").focus());
    $("calc").addEventListener("submit", (ev) => {
      ev.preventDefault();
      estimate();
    });
    $("usage-form").addEventListener("submit", usageSubmit);
    $("charges-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      loadCharges(false);
    });
    $("c-more").addEventListener("click", () => loadCharges(true));
    $("c-csv").addEventListener("click", downloadCsv);
    window.addEventListener("hashchange", route);
    showSignedIn();
    route();
  });
})();
