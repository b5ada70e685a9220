// The browserless "Hybrid automation" example, unchanged but for the endpoint and the page:
// liveURL, wait for a person, then read the page they left behind.
//   node seed_example.mjs ws://127.0.0.1:PORT?token=KEY PAGE_URL
import puppeteer from 'puppeteer-core';

const [endpoint, pageURL] = process.argv.slice(2);

const login = async () => {
  const browser = await puppeteer.connect({ browserWSEndpoint: endpoint });
  const page = await browser.newPage();

  await page.goto(pageURL);
  const cdp = await page.createCDPSession();
  const { liveURL } = await cdp.send('Browserless.liveURL');

  // Send this one-time link to your end-users.
  console.log(`Shareable Public URL: ${liveURL}`);

  // This event is fired after a user closes the page.
  const event = await new Promise((r) => cdp.on('Browserless.liveComplete', r));
  console.log(`liveComplete: ${JSON.stringify(event)}`);

  // Implement your scraping, data collections or further automations here.
  const got = await page.evaluate(() => window.got);
  console.log(`page: ${JSON.stringify(got)}`);

  browser.close();
};

login().catch((e) => { console.log(e); process.exit(1); });
