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
  // keyed pages (usage, charges, reconciliation, tenants, alerts) are added here with
  // keyed: true and a link in the bar; the router shows them only once signed in.
  const PAGES = {
    calculator: { section: "page-calculator", keyed: false, show: showCalculator },
    keyed: { section: "page-keyed", keyed: true, show: function () {} },
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
    $("nav-keyed").hidden = !k;
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

  document.addEventListener("DOMContentLoaded", () => {
    $("signin").addEventListener("submit", signIn);
    $("signout").addEventListener("click", signOut);
    $("add-line").addEventListener("click", () => addLine().querySelector("input").focus());
    $("calc").addEventListener("submit", (ev) => {
      ev.preventDefault();
      estimate();
    });
    window.addEventListener("hashchange", route);
    showSignedIn();
    route();
  });
})();
