// Usage: node drive.mjs JOB.json
// Drives the explorer in headless Chromium (Debian's /usr/bin/chromium)
// for log/web's Go tests and prints, as JSON, what each step saw.
//
// A job is { "js": bool, "shots": dir, "steps": [step...] }; with "js"
// false the browser runs no script at all. A step may:
//   goto  URL        open a page;
//   wait  SELECTOR   wait until that element's verdict is written (class
//                    ok, bad or unknown: neither pending nor the server's);
//   file  PATH       pick a file in the home page's "check a file" box and
//                    wait for #check-result's verdict;
//   vectors [V...]   call the page's checkVector on each shared vector;
//   leaves [B64...]  call the page's readLeaf on each leaf (base64);
//   bench {vector, n} time checkVector on one vector: its first call (the
//                    ML-DSA module loads then) and n more, in milliseconds;
//   read  [SEL...]   report each element's class, data-verdict and text;
//   shot  NAME       save a screenshot NAME.png in shots.
import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";

const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const done = (sel) => {
  const el = document.querySelector(sel);
  return el && ["ok", "bad", "unknown"].includes(el.className);
};
try {
  const context = await browser.newContext({ javaScriptEnabled: job.js !== false });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  // Console errors (a CSP violation, a module that does not load) count;
  // a fetch answered 404 (the log has no such file; no favicon) does not.
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource: the server responded with a status of 404")) errors.push(m.text());
  });
  const results = [];
  for (const step of job.steps) {
    const r = {};
    if (step.goto) r.status = (await page.goto(step.goto)).status();
    if (step.wait) await page.waitForFunction(done, step.wait, { timeout: 60000 });
    if (step.file) {
      await page.setInputFiles("#check-file", step.file);
      await page.waitForFunction(done, "#check-result", { timeout: 60000 });
    }
    if (step.vectors) {
      r.verdicts = [];
      for (const v of step.vectors) r.verdicts.push(await page.evaluate((v) => checkVector(v), v));
    }
    if (step.leaves) {
      r.leaves = await page.evaluate((leaves) => leaves.map((l) => {
        try {
          const e = readLeaf(b64(l));
          return { ok: true, kind: e.kind, path: e.path, size: e.size === undefined ? "" : String(e.size), sha256: e.sha256 || "" };
        } catch (e) {
          return { ok: false, code: e.code ?? null, message: e.message };
        }
      }), step.leaves);
    }
    if (step.bench) {
      r.bench = await page.evaluate(async ({ vector, n }) => {
        let t = performance.now();
        const first = await checkVector(vector);
        const firstMs = performance.now() - t;
        t = performance.now();
        for (let i = 0; i < n; i++) {
          const v = await checkVector(vector);
          if (v.code !== first.code) throw new Error("verdicts differ");
        }
        return { code: first.code, firstMs, ms: performance.now() - t };
      }, step.bench);
    }
    if (step.read) {
      r.read = {};
      for (const sel of step.read) {
        r.read[sel] = await page.evaluate((sel) => {
          const el = document.querySelector(sel);
          if (!el) return null;
          return { class: el.className, verdict: el.dataset.verdict ?? null, text: el.textContent, visible: el.offsetParent !== null };
        }, sel).catch(() => null);
      }
    }
    if (step.shot) await page.screenshot({ path: `${job.shots}/${step.shot}.png` });
    r.errors = errors.splice(0);
    results.push(r);
  }
  console.log(JSON.stringify(results));
} finally {
  await browser.close();
}
