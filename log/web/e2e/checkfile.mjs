// Usage: node checkfile.mjs URL SCREENSHOT-DIR FILE...
// Opens the explorer's home page in headless Chromium, picks each FILE in
// the "check a file" box and prints, as JSON, what the page concluded.
import { chromium } from "playwright-core";

const [url, shots, ...files] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage();
const results = [];
let n = 0;
for (const file of files) {
  await page.goto(url);
  await page.setInputFiles("#check-file", file);
  await page.waitForFunction(() => {
    const el = document.getElementById("check-result");
    return el && (el.className === "ok" || el.className === "bad");
  }, null, { timeout: 30000 });
  results.push({
    file,
    class: await page.getAttribute("#check-result", "class"),
    text: await page.textContent("#check-result"),
  });
  await page.screenshot({ path: `${shots}/check-file-${n++}.png`, fullPage: false });
}
await browser.close();
console.log(JSON.stringify(results));
