// cpan-tlog explorer: checks in the browser what the server shows, with
// WebCrypto only. On an entry page it fetches the entry's tlog-proof,
// verifies the checkpoint's Ed25519 note signature against the log key
// this page was configured with, and the RFC 6962 inclusion proof of the
// exact leaf shown. On the home page it hashes a local file (nothing is
// uploaded) and asks the log for that sha256.
"use strict";

const enc = new TextEncoder();

function b64(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function hex(buf) {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// verifyNote checks the signed note's signature by the vkey
// (name+hash+base64(0x01 || Ed25519 public key)) and returns its text.
async function verifyNote(note, vkey) {
  const [name, hash, key64] = [vkey.split("+")[0], vkey.split("+")[1], vkey.split("+").slice(2).join("+")];
  const key = b64(key64);
  if (key.length !== 33 || key[0] !== 1) throw new Error("the configured log key is not an Ed25519 note key");
  const cut = note.indexOf("\n\n");
  if (cut < 0) throw new Error("the checkpoint is not a signed note");
  const text = note.slice(0, cut + 1);
  const prefix = "\u2014 " + name + " ";
  for (const line of note.slice(cut + 2).split("\n")) {
    if (!line.startsWith(prefix)) continue;
    const sig = b64(line.slice(prefix.length));
    if (hex(sig.slice(0, 4)) !== hash) continue;
    const pub = await crypto.subtle.importKey("raw", key.slice(1), { name: "Ed25519" }, false, ["verify"]);
    if (await crypto.subtle.verify({ name: "Ed25519" }, pub, sig.slice(4), enc.encode(text))) return text;
    throw new Error("the log's signature on the checkpoint does not verify");
  }
  throw new Error("the checkpoint carries no signature by the log key " + vkey);
}

// cosignedBy returns the names of the policy's witnesses whose
// cosignature/v1 on the note text verifies (C2SP tlog-cosignature: the key
// hash, an 8-byte big-endian timestamp, and Ed25519 over
// "cosignature/v1\ntime <t>\n" + text). A line under a witness's key that
// does not verify is an error, not an absence.
async function cosignedBy(note, text, witnesses) {
  const sigLines = note.slice(note.indexOf("\n\n") + 2).split("\n");
  const out = [];
  for (const [wname, vkey] of Object.entries(witnesses)) {
    const parts = vkey.split("+");
    const name = parts[0], hash = parts[1], key = b64(parts.slice(2).join("+"));
    if (key.length !== 33 || key[0] !== 4) throw new Error("witness " + wname + "'s key is not a cosignature/v1 key");
    const pub = await crypto.subtle.importKey("raw", key.slice(1), { name: "Ed25519" }, false, ["verify"]);
    for (const line of sigLines) {
      if (!line.startsWith("\u2014 " + name + " ")) continue;
      const sig = b64(line.slice(name.length + 3));
      if (hex(sig.slice(0, 4)) !== hash) continue;
      if (sig.length !== 4 + 8 + 64) throw new Error("witness " + wname + "'s cosignature is malformed");
      const view = new DataView(sig.buffer, sig.byteOffset + 4, 8);
      const ts = view.getBigUint64(0).toString();
      const msg = enc.encode("cosignature/v1\ntime " + ts + "\n" + text);
      if (!(await crypto.subtle.verify({ name: "Ed25519" }, pub, sig.slice(12), msg))) {
        throw new Error("witness " + wname + "'s cosignature on the checkpoint does not verify");
      }
      if (!out.includes(wname)) out.push(wname);
    }
  }
  return out;
}

// satisfied evaluates the policy's quorum (a witness or a group of k of
// its members) over the witnesses that cosigned.
function satisfied(policy, name, cosigned, depth = 0) {
  if (depth > 32) return false;
  if (name in policy.witnesses) return cosigned.includes(name);
  const g = policy.groups[name];
  if (!g) return false;
  return g.members.filter((m) => satisfied(policy, m, cosigned, depth + 1)).length >= g.need;
}

// rootFromInclusion follows an RFC 6962 inclusion proof (RFC 9162 2.1.3.2).
async function rootFromInclusion(index, size, leafHash, proof) {
  if (index >= size) throw new Error("index outside the tree");
  let fn = index, sn = size - 1, r = leafHash;
  for (const p of proof) {
    if (sn === 0) throw new Error("inclusion proof too long");
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(concat(new Uint8Array([1]), p, r));
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      }
    } else {
      r = await sha256(concat(new Uint8Array([1]), r, p));
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Error("inclusion proof too short");
  return r;
}

async function verifyEntry(el, status) {
  const origin = document.body.dataset.origin, vkey = document.body.dataset.vkey;
  const index = Number(el.dataset.index);
  const leaf = b64(el.dataset.leaf);
  const resp = await fetch("/proof?index=" + index, { cache: "no-store" });
  if (!resp.ok) throw new Error("the log did not serve a proof (" + resp.status + "): " + (await resp.text()));
  const proof = await resp.text();
  const blank = proof.indexOf("\n\n");
  const head = proof.slice(0, blank).split("\n");
  const note = proof.slice(blank + 2);
  if (head[0] !== "c2sp.org/tlog-proof@v1") throw new Error("not a tlog-proof");
  let i = 1, extra = null;
  if (head[i].startsWith("extra ")) extra = b64(head[i++].slice(6));
  if (head[i] !== "index " + index) throw new Error("the proof is for another index");
  const hashes = head.slice(i + 1).map(b64);
  if (!extra || !equal(extra, leaf)) throw new Error("the proof is for another leaf than the one shown");
  const text = await verifyNote(note, vkey);
  let witnessed = "";
  if (document.body.dataset.quorum) {
    const policy = JSON.parse(document.body.dataset.quorum);
    const cosigned = await cosignedBy(note, text, policy.witnesses);
    if (!satisfied(policy, policy.quorum, cosigned)) {
      throw new Error("the checkpoint is not cosigned by the log's witness quorum " + policy.quorum + " (cosigned by: " + (cosigned.join(", ") || "none") + ")");
    }
    witnessed = ", cosigned by " + cosigned.join(", ") + " as the log's witness policy requires (quorum " + policy.quorum + ")";
  }
  const lines = text.split("\n");
  if (lines[0] !== origin) throw new Error("the checkpoint is for " + lines[0] + ", not " + origin);
  const size = Number(lines[1]), root = b64(lines[2]);
  const leafHash = await sha256(concat(new Uint8Array([0]), leaf));
  const got = await rootFromInclusion(index, size, leafHash, hashes);
  if (!equal(got, root)) throw new Error("the inclusion proof does not lead to the checkpoint's root");
  status.className = "ok";
  status.textContent = "Verified in your browser: this exact leaf is entry " + index + " of the tree of size " + size +
    " that " + origin + " signed" + witnessed + " (root " + lines[2] + ").";
}

async function checkFile(input, out) {
  const f = input.files[0];
  if (!f) return;
  out.className = "pending";
  out.textContent = "Hashing " + f.name + " in your browser…";
  const digest = hex(await crypto.subtle.digest("SHA-256", await f.arrayBuffer()));
  const resp = await fetch("/lookup?sha256=" + digest);
  if (resp.status === 404) {
    out.className = "bad";
    out.textContent = f.name + " (sha256 " + digest + ") is not in the log: it is not a file CPAN published.";
    return;
  }
  if (!resp.ok) throw new Error("lookup failed: " + resp.status);
  const matches = await resp.json();
  out.className = "ok";
  out.textContent = f.name + " (sha256 " + digest + ") is in the log: " +
    matches.map((m) => m.path + " at index " + m.index).join(", ") + ".";
}

document.addEventListener("DOMContentLoaded", () => {
  // Whether the page fits its window without scrolling sideways (the
  // explorer's tests read it at phone width), measured again once the
  // verification has written its result.
  // A table that scrolls inside itself hides columns: it does not fit.
  const measure = () => {
    const tablesFit = Array.from(document.querySelectorAll("main table")).every((t) => t.scrollWidth <= t.clientWidth + 1);
    document.body.dataset.fits = String(document.documentElement.scrollWidth <= window.innerWidth && tablesFit);
  };
  measure();
  const el = document.getElementById("leaf"), status = document.getElementById("verify-status");
  if (el && status) {
    verifyEntry(el, status).catch((e) => {
      status.className = "bad";
      status.textContent = "Verification in your browser FAILED: " + e.message;
    }).finally(measure);
  }
  const input = document.getElementById("check-file"), out = document.getElementById("check-result");
  if (input && out) {
    input.addEventListener("change", () => checkFile(input, out).catch((e) => {
      out.className = "bad";
      out.textContent = "Could not check the file: " + e.message;
    }));
  }
});
