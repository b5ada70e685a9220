// Cloudflare's "Human in the Loop" example (Browser Run, ../shared/seeds), unchanged but for
// the host, the token and the page URLs: a browser made by POST, its first target's Live View
// URL, then a new page the person signs in on while the script waits for the navigation.
//   node cloudflare_manual.mjs http://HOST:PORT API_TOKEN LOGIN_URL DASHBOARD_URL
import puppeteer from "puppeteer-core";

const [HOST, API_TOKEN, LOGIN_URL, DASHBOARD_URL] = process.argv.slice(2);
const ACCOUNT_ID = "<your-account-id>";

// Create a browser session via CDP
const response = await fetch(
  `${HOST}/client/v4/accounts/${ACCOUNT_ID}/browser-rendering/devtools/browser?keep_alive=600000&targets=true`,
  { method: "POST", headers: { Authorization: `Bearer ${API_TOKEN}` } },
);
const { webSocketDebuggerUrl, targets } = await response.json();
const liveUrl = targets[0].devtoolsFrontendUrl;

// Connect Puppeteer to the session
const browser = await puppeteer.connect({
  browserWSEndpoint: webSocketDebuggerUrl,
  headers: { Authorization: `Bearer ${API_TOKEN}` },
});

const page = await browser.newPage();
await page.goto(LOGIN_URL);

// Share the Live View URL with the human operator (for example, send it via Slack, email, or display it in a UI)
console.log(`Human input needed. Open this URL: ${liveUrl}`);

// Wait for the human to complete login (5 minute timeout — the script will continue after this period)
await page.waitForNavigation({ waitUntil: "networkidle0", timeout: 300000 });

// Login complete, continue automation
const cookies = await page.cookies();
console.log("Login complete. Continuing automation...");

await page.goto(DASHBOARD_URL);
const content = await page.content();

browser.disconnect();
