// cpan-tlog explorer: checks in the browser what the server shows. On an
// entry page it fetches the entry's tlog-proof and verifies the
// checkpoint's Ed25519 note signature by the log key, the cosignatures of
// the log's witness policy (Ed25519 with WebCrypto; ML-DSA-44 with
// @noble/post-quantum, which this server serves itself from
// /static/vendor/ and loads only when a witness needs it) and the RFC 6962
// inclusion proof of the exact leaf shown. On the home page it hashes a
// local file (nothing is uploaded), asks the log which entries have that
// sha256, and verifies each entry's proof and logged size the same way.
//
// The keys come from the page, that is from this server: the page says
// which they are so that a reader can compare them with their own policy.
//
// Every check ends in a verdict with the command-line verifiers' codes:
// 0 verified, 1 refused, 2 could not check, 3 security.
"use strict";

const VERIFIED = 0, REFUSED = 1, UNCHECKED = 2;

class Verdict extends Error {
  constructor(code, message) { super(message); this.code = code; }
}
const refuse = (m) => new Verdict(REFUSED, m);
const unchecked = (m) => new Verdict(UNCHECKED, m);

// The Go client's bounds (client/tlogproof): a checkpoint note with its
// cosignatures (16 signatures of up to 5 kB fit, as C2SP signed-note
// asks), a whole tlog-proof, and x/mod note's most signature lines.
const MAX_CHECKPOINT = 128 * 1024;
const MAX_PROOF = MAX_CHECKPOINT + 16 * 1024;
const MAX_SIGNATURE_LINES = 100;
const MAX_UINT64 = 0xffffffffffffffffn;
// MAX_LEAF is the v1 entry format's bound (log/entry.MaxSize).
const MAX_LEAF = 8192;

const enc = new TextEncoder();

// b64 decodes canonical base64 (RFC 4648 with padding, no other encoding
// of the same bytes), as every verifier must read a note alike.
function b64(s) {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) throw refuse("not base64: " + s.slice(0, 40));
  const bin = atob(s);
  if (btoa(bin) !== s) throw refuse("not canonical base64: " + s.slice(0, 40));
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

function u64(n) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// KEY_TYPES names the signed-note key types this page checks.
const KEY_TYPES = { 1: "Ed25519", 4: "Ed25519 cosignature/v1", 6: "ML-DSA-44 cosignature" };

// parseVKey reads a signed-note verifier key, name+id+base64(type || key),
// and checks that its key ID is SHA-256(name || "\n" || type || key)[:4].
async function parseVKey(vkey, what) {
  const m = /^([^+\s]+)\+([0-9a-f]{8})\+(\S+)$/.exec(String(vkey));
  if (!m) throw unchecked(what + " is not a verifier key: " + vkey);
  const parts = m.slice(1);
  let key;
  try { key = b64(parts[2]); } catch { throw unchecked(what + "'s key is not base64"); }
  if (key.length < 2) throw unchecked(what + "'s key is empty");
  const id = hex((await sha256(concat(enc.encode(parts[0] + "\n"), key))).slice(0, 4));
  if (id !== parts[1]) throw unchecked(what + "'s key ID " + parts[1] + " is not its key's (" + id + ")");
  return { name: parts[0], id, type: key[0], pub: key.slice(1), vkey };
}

// sigLines returns the note's text (with its final newline) and its
// signature lines, each as { name, id, sig }.
function splitNote(note) {
  if (enc.encode(note).length > MAX_CHECKPOINT) throw refuse("the checkpoint is larger than " + MAX_CHECKPOINT + " bytes");
  const cut = note.indexOf("\n\n");
  if (cut < 0 || !note.endsWith("\n")) throw refuse("the checkpoint is not a signed note");
  const lines = [];
  const sigLines = note.slice(cut + 2, -1).split("\n");
  if (sigLines.length > MAX_SIGNATURE_LINES) throw refuse("the checkpoint has " + sigLines.length + " signature lines, more than " + MAX_SIGNATURE_LINES);
  for (const line of sigLines) {
    const m = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!m) throw refuse("the checkpoint has a malformed signature line");
    const sig = b64(m[2]);
    if (sig.length < 5) throw refuse("the checkpoint has a signature line too short to hold a signature");
    lines.push({ name: m[1], id: hex(sig.slice(0, 4)), sig: sig.slice(4) });
  }
  return { text: note.slice(0, cut + 1), lines };
}

async function ed25519(pub, sig, msg) {
  const k = await crypto.subtle.importKey("raw", pub, { name: "Ed25519" }, false, ["verify"]);
  return crypto.subtle.verify({ name: "Ed25519" }, k, sig, msg);
}

// verifyNote checks the log's signature on the note: every line under the
// log key must verify, and there must be one.
async function verifyNote(note, logKey) {
  if (logKey.type !== 1 || logKey.pub.length !== 32) throw unchecked("the log key is not an Ed25519 note key");
  const { text, lines } = splitNote(note);
  let signed = false;
  for (const l of lines) {
    if (l.name !== logKey.name || l.id !== logKey.id) continue;
    if (!(await ed25519(logKey.pub, l.sig, enc.encode(text)))) throw refuse("the log's signature on the checkpoint does not verify");
    signed = true;
  }
  if (!signed) throw refuse("the checkpoint carries no signature by the log key " + logKey.name + "+" + logKey.id);
  return { text, lines };
}

let mldsa = null;
// mlDSA44 loads @noble/post-quantum's ML-DSA-44, served by this server.
async function mlDSA44() {
  if (!mldsa) {
    mldsa = import("/static/vendor/@noble/post-quantum/ml-dsa.js").then((m) => m.ml_dsa44);
  }
  try {
    return await mldsa;
  } catch (e) {
    mldsa = null;
    throw unchecked("the ML-DSA-44 verifier could not be loaded (" + e.message + ")");
  }
}

// cosignedMessage is tlog-cosignature's ML-DSA-44 signed message for a
// checkpoint: a subtree [0, size) with the cosigner's name and timestamp.
function cosignedMessage(cosigner, ts, origin, size, root) {
  const name = enc.encode(cosigner), org = enc.encode(origin);
  if (name.length < 1 || name.length > 255 || org.length < 1 || org.length > 255) return null;
  return concat(enc.encode("subtree/v1\n\0"), new Uint8Array([name.length]), name, ts,
    new Uint8Array([org.length]), org, u64(0), u64(size), root);
}

// cosignedBy returns the policy's witnesses whose cosignature on the
// checkpoint verifies (C2SP tlog-cosignature: key ID, 8-byte big-endian
// timestamp, then Ed25519 over "cosignature/v1\ntime <t>\n" + text, or
// ML-DSA-44 over the subtree/v1 message). A line under a witness's key
// that does not verify is an error, not an absence.
async function cosignedBy(cp, witnesses) {
  const out = [];
  for (const w of witnesses) {
    for (const l of cp.lines) {
      if (l.name !== w.key.name || l.id !== w.key.id) continue;
      const ts = l.sig.slice(0, 8), sig = l.sig.slice(8);
      let ok;
      if (w.key.type === 4) {
        if (l.sig.length !== 8 + 64) throw refuse("witness " + w.name + "'s cosignature is malformed");
        if (ts[0] & 0x80) throw refuse("witness " + w.name + "'s cosignature has a timestamp past 2^63-1");
        const t = new DataView(ts.buffer, ts.byteOffset, 8).getBigUint64(0).toString();
        ok = await ed25519(w.key.pub, sig, enc.encode("cosignature/v1\ntime " + t + "\n" + cp.text));
      } else if (w.key.type === 6) {
        if (l.sig.length !== 8 + 2420) throw refuse("witness " + w.name + "'s ML-DSA-44 cosignature is malformed");
        if (ts[0] & 0x80) throw refuse("witness " + w.name + "'s cosignature has a timestamp past 2^63-1");
        const msg = cosignedMessage(w.key.name, ts, cp.origin, cp.size, cp.root);
        if (!msg) throw refuse("witness " + w.name + "'s name or the log's origin is too long for an ML-DSA-44 cosignature");
        const v = await mlDSA44();
        try { ok = v.verify(sig, msg, w.key.pub); } catch { ok = false; }
      } else {
        throw unchecked("witness " + w.name + "'s key type " + w.key.type + " is not one this page can check");
      }
      if (!ok) throw refuse("witness " + w.name + "'s cosignature on the checkpoint does not verify");
      if (!out.includes(w.name)) out.push(w.name);
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
  if (index >= size) throw refuse("the entry's index is outside the checkpoint's tree");
  let fn = index, sn = size - 1n, r = leafHash;
  for (const p of proof) {
    if (sn === 0n) throw refuse("the inclusion proof is too long");
    if (fn % 2n === 1n || fn === sn) {
      r = await sha256(concat(new Uint8Array([1]), p, r));
      if (fn % 2n === 0n) {
        while (fn % 2n === 0n && fn !== 0n) { fn /= 2n; sn /= 2n; }
      }
    } else {
      r = await sha256(concat(new Uint8Array([1]), r, p));
    }
    fn /= 2n; sn /= 2n;
  }
  if (sn !== 0n) throw refuse("the inclusion proof is too short");
  return r;
}

// readTrust reads the keys the page was given: the log's and, with a
// witness policy, each witness's.
async function readTrust(origin, vkey, quorum) {
  const t = { origin, log: await parseVKey(vkey, "the log key"), policy: null, witnesses: [] };
  if (t.log.name !== origin) throw unchecked("the log key is for " + t.log.name + ", not " + origin);
  if (quorum) {
    let p;
    try { p = JSON.parse(quorum); } catch { throw unchecked("the page's witness policy is not JSON"); }
    if (p.error) throw unchecked("the server could not give this page its witness policy (" + p.error + "), so the witnesses' cosignatures cannot be checked");
    t.policy = p;
    for (const [name, vk] of Object.entries(p.witnesses)) {
      t.witnesses.push({ name, key: await parseVKey(vk, "witness " + name) });
    }
  }
  return t;
}

// checkProof verifies a tlog-proof for the entry at index (and, when
// given, the exact leaf) against the trusted keys. It returns what was
// verified, or throws a Verdict.
//
// As the Go client does, a proof that cannot be read as a tlog-proof at
// all (too large, not the format, a malformed header) is "could not
// check": it is no claim that anything failed to verify.
async function checkProof(raw, trust, index, leaf) {
  if (raw.length > MAX_PROOF) throw unchecked("the proof is larger than " + MAX_PROOF + " bytes");
  let proof;
  try { proof = new TextDecoder("utf-8", { fatal: true }).decode(raw); } catch { throw refuse("the proof is not UTF-8"); }
  const blank = proof.indexOf("\n\n");
  if (blank < 0) throw unchecked("not a tlog-proof");
  const head = proof.slice(0, blank).split("\n");
  if (head[0] !== "c2sp.org/tlog-proof@v1") throw unchecked("not a tlog-proof");
  let i = 1, extra = null;
  const malformed = (what) => { throw unchecked("the tlog-proof is malformed: " + what); };
  if (head[i] && head[i].startsWith("extra ")) {
    try { extra = b64(head[i++].slice(6)); } catch { malformed("its extra line is not base64"); }
  }
  const m = /^index (0|[1-9][0-9]{0,19})$/.exec(head[i] || "");
  if (!m || BigInt(m[1]) > MAX_UINT64) malformed("no index line of a 64-bit index after the extra line");
  const at = BigInt(m[1]);
  if (!extra) malformed("it does not carry the entry");
  let hashes;
  try { hashes = head.slice(i + 1).map(b64); } catch { malformed("a hash is not base64"); }
  if (hashes.some((h) => h.length !== 32)) malformed("a hash is not 32 bytes");
  if (index !== undefined && at !== BigInt(index)) throw refuse("the proof is for another index");
  if (leaf && !equal(extra, leaf)) throw refuse("the proof is for another leaf than the one shown");
  const cp = await verifyNote(proof.slice(blank + 2), trust.log);
  const lines = cp.text.split("\n");
  if (lines.length < 4 || lines[0] !== trust.origin) throw refuse("the checkpoint is for " + lines[0] + ", not " + trust.origin);
  if (!/^(0|[1-9][0-9]{0,19})$/.test(lines[1])) throw refuse("the checkpoint's size is not a decimal number");
  cp.origin = lines[0];
  cp.size = BigInt(lines[1]);
  cp.root = b64(lines[2]);
  if (cp.root.length !== 32) throw refuse("the checkpoint's root is not 32 bytes");
  let cosigned = [];
  if (trust.policy) {
    cosigned = await cosignedBy(cp, trust.witnesses);
    if (!satisfied(trust.policy, trust.policy.quorum, cosigned)) {
      throw refuse("the checkpoint is not cosigned by the log's witness quorum " + trust.policy.quorum + " (cosigned by: " + (cosigned.join(", ") || "none") + ")");
    }
  }
  const leafHash = await sha256(concat(new Uint8Array([0]), extra));
  const got = await rootFromInclusion(at, cp.size, leafHash, hashes);
  if (!equal(got, cp.root)) throw refuse("the inclusion proof does not lead to the checkpoint's root");
  return { index: at, leaf: extra, size: cp.size, root: lines[2], cosigned };
}

// readLeaf parses a v1 entry as strictly as log/entry.Parse (and the
// Perl verifier's _parse_entry) does: only what the log's encoder writes,
// byte for byte, is an entry, so the page, the Go client and the Perl
// verifier give one verdict (testdata/vectors-entries.jsonl). It returns
// the fields the page compares with a file (kind, path, size, sha256).
const INDEX_PATHS = ["modules/02packages.details.txt.gz", "modules/02packages.details.txt",
  "modules/06perms.txt.gz", "modules/06perms.txt", "authors/01mailrc.txt.gz"];
const ENTRY_KEYS = { upload: ["path", "size", "sha256", "uploader", "time"], index: ["path", "size", "sha256", "time"], delete: ["path", "time"] };

function validID(id) { return /^[A-Z][A-Z0-9-]{1,31}$/.test(id); }

// validPath is internal/cpan's ValidatePath: authors/id/A/AB/ABC/...
function validPath(p) {
  if (!p.startsWith("authors/id/")) return false;
  const rest = p.slice("authors/id/".length);
  if (new TextEncoder().encode(rest).length > 255) return false;
  if (/[\x00-\x20\x7f-\x9f\\\uFFFD\u{13439}-\u{1343F}]|\p{White_Space}|\p{Cf}/u.test(rest)) return false;
  const parts = rest.split("/");
  if (parts.length < 4 || parts.some((x) => x === "" || x === "." || x === "..")) return false;
  const id = parts[2];
  return validID(id) && parts[0] === id.slice(0, 1) && parts[1] === id.slice(0, 2);
}

function decimal(v) { return /^(?:0|[1-9][0-9]{0,19})$/.test(v) && (v.length < 20 || v <= "18446744073709551615"); }

function validTime(t) {
  const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z$/.exec(t);
  if (!m) return false;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number);
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59) return false;
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  return d <= [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1];
}

function readLeaf(bytes) {
  if (bytes.length > MAX_LEAF) throw refuse("the entry is longer than " + MAX_LEAF + " bytes");
  let s;
  try { s = new TextDecoder("utf-8", { fatal: true }).decode(bytes); } catch { throw refuse("the entry is not UTF-8"); }
  if (!s.endsWith("\n")) throw refuse("the entry does not end with a newline");
  const lines = s.slice(0, -1).split("\n");
  if (lines.length > 13) throw refuse("the entry has more lines than any v1 entry");
  const kind = /^cpan-tlog\/v1 (upload|index|delete)$/.exec(lines.shift());
  if (!kind) throw refuse("the entry is not a v1 entry");
  const e = { kind: kind[1] };
  for (const k of ENTRY_KEYS[e.kind]) {
    const l = lines.shift();
    if (l === undefined || !l.startsWith(k + " ") || l.length === k.length + 1) throw refuse("the entry has no " + k + " line where one belongs");
    e[k] = l.slice(k.length + 1);
  }
  if (e.kind === "index" ? !INDEX_PATHS.includes(e.path) : !validPath(e.path)) throw refuse("the entry's path is not one the log may hold");
  if (!validTime(e.time)) throw refuse("the entry's time is malformed");
  if (e.kind !== "delete") {
    if (!decimal(e.size) || e.size.length > 16 || BigInt(e.size) > 9007199254740992n) throw refuse("the entry's size line is malformed");
    if (!/^[0-9a-f]{64}$/.test(e.sha256)) throw refuse("the entry's sha256 line is malformed");
  }
  if (e.kind === "upload" && !validID(e.uploader)) throw refuse("the entry's uploader is not a PAUSE id");
  if (lines.length > 0) {
    // Only an upload goes on, with the sigstore lines in their order.
    if (e.kind !== "upload") throw refuse("the entry has lines its kind does not have");
    const seen = {};
    const value = (l, k) => {
      const m = new RegExp("^" + k + " ([\\x21-\\x7e]{1,1024})$").exec(l || "");
      if (!m) throw refuse("the entry's " + k + " line is malformed");
      return m[1];
    };
    for (const k of ["sigstore-artifact-sha256", "sigstore-issuer", "sigstore-san"]) {
      seen[k] = value(lines.shift(), k);
    }
    if (!/^[0-9a-f]{64}$/.test(seen["sigstore-artifact-sha256"])) throw refuse("the entry's sigstore-artifact-sha256 is malformed");
    for (const k of ["sigstore-source-repo", "sigstore-build-config", "sigstore-rekor-index", "sigstore-rekor-log"]) {
      if (lines.length === 0) break;
      if (!lines[0].startsWith(k + " ")) continue;
      seen[k] = value(lines.shift(), k);
    }
    if (seen["sigstore-rekor-index"] !== undefined && !decimal(seen["sigstore-rekor-index"])) throw refuse("the entry's sigstore-rekor-index is malformed");
    if (seen["sigstore-rekor-log"] !== undefined && (!/^(?:[0-9a-f]{2}){1,64}$/.test(seen["sigstore-rekor-log"]) || seen["sigstore-rekor-index"] === undefined)) {
      throw refuse("the entry's sigstore-rekor-log is malformed");
    }
    if (lines.length > 0) throw refuse("the entry has a line no v1 entry has");
  }
  if (e.kind === "delete") return { kind: e.kind, path: e.path };
  return { kind: e.kind, path: e.path, size: BigInt(e.size), sha256: e.sha256 };
}

// keysSaid names the keys a verdict was reached with.
function keysSaid(trust, cosigned) {
  let s = "checked against the log key " + trust.log.name + "+" + trust.log.id;
  if (trust.policy) {
    const ws = trust.witnesses.filter((w) => cosigned.includes(w.name));
    s += " and the cosignatures of " + ws.map((w) => w.name + " (" + KEY_TYPES[w.key.type] + ", key " + w.key.name + "+" + w.key.id + ")").join(", ") +
      ", which meet the log's witness policy (quorum " + trust.policy.quorum + ")";
  } else {
    s += "; this server names no witnesses, so no cosignature was checked";
  }
  return s + ". These keys came from this server: compare them with your own policy (below).";
}

function pageTrust() {
  const b = document.body.dataset;
  return readTrust(b.origin, b.vkey, b.quorum);
}

function show(el, verdict, text) {
  el.className = verdict === VERIFIED ? "ok" : verdict === UNCHECKED ? "unknown" : "bad";
  el.dataset.verdict = String(verdict);
  el.textContent = text;
}

function pending(el, text) {
  el.className = "pending";
  delete el.dataset.verdict;
  el.textContent = text;
}

async function fetchProof(index) {
  const resp = await fetch("/proof?index=" + index, { cache: "no-store" });
  const body = new Uint8Array(await resp.arrayBuffer());
  if (!resp.ok) throw unchecked("the log did not serve a proof for entry " + index + " (" + resp.status + "): " + new TextDecoder().decode(body.slice(0, 200)));
  return body;
}

async function verifyEntry(el, status) {
  const trust = await pageTrust();
  const index = BigInt(el.dataset.index);
  const r = await checkProof(await fetchProof(index), trust, index, b64(el.dataset.leaf));
  show(status, VERIFIED, "Verified in your browser: this exact leaf is entry " + index + " of the tree of size " + r.size +
    " that " + trust.origin + " signed (root " + r.root + "), " + keysSaid(trust, r.cosigned));
}

// MAX_CHECKED bounds how many entries with a file's sha256 are verified.
const MAX_CHECKED = 10;

// checkFile hashes a file and reports what the log holds for it: the
// entries with its sha256 and its size, each proof verified.
async function checkFile(file, out) {
  pending(out, "Hashing " + file.name + " in your browser…");
  const digest = hex(await crypto.subtle.digest("SHA-256", await file.arrayBuffer()));
  const size = BigInt(file.size);
  const what = file.name + " (sha256 " + digest + ", " + size + " bytes)";
  const resp = await fetch("/lookup?sha256=" + digest, { cache: "no-store" });
  if (resp.status === 404) {
    show(out, REFUSED, what + " is not in this log: no entry it holds has this sha256. " +
      "That is all the log can say: it knows only what it has logged, which may not be every file CPAN has published. " +
      "If this should be a CPAN release, search for its name above and compare its sha256 with the logged one: a different sha256 means a different file.");
    return;
  }
  if (!resp.ok) throw unchecked("the log's lookup answered " + resp.status);
  let matches;
  try { matches = await resp.json(); } catch { throw unchecked("the log's lookup answer is not JSON"); }
  if (!Array.isArray(matches) || matches.length === 0 || !matches.every((m) => Number.isSafeInteger(m.index) && m.index >= 0 && typeof m.path === "string")) {
    throw unchecked("the log's lookup answer is malformed");
  }
  const trust = await pageTrust();
  const same = [], sized = [];
  let last;
  for (const m of matches.slice(0, MAX_CHECKED)) {
    const r = await checkProof(await fetchProof(m.index), trust, m.index);
    const e = readLeaf(r.leaf);
    if (e.sha256 !== digest || e.path !== m.path) throw refuse("the log said entry " + m.index + " has this sha256, but its verified entry is " + e.path + " with sha256 " + (e.sha256 || "none"));
    (e.size === size ? same : sized).push({ index: m.index, path: e.path, size: e.size });
    last = r;
  }
  const list = (es) => es.map((e) => e.path + " at index " + e.index + " (" + e.size + " bytes)").join(", ");
  const more = matches.length > MAX_CHECKED ? " (the first " + MAX_CHECKED + " of " + matches.length + " entries were checked)" : "";
  if (same.length === 0) {
    show(out, REFUSED, what + " is not a file this log holds: its sha256 is logged, but with another size: " + list(sized) +
      more + ". That should never happen (a wrong size in the log, or a SHA-256 collision): report it to the CPAN security team.");
    return;
  }
  let text = what + " is in the log, verified in your browser: " + list(same) + more + "; " + keysSaid(trust, last.cosigned);
  if (sized.length) {
    text += " Remarkable: the log also has " + list(sized) + " with this sha256 but another size, which should never happen: report it to the CPAN security team.";
  }
  show(out, VERIFIED, text);
}

// checkVector plays a shared test vector (testdata/vectors): a proof and
// a file's bytes (both base64) and its CPAN path, against a trust of the
// policy's keys; it returns the verdict's code, as `cpantlog verify
// --proof` exits. The explorer's tests call it.
async function checkVector(v) {
  try {
    const trust = await readTrust(v.origin, v.vkey, v.quorum);
    const r = await checkProof(b64(v.proof), trust);
    const e = readLeaf(r.leaf);
    if (e.path !== v.path) throw refuse("the proof is for " + e.path + ", not " + v.path);
    const file = b64(v.file);
    if (e.kind === "delete" || e.size !== BigInt(file.length) || e.sha256 !== hex(await sha256(file))) throw refuse("the file is not the logged one");
    return { code: VERIFIED, message: "verified" };
  } catch (e) {
    return { code: e instanceof Verdict ? e.code : UNCHECKED, message: e.message };
  }
}

function failed(el) {
  return (e) => {
    const code = e instanceof Verdict ? e.code : UNCHECKED;
    show(el, code, (code === UNCHECKED ? "Could not check in your browser: " : "Verification in your browser FAILED: ") + e.message);
  };
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
    // The server's answer, shown without JavaScript, gives way to the
    // browser's own.
    pending(status, "Verifying in your browser…");
    verifyEntry(el, status).catch(failed(status)).finally(measure);
  }
  const input = document.getElementById("check-file"), out = document.getElementById("check-result");
  if (input && out) {
    input.addEventListener("change", () => {
      if (input.files[0]) checkFile(input.files[0], out).catch(failed(out));
    });
  }
});
