// Drives Debian's chromium (headless) through the dashboard as a user would: the token box,
// the chart, the workers table with search and sort, the page's own refresh, a reload that
// keeps the token, and a phone-sized viewport. Any console error or page error fails it.
//   node dashboard.mjs URL TOKEN WORKER[,WORKER...]
// Prints one JSON line of findings; exits 1 with the failures listed.
import { chromium } from "playwright-core";

const [url, token, workerList] = process.argv.slice(2);
if (!url || !token || !workerList) {
  console.error("usage: node dashboard.mjs URL TOKEN WORKER[,WORKER...]");
  process.exit(2);
}
const workers = workerList.split(",");
const failures = [];
const check = (ok, what) => { if (!ok) failures.push(what); };
const errors = [];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  // Playwright adds --headless, --no-sandbox (chromiumSandbox false) and a fresh profile.
  args: ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const found = {};
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("console", (m) => { if (m.type() === "error") errors.push("console: " + m.text()); });
  page.on("pageerror", (e) => errors.push("page error: " + e.message));
  page.on("requestfailed", (r) => errors.push("request failed: " + r.url()));
  const requests = [];
  page.on("request", (r) => requests.push(r.url()));

  await page.goto(url);
  // The API has a token: the page asks for it before any data request.
  await page.locator("#login").waitFor({ state: "visible", timeout: 10000 });
  found.asked_for_token = true;
  check(!requests.some((u) => u.includes("/1/")), "no data request before the token is given");
  await page.fill("#token-input", token);
  await page.click("#login-form button[type=submit]");
  await page.waitForSelector("body[data-loaded]", { timeout: 15000 });
  check(await page.locator("#login").isHidden(), "the token box closes");

  found.points = Number(await page.getAttribute("#chart", "data-points"));
  found.circles = await page.locator("#chart circle").count();
  check(found.points >= 1 && found.circles >= 1, `the chart has points (${found.points}, ${found.circles} drawn)`);
  found.miners = (await page.textContent("#miners")).trim();
  found.accepted = (await page.textContent("#accepted")).trim();
  check(Number(found.miners) === workers.length, `miners card shows ${workers.length}: ${found.miners}`);
  check(Number(found.accepted.replace(/,/g, "")) > 0, `accepted shares shown: ${found.accepted}`);
  found.hashrate = (await page.textContent("#hr-now")).trim();

  const rows = async () => page.$$eval("#workers tbody tr", (trs) => trs.map((tr) => tr.getAttribute("data-worker")));
  found.rows = await rows();
  for (const w of workers) check(found.rows.includes(w), `worker ${w} listed (${found.rows})`);

  // Search narrows the table; clearing it brings every row back.
  await page.fill("#search", workers[1]);
  const searched = await rows();
  check(searched.length >= 1 && searched.every((n) => n.includes(workers[1])), `search for ${workers[1]}: ${searched}`);
  await page.fill("#search", "");
  check((await rows()).length === found.rows.length, "clearing the search shows every worker");

  // Sorting by name, then the other way.
  await page.click("th[data-col='0']");
  const asc = await rows();
  const sorted = [...asc].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  check(JSON.stringify(asc) === JSON.stringify(sorted), `name ascending: ${asc}`);
  check((await page.getAttribute("th[data-col='0']", "aria-sort")) === "ascending", "the header shows the sort");
  await page.click("th[data-col='0']");
  check(JSON.stringify(await rows()) === JSON.stringify([...sorted].reverse()), "name descending");

  // The page refreshes itself.
  const loaded = await page.getAttribute("body", "data-loaded");
  await page.waitForFunction((t) => document.body.getAttribute("data-loaded") !== t, loaded, { timeout: 15000 });
  found.refreshed = true;

  // A reload keeps the token (sessionStorage) and loads without asking again.
  await page.reload();
  await page.waitForSelector("body[data-loaded]", { timeout: 15000 });
  check(await page.locator("#login").isHidden(), "after a reload the token is still known");

  // Pool groups: the proxy reports its groups (here the default group with the test
  // pool) and the page draws each with its pools' state.
  await page.waitForSelector("[data-group='default']", { timeout: 15000 });
  const badges = await page.$$eval("[data-group='default'] .badge", (b) => b.map((x) => x.textContent));
  check(JSON.stringify(badges) === JSON.stringify(["up"]), `pool states shown: ${badges}`);
  found.groups_rendered = true;

  // A phone: nothing wider than the screen but the table's own scroll box.
  await page.setViewportSize({ width: 390, height: 844 });
  // The chart redraws at the new width, so its labels keep their size.
  const fits = () => {
    const c = document.getElementById("chart");
    return Math.abs(c.viewBox.baseVal.width - Math.max(280, c.getBoundingClientRect().width)) < 2;
  };
  await page.waitForFunction(fits, null, { timeout: 5000 });
  found.chart_redrawn_for_phone = true;
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  found.phone_overflow_px = overflow;
  check(overflow <= 0, `no sideways scrolling on a phone (${overflow} px too wide)`);
  if (process.env.SCREENSHOT_DIR) {
    await page.screenshot({ path: process.env.SCREENSHOT_DIR + "/dashboard-phone.png", fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.waitForFunction(fits, null, { timeout: 5000 });
    await page.screenshot({ path: process.env.SCREENSHOT_DIR + "/dashboard.png", fullPage: true });
  }
} catch (e) {
  failures.push("driver: " + e.message);
} finally {
  await browser.close();
}
for (const e of errors) failures.push(e);
console.log(JSON.stringify({ ok: failures.length === 0, found, failures }));
process.exit(failures.length === 0 ? 0 : 1);
