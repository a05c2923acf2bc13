// Drives Debian's Chromium through the monitor pages for tests/monitor.rs, as a user would:
// the model list, a model with its counts, the instance list filtered to incidents, one
// instance with its path, the retry button, and a sidecar killed while the page is open.
// Protocol with the Rust test: it prints `ready-to-kill` and waits for one line on stdin
// before that last step; its last line on stdout is a JSON object of what it measured.
// Every failed expectation exits non-zero with the reason; screenshots go to --out.
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";
import { mkdirSync } from "node:fs";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => (a.startsWith("--") ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), []),
);
const base = args.base;
const processId = args.process;
const expect = JSON.parse(args.expect);
const out = args.out;
mkdirSync(out, { recursive: true });
const input = createInterface({ input: process.stdin });
const lines = input[Symbol.asyncIterator]();

function check(ok, what) {
  if (!ok) {
    console.error(`monitor browser test: ${what}`);
    process.exit(1);
  }
}

/// Polls `f` until it is true or `ms` pass: the pages change as the live stream arrives.
async function until(what, ms, f) {
  const deadline = Date.now() + ms;
  for (;;) {
    let last;
    try {
      if (await f()) return;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) check(false, `${what} (not within ${ms} ms${last ? `: ${last.message}` : ""})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const browser = await chromium.launch({ executablePath: args.chromium || "/usr/bin/chromium", args: ["--no-sandbox"] });
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
const text = async (selector) => ((await page.locator(selector).first().textContent()) || "").trim();
const measured = {};

// The model list: one row per process with its counts over both sidecars.
await page.goto(`${base}/ui/`);
const row = `tr[data-process="${processId}"]`;
await until("the model list shows the counts", 10000, async () =>
  (await text(`${row} [data-count="completed"]`)) === String(expect.completed) &&
  (await text(`${row} [data-count="incident"]`)) === String(expect.incident));
await page.screenshot({ path: `${out}/models.png` });

// The model: counts, badges on the diagram, every element drawn.
await page.click(`${row} th a`);
await page.waitForURL(`**/ui/models/${processId}`);
for (const [k, v] of Object.entries({ active: expect.active, completed: expect.completed, incident: expect.incident })) {
  await until(`the model page shows ${v} ${k}`, 10000, async () => (await text(`.counts [data-count="${k}"]`)) === String(v));
}
const badge = (what, id) => text(`[data-badge="${what}"][data-for="${id}"] text`);
await until("the charge task's incident badge", 10000, async () => (await badge("incidents", "charge")) === String(expect.incident));
await until("the approval's active badge", 10000, async () => (await badge("active", "approve")) === String(expect.active));
for (const id of expect.elements) {
  check((await page.locator(`svg g.node[data-element="${id}"]`).count()) === 1, `element ${id} is drawn`);
}
check((await page.locator("#sidecars.ok").count()) === 1, "every sidecar answered");
await page.screenshot({ path: `${out}/model.png`, fullPage: true });

// Filter the list to incidents and open the first.
await page.selectOption('select[name="state"]', "incident");
await Promise.all([page.waitForURL("**state=incident**"), page.click('form.filters button[type="submit"]')]);
const states = await page.locator("section.instances tbody .state").allTextContents();
check(states.length === expect.incident && states.every((s) => s === "incident"), `the filtered list holds ${expect.incident} incidents: ${states}`);
await page.locator("section.instances tbody th a").first().click();
await page.waitForURL("**/ui/instances/**");
check((await text('[data-field="state"]')) === "incident", "the instance is in an incident");
check((await page.locator('svg g.node.incident[data-element="charge"]').count()) === 1, "the incident's element is marked");
for (const id of ["placed", "check", "large", "join"]) {
  check((await page.locator(`svg g.node.taken[data-element="${id}"]`).count()) === 1, `${id} is on the path taken`);
}
for (const id of ["f-check", "f-large", "small", "f-charge"]) {
  check((await page.locator(`svg g.flow.taken[data-element="${id}"]`).count()) === 1, `flow ${id} is on the path taken`);
}
check((await page.locator('svg g.flow.taken[data-element="big"]').count()) === 0, "the flow not taken is not marked");
const trace = await page.locator('a[rel="external"]').getAttribute("href");
check(trace && trace.startsWith(expect.trace_prefix), `the trace link uses the template: ${trace}`);
await page.screenshot({ path: `${out}/instance.png`, fullPage: true });

// Retry: the incident resolves through the owning sidecar and the instance completes.
const instanceUrl = page.url();
await Promise.all([page.waitForURL("**retried=**"), page.click('li[data-incident] button[type="submit"]')]);
// The page may reload itself as the instance moves on (its live stream): poll, not peek.
await until("the page says the incident was resolved", 10000, async () => (await page.locator(".notice").count()) === 1);
await until("the retried instance completes", 20000, async () => {
  if ((await text('[data-field="state"]')) === "completed") return true;
  await page.goto(instanceUrl);
  return false;
});
check((await page.locator('svg g.node.taken[data-element="done"]').count()) === 1, "the end event is on the path");
await page.screenshot({ path: `${out}/instance-retried.png`, fullPage: true });

// A sidecar killed while the model page is open: the page says so, and keeps the rest.
await page.goto(`${base}/ui/models/${processId}`);
await until("the page is live", 10000, async () => (await page.locator("#sidecars.ok").count()) === 1);
console.log("ready-to-kill");
await lines.next();
const killed = Date.now();
await until("the page says a sidecar does not answer", 5000, async () => (await page.locator("#sidecars.warn").count()) === 1);
measured.killed_shown_ms = Date.now() - killed;
const banner = await text("#sidecars");
check(banner.includes(expect.killed), `the banner names ${expect.killed}: ${banner}`);
const completed = Number(await text('.counts [data-count="completed"]'));
check(completed >= expect.survivor_completed, `the other sidecar's instances are still counted: ${completed}`);
await page.screenshot({ path: `${out}/sidecar-down.png`, fullPage: true });

await browser.close();
console.log(JSON.stringify(measured));
process.exit(0);
