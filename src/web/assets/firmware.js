// glory-hole: the System page's firmware section. Shows the slots from
// GET /api/v1/firmware, uploads a bundle (file field or drop) with a
// progress bar (the upload's own progress, then the read-back), offers
// "Reboot into X" and "Roll back", and follows the box across the reboot.
"use strict";
(function () {
  var root = document.getElementById("fw");
  if (!root) return;
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.content : "";
  var $ = function (id) { return document.getElementById(id); };
  var bar = $("fw-progress"), percent = $("fw-percent"), status = $("fw-status");
  var installed = null;

  function get(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      return r.json().then(function (d) { return { ok: r.ok, status: r.status, data: d }; });
    });
  }
  function post(url) {
    return fetch(url, { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf } })
      .then(function (r) { return r.json().then(function (d) { return { ok: r.ok, data: d }; }); });
  }
  function mib(n) { return (n / 1048576).toFixed(1) + " MiB"; }
  function setBar(done, total) {
    var p = total > 0 ? Math.min(100, Math.floor(done * 100 / total)) : 0;
    bar.hidden = false; bar.value = p; percent.textContent = p + " %";
  }
  // The last result, kept on the data partition across the reboot:
  // "Now running X" once a trial was committed, "Rolled back to Y because
  // Z" when it was given up (Y: the system that boots now).
  function lastText(f) {
    var l = f.last;
    if (!l) return "";
    var when = l.at_unix_s ? " (" + new Date(l.at_unix_s * 1000).toLocaleString() + ")" : "";
    if (l.outcome === "committed") return "Now running " + l.version + ": its trial boot passed the health check" + when + ".";
    if (l.outcome === "rolled_back") {
      var next = f.slots.filter(function (s) { return s.boots_next; })[0];
      var to = next && next.version ? next.version : "the other system";
      return "Rolled back to " + to + " because " + (l.reason || "the update failed") + when + ".";
    }
    var v = l.version ? " " + l.version : "";
    var why = l.reason ? ": " + l.reason : "";
    return "Last update: " + l.outcome.replace("_", " ") + v + why + when;
  }

  function showSlots(f) {
    var body = $("fw-slots").querySelector("tbody");
    body.textContent = "";
    f.slots.forEach(function (s) {
      var tr = document.createElement("tr");
      tr.id = "fw-slot-" + s.slot;
      var notes = [];
      if (s.running) notes.push("running");
      if (s.boots_next) notes.push("boots next");
      if (f.trial === s.slot) notes.push("trial armed");
      [s.slot, s.version || "–", s.state, s.signer || "–", notes.join(", ")].forEach(function (t) {
        var td = document.createElement("td"); td.textContent = t; tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    $("fw-last").textContent = lastText(f);
    var other = f.slots.filter(function (s) { return !s.running; })[0];
    var rb = $("fw-rollback");
    rb.hidden = !f.can_rollback;
    if (other) rb.textContent = "Roll back to slot " + other.slot + " (" + (other.version || "?") + ")";
    if (f.can_activate && other && !installed) {
      installed = { version: other.version, slot: other.slot, signer: other.signer, boards: [] };
      showResult(installed);
    }
  }
  function refresh() {
    return get("/api/v1/firmware").then(function (r) { if (r.ok) showSlots(r.data); return r; });
  }

  function showResult(i) {
    $("fw-version").textContent = i.version;
    $("fw-boards").textContent = i.boards.length ? i.boards.join(", ") : "this board";
    $("fw-signer").textContent = i.signer || "?";
    $("fw-slot").textContent = i.slot;
    $("fw-activate").textContent = "Reboot into " + i.version;
    $("fw-result").hidden = false;
  }

  function upload(file) {
    if (!file) { status.textContent = "Choose a bundle first"; status.className = "status err"; return; }
    installed = null;
    $("fw-result").hidden = true;
    $("fw-send").disabled = true;
    status.className = "status"; status.textContent = "Uploading and writing…";
    setBar(0, file.size);
    // The installer writes while the bytes arrive; after the last one it
    // reads the slot back, which the poll below reports.
    var poll = setInterval(function () {
      get("/api/v1/firmware").then(function (r) {
        if (!r.ok) return;
        var p = r.data.progress;
        if (p.phase === "verifying") status.textContent = "Reading the slot back…";
        else if (p.phase === "receiving") status.textContent = "Written " + mib(p.written_bytes) + " of " + mib(p.total_bytes || file.size);
      });
    }, 700);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/firmware");
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.onprogress = function (e) { if (e.lengthComputable) setBar(e.loaded, e.total); };
    xhr.onload = function () {
      clearInterval(poll);
      $("fw-send").disabled = false;
      var d = {};
      try { d = JSON.parse(xhr.responseText); } catch (e) { d = { error: xhr.responseText }; }
      if (xhr.status === 200) {
        setBar(1, 1);
        status.className = "status ok"; status.textContent = "Installed " + d.version + " in slot " + d.slot;
        installed = d; showResult(d); refresh();
      } else {
        status.className = "status err"; status.textContent = d.error || ("failed (" + xhr.status + ")");
        refresh();
      }
    };
    xhr.onerror = function () {
      clearInterval(poll); $("fw-send").disabled = false;
      status.className = "status err"; status.textContent = "The upload broke off";
    };
    xhr.send(file);
  }

  $("fw-upload").addEventListener("submit", function (ev) {
    ev.preventDefault(); upload($("fw-file").files[0]);
  });
  // The whole section takes a dropped bundle, not only the form.
  root.addEventListener("dragover", function (ev) { ev.preventDefault(); root.classList.add("over"); });
  root.addEventListener("dragleave", function (ev) {
    if (!root.contains(ev.relatedTarget)) root.classList.remove("over");
  });
  root.addEventListener("drop", function (ev) {
    ev.preventDefault(); root.classList.remove("over");
    var f = ev.dataTransfer && ev.dataTransfer.files[0];
    if (f) status.textContent = "";
    upload(f);
  });

  // Across the reboot: /api/v1/health is public, so a lost session does
  // not matter; its version says which system came back.
  function waitFor(target, before) {
    root.hidden = true;
    $("fw-wait").hidden = false;
    $("fw-wait-text").textContent = "Rebooting into " + target + "… waiting for the box to come back.";
    var wentDown = false;
    var t = setInterval(function () {
      get("/api/v1/health").then(function (r) {
        if (!wentDown) return;
        clearInterval(t);
        var now = r.data.version;
        if (now === target) {
          $("fw-wait-text").textContent = "Now running " + target + ".";
          $("fw-wait-detail").textContent = "It is committed once its health check passes (within 90 s).";
          return;
        }
        get("/api/v1/firmware").then(function (f) {
          var why = f.ok && f.data.last && f.data.last.reason ? f.data.last.reason : "log in again to see why";
          $("fw-wait-text").textContent = "Rolled back to " + now + " because " + why + ".";
          $("fw-wait-detail").textContent = "";
        });
      }, function () { wentDown = true; });
    }, 2000);
    $("fw-wait-detail").textContent = "Still running " + before + " until the box restarts.";
  }

  function act(button, url, target) {
    var c = button.getAttribute("data-confirm");
    if (c && !window.confirm(c)) return;
    button.disabled = true;
    var before = document.getElementById("version") ? document.getElementById("version").textContent : "";
    post(url).then(function (r) {
      button.disabled = false;
      if (r.ok) waitFor(target, before);
      else { status.className = "status err"; status.textContent = r.data.error || "failed"; }
    });
  }
  $("fw-activate").addEventListener("click", function (ev) {
    ev.preventDefault();
    if (installed) act(ev.target, "/api/v1/firmware/activate", installed.version);
  });
  $("fw-rollback").addEventListener("click", function (ev) {
    ev.preventDefault();
    var other = ev.target.textContent.match(/\(([^)]*)\)/);
    act(ev.target, "/api/v1/firmware/rollback", other ? other[1] : "the other system");
  });
  refresh();
})();
