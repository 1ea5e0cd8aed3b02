// Opens osprey serve's page in headless Chromium (Debian's, driven by playwright-core), uploads
// an image through the page's file input as a user would, waits for the answer and prints what
// the page shows as JSON: the model line, the top-3 rows (class, percent) and the status line.
// usage: node serve_page_test.mjs URL IMAGE [SCREENSHOT.png]
import { chromium } from 'playwright-core';

const [url, image, screenshot] = process.argv.slice(2);
if (!url || !image) {
  console.error('usage: node serve_page_test.mjs URL IMAGE [SCREENSHOT.png]');
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
try {
  const page = await browser.newPage({ viewport: { width: 800, height: 600 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url, { timeout: 15000 });
  await page.waitForFunction(() => !document.getElementById('model').textContent.startsWith('loading'),
                             null, { timeout: 15000 });
  await page.setInputFiles('#file', image);
  await page.waitForSelector('#result .row', { timeout: 15000 });
  const rows = await page.$$eval('#result .row', (els) => els.map((el) => ({
    class: el.querySelector('.name').textContent,
    percent: parseFloat(el.querySelector('.prob').textContent),
    uncertain: el.classList.contains('uncertain'),
  })));
  const result = {
    model: await page.textContent('#model'),
    status: await page.textContent('#status'),
    rows,
    errors,
  };
  if (screenshot) await page.screenshot({ path: screenshot });
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
