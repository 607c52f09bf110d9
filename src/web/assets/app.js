// glory-hole: progressive enhancement for the server-rendered pages.
// Every change goes through the JSON API with the session's CSRF token.
"use strict";
(function () {
  var meta = document.querySelector('meta[name="csrf-token"]');
  // Before login (setup) the form's double-submit token stands in.
  var pre = document.querySelector('input[name="_csrf"]');
  var csrf = meta ? meta.content : (pre ? pre.value : "");

  function api(method, url, body, raw) {
    var opts = { method: method, headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" };
    if (raw !== undefined) {
      opts.headers["Content-Type"] = "application/octet-stream";
      opts.body = raw;
    } else if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(url, opts).then(function (r) {
      return r.text().then(function (t) {
        var data = null;
        try { data = t ? JSON.parse(t) : null; } catch (e) { data = { error: t }; }
        return { ok: r.ok, status: r.status, data: data };
      });
    });
  }

  function fields(form) {
    var out = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.name === "_csrf" || el.disabled) return;
      if (el.type === "checkbox" && el.hasAttribute("data-set")) {
        // A group of boxes sharing a name: the ticked values, [] when none.
        out[el.name] = (out[el.name] || []).concat(el.checked ? [el.value] : []);
      }
      else if (el.type === "checkbox") out[el.name] = el.checked;
      else if (el.type === "radio") { if (el.checked) out[el.name] = el.value; }
      else if (el.type === "number") out[el.name] = el.value === "" ? null : Number(el.value);
      else if (el.hasAttribute("data-lines"))
        out[el.name] = el.value.split("\n").map(function (s) { return s.trim(); }).filter(Boolean);
      else if (el.type !== "submit" && el.type !== "button" && el.type !== "file") out[el.name] = el.value;
    });
    return out;
  }

  function show(form, text, cls) {
    var s = form.querySelector(".status");
    if (s) { s.textContent = text; s.className = "status " + (cls || ""); }
  }

  function showError(form, res) {
    var d = res.data || {};
    var msg = d.error || ("request failed (" + res.status + ")");
    var at = d.field && form.querySelector('[data-error-for="' + d.field + '"]');
    if (at) at.textContent = msg; else show(form, msg, "err");
  }

  function render(el, data) {
    if (!el) return;
    el.textContent = "";
    if (data && data.decision) {
      var p = document.createElement("p");
      p.textContent = data.domain + ": " + data.decision;
      p.className = data.decision === "blocked" ? "err" : "ok";
      el.appendChild(p);
      var ul = document.createElement("ul");
      (data.matches || []).forEach(function (m) {
        var li = document.createElement("li"); li.textContent = m; ul.appendChild(li);
      });
      el.appendChild(ul);
    } else if (data && data.token) {
      var pre = document.createElement("pre");
      pre.className = "mono"; pre.id = "new-token";
      pre.textContent = data.token;
      el.appendChild(document.createTextNode("Copy this token now, it is not shown again:"));
      el.appendChild(pre);
    } else {
      var pre2 = document.createElement("pre");
      pre2.textContent = typeof data === "string" ? data : JSON.stringify(data, null, 2);
      el.appendChild(pre2);
    }
  }

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.hasAttribute("data-api") && !form.hasAttribute("data-upload")) return;
    ev.preventDefault();
    form.querySelectorAll(".field-error").forEach(function (e) { e.textContent = ""; });
    var confirmMsg = form.getAttribute("data-confirm");
    if (confirmMsg && !window.confirm(confirmMsg)) return;
    show(form, "Working…");
    var p;
    if (form.hasAttribute("data-upload")) {
      var file = form.querySelector('input[type="file"]').files[0];
      if (!file) { show(form, "Choose a file first", "err"); return; }
      var to = form.getAttribute("data-upload");
      var secret = form.querySelector('input[name="setup_secret"]');
      if (secret) to += "?setup_secret=" + encodeURIComponent(secret.value);
      p = file.arrayBuffer().then(function (buf) {
        return api("POST", to, undefined, buf);
      });
    } else {
      var method = (form.getAttribute("data-method") || "POST").toUpperCase();
      var url = form.getAttribute("data-api");
      var body = fields(form);
      if (method === "GET") {
        url += "?" + new URLSearchParams(body).toString();
        body = undefined;
      }
      p = api(method, url, body);
    }
    p.then(function (res) {
      if (!res.ok) { show(form, ""); showError(form, res); return; }
      // A restore starts a new session; later changes need its token.
      if (res.data && res.data.csrf) csrf = res.data.csrf;
      var done = form.getAttribute("data-done") || "reload";
      if (done === "reload") { window.location.reload(); return; }
      if (done.indexOf("/") === 0) { window.location.href = done; return; }
      show(form, (res.data && res.data.message) || "Done", "ok");
      render(form.querySelector(".result"), res.data);
    }, function () { show(form, "The box did not answer", "err"); });
  });

  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("[data-action]");
    if (b) {
      ev.preventDefault();
      var c = b.getAttribute("data-confirm");
      if (c && !window.confirm(c)) return;
      var parts = b.getAttribute("data-action").split(" ");
      var body = b.hasAttribute("data-body") ? JSON.parse(b.getAttribute("data-body")) : undefined;
      b.disabled = true;
      api(parts[0], parts[1], body).then(function (res) {
        b.disabled = false;
        if (res.ok) {
          if (b.getAttribute("data-done") === "none") b.textContent = "✓ " + b.textContent;
          else window.location.reload();
        } else window.alert((res.data && res.data.error) || "failed");
      });
      return;
    }
    var why = ev.target.closest("[data-why]");
    if (why) {
      var tr = why.closest("tr");
      var next = tr.nextElementSibling;
      if (next && next.classList.contains("why")) { next.remove(); return; }
      var q = new URLSearchParams({ domain: why.getAttribute("data-why"), client: why.getAttribute("data-client") || "" });
      api("GET", "/api/v1/explain?" + q.toString()).then(function (res) {
        var row = document.createElement("tr"); row.className = "why";
        var td = document.createElement("td"); td.colSpan = tr.children.length;
        if (res.ok) render(td, res.data); else td.textContent = (res.data && res.data.error) || "failed";
        row.appendChild(td); tr.after(row);
      });
      return;
    }
    var rule = ev.target.closest("[data-rule]");
    if (rule) {
      var list = rule.getAttribute("data-rule");
      api("POST", "/api/v1/rules", { list: list, entry: rule.getAttribute("data-domain"), exact: true }).then(function (res) {
        if (res.ok) rule.textContent = list === "deny" ? "✓ blocked" : "✓ allowed";
        else window.alert((res.data && res.data.error) || "failed");
      });
    }
  });

  function localTimes(root) {
    root.querySelectorAll("time[data-ms]").forEach(function (t) {
      t.textContent = new Date(Number(t.getAttribute("data-ms"))).toLocaleString();
    });
  }
  localTimes(document);

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    if (text !== null) td.textContent = text;
    tr.appendChild(td);
    return td;
  }
  function button(td, text, attrs) {
    var b = document.createElement("button");
    b.className = "small sec"; b.type = "button"; b.textContent = text;
    Object.keys(attrs).forEach(function (k) { b.setAttribute(k, attrs[k]); });
    td.appendChild(b); td.appendChild(document.createTextNode(" "));
  }
  // As html.rs client_text: the device name, the address beside it.
  var nameFrom = { dhcp: "name from a DHCP lease", local: "name from a local record", ptr: "name from the router" };
  function clientCell(td, r) {
    var addr = document.createElement("span"); addr.className = "mono"; addr.textContent = r.client;
    if (r.client_name) {
      var n = document.createElement("span"); n.className = "device"; n.textContent = r.client_name;
      n.title = r.client + " (" + (nameFrom[r.client_name_source] || "name") + ")";
      addr.className = "mono muted";
      td.appendChild(n); td.appendChild(document.createTextNode(" "));
    }
    td.appendChild(addr);
  }
  function logRow(r) {
    var tr = document.createElement("tr");
    tr.setAttribute("data-ms", r.time_ms);
    var t = document.createElement("time"); t.setAttribute("data-ms", r.time_ms);
    cell(tr, null).appendChild(t);
    clientCell(cell(tr, null, "client hide-sm"), r);
    cell(tr, r.domain, "mono");
    cell(tr, r.qtype, "hide-sm");
    var tag = document.createElement("span"); tag.className = "tag " + r.status; tag.textContent = r.status;
    cell(tr, null).appendChild(tag);
    var act = cell(tr, null);
    button(act, "why?", { "data-why": r.domain, "data-client": r.client });
    if (r.status === "blocked") button(act, "allow", { "data-rule": "allow", "data-domain": r.domain });
    else button(act, "block", { "data-rule": "deny", "data-domain": r.domain });
    localTimes(tr);
    return tr;
  }

  var live = document.getElementById("live");
  var body = document.querySelector("table.log tbody");
  if (live && body) {
    var filter = document.getElementById("log-filter");
    setInterval(function () {
      if (!live.checked) return;
      var first = body.querySelector("tr[data-ms]");
      var q = new URLSearchParams(filter ? new FormData(filter) : undefined);
      q.set("after_ms", first ? first.getAttribute("data-ms") : "0");
      q.set("limit", "100");
      api("GET", "/api/v1/querylog?" + q.toString()).then(function (res) {
        if (!res.ok || !res.data) return;
        var empty = body.querySelector(".empty"); if (res.data.rows.length && empty) empty.remove();
        res.data.rows.slice().reverse().forEach(function (r) { body.insertBefore(logRow(r), body.firstChild); });
        while (body.children.length > 500) body.lastChild.remove();
      });
    }, 2000);
  }

  function toggles() {
    document.querySelectorAll("[data-show-when]").forEach(function (el) {
      var kv = el.getAttribute("data-show-when").split("=");
      var src = document.querySelector('[name="' + kv[0] + '"]:checked') || document.querySelector('select[name="' + kv[0] + '"]');
      el.hidden = !(src && kv[1].split("|").indexOf(src.value) >= 0);
    });
  }
  document.addEventListener("change", toggles);
  toggles();
})();
