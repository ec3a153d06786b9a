// Browser test of the portal page, run by scripts/test-browser.sh with the
// agent, two instances of each back end and the portal already started.
// Environment: PORTAL_URL (http://127.0.0.1:P), STOCK_PORTS and
// WEATHER_PORTS (comma-separated ports of the registered instances),
// SCREENSHOT (where to write the PNG), CHROMIUM (default /usr/bin/chromium).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const portal = process.env.PORTAL_URL;
const stockPorts = (process.env.STOCK_PORTS || "").split(",").filter(Boolean);
const weatherPorts = (process.env.WEATHER_PORTS || "").split(",").filter(Boolean);
const screenshot = process.env.SCREENSHOT;

test("adds a stock and a city through the page", { timeout: 120_000 }, async () => {
  assert.ok(portal, "PORTAL_URL is not set");
  assert.ok(stockPorts.length > 0 && weatherPorts.length > 0, "STOCK_PORTS / WEATHER_PORTS not set");
  const profile = mkdtempSync(join(tmpdir(), "portal-chromium-"));
  // A fresh profile directory: playwright passes it as --user-data-dir.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1440, height: 760 },
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  try {
    const page = context.pages()[0] || (await context.newPage());
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(portal + "/", { waitUntil: "load" });
    assert.equal(await page.title(), "Consul client lookup demo");
    assert.equal(await page.locator("#stock-first").isDisabled(), true);

    const rowCells = (grid, n) =>
      page.locator(`#${grid} tbody tr`).nth(n).locator("td").allTextContents();

    // Add three stocks and two cities, one at a time.
    for (const sym of ["AMZN", "msft", "AAPL"]) {
      await page.fill("#stock-input", sym);
      await page.click("#stock-form button[type=submit]");
      await page.locator("#stock-status", { hasText: "Answered by" }).waitFor();
      await page.waitForFunction((s) => document.querySelector("#stock-input").value === "" &&
        [...document.querySelectorAll("#stock-grid td")].some((td) => td.textContent === s), sym.toUpperCase());
    }
    for (const city of ["London", "São Paulo"]) {
      await page.fill("#weather-input", city);
      await page.click("#weather-form button[type=submit]");
      await page.waitForFunction((c) =>
        [...document.querySelectorAll("#weather-grid td")].some((td) => td.textContent === c), city);
    }

    const first = await rowCells("stock-grid", 0);
    assert.equal(first[0], "AMZN");
    assert.equal(first[1], "Amazon");
    assert.match(first[2], /^\$\d+\.\d{2}$/);
    const [node, port] = first[3].split(":");
    assert.ok(node.length > 0, `instance node in ${first[3]}`);
    assert.ok(stockPorts.includes(port), `instance port ${port} not among ${stockPorts}`);
    assert.equal(await page.locator("#stock-grid tbody tr").count(), 3);

    const london = await rowCells("weather-grid", 0);
    assert.deepEqual(london.slice(0, 2), ["London", "GB"]);
    assert.match(london[2], /^-?\d+(\.\d)? °[CF]$/);
    assert.ok(weatherPorts.includes(london[3].split(":")[1]), `weather instance ${london[3]}`);
    const sp = await rowCells("weather-grid", 1);
    assert.deepEqual(sp.slice(0, 2), ["São Paulo", "BR"]);

    // Unknown symbol: an error message, no row.
    await page.fill("#stock-input", "NOSUCHSYM");
    await page.click("#stock-form button[type=submit]");
    await page.locator("#stock-status.error", { hasText: "unknown symbol" }).waitFor();
    assert.equal(await page.locator("#stock-grid tbody tr").count(), 3);

    // Sorting by name puts Amazon, Apple, Microsoft in order.
    await page.click("#stock-sort-name");
    const names = await page.locator("#stock-grid tbody tr td:nth-child(2)").allTextContents();
    assert.deepEqual(names, ["Amazon", "Apple Inc.", "Microsoft"]);

    // Paging: four rows per page, a fifth stock opens page 2.
    for (const sym of ["NVDA", "GOOGL"]) {
      await page.fill("#stock-input", sym);
      await page.click("#stock-form button[type=submit]");
      await page.waitForFunction((s) =>
        [...document.querySelectorAll("#stock-grid td")].some((td) => td.textContent === s), sym);
    }
    assert.equal(await page.locator("#stock-grid tbody tr").count(), 1);
    assert.equal(await page.locator("#stock-first").isDisabled(), false);
    await page.click("#stock-first");
    assert.equal(await page.locator("#stock-grid tbody tr").count(), 4);

    assert.deepEqual(errors, []);
    if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
});
