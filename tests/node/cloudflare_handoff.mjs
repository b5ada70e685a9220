// Cloudflare's structured handoff (Browser Run's Human in the Loop CDP commands), unchanged but
// for the host, the token and the page URL: the script asks for a handoff, a person signs in
// and presses Done, the script gets Cloudflare.handoffComplete and goes on.
//   node cloudflare_handoff.mjs ws://HOST:PORT API_TOKEN LOGIN_URL
import puppeteer from "puppeteer-core";

const [HOST, API_TOKEN, LOGIN_URL] = process.argv.slice(2);
const ACCOUNT_ID = "<your-account-id>";

const browser = await puppeteer.connect({
  browserWSEndpoint: `${HOST}/client/v4/accounts/${ACCOUNT_ID}/browser-run/devtools/browser?keep_alive=600000`,
  headers: { Authorization: `Bearer ${API_TOKEN}` },
});
const page = await browser.newPage();
await page.goto(LOGIN_URL);

const cdp = await page.createCDPSession();
const completed = new Promise((resolve) => cdp.on("Cloudflare.handoffComplete", resolve));
const { handoffId, devtoolsFrontendUrl } = await cdp.send("Cloudflare.handoff", {
  instructions: "Sign in, then press Done.",
  timeout: 300000,
});
console.log(`Handoff ${handoffId}: ${devtoolsFrontendUrl}`);
console.log(`State: ${JSON.stringify(await cdp.send("Cloudflare.getHandoffState"))}`);

const { success, reason } = await completed;
console.log(`handoffComplete: ${JSON.stringify({ success, reason })}`);
const state = await cdp.send("Cloudflare.getHandoffState");
console.log(`State: ${JSON.stringify({ active: state.active, handoffId: state.handoffId })}`);
console.log(`Signed in as: ${await page.evaluate(() => document.body.dataset.user || "")}`);

browser.disconnect();
